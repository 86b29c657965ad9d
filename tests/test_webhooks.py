"""Webhooks: a signed POST to each hook of a task when one of its runs is ready or fails,
made by a real worker to a real HTTP receiver in the test, tried again after a refusal,
logged; and never to an address inside the network, when added or when called."""

import hashlib
import hmac
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import django_rq
import pytest
from django.urls import reverse
from django.utils import timezone
from rq import SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from tasks import runs, webhooks
from tasks.models import TrainingRun, Webhook
from tests.helpers import V1


class Receiver:
    """An HTTP server on a loopback address that records each POST and answers with the
    (status, headers) it is given, in order; 200 once they run out."""

    def __init__(self, host):
        self.calls = []
        self.answers = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append({"headers": dict(self.headers), "body": body})
                status, headers = receiver.answers.pop(0) if receiver.answers else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def payloads(self):
        return [json.loads(call["body"]) for call in self.calls]


@pytest.fixture
def receiver():
    server = Receiver("127.0.0.1")
    yield server
    server.server.shutdown()


@pytest.fixture
def inside():
    """A server at another loopback address, which stays inside the network."""
    server = Receiver("127.0.0.2")
    yield server
    server.server.shutdown()


@pytest.fixture
def receiver_allowed(settings, receiver):
    """The receiver's address may be called, as VIZE_WEBHOOK_ALLOWED_NETWORKS allows an
    intranet's; every other private address stays refused."""
    settings.VIZE_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]


@pytest.fixture
def added(api, task, receiver, receiver_allowed):
    """The answer to adding the receiver as a webhook of the owner's task through the API."""
    answer = api.post(f"{V1}/tasks/{task.code}/webhooks", {"url": receiver.url}, "application/json")
    assert answer.status_code == 201, answer.content
    return answer.json()


@pytest.fixture
def hook(added):
    return Webhook.objects.get(code=added["code"])


def unschedule(queue):
    scheduled = ScheduledJobRegistry(queue=queue)
    for job in scheduled.get_job_ids():
        scheduled.remove(job, delete_job=True)


@pytest.fixture
def default_queue(queues):
    """The default queue, emptied, with no retry scheduled before the test or left after."""
    queue = django_rq.get_queue("default")
    unschedule(queue)
    yield queue
    unschedule(queue)


def work(queue):
    """Run the queue's jobs on a real worker, with RQ's scheduler queueing those due."""
    SimpleWorker([queue], connection=queue.connection).work(burst=True, with_scheduler=True)


@pytest.fixture
def fail_a_run(task, default_queue, django_capture_on_commit_callbacks):
    """Fail a run of the task as the reconciler does when its worker died, and run the
    jobs that queues; the run."""

    def fail():
        run = task.runs.create(base_model="lite0", mode="fast", status="fitting", samples=[])
        TrainingRun.objects.filter(pk=run.pk).update(created=timezone.now() - timedelta(hours=1))
        run.refresh_from_db()
        with django_capture_on_commit_callbacks(execute=True):
            runs.reconcile([run])
        work(default_queue)
        return run

    return fail


def verified(secret, headers, body):
    """README.md's check of a call, as a receiver writes it."""
    signed = headers["X-Vize-Timestamp"].encode() + b"." + body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(headers["X-Vize-Timestamp"])) < 300  # refuse replays
    return fresh and hmac.compare_digest(expected, headers["X-Vize-Signature"])


def test_a_call_verifies_with_the_secret_shown_when_the_hook_was_added(added, receiver, fail_a_run):
    fail_a_run()
    (call,) = receiver.calls
    assert verified(added["secret"], call["headers"], call["body"])
    assert not verified(added["secret"], call["headers"], call["body"] + b" ")
    assert not verified(Webhook.new_secret(), call["headers"], call["body"])


def test_the_signature_covers_the_timestamp():
    body = b'{"event": "run.ready"}'
    earlier = webhooks.signature("whsec_x", "1700000000", body)
    assert earlier != webhooks.signature("whsec_x", "1700000001", body)


def test_a_failed_run_is_announced_with_its_reason(task, hook, receiver, fail_a_run):
    run = fail_a_run()
    assert receiver.payloads() == [
        {
            "event": "run.failed",
            "task": {"code": str(task.code), "name": task.name},
            "run": {
                "code": str(run.code),
                "status": "failed",
                "accuracy": None,
                "reason": "The worker stopped reporting (it was killed, ran out of memory or "
                "restarted).",
                "url": f"http://testserver{V1}/tasks/{task.code}/runs/{run.code}",
                "model_zip": None,
            },
        }
    ]
    assert receiver.calls[0]["headers"]["X-Vize-Event"] == "run.failed"


