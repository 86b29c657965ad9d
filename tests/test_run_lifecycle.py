"""The training run's life: each state change is a method of TrainingRun that applies
only from the states it names and says whether it did; the rules every face shares
(pressing Start while a run is queued, the model zip's policy) answer alike on the
pages, /api/v1 and the Watson API."""

import tempfile
from pathlib import Path

import django_rq
import pytest
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tasks import runs
from tasks.forms import TrainForm
from tests.helpers import V1, add_pictures
from tests.test_watson import V3, basic, examples_zip
from trainer import choices
from trainer.backbones import FEATURES_VERSION


@pytest.fixture
def shapes_classifier(client, api_key, training_queue, django_capture_on_commit_callbacks):
    """A Watson classifier of discs and squares, its run queued: its JSON. The client
    keeps sending the key."""
    client.defaults["HTTP_AUTHORIZATION"] = basic(api_key)
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(
            f"{V3}/classifiers?version=2018-03-19",
            {
                "name": "shapes",
                "discs_positive_examples": SimpleUploadedFile("d.zip", examples_zip("discs")),
                "squares_positive_examples": SimpleUploadedFile("s.zip", examples_zip("squares")),
            },
        ).json()


@pytest.fixture
def queued(shapes_task, training_queue):
    run, _ = runs.start(shapes_task, "lite0")
    return run


@pytest.fixture
def ready(shapes_task):
    """A ready run that answers for its task (its model files are not needed here)."""
    run = shapes_task.runs.create(
        base_model="lite0", mode="fast", status="ready", model_folder="models/ready"
    )
    assert run.activate()
    return run


def add_two_discs(task):
    add_pictures(task, task.categories.get(name="discs"), "discs", 2, start=50)


def test_a_queued_run_is_claimed_once(queued):
    assert queued.claim()
    assert not queued.claim()
    queued.refresh_from_db()
    assert queued.status == "embedding"


def test_a_cancelled_run_takes_no_report_and_does_not_finish(queued):
    assert queued.cancel()
    assert not queued.report("fitting", 50, 3)
    assert not queued.finish({"accuracy": 1.0}, [], [], "models/x", 0.9)
    queued.refresh_from_db()
    assert (queued.status, queued.model_folder) == ("cancelled", "")


def test_a_finished_run_answers_for_its_task_and_can_no_longer_fail(queued):
    assert queued.claim()
    assert queued.finish({"accuracy": 0.9}, [], [], "models/x", 0.9)
    assert not queued.fail("too late")
    queued.task.refresh_from_db()
    assert queued.task.active_run == queued


def test_only_a_queued_run_takes_in_new_images(queued):
    assert queued.take_in([["code", "discs"]], "")
    assert queued.claim()
    assert not queued.take_in([], "")
    queued.refresh_from_db()
    assert queued.samples == [["code", "discs"]]


def test_only_a_ready_run_can_be_activated(queued):
    assert not queued.activate()
    queued.task.refresh_from_db()
    assert queued.task.active_run is None


def test_a_failed_packaging_is_retried_once_per_request(ready):
    assert ready.packaging_failed("The model zip could not be packaged: disk full.")
    assert ready.retry_packaging()
    assert not ready.retry_packaging()
    assert ready.packaged(ready.operating_threshold, ready.serves_int8)
    assert not ready.packaging_failed("late news from an older job")
    ready.refresh_from_db()
    assert (ready.export_ready, ready.export_failure) == (True, "")


def test_the_training_form_offers_the_trainers_choices_with_their_defaults(task):
    form = TrainForm(task=task)
    offered = {name: [value for value, _ in field.choices] for name, field in form.fields.items()}
    assert offered == {
        "base_model": list(choices.BASE_MODELS),
        "mode": list(choices.MODES),
        "time_budget": list(choices.TIME_BUDGETS),
    }
    assert TrainForm({}, task=task).is_valid()
    assert {name: field.initial for name, field in form.fields.items()} == {
        "base_model": choices.DEFAULT_BASE_MODEL,
        "mode": choices.DEFAULT_MODE,
        "time_budget": choices.DEFAULT_TIME_BUDGET,
    }


def test_the_training_form_refuses_a_time_budget_off_the_list(task):
    form = TrainForm({"time_budget": "301"}, task=task)
    assert not form.is_valid()
    assert "time_budget" in form.errors


def test_the_api_schema_offers_the_trainers_choices(client):
    schema = client.get(f"{V1}/openapi.json").json()["components"]["schemas"]["RunIn"]
    properties = schema["properties"]
    assert properties["base_model"]["enum"] == list(choices.BASE_MODELS)
    assert properties["mode"]["enum"] == list(choices.MODES)
    assert properties["time_budget"]["enum"] == list(choices.TIME_BUDGETS)
    assert properties["time_budget"]["default"] == choices.DEFAULT_TIME_BUDGET


