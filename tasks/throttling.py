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
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

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

    def check(self, api_key):
        limit, window = settings.VIZE_CLASSIFY_LIMIT, settings.VIZE_CLASSIFY_WINDOW
        now = time.time()
        if time.monotonic() < self.redis_down_until:
            return
        bucket = f"vizeapp:classify-rate:{api_key.pk}:{int(now // window)}"
        try:
            connection = django_rq.get_connection("default")
            calls, _ = connection.pipeline().incr(bucket).expire(bucket, window).execute()
        except RedisError:
            logger.warning("Redis is unavailable; classify calls are not rate-limited for now")
            self.redis_down_until = time.monotonic() + REDIS_BACKOFF_SECONDS
            return
        if calls > limit:
            retry_after = max(1, math.ceil(window - now % window))
            raise Throttled(
                429,
                f"Too many classify calls with this key: the limit is {limit} per {window} "
                f"seconds. Try again in {retry_after} s.",
                retry_after,
            )


classify_rate = ClassifyRate()


class InferenceSlots:
    """At most `slots` inferences run at once in this process (about one per core: more
    only makes each slower), at most `waiting` more wait for a slot, and the rest are
    turned away at once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running = 0
        self.waiting = 0
        self.freed = threading.Condition(self.lock)

    @contextlib.contextmanager
    def slot(self):
        busy = Throttled(
            503, "The server is busy classifying; try again in a moment.", retry_after=1
        )
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
        try:
            yield
        finally:
            with self.lock:
                self.running -= 1
                self.freed.notify()


inference = InferenceSlots()