def test_a_ready_run_is_announced_with_links_that_fetch_it_and_its_model(
    api, shapes_task, hook, receiver, run_queues, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        started = api.post(
            f"{V1}/tasks/{shapes_task.code}/runs", {"base_model": "lite0"}, "application/json"
        )
    run_queues("training")
    run_queues("default")  # the call, and the model zip's packaging
    (payload,) = receiver.payloads()
    assert payload["event"] == "run.ready"
    assert payload["task"] == {"code": str(shapes_task.code), "name": shapes_task.name}
    run = payload["run"]
    assert (run["code"], run["status"]) == (started.json()["code"], "ready")
    assert run["accuracy"] == api.get(run["url"]).json()["metrics"]["accuracy"]
    model_zip = api.get(run["model_zip"])
    assert (model_zip.status_code, model_zip["Content-Type"]) == (200, "application/zip")


def test_a_call_answered_500_is_tried_again_a_minute_later_and_logged(
    hook, receiver, fail_a_run, default_queue
):
    receiver.answers = [(500, {})]
    fail_a_run()
    registry = ScheduledJobRegistry(queue=default_queue)
    (retry,) = registry.get_job_ids()
    due = registry.get_scheduled_time(retry)
    assert timedelta(seconds=50) < due - datetime.now(UTC) <= timedelta(minutes=1)
    registry.schedule(Job.fetch(retry, connection=default_queue.connection), datetime.now(UTC))
    work(default_queue)
    first, second = receiver.calls
    assert first["body"] == second["body"]
    assert first["headers"]["X-Vize-Delivery"] == second["headers"]["X-Vize-Delivery"]
    log = [(d.attempt, d.status_code, d.delivered) for d in hook.deliveries.all()]
    assert log == [(2, 200, True), (1, 500, False)]
    assert hook.deliveries.last().error == "the server answered 500"


def test_the_last_attempt_that_fails_is_not_tried_again(
    hook, receiver, default_queue, django_capture_on_commit_callbacks
):
    receiver.answers = [(503, {})]
    delivery = "3f1c0e0e-0000-4000-8000-000000000000"
    with django_capture_on_commit_callbacks(execute=True):
        default_queue.enqueue(
            webhooks.deliver, hook.pk, delivery, "run.failed", "{}", webhooks.ATTEMPTS
        )
    work(default_queue)
    assert len(receiver.calls) == 1
    assert ScheduledJobRegistry(queue=default_queue).get_job_ids() == []
    assert hook.deliveries.get().attempt == webhooks.ATTEMPTS


def test_a_redirect_into_the_network_is_not_followed(hook, receiver, inside, fail_a_run):
    receiver.answers = [(302, {"Location": inside.url})]
    fail_a_run()
    assert inside.calls == []
    delivery = hook.deliveries.first()
    assert (delivery.status_code, delivery.delivered) == (302, False)
    assert "webhooks follow no redirects" in delivery.error


def test_the_address_is_checked_again_at_each_call(hook, receiver, settings, fail_a_run):
    settings.VIZE_WEBHOOK_ALLOWED_NETWORKS = []
    fail_a_run()
    assert receiver.calls == []
    delivery = hook.deliveries.first()
    assert (delivery.status_code, delivery.error) == (
        None,
        "127.0.0.1 is a private, loopback or link-local address",
    )


def test_a_removed_hook_is_not_called(api, task, hook, receiver, fail_a_run, default_queue):
    receiver.answers = [(500, {})]
    fail_a_run()
    api.delete(f"{V1}/tasks/{task.code}/webhooks/{hook.code}")
    for retry in ScheduledJobRegistry(queue=default_queue).get_job_ids():
        job = Job.fetch(retry, connection=default_queue.connection)
        ScheduledJobRegistry(queue=default_queue).schedule(job, datetime.now(UTC))
    work(default_queue)
    assert len(receiver.calls) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8000/hook",
        "http://10.0.0.5/hook",
        "http://192.168.1.20/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "file:///etc/passwd",
    ],
)
def test_an_address_inside_the_network_is_refused_when_added(api, task, url):
    answer = api.post(f"{V1}/tasks/{task.code}/webhooks", {"url": url}, "application/json")
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith("url: The webhook URL was refused: ")
    assert not task.webhooks.exists()


