"""Training runs end to end: the page starts a run, a real worker trains it on a real
Redis queue, the run page and the preview show the result."""

import io
import threading
from datetime import timedelta

import django_rq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rq import SimpleWorker
from rq.job import Job

from tasks import jobs, runs
from tasks.models import ImageEmbedding, TrainingRun
from tests.helpers import add_pictures, start_training, work
from tests.images import encode, picture
from trainer import finetune


def test_a_run_trains_on_a_real_worker_and_becomes_active(
    owner_client, shapes_task, training_queue, django_capture_on_commit_callbacks
):
    response = start_training(owner_client, shapes_task, django_capture_on_commit_callbacks)
    run = shapes_task.runs.get()
    assert response.url == run.get_absolute_url()
    assert (run.status, len(run.samples)) == ("queued", 12)
    work(training_queue)
    run.refresh_from_db()
    shapes_task.refresh_from_db()
    assert run.status == "ready", run.reason
    assert run.metrics["accuracy"] == 1.0
    assert [c["name"] for c in run.metrics["categories"]] == ["discs", "squares"]
    assert shapes_task.active_run == run
    assert ImageEmbedding.objects.filter(base_model="lite0").count() == 12


def test_a_training_job_carries_the_run_id_and_nothing_pickled(
    owner_client, shapes_task, training_queue, django_capture_on_commit_callbacks
):
    start_training(owner_client, shapes_task, django_capture_on_commit_callbacks)
    run = shapes_task.runs.get()
    (job,) = training_queue.get_jobs()
    assert (job.func_name, job.args, job.kwargs) == ("tasks.jobs.train_run", (run.pk,), {})


def test_a_run_taken_by_two_workers_is_trained_once(shapes_task):
    run, _ = runs.start(shapes_task, base_model="lite0")
    jobs.train_run(run.pk)
    run.refresh_from_db()
    finished = run.finished
    jobs.train_run(run.pk)  # a second worker with a duplicate of the job
    run.refresh_from_db()
    assert (run.status, run.finished) == ("ready", finished)


def test_the_run_page_shows_accuracy_and_the_confusion_matrix(
    owner_client, shapes_task, training_queue, django_capture_on_commit_callbacks
):
    start_training(owner_client, shapes_task, django_capture_on_commit_callbacks)
    work(training_queue)
    run = shapes_task.runs.get()
    html = owner_client.get(run.get_absolute_url()).content.decode()
    assert "100.0 % accurate" in html
    assert "5-fold cross-validation" in html
    assert 'class="confusion"' in html


def test_run_progress_keeps_polling_until_the_run_ends(
    owner_client, shapes_task, training_queue, django_capture_on_commit_callbacks
):
    start_training(owner_client, shapes_task, django_capture_on_commit_callbacks)
    run = shapes_task.runs.get()
    poll = {"HX-Request": "true", "HX-Target": "run-progress"}
    response = owner_client.get(run.get_absolute_url(), headers=poll)
    assert 'hx-trigger="every 1s"' in response.content.decode()
    assert "HX-Refresh" not in response
    work(training_queue)
    response = owner_client.get(run.get_absolute_url(), headers=poll)
    assert 'hx-trigger="every 1s"' not in response.content.decode()
    assert response["HX-Refresh"] == "true"


def accurate_run(task, fine_tuning):
    metrics = {
        "method": "hold-out of 20% of the images",
        "evaluated": 49,
        "accuracy": 0.918,
        "accuracy_low": 0.8,
        "accuracy_high": 0.97,
        "categories": [],
        "confusion": [],
        "fine_tuning": fine_tuning,
    }
    return task.runs.create(
        base_model="lite2",
        mode="accurate",
        status="ready",
        metrics=metrics,
        samples=[["a", "b"]] * 245,
    )


def test_the_run_page_tells_how_accurate_mode_fine_tuned_the_model_in_use(owner_client, task):
    run = accurate_run(
        task,
        {
            "selection_epochs": 4,
            "fast_holdout_accuracy": 0.898,
            "tuned_holdout_accuracy": 0.918,
            "final_epochs": 4,
            "kept": "fine-tuned",
        },
    )
    html = owner_client.get(run.get_absolute_url()).content.decode()
    assert "Fine-tuned for 4 epochs on the other images, it scored 91.8 %" in html
    assert "(the fast model it starts from: 89.8 %)" in html
    assert "then fine-tuned for 4 epochs on all 245 images" in html


