"""Classify is limited per API key (429) and per process (503), and both answers come
at once with Retry-After instead of leaving callers waiting."""

import threading

import pytest
import redis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tasks.models import ApiKey
from tasks.throttling import ClassifyRate, InferenceSlots, Throttled, classify_rate
from tests.images import png
from tests.test_watson import V3, basic

GENERAL = "/api/v1/classify/general"


@pytest.fixture
def rate_limit(settings, training_queue, monkeypatch):
    """Two classify calls per minute per key, counted in a real Redis that an earlier
    test may have left the limiter believing down."""
    settings.VIZE_CLASSIFY_LIMIT = 2
    settings.VIZE_CLASSIFY_WINDOW = 60
    monkeypatch.setattr(classify_rate, "redis_down_until", 0.0)
    for bucket in training_queue.connection.scan_iter("vizeapp:classify-rate:*"):
        training_queue.connection.delete(bucket)


def not_an_image():
    return {"files": [SimpleUploadedFile("notes.jpg", b"words")]}


def test_a_key_past_its_classify_limit_gets_429_with_retry_after(api, rate_limit):
    statuses = [api.post(GENERAL, not_an_image()).status_code for _ in range(3)]
    assert statuses == [415, 415, 429]
    refused = api.post(GENERAL, not_an_image())
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json()["detail"].startswith(
        "Too many classify calls with this key: the limit is 2 per 60 seconds."
    )


def test_the_limit_of_one_key_does_not_hold_back_another(api, outsider_api, rate_limit):
    for _ in range(3):
        api.post(GENERAL, not_an_image())
    assert outsider_api.post(GENERAL, not_an_image()).status_code == 415


def test_watson_classify_counts_against_the_same_limit(client, api, api_key, rate_limit):
    for _ in range(2):
        api.post(GENERAL, not_an_image())
    response = client.post(
        f"{V3}/classify?version=2018-03-19",
        {"images_file": SimpleUploadedFile("a.png", png())},
        HTTP_AUTHORIZATION=basic(api_key),
    )
    assert response.status_code == 429
    assert response.json()["code"] == 429
    assert response["Retry-After"]


