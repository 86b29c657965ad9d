"""Webhooks: a signed POST to each URL a task names when one of its runs becomes ready or
fails, tried again with growing pauses, each call logged on the hook.

Every call goes out through tasks/fetching.py's check, the one Watson's `url` passes: the
URL's host must resolve to public addresses only (checked when the hook is added and again
before each call, as DNS may change), the connection goes to the address checked, and a
redirect is not followed. VIZE_WEBHOOK_ALLOWED_NETWORKS names networks that count as
public here (an intranet's CI server; the tests' own receiver).

The body is signed with the hook's secret: `X-Vize-Signature: sha256=HEX`, the HMAC-SHA256
of the `X-Vize-Timestamp` header's value, a dot, and the raw body (README.md shows the
check), so that a call captured once cannot be replayed later under a fresh timestamp.
"""

import hashlib
import hmac
import ipaddress
import json
import logging
import time
import uuid
from datetime import timedelta

import django_rq
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from redis.exceptions import RedisError

from tasks import fetching
from tasks.models import Task, TrainingRun, Webhook

logger = logging.getLogger(__name__)

EVENTS = {TrainingRun.Status.READY: "run.ready", TrainingRun.Status.FAILED: "run.failed"}
# Pauses before the second, third and fourth call of an event that was not taken (no
# 2xx answer); after the fourth, the hook gives up on it.
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30))
ATTEMPTS = len(RETRY_DELAYS) + 1


class WebhookRefused(Exception):
    """Why a webhook was not added, worded for the person who asked."""


class TooManyWebhooks(WebhookRefused):
    """The task has Webhook.LIMIT hooks already."""


def allowed_address(address):
    """A public address, or one in a network the settings allow webhooks to call."""
    ip = ipaddress.ip_address(address)
    return fetching.public_address(address) or any(
        ip in ipaddress.ip_network(network) for network in settings.VIZE_WEBHOOK_ALLOWED_NETWORKS
    )


def add(task, url, site):
    """A new hook of the task calling url; site is the address the person reached this
    site by. WebhookRefused for a URL inside the network (TooManyWebhooks, one of them,
    for a task at its limit)."""
    try:
        fetching.checked_address(url, allowed_address)
    except fetching.FetchRefused as refusal:
        raise WebhookRefused(f"The webhook URL was refused: {refusal}.") from None
    with transaction.atomic():
        Task.objects.select_for_update().filter(pk=task.pk).first()  # one add at a time
        if task.webhooks.count() >= Webhook.LIMIT:
            raise TooManyWebhooks(
                f"A task has at most {Webhook.LIMIT} webhooks; remove one to add another."
            )
        return task.webhooks.create(url=url, secret=Webhook.new_secret(), site=site)


def announce(run_id, status):
    """Queue a call of each of the run's task's hooks about its new status (ready or
    failed); TrainingRun calls this once the change has committed."""
    run = TrainingRun.objects.select_related("task").filter(pk=run_id).first()
    if run is None:  # its task was deleted meanwhile
        return
    event = EVENTS[status]
    for hook in run.task.webhooks.all():
        delivery = uuid.uuid4()
        body = json.dumps(payload(hook, run, event))
        try:
            django_rq.get_queue("default").enqueue(deliver, hook.pk, str(delivery), event, body)
        except RedisError:
            logger.warning("Redis is unavailable; webhook %s was not called", hook.code)
            hook.log(delivery, event, 1, None, "The job queue was unavailable.")


def payload(hook, run, event):
    """What a hook is told of the run, with links into /api/v1 to fetch it and its model."""
    task = run.task
    run_url = reverse("api:read_run", kwargs={"task": task.code, "run": run.code})
    export_url = f"{reverse('api:export', kwargs={'task': task.code})}?run={run.code}"
    ready = run.status == TrainingRun.Status.READY
    return {
        "event": event,
        "task": {"code": str(task.code), "name": task.name},
        "run": {
            "code": str(run.code),
            "status": run.status,
            "accuracy": run.accuracy,
            "reason": run.reason,
            "url": hook.site.rstrip("/") + run_url,
            "model_zip": hook.site.rstrip("/") + export_url if ready else None,
        },
    }


def deliver(webhook_id, delivery, event, body, attempt=1):
    """Call the hook (the job on the `default` queue); log how it answered, and when it
    did not take the event, queue the next attempt after the pause RETRY_DELAYS says.
    A hook removed meanwhile is not called."""
    hook = Webhook.objects.filter(pk=webhook_id).first()
    if hook is None:
        return
    status_code, error = post(hook, delivery, event, body)
    hook.log(delivery, event, attempt, status_code, error)
    taken = status_code is not None and 200 <= status_code < 300
    if not taken and attempt < ATTEMPTS:
        django_rq.get_queue("default").enqueue_in(
            RETRY_DELAYS[attempt - 1], deliver, webhook_id, delivery, event, body, attempt + 1
        )


def post(hook, delivery, event, body):
    """(HTTP status or None, what went wrong or ""): one signed POST, no redirect followed."""
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Vize-Event": event,
        "X-Vize-Delivery": delivery,
        "X-Vize-Timestamp": timestamp,
        "X-Vize-Signature": signature(hook.secret, timestamp, body.encode()),
    }
    try:
        response = fetching.request(hook.url, allowed_address, "POST", body.encode(), headers)
    except fetching.FetchRefused as refusal:
        return None, str(refusal)
    location = response.getheader("Location")
    response.close()
    if 300 <= response.status < 400:
        return response.status, f"redirected to {location}; webhooks follow no redirects"
    if not 200 <= response.status < 300:
        return response.status, f"the server answered {response.status}"
    return response.status, ""


def signature(secret, timestamp, body):
    """The X-Vize-Signature header of a body (bytes) sent at timestamp (a string)."""
    signed = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
