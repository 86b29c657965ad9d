"""The lookups every API call makes read their rows in plain SQL (tasks/models.py
one_row): what they return must be what the ORM returns, value for value, on SQLite
and on PostgreSQL alike."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.models import ApiKey, Task, TrainingRun


def field_values(instance, names):
    """Each value with its type: on SQLite 1 == True, and a UUID's text is no UUID."""
    return {name: (type(getattr(instance, name)), getattr(instance, name)) for name in names}


def all_fields(model, leaving_out=()):
    return [field.attname for field in model._meta.concrete_fields if field.name not in leaving_out]


@pytest.fixture
def ready_run(task):
    finished = timezone.now()
    run = task.runs.create(
        base_model="lite2",
        mode="fast",
        status=TrainingRun.Status.READY,
        percent=100,
        negative_label="neither",
        metrics={"accuracy": 0.9},
        samples=[["a", "ants"]],
        model_folder=f"{task.storage_prefix}/runs/x",
        export_ready=True,
        operating_threshold=0.42,
        serves_int8=True,
        started=finished - timedelta(seconds=3),
        finished=finished,
    )
    task.active_run = run
    task.save(update_fields=["active_run"])
    return run


def test_a_task_read_for_a_classify_is_the_orms_task(owner, task, ready_run):
    names = all_fields(Task)
    read = Task.answering(owner, code=task.code)
    assert field_values(read, names) == field_values(Task.objects.get(pk=task.pk), names)


def test_a_task_is_read_for_a_classify_by_its_watson_id_too(owner, task):
    task.watson_id = "ants_or_bees_1"
    task.save(update_fields=["watson_id"])
    assert Task.answering(owner, watson_id=task.watson_id).pk == task.pk


def test_a_task_without_a_model_is_read_for_a_classify_without_a_run(owner, task):
    read = Task.answering(owner, code=task.code)
    assert read.active_run is None
    assert read.active_run_id is None


def test_another_users_task_is_not_read_for_a_classify(outsider, task):
    with pytest.raises(Task.DoesNotExist):
        Task.answering(outsider, code=task.code)


def test_the_run_read_for_a_classify_is_the_orms_run_without_its_growing_columns(
    owner, task, ready_run
):
    read = Task.answering(owner, code=task.code).active_run
    names = all_fields(TrainingRun, leaving_out=TrainingRun.GROWING_FIELDS)
    assert field_values(read, names) == field_values(
        TrainingRun.objects.get(pk=ready_run.pk), names
    )
    assert read.get_deferred_fields() == set(TrainingRun.GROWING_FIELDS)


def test_a_key_is_found_with_its_owner(owner, api_key):
    found = ApiKey.find(api_key)
    names = all_fields(ApiKey, leaving_out=["last_used"])  # the lookup records it
    assert field_values(found, names) == field_values(ApiKey.objects.get(pk=found.pk), names)
    user_names = all_fields(type(owner))
    assert field_values(found.owner, user_names) == field_values(
        type(owner).objects.get(pk=owner.pk), user_names
    )