def test_the_page_says_why_an_address_was_refused(owner_client, task):
    page = owner_client.post(
        reverse("tasks:webhooks", args=[task.code]), {"url": "http://169.254.169.254/"}
    )
    assert "169.254.169.254 is a private, loopback or link-local address" in page.content.decode()
    assert not task.webhooks.exists()


def test_a_task_has_at_most_five_webhooks(api, owner_client, task, receiver, receiver_allowed):
    for number in range(Webhook.LIMIT):
        url = f"{receiver.url}/{number}"
        api.post(f"{V1}/tasks/{task.code}/webhooks", {"url": url}, "application/json")
    answer = api.post(f"{V1}/tasks/{task.code}/webhooks", {"url": receiver.url}, "application/json")
    assert answer.status_code == 409
    assert answer.json()["detail"] == "A task has at most 5 webhooks; remove one to add another."
    page = owner_client.get(reverse("tasks:webhooks", args=[task.code]))
    assert "This task has 5 webhooks, the most it may have" in page.content.decode()
    assert task.webhooks.count() == Webhook.LIMIT


def test_the_secret_is_answered_once_through_the_api(api, task, added):
    assert added["secret"].startswith(Webhook.PREFIX)
    listed = api.get(f"{V1}/tasks/{task.code}/webhooks")
    assert added["secret"] not in listed.content.decode()
    assert [hook["code"] for hook in listed.json()] == [added["code"]]


def test_the_page_shows_the_secret_once(owner_client, task, receiver, receiver_allowed):
    page = reverse("tasks:webhooks", args=[task.code])
    answer = owner_client.post(page, {"url": receiver.url})
    secret = task.webhooks.get().secret
    assert secret in answer.content.decode()
    assert answer["Cache-Control"] == "no-store"
    assert secret not in owner_client.get(page).content.decode()


def test_the_page_lists_each_hooks_calls(owner_client, task, hook, receiver, fail_a_run):
    receiver.answers = [(500, {})]
    fail_a_run()
    page = owner_client.get(reverse("tasks:webhooks", args=[task.code])).content.decode()
    assert receiver.url in page
    assert "run.failed" in page
    assert "the server answered 500" in page
    assert f"attempt 1 of {webhooks.ATTEMPTS}" in page


def test_the_page_removes_a_hook(owner_client, task, hook):
    removed = owner_client.post(reverse("tasks:webhook_remove", args=[task.code, hook.code]))
    assert removed.status_code == 302
    assert not task.webhooks.exists()


def test_the_api_lists_a_hooks_deliveries(api, task, hook, fail_a_run):
    fail_a_run()
    (delivery,) = api.get(f"{V1}/tasks/{task.code}/webhooks/{hook.code}/deliveries").json()
    assert (delivery["event"], delivery["attempt"], delivery["status_code"]) == (
        "run.failed",
        1,
        200,
    )


def test_another_users_hooks_are_not_found(outsider_api, outsider_client, task, hook):
    base = f"{V1}/tasks/{task.code}/webhooks"
    assert outsider_api.get(base).status_code == 404
    assert outsider_api.get(f"{base}/{hook.code}/deliveries").status_code == 404
    assert outsider_api.delete(f"{base}/{hook.code}").status_code == 404
    assert outsider_client.get(reverse("tasks:webhooks", args=[task.code])).status_code == 404
    remove = reverse("tasks:webhook_remove", args=[task.code, hook.code])
    assert outsider_client.post(remove).status_code == 404
    assert task.webhooks.get() == hook


def test_the_log_keeps_the_last_20_calls(hook):
    for attempt in range(25):
        hook.log("3f1c0e0e-0000-4000-8000-000000000000", "run.ready", attempt, 200, "")
    kept = [delivery.attempt for delivery in hook.deliveries.all()]
    assert kept == list(range(24, 4, -1))


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_the_call_that_could_not_be_queued_is_logged(task, redis_down):
    hook = task.webhooks.create(url="https://hooks.example.org/", secret="whsec_x", site="/")
    run = task.runs.create(base_model="lite0", mode="fast", status="fitting", samples=[])
    assert run.fail("Training failed: the disk is full.")
    assert hook.deliveries.get().error == "The job queue was unavailable."