def test_the_run_page_tells_when_accurate_mode_kept_the_fast_model(owner_client, task):
    run = accurate_run(
        task,
        {
            "selection_epochs": 6,
            "fast_holdout_accuracy": 0.939,
            "tuned_holdout_accuracy": 0.918,
            "final_epochs": 0,
            "kept": "fast",
        },
    )
    html = owner_client.get(run.get_absolute_url()).content.decode()
    assert "That is no better, so the model you use is the fast model" in html


def test_the_preview_predicts_with_the_active_model_and_stores_nothing(
    owner_client, shapes_task, training_queue, django_capture_on_commit_callbacks
):
    start_training(owner_client, shapes_task, django_capture_on_commit_callbacks)
    work(training_queue)
    images_before = shapes_task.images.count()
    response = owner_client.post(
        reverse("tasks:preview", args=[shapes_task.code]),
        {
            "files": [
                SimpleUploadedFile("new-disc.png", encode(picture("discs", 500), "PNG")),
                SimpleUploadedFile("new-square.png", encode(picture("squares", 501), "PNG")),
                SimpleUploadedFile("notes.jpg", b"words"),
            ]
        },
        headers={"HX-Request": "true"},
    )
    results = response.context["results"]
    assert [r["prediction"].label for r in results[:2]] == ["discs", "squares"]
    assert results[2]["error"].startswith("not an image")
    assert shapes_task.images.count() == images_before


def test_the_preview_says_which_photos_need_review_below_the_operating_point(
    owner_client, shapes_task, training_queue, django_capture_on_commit_callbacks
):
    start_training(owner_client, shapes_task, django_capture_on_commit_callbacks)
    work(training_queue)
    kinds = ("discs", "blank", "stripes", "triangles")
    files = [encode(picture(kind, 600 + i), "PNG") for i, kind in enumerate(kinds)]

    def preview():
        return owner_client.post(
            reverse("tasks:preview", args=[shapes_task.code]),
            {
                "files": [
                    SimpleUploadedFile(f"{k}.png", f) for k, f in zip(kinds, files, strict=True)
                ]
            },
        )

    tops = [result["prediction"].scores[0][1] for result in preview().context["results"]]
    threshold = (min(tops) + max(tops)) / 2
    assert shapes_task.runs.get().choose_operating_point(threshold)
    response = preview()
    unsure = [result["prediction"].needs_review for result in response.context["results"]]
    assert unsure == [top < threshold for top in tops] and any(unsure) and not all(unsure)
    assert response.content.decode().count("<strong>Needs review</strong>") == sum(unsure)


def test_the_preview_says_when_a_photo_is_too_large(owner_client, task, settings):
    settings.VIZE_MAX_IMAGE_BYTES = 100
    response = owner_client.post(
        reverse("tasks:preview", args=[task.code]),
        {"files": [SimpleUploadedFile("big.png", encode(picture("discs", 1), "PNG"))]},
        headers={"HX-Request": "true"},
    )
    (result,) = response.context["results"]
    assert "the limit is" in result["error"]


@pytest.fixture
def retrain_after_adding(
    owner_client, shapes_task, training_queue, django_capture_on_commit_callbacks
):
    """Train shapes_task, add `count` discs, train again: (first run, retrained run)."""

    def train():
        start_training(owner_client, shapes_task, django_capture_on_commit_callbacks)
        work(training_queue)

    def retrain(count):
        train()
        add_pictures(shapes_task, shapes_task.categories.get(name="discs"), "discs", count, 50)
        train()
        retrained, first = shapes_task.runs.all()[:2]
        return first, retrained

    return retrain


def test_a_retrain_embeds_only_the_new_images(retrain_after_adding):
    _, latest = retrain_after_adding(2)
    assert latest.status == "ready"
    assert len(latest.samples) == 14
    assert ImageEmbedding.objects.count() == 14


def test_a_second_press_shows_the_run_already_queued(
    owner_client, shapes_task, training_queue, django_capture_on_commit_callbacks
):
    first = start_training(owner_client, shapes_task, django_capture_on_commit_callbacks)
    second = start_training(owner_client, shapes_task, django_capture_on_commit_callbacks)
    assert first.url == second.url
    assert shapes_task.runs.count() == 1
    assert training_queue.count == 1