def test_pressing_start_on_the_page_while_queued_adds_the_new_photos(
    owner_client, shapes_task, queued
):
    add_two_discs(shapes_task)
    response = owner_client.post(reverse("tasks:train", args=[shapes_task.code]), follow=True)
    assert "the queued run takes in your new photos" in response.content.decode()
    queued.refresh_from_db()
    assert (shapes_task.runs.count(), len(queued.samples)) == (1, 14)


def test_pressing_start_through_the_api_while_queued_adds_the_new_photos(api, shapes_task, queued):
    add_two_discs(shapes_task)
    response = api.post(f"{V1}/tasks/{shapes_task.code}/runs", {}, "application/json")
    assert (response.status_code, response.json()["code"]) == (200, str(queued.code))
    queued.refresh_from_db()
    assert (shapes_task.runs.count(), len(queued.samples)) == (1, 14)


def test_a_watson_retrain_while_queued_adds_the_new_examples(client, shapes_classifier):
    more = SimpleUploadedFile("more.zip", examples_zip("discs", start=50))
    response = client.post(
        f"{V3}/classifiers/{shapes_classifier['classifier_id']}?version=2018-03-19",
        {"discs_positive_examples": more},
    )
    assert response.json()["status"] == "training"
    (run,) = runs.TrainingRun.objects.filter(task__watson_id=shapes_classifier["classifier_id"])
    assert len(run.samples) == 30


def test_pressing_start_while_training_starts_nothing_on_the_page_or_the_api(
    owner_client, api, shapes_task, queued
):
    assert queued.claim()
    add_two_discs(shapes_task)
    page = owner_client.post(reverse("tasks:train", args=[shapes_task.code]), follow=True)
    assert "This task is already training" in page.content.decode()
    assert (
        api.post(f"{V1}/tasks/{shapes_task.code}/runs", {}, "application/json").status_code == 409
    )
    queued.refresh_from_db()
    assert (shapes_task.runs.count(), len(queued.samples)) == (1, 12)


@pytest.fixture
def failed_packaging(ready, queues):
    ready.packaging_failed("The model zip could not be packaged: disk full.")
    return ready


def test_looking_at_a_failed_packaging_never_starts_it_again(owner_client, api, failed_packaging):
    task = failed_packaging.task
    page = owner_client.get(reverse("tasks:run_export", args=[task.code, failed_packaging.code]))
    answer = api.get(f"{V1}/tasks/{task.code}/export")
    assert "disk full" in page.content.decode()
    assert (answer.status_code, "disk full" in answer.json()["detail"]) == (503, True)
    assert django_rq.get_queue("default").count == 0


@pytest.mark.parametrize("face", ["page", "api"])
def test_asking_again_packages_a_failed_model_zip_again(
    face, owner_client, api, failed_packaging, django_capture_on_commit_callbacks
):
    task = failed_packaging.task
    with django_capture_on_commit_callbacks(execute=True):
        if face == "page":
            owner_client.post(reverse("tasks:run_export", args=[task.code, failed_packaging.code]))
        else:
            assert api.post(f"{V1}/tasks/{task.code}/export").status_code == 202
    failed_packaging.refresh_from_db()
    assert failed_packaging.export_failure == ""
    assert django_rq.get_queue("default").count == 1


def test_a_packaging_job_that_dies_says_so_instead_of_being_waited_for(ready):
    runs.job_died(f"package-run-{ready.code}", "Work-horse terminated unexpectedly (signal 9)")
    ready.refresh_from_db()
    assert ready.export_failure == (
        "The model zip could not be packaged: the job died "
        "(Work-horse terminated unexpectedly (signal 9))."
    )


def test_a_packaging_that_failed_on_its_own_keeps_its_reason_when_the_worker_reports(ready):
    ready.packaging_failed("The model zip could not be packaged: No space left on device.")
    runs.job_died(f"package-run-{ready.code}", "Traceback ...")
    ready.refresh_from_db()
    assert ready.export_failure.endswith("No space left on device.")


def workspace_of(run, root):
    folder = root / f"{runs.workspace_prefix(run)}x1y2"
    folder.mkdir(parents=True)
    return folder


def test_a_settled_runs_workspace_is_removed_and_a_training_ones_kept(queued, ready, work_dir):
    assert queued.claim()
    training, settled = workspace_of(queued, work_dir), workspace_of(ready, work_dir)
    runs.remove_settled_workspaces()
    assert training.exists()
    assert not settled.exists()


