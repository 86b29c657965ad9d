"""Limits that keep one key, or a crowd, from taking the machine: a rate of classify
calls per API key (429), and a cap on the inferences a web process runs and queues at
once (503). Both answer at once with Retry-After, rather than letting requests pile up
until clients time out."""

import contextlib
import logging
import math
import threading
import time

import django_rq
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.utils import translation
from django.utils.translation import gettext, gettext_noop
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Marked for the catalogues; the preview page translates it (the APIs answer in English).
BUSY = gettext_noop("The server is busy classifying; try again in a moment.")
# After Redis fails, the rate limit is left out for this long instead of every call
# waiting for a connection: classify itself needs no queue.
REDIS_BACKOFF_SECONDS = 10


class Throttled(Exception):
    def __init__(self, status, message, retry_after):
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class ClassifyRate:
    """A fixed window per key, counted in Redis so that every web process shares it."""

    def __init__(self):
        self.redis_down_until = 0.0
        self.redis = self.redis_url = None
        self.lock = threading.Lock()

    def connection(self):
        """One client (and its connection pool) per process, not a new socket per call,
        made under a lock: a web process's threads all make their first call at once
        when a crowd arrives."""
        url = settings.RQ_QUEUES["default"]["URL"]
        with self.lock:
            if url != self.redis_url:
                self.redis, self.redis_url = django_rq.get_connection("default"), url
            return self.redis

    def check(self, api_key):
        """Counts a classify call of api_key; Throttled if the key is past its limit."""
        with self.counting(api_key):
            pass

    @contextlib.contextmanager
    def counting(self, api_key):
        """Counts a classify call of api_key while the block runs (the call's lookups),
        then raises Throttled if the key is past its limit. The round trip to Redis, a
        switch to another process, runs beside the block instead of before it (about
        0.2 ms of every classify). An exception of the block wins."""
        limit, window = settings.VIZE_CLASSIFY_LIMIT, settings.VIZE_CLASSIFY_WINDOW
        now = time.time()
        bucket = f"vizeapp:classify-rate:{api_key.pk}:{int(now // window)}"
        # Without MULTI/EXEC: each window counts in a key of its own, so a connection
        # lost between the two leaves at worst a key without expiry, never a wrong count.
        sent = self.send([("INCR", bucket), ("EXPIRE", bucket, window)])
        try:
            yield
        finally:
            replies = self.replies(sent)
        if replies and replies[0] > limit:
            retry_after = max(1, math.ceil(window - now % window))
            raise Throttled(
                429,
                f"Too many classify calls with this key: the limit is {limit} per {window} "
                f"seconds. Try again in {retry_after} s.",
                retry_after,
            )

    def send(self, commands):
        """(pool, connection, how many) with commands sent on a connection of the pool,
        their replies unread; None while Redis is unavailable."""
        if time.monotonic() < self.redis_down_until:
            return None
        pool = self.connection().connection_pool
        try:
            connection = pool.get_connection()
        except RedisError:
            self.unavailable()
            return None
        try:
            connection.send_packed_command(connection.pack_commands(commands))
        except RedisError:
            pool.release(connection)
            self.unavailable()
            return None
        return pool, connection, len(commands)

    def replies(self, sent):
        """The replies of what send sent, read before its connection goes back to the
        pool; None where nothing was sent or Redis failed meanwhile."""
        if sent is None:
            return None
        pool, connection, count = sent
        try:
            return [connection.read_response() for _ in range(count)]
        except RedisError:
            connection.disconnect()
            self.unavailable()
            return None
        finally:
            pool.release(connection)

    def unavailable(self):
        logger.warning("Redis is unavailable; classify calls are not rate-limited for now")
        self.redis_down_until = time.monotonic() + REDIS_BACKOFF_SECONDS


classify_rate = ClassifyRate()


class InferenceSlots:
    """At most VIZE_INFERENCE_SLOTS classify requests run at once in this process (about
    one per core: more only makes each slower), at most VIZE_INFERENCE_QUEUE more wait
    for a slot, and the rest are turned away at once. Views take the slot before they
    read the images, so a request turned away costs almost nothing; a thread that holds
    a slot passes straight through a nested one."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running = 0
        self.waiting = 0
        self.freed = threading.Condition(self.lock)
        self.holder = threading.local()

    def full(self):
        """Whether a request arriving now would be turned away."""
        with self.lock:
            return (
                self.running >= settings.VIZE_INFERENCE_SLOTS
                and self.waiting >= settings.VIZE_INFERENCE_QUEUE
            )

    @contextlib.contextmanager
    def slot(self):
        if getattr(self.holder, "has_slot", False):
            yield
            return
        busy = Throttled(503, BUSY, retry_after=1)
        deadline = time.monotonic() + settings.VIZE_INFERENCE_WAIT
        with self.lock:
            if self.running >= settings.VIZE_INFERENCE_SLOTS:
                if self.waiting >= settings.VIZE_INFERENCE_QUEUE:
                    raise busy
                self.waiting += 1
                try:
                    while self.running >= settings.VIZE_INFERENCE_SLOTS:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise busy
                        self.freed.wait(left)
                finally:
                    self.waiting -= 1
            self.running += 1
        self.holder.has_slot = True
        try:
            yield
        finally:
            self.holder.has_slot = False
            with self.lock:
                self.running -= 1
                self.freed.notify()


inference = InferenceSlots()


class ShedClassifyLoad:
    """Middleware that answers the classify APIs and the preview page's POST with 503
    before anything of the request is read, authenticated or parsed (the CSRF check
    would read the whole upload) while this process is full: under a flood, turning a
    request away must cost far less than the work it refuses."""

    JSON_ANSWERS = {
        "api:classify": {"detail": BUSY},
        "api:classify_general": {"detail": BUSY},
        "watson_classify": {"code": 503, "error": BUSY},
    }
    # To the page's script, what it shows in place of the predictions; without
    # JavaScript, a page of its own that leads back (a GET of the same address).
    FRAGMENT_ANSWER = '<p class="message message-error">{busy}</p>'
    PAGE_ANSWER = (
        '<!doctype html><html lang="{language}"><meta charset="utf-8"><title>{title}</title>'
        '<p>{busy}</p><p><a href="">{back}</a></p></html>'
    )

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if inference.full():
            name = resolve_view_name(request.path_info)
            if name in self.JSON_ANSWERS:
                return JsonResponse(self.JSON_ANSWERS[name], status=503, headers=RETRY_SOON)
            if name == "tasks:preview" and request.method == "POST":
                return HttpResponse(self.page_answer(request), status=503, headers=RETRY_SOON)
        return self.get_response(request)

    def page_answer(self, request):
        """The preview's answer in the page's language, which the locale middleware
        further down has not chosen yet: from the switch's cookie or the browser's."""
        language = translation.get_language_from_request(request)
        with translation.override(language):
            htmx = request.headers.get("HX-Request") == "true"
            answer = self.FRAGMENT_ANSWER if htmx else self.PAGE_ANSWER
            return answer.format(
                language=language,
                title=gettext("Busy"),
                busy=gettext(BUSY),
                back=gettext("Back to the preview"),
            )


RETRY_SOON = {"Retry-After": "1"}


def resolve_view_name(path):
    try:
        return resolve(path).view_name
    except Resolver404:
        return None