def test_uploads_are_embedded_in_the_background_and_training_reuses_them(
    owner_client, task, settings, training_queue, django_capture_on_commit_callbacks
):
    settings.VIZE_EMBED_ON_UPLOAD = True
    default_queue = django_rq.get_queue("default")
    default_queue.empty()
    for kind in ("discs", "squares"):
        category = task.categories.create(name=kind)
        files = [
            SimpleUploadedFile(f"{kind}-{i}.png", encode(picture(kind, i), "PNG")) for i in range(3)
        ]
        with django_capture_on_commit_callbacks(execute=True):
            owner_client.post(
                reverse("tasks:upload", args=[task.code]),
                {"files": files, "target": str(category.code)},
                headers={"HX-Request": "true"},
            )
    SimpleWorker([default_queue], connection=default_queue.connection).work(burst=True)
    assert ImageEmbedding.objects.filter(base_model="lite2").count() == 6

    start_training(owner_client, task, django_capture_on_commit_callbacks, base_model="lite2")
    work(training_queue)
    assert task.runs.get().status == "ready"
    assert ImageEmbedding.objects.count() == 6


def test_a_background_embedding_past_its_time_slice_queues_the_rest_as_a_new_job(
    task, settings, training_queue, monkeypatch, django_capture_on_commit_callbacks
):
    settings.VIZE_EMBED_ON_UPLOAD = True
    monkeypatch.setattr(jobs, "EMBEDDING_CHUNK", 2)
    monkeypatch.setattr(jobs, "EMBEDDING_SLICE_SECONDS", 0)
    add_pictures(task, task.categories.create(name="discs"), "discs", 3)
    default_queue = django_rq.get_queue("default")
    default_queue.empty()

    with django_capture_on_commit_callbacks(execute=True):
        jobs.embed_new_images(task.pk)
    assert ImageEmbedding.objects.count() == 2
    assert default_queue.count == 1
    SimpleWorker([default_queue], connection=default_queue.connection).work(burst=True)
    assert ImageEmbedding.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_presses_make_one_run(owner, training_queue):
    task = owner.tasks.create(name="Race")
    for kind in ("discs", "squares"):
        add_pictures(task, task.categories.create(name=kind), kind, 3)
    clients = [Client(), Client()]
    for client in clients:
        client.force_login(owner)
    barrier = threading.Barrier(2)
    statuses = []

    def press(client):
        barrier.wait()
        try:
            statuses.append(
                client.post(
                    reverse("tasks:train", args=[task.code]), {"base_model": "lite0"}
                ).status_code
            )
        finally:
            # The test client leaves a thread's database connection open, and an open
            # one keeps PostgreSQL from dropping the test database at the end.
            connection.close()

    threads = [threading.Thread(target=press, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [302, 302]
    assert TrainingRun.objects.filter(task=task).count() == 1


def test_training_is_refused_below_two_images_per_category(
    owner_client, task, ants, bees, ant_images
):
    add_pictures(task, bees, "squares", 1)
    response = owner_client.post(reverse("tasks:train", args=[task.code]), follow=True)
    assert "“bees” has 1 image; each category needs at least 2" in response.content.decode()
    assert not task.runs.exists()


def test_an_accurate_run_too_short_to_fine_tune_is_ready_with_the_fast_model(
    owner_client, task, training_queue
):
    for kind in ("discs", "squares"):
        add_pictures(task, task.categories.create(name=kind), kind, 12)
    run = task.runs.create(
        base_model="lite0", mode="accurate", time_budget=1, samples=runs.frozen_samples(task)
    )
    jobs.train_run(run.pk)
    run.refresh_from_db()
    assert run.status == "ready", run.reason
    assert run.metrics["fine_tuning"]["kept"] == "fast"
    assert run.eta_seconds == 0
    html = owner_client.get(run.get_absolute_url()).content.decode()
    assert "The time budget left too little time to fine-tune the network" in html


def test_accurate_mode_is_refused_below_ten_images_per_category(
    owner_client, shapes_task, django_capture_on_commit_callbacks
):
    response = owner_client.post(
        reverse("tasks:train", args=[shapes_task.code]), {"mode": "accurate"}, follow=True
    )
    assert "Accurate mode needs at least 10 images in each category" in response.content.decode()
    assert not shapes_task.runs.exists()


def test_an_empty_negative_category_neither_blocks_nor_warns(shapes_task):
    shapes_task.categories.create(name="other", is_negative=True)
    check = runs.readiness(shapes_task)
    assert check.can_train
    assert not any("other" in warning for warning in check.warnings)


def test_starting_again_while_queued_adds_the_new_images_to_that_run(
    shapes_task, training_queue, django_capture_on_commit_callbacks
):
    first, started = runs.start(shapes_task, "lite0")
    add_pictures(shapes_task, shapes_task.categories.get(name="discs"), "discs", 2, start=50)
    again, started_again = runs.start(shapes_task, "lite0")
    assert (again, started, started_again) == (first, runs.Started.NEW, runs.Started.JOINED)
    assert len(again.samples) == 14


def test_starting_again_while_training_changes_nothing(shapes_task, training_queue):
    first, _ = runs.start(shapes_task, "lite0")
    assert first.claim()
    add_pictures(shapes_task, shapes_task.categories.get(name="discs"), "discs", 2, start=50)
    again, started_again = runs.start(shapes_task, "lite0")
    assert (again, started_again) == (first, runs.Started.BUSY)
    again.refresh_from_db()
    assert len(again.samples) == 12


def test_one_category_and_its_negative_examples_can_train(task, ants):
    add_pictures(task, ants, "discs", 3)
    add_pictures(task, task.categories.create(name="other", is_negative=True), "blank", 3)
    assert runs.readiness(task).can_train


def test_negative_examples_alone_cannot_train(task):
    add_pictures(task, task.categories.create(name="other", is_negative=True), "blank", 3)
    assert not runs.readiness(task).can_train


def test_the_page_warns_about_few_and_unbalanced_images(owner_client, task, ants, bees):
    add_pictures(task, ants, "discs", 8)
    add_pictures(task, bees, "squares", 2)
    html = owner_client.get(task.get_absolute_url()).content.decode()
    assert "“bees” has only 2 images" in html
    assert "out of balance" in html


def test_negative_examples_teach_the_model_to_say_none_of_these(
    owner_client, shapes_task, training_queue, django_capture_on_commit_callbacks
):
    stripes = shapes_task.categories.create(name="other", is_negative=True)
    add_pictures(shapes_task, stripes, "stripes", 6)
    start_training(owner_client, shapes_task, django_capture_on_commit_callbacks)
    work(training_queue)
    run = shapes_task.runs.get()
    assert (run.status, run.negative_label) == ("ready", "other")
    response = owner_client.post(
        reverse("tasks:preview", args=[shapes_task.code]),
        {"files": [SimpleUploadedFile("s.png", encode(picture("stripes", 300), "PNG"))]},
        headers={"HX-Request": "true"},
    )
    (result,) = response.context["results"]
    assert result["prediction"].label is None
    assert "None of these" in response.content.decode()


def test_the_reconcile_command_reports_what_it_settled(shapes_task, training_queue, settings):
    settings.VIZE_RUN_STALE_SECONDS = 0
    shapes_task.runs.create(base_model="lite0", mode="fast", status="fitting", samples=[])
    output = io.StringIO()
    call_command("reconcile_runs", stdout=output)
    assert "1 active runs checked, 1 marked failed." in output.getvalue()


def test_a_run_whose_worker_died_is_failed_by_the_reconciler(shapes_task, training_queue, settings):
    settings.VIZE_RUN_STALE_SECONDS = 60
    run = shapes_task.runs.create(
        base_model="lite0", mode="fast", status="embedding", samples=[], heartbeat=timezone.now()
    )
    runs.reconcile([run])
    assert run.status == "embedding"
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat=timezone.now() - timedelta(minutes=2))
    run.refresh_from_db()
    runs.reconcile([run])
    assert run.status == "failed"
    assert "worker stopped reporting" in run.reason


def held_by_a_worker(run, queue, last_beat, commits):
    """The run's job as RQ leaves it while a worker runs it: started, with the worker's
    last heartbeat for it at last_beat."""
    with commits(execute=True):
        runs.enqueue(run)
    job = Job.fetch(run.job_id, connection=queue.connection)
    with queue.connection.pipeline() as pipeline:
        job.prepare_for_execution("worker-1", pipeline)
        pipeline.execute()
    job.heartbeat(last_beat, ttl=120)


@pytest.fixture
def silent_run(shapes_task, settings):
    """A run that has not reported for two minutes, past VIZE_RUN_STALE_SECONDS."""
    settings.VIZE_RUN_STALE_SECONDS = 60
    return shapes_task.runs.create(
        base_model="lite0",
        mode="accurate",
        status="fitting",
        samples=[],
        heartbeat=timezone.now() - timedelta(minutes=2),
    )


def test_a_live_job_silent_past_the_stale_limit_is_left_alone(
    silent_run, training_queue, django_capture_on_commit_callbacks
):
    beat = timezone.now()
    held_by_a_worker(silent_run, training_queue, beat, django_capture_on_commit_callbacks)
    runs.reconcile([silent_run])
    silent_run.refresh_from_db()
    assert silent_run.status == "fitting"


def test_a_started_job_whose_worker_stopped_beating_is_failed(
    silent_run, training_queue, django_capture_on_commit_callbacks
):
    beat = timezone.now() - timedelta(minutes=3)
    held_by_a_worker(silent_run, training_queue, beat, django_capture_on_commit_callbacks)
    runs.reconcile([silent_run])
    assert silent_run.status == "failed"
    assert "worker stopped reporting" in silent_run.reason


def test_a_queued_run_whose_job_is_still_queued_is_left_alone(
    owner_client, shapes_task, training_queue, settings, django_capture_on_commit_callbacks
):
    settings.VIZE_RUN_STALE_SECONDS = 0
    start_training(owner_client, shapes_task, django_capture_on_commit_callbacks)
    run = shapes_task.runs.get()
    runs.reconcile([run])
    assert run.status == "queued"
    training_queue.empty()
    runs.reconcile([run])
    assert run.status == "failed"
    assert "lost from the queue" in run.reason


def test_a_queued_run_lost_when_redis_was_flushed_is_failed_by_the_reconciler(
    owner_client, shapes_task, training_queue, settings, django_capture_on_commit_callbacks
):
    settings.VIZE_RUN_STALE_SECONDS = 0
    start_training(owner_client, shapes_task, django_capture_on_commit_callbacks)
    training_queue.connection.flushdb()
    run = shapes_task.runs.get()
    runs.reconcile([run])
    assert run.status == "failed"
    assert "lost from the queue" in run.reason


def test_a_run_whose_job_vanished_with_a_redis_restart_mid_training_is_failed(
    shapes_task, training_queue, settings
):
    settings.VIZE_RUN_STALE_SECONDS = 60
    run = shapes_task.runs.create(
        base_model="lite0",
        mode="fast",
        status="fitting",
        samples=[],
        heartbeat=timezone.now() - timedelta(minutes=2),
    )
    runs.enqueue(run)
    training_queue.connection.flushdb()
    runs.reconcile([run])
    assert run.status == "failed"
    assert "stopped reporting" in run.reason


def test_cancelling_a_queued_run_keeps_the_active_model(
    owner_client, shapes_task, training_queue, django_capture_on_commit_callbacks
):
    start_training(owner_client, shapes_task, django_capture_on_commit_callbacks)
    work(training_queue)
    active = shapes_task.runs.get()
    start_training(owner_client, shapes_task, django_capture_on_commit_callbacks)
    pending = shapes_task.runs.first()
    owner_client.post(reverse("tasks:run_cancel", args=[shapes_task.code, pending.code]))
    work(training_queue)
    pending.refresh_from_db()
    shapes_task.refresh_from_db()
    assert pending.status == "cancelled"
    assert shapes_task.active_run == active


def test_an_earlier_model_can_be_made_active_again(
    owner_client, shapes_task, training_queue, django_capture_on_commit_callbacks
):
    for _ in range(2):
        start_training(owner_client, shapes_task, django_capture_on_commit_callbacks)
        work(training_queue)
    newer, older = shapes_task.runs.all()
    shapes_task.refresh_from_db()
    assert shapes_task.active_run == newer
    owner_client.post(reverse("tasks:run_activate", args=[shapes_task.code, older.code]))
    shapes_task.refresh_from_db()
    assert shapes_task.active_run == older


def test_prepare_models_exports_every_graph_a_run_needs(model_cache):
    output = io.StringIO()
    call_command("prepare_models", stdout=output)
    names = [line.removeprefix("ready: ") for line in output.getvalue().splitlines()]
    assert len(names) == 4
    assert all((model_cache / name).exists() for name in names)


def test_a_training_job_that_died_fails_its_run_and_removes_its_files(shapes_task, media_root):
    run = shapes_task.runs.create(base_model="lite0", mode="fast", status="fitting", samples=[])
    partial = media_root / run.storage_folder / "model.onnx"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"half a model")
    runs.job_died(run.job_id, "Work-horse terminated unexpectedly (signal 9)")
    run.refresh_from_db()
    assert run.status == "failed"
    assert "signal 9" in run.reason
    assert not partial.parent.exists()


