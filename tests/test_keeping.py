"""Classify keeps what the model is unsure about only when asked (keep=unsure or all):
in the task's Unsorted, with its answer as the suggestion, up to a daily limit, and for
a retention period unless a person labels it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks import keeping
from tasks.api_schemas import Classification
from tasks.models import UNSURE_MARGIN, Image, Task
from tests.helpers import V1, add_pictures
from tests.test_api_training import (
    between_top_scores,
    choose_operating_point,
    classify,
    sure_and_unsure_pictures,
)


def images_of(task_code):
    return Image.objects.filter(task__code=task_code)


def test_classify_stores_nothing_unless_asked(api, trained, tmp_path):
    task, _ = trained
    before = images_of(task).count()

    answers = classify(api, task, sure_and_unsure_pictures(tmp_path))

    assert images_of(task).count() == before
    assert {answer["kept"] for answer in answers} == {None}


def test_keep_unsure_stores_the_photos_that_need_a_person_with_the_models_answer(
    api, trained, tmp_path
):
    task, run = trained
    paths = sure_and_unsure_pictures(tmp_path)
    choose_operating_point(api, task, run, between_top_scores(classify(api, task, paths)))

    answers = classify(api, task, paths, keep="unsure")

    for answer in answers:
        top, runner_up = (score["score"] for score in answer["scores"][:2])
        unsure = answer["needs_review"] or top - runner_up < UNSURE_MARGIN
        assert (answer["kept"] is not None) == unsure
        if unsure:
            image = Image.objects.get(code=answer["kept"])
            assert (image.category, image.suggestion.name) == (
                None,
                answer["scores"][0]["category"],
            )
            assert image.suggestion_score == pytest.approx(top)
    assert any(answer["kept"] for answer in answers)
    assert not all(answer["kept"] for answer in answers)


def test_a_kept_photo_is_labelled_by_its_code(api, trained, tmp_path):
    task, _ = trained
    (answer,) = classify(api, task, sure_and_unsure_pictures(tmp_path)[:1], keep="all")

    api.post(
        f"{V1}/tasks/{task}/images/move",
        {"images": [answer["kept"]], "category": "discs"},
        "application/json",
    )

    assert Image.objects.get(code=answer["kept"]).category.name == "discs"


def test_the_daily_limit_says_why_a_photo_was_not_kept(api, trained, tmp_path, settings):
    task, _ = trained
    settings.VIZE_KEEP_PER_DAY = 1

    answers = classify(api, task, sure_and_unsure_pictures(tmp_path)[:3], keep="all")

    assert [answer["kept"] is not None for answer in answers] == [True, False, False]
    assert answers[1]["not_kept"] == keeping.over_the_day(1)


def test_an_answer_with_photos_kept_and_not_is_what_its_schema_documents(
    api, trained, tmp_path, settings
):
    """Classify renders its answer as built, without django-ninja's validation."""
    task, _ = trained
    settings.VIZE_KEEP_PER_DAY = 1

    answers = classify(api, task, sure_and_unsure_pictures(tmp_path)[:2], keep="all")

    assert [answer["kept"] is not None for answer in answers] == [True, False]
    documented = Classification.model_validate({"images": answers}).model_dump(mode="json")
    assert documented == {"images": answers}


def test_keep_takes_none_unsure_or_all(api, trained, tmp_path):
    task, _ = trained
    path = sure_and_unsure_pictures(tmp_path)[0]

    response = api.post(f"{V1}/tasks/{task}/classify", {"files": [path.open("rb")], "keep": "some"})

    assert response.status_code == 400
    assert "keep" in response.json()["detail"]


@pytest.fixture
def kept_long_ago(task):
    """Two photos kept from classify 31 days ago, one since labelled, and one kept today."""
    discs = task.categories.create(name="discs")
    old, labelled, recent = (
        outcome.image for outcome in add_pictures(task, None, "discs", 3).added
    )
    long_ago = timezone.now() - timedelta(days=31)
    Image.objects.filter(pk__in=[old.pk, labelled.pk]).update(kept_at=long_ago)
    Image.objects.filter(pk=labelled.pk).update(category=discs)
    Image.objects.filter(pk=recent.pk).update(kept_at=timezone.now())
    return old, labelled, recent


def test_kept_photos_still_unsorted_after_the_retention_period_are_deleted(
    task, kept_long_ago, settings
):
    settings.VIZE_KEEP_DAYS = 30
    _, labelled, recent = kept_long_ago

    keeping.remove_expired()

    assert set(Task.objects.get(pk=task.pk).images.all()) == {labelled, recent}