def test_concurrent_first_calls_to_the_limit_all_answer(owner, rate_limit, settings):
    """A crowd's first requests reach a new web process's limiter at once: each is
    counted, none fails for want of the Redis client another thread is making."""
    settings.VIZE_CLASSIFY_LIMIT = 1000
    key, _ = ApiKey.issue(owner, "crowd")
    limiter, start, failures = ClassifyRate(), threading.Barrier(16), []

    def first_call():
        start.wait()
        try:
            limiter.check(key)
        except Exception as failure:  # any failure is the finding
            failures.append(failure)

    callers = [threading.Thread(target=first_call) for _ in range(16)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert failures == []
    assert limiter.redis_down_until == 0.0
    (bucket,) = limiter.connection().scan_iter(f"vizeapp:classify-rate:{key.pk}:*")
    assert int(limiter.connection().get(bucket)) == 16


@pytest.fixture
def one_redis_connection(rate_limit, settings, monkeypatch):
    """The limiter with a single Redis connection: one it failed to give back leaves
    it none (Redis counts as down, and nothing is limited)."""
    url = settings.RQ_QUEUES["default"]["URL"]
    monkeypatch.setattr(classify_rate, "redis", redis.Redis.from_url(url, max_connections=1))
    monkeypatch.setattr(classify_rate, "redis_url", url)


def test_a_call_to_a_missing_task_counts_and_gives_its_connection_back(api, one_redis_connection):
    """The count is read after the task's lookup, which fails here."""
    missing = "/api/v1/tasks/00000000-0000-4000-8000-000000000000/classify"
    statuses = [api.post(missing, not_an_image()).status_code for _ in range(2)]
    statuses += [api.post(GENERAL, not_an_image()).status_code for _ in range(2)]
    assert statuses == [404, 404, 429, 429]


def test_with_redis_down_classify_is_not_limited(api, settings, redis_down):
    settings.VIZE_CLASSIFY_LIMIT = 0
    assert api.post(GENERAL, not_an_image()).status_code == 415


@pytest.fixture
def no_capacity(settings):
    settings.VIZE_INFERENCE_SLOTS = 0
    settings.VIZE_INFERENCE_QUEUE = 0


def test_a_busy_process_answers_classify_with_503_and_retry_after(api, no_capacity):
    response = api.post(GENERAL, {"files": [SimpleUploadedFile("a.png", png())]})
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert "busy" in response.json()["detail"]


def test_a_busy_process_tells_the_preview_page_to_try_again(owner_client, task, no_capacity):
    response = owner_client.post(
        reverse("tasks:preview", args=[task.code]),
        {"files": [SimpleUploadedFile("a.png", png())]},
        headers={"HX-Request": "true"},
    )
    assert "The server is busy classifying; try again in a moment." in response.content.decode()


def test_a_busy_process_tells_the_preview_page_in_the_browsers_language(
    owner_client, task, no_capacity
):
    response = owner_client.post(
        reverse("tasks:preview", args=[task.code]),
        {"files": [SimpleUploadedFile("a.png", png())]},
        headers={"HX-Request": "true", "Accept-Language": "fr-FR,fr;q=0.9"},
    )
    assert "Le serveur" in response.content.decode()


def test_without_javascript_a_busy_preview_is_a_page_in_the_switchs_language(
    owner_client, task, no_capacity, settings
):
    owner_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    response = owner_client.post(
        reverse("tasks:preview", args=[task.code]), {"files": [SimpleUploadedFile("a.png", png())]}
    )
    page = response.content.decode()
    assert '<html lang="zh-hans">' in page
    assert "服务器正忙于分类；请稍后再试。" in page
    assert "返回试用" in page


@pytest.fixture
def one_slot(settings):
    settings.VIZE_INFERENCE_SLOTS = 1
    settings.VIZE_INFERENCE_QUEUE = 1
    settings.VIZE_INFERENCE_WAIT = 5
    return InferenceSlots()


def hold(slots, started, release):
    def run():
        with slots.slot():
            started.set()
            release.wait(5)

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(5)
    return thread


def test_a_caller_waits_for_a_slot_that_is_freed(one_slot):
    started, release = threading.Event(), threading.Event()
    holder = hold(one_slot, started, release)
    threading.Timer(0.2, release.set).start()
    with one_slot.slot():
        assert one_slot.running == 1
    holder.join()


def test_a_caller_past_the_waiting_room_is_turned_away_at_once(one_slot):
    started, release = threading.Event(), threading.Event()
    holder = hold(one_slot, started, release)
    with one_slot.lock:
        one_slot.waiting = 1  # the waiting room is full
    with pytest.raises(Throttled) as refused, one_slot.slot():
        pass
    assert refused.value.status == 503
    release.set()
    holder.join()


def test_a_caller_that_waits_too_long_is_turned_away(one_slot, settings):
    settings.VIZE_INFERENCE_WAIT = 0.2
    started, release = threading.Event(), threading.Event()
    holder = hold(one_slot, started, release)
    with pytest.raises(Throttled), one_slot.slot():
        pass
    release.set()
    holder.join()
    assert (one_slot.running, one_slot.waiting) == (0, 0)


def test_a_thread_holding_a_slot_passes_through_a_nested_one(one_slot, settings):
    settings.VIZE_INFERENCE_QUEUE = 0
    with one_slot.slot(), one_slot.slot():
        assert one_slot.running == 1
    assert one_slot.running == 0


@pytest.mark.parametrize(
    "path, answer",
    [
        (GENERAL, {"detail": "The server is busy classifying; try again in a moment."}),
        (
            f"{V3}/classify?version=2018-03-19",
            {"code": 503, "error": "The server is busy classifying; try again in a moment."},
        ),
    ],
)
def test_a_full_process_turns_classify_away_before_reading_it(
    client, db, no_capacity, path, answer
):
    response = client.post(path, {"images_file": SimpleUploadedFile("a.png", png())})
    assert (response.status_code, response["Retry-After"]) == (503, "1")
    assert response.json() == answer


def test_a_full_process_still_serves_pages(owner_client, task, no_capacity):
    assert owner_client.get(task.get_absolute_url()).status_code == 200