def test_a_run_past_the_job_timeout_fails_and_leaves_no_model(
    shapes_task,
    training_queue,
    settings,
    media_root,
    django_capture_on_commit_callbacks,
    monkeypatch,
):
    for kind in ("discs", "squares"):
        add_pictures(shapes_task, shapes_task.categories.get(name=kind), kind, 4, start=20)
    monkeypatch.setattr(finetune, "EPOCHS", 10**6)  # fine-tunes until its budget ends
    settings.VIZE_TRAINING_TIMEOUT = 3
    with django_capture_on_commit_callbacks(execute=True):
        run, _ = runs.start(shapes_task, base_model="lite0", mode="accurate", time_budget=120)
    work(training_queue)
    run.refresh_from_db()
    assert (run.status, run.reason) == ("failed", runs.TIMED_OUT)
    assert not (media_root / run.storage_folder).exists()


def test_a_work_horse_killed_past_the_timeout_is_reported_as_timed_out(shapes_task, settings):
    settings.VIZE_TRAINING_TIMEOUT = 5
    run = shapes_task.runs.create(
        base_model="lite0",
        mode="accurate",
        status="fitting",
        samples=[],
        started=timezone.now() - timedelta(seconds=6),
    )
    runs.job_died(run.job_id, "Work-horse terminated unexpectedly")
    run.refresh_from_db()
    assert (run.status, run.reason) == ("failed", runs.TIMED_OUT)