def test_run_workspaces_elsewhere_on_the_machine_are_left_alone(
    queued, work_dir, tmp_path, monkeypatch
):
    """Another copy's, or a test run's beside a site: their runs are not in this copy's
    database. When workspaces were in the system's temporary folder, one copy's sweep
    removed another's in the middle of its training."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "system-temporary-folder"))
    elsewhere = workspace_of(queued, Path(tempfile.gettempdir()))
    queued.delete()
    runs.remove_settled_workspaces()
    assert elsewhere.exists()


@pytest.mark.django_db(transaction=True)  # jobs are enqueued at once, as in a request
def test_with_the_queue_down_asking_for_the_zip_says_so(api, ready, redis_down):
    answer = api.get(f"{V1}/tasks/{ready.task.code}/export")
    assert answer.status_code == 503
    assert "The job queue is unavailable" in answer.json()["detail"]


def test_a_watson_retrain_while_training_says_the_examples_wait_for_the_next(
    client, shapes_classifier
):
    (run,) = runs.TrainingRun.objects.filter(task__watson_id=shapes_classifier["classifier_id"])
    assert run.claim()
    more = SimpleUploadedFile("more.zip", examples_zip("discs", start=50))
    response = client.post(
        f"{V3}/classifiers/{shapes_classifier['classifier_id']}?version=2018-03-19",
        {"discs_positive_examples": more},
    )
    assert response.status_code == 409
    assert "the next retrain will use them" in response.json()["error"]
    assert run.task.images.count() == 30


def test_listing_runs_never_asks_storage(api, ready, monkeypatch):
    def no_storage(storage, name):
        raise AssertionError(f"listing runs asked storage about {name}")

    monkeypatch.setattr(type(storages["default"]), "exists", no_storage)
    listed = api.get(f"{V1}/tasks/{ready.task.code}/runs").json()
    assert [run["export_ready"] for run in listed] == [False]


@pytest.fixture
def trained_on_twenty(task):
    """A ready fast run that answers for its task, trained on twenty images."""
    samples = [[f"image-{i}", "ants" if i % 2 else "bees"] for i in range(20)]
    run = task.runs.create(
        base_model="lite2",
        mode="fast",
        status="ready",
        samples=samples,
        metrics={
            "accuracy": 0.9,
            "regularisation_c": 0.3,
            "temperature": 1.5,
            "head_features": "final",
            "features_version": FEATURES_VERSION,
        },
    )
    assert run.activate()
    return run


def retrain(previous, samples, **choices):
    return previous.task.runs.create(
        **{"base_model": "lite2", "mode": "fast", **choices}, samples=samples
    )


def test_a_retrain_after_a_few_new_photos_keeps_the_head_choice(trained_on_twenty):
    samples = [*trained_on_twenty.samples, ["image-new", "ants"], ["image-new-2", "bees"]]
    assert retrain(trained_on_twenty, samples).head_choice_to_carry() == (0.3, 1.5, "final")


def test_a_retrain_after_many_changes_chooses_again(trained_on_twenty):
    moved = [[code, "ants"] for code, _ in trained_on_twenty.samples[:6]]
    samples = moved + trained_on_twenty.samples[6:]
    assert retrain(trained_on_twenty, samples).head_choice_to_carry() is None


def test_an_accurate_run_after_a_fast_one_starts_from_its_head_choice(trained_on_twenty):
    run = retrain(trained_on_twenty, trained_on_twenty.samples, mode="accurate")
    assert run.head_choice_to_carry() == (0.3, 1.5, "final")


def test_a_run_after_an_accurate_one_starts_from_its_head_choice(trained_on_twenty):
    trained_on_twenty.mode = "accurate"
    trained_on_twenty.save(update_fields=["mode"])
    run = retrain(trained_on_twenty, trained_on_twenty.samples)
    assert run.head_choice_to_carry() == (0.3, 1.5, "final")


def test_a_run_after_one_that_recorded_no_head_choice_chooses_again(trained_on_twenty):
    del trained_on_twenty.metrics["regularisation_c"]
    trained_on_twenty.save(update_fields=["metrics"])
    assert retrain(trained_on_twenty, trained_on_twenty.samples).head_choice_to_carry() is None


@pytest.mark.parametrize("change", [{"base_model": "lite0"}, {"negative_label": "other"}])
def test_a_retrain_of_another_kind_of_model_chooses_again(trained_on_twenty, change):
    run = retrain(trained_on_twenty, trained_on_twenty.samples, **change)
    assert run.head_choice_to_carry() is None


def test_a_retrain_on_features_of_another_version_chooses_again(trained_on_twenty):
    trained_on_twenty.metrics["features_version"] = FEATURES_VERSION - 1
    trained_on_twenty.save(update_fields=["metrics"])
    run = retrain(trained_on_twenty, trained_on_twenty.samples)
    assert run.head_choice_to_carry() is None


def test_a_retrain_with_a_new_category_chooses_again(trained_on_twenty):
    samples = [*trained_on_twenty.samples, ["image-new", "wasps"]]
    assert retrain(trained_on_twenty, samples).head_choice_to_carry() is None