def test_a_job_that_died_after_its_run_ended_changes_nothing(shapes_task):
    run = shapes_task.runs.create(base_model="lite0", mode="fast", status="ready", samples=[])
    runs.job_died(run.job_id, "killed")
    runs.job_died(f"embed-task-{shapes_task.code}", "killed")
    run.refresh_from_db()
    assert run.status == "ready"


@pytest.mark.django_db(transaction=True)
def test_the_worker_sweeps_silent_runs_in_its_maintenance(shapes_task, training_queue, settings):
    from tasks.worker import Worker

    settings.VIZE_RUN_STALE_SECONDS = 0
    run = shapes_task.runs.create(base_model="lite0", mode="fast", status="embedding", samples=[])
    Worker([training_queue], connection=training_queue.connection).run_maintenance_tasks()
    run.refresh_from_db()
    assert run.status == "failed"


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_the_page_says_so_and_no_run_stays_queued(
    owner_client, shapes_task, redis_down
):
    response = owner_client.post(
        reverse("tasks:train", args=[shapes_task.code]), {"base_model": "lite0"}, follow=True
    )
    assert "The job queue is unavailable right now" in response.content.decode()
    run = shapes_task.runs.get()
    assert (run.status, run.is_active) == ("failed", False)
    assert "could not start" in run.reason


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_the_api_answers_503(api, shapes_task, redis_down):
    response = api.post(
        f"/api/v1/tasks/{shapes_task.code}/runs", {"base_model": "lite0"}, "application/json"
    )
    assert response.status_code == 503
    assert not shapes_task.runs.filter(status__in=["queued", "embedding"]).exists()


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_the_pages_that_need_no_queue_still_work(
    owner_client, shapes_task, redis_down
):
    assert owner_client.get(shapes_task.get_absolute_url()).status_code == 200
    assert owner_client.get("/").status_code == 200


def test_a_retrain_after_one_new_photo_keeps_the_head_choice_of_the_active_model(
    retrain_after_adding,
):
    first, retrained = retrain_after_adding(1)
    assert (first.metrics["regularisation_carried"], retrained.status) == (False, "ready")
    assert retrained.metrics["regularisation_carried"] is True
    assert retrained.metrics["regularisation_c"] == first.metrics["regularisation_c"]
