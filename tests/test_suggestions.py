"""Suggestions while people label: every Unsorted photo gets the category a head fitted
on the labelled photos' stored features gives it, refreshed in the background after
each change, shown in the grid and the API, and accepted in one action or one key."""

import re

import django_rq
import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from tasks import jobs
from tasks.models import Image
from tests.helpers import V1, add_pictures, work


@pytest.fixture
def labelled_and_unsorted(task, discs, squares):
    """Three labelled photos per category and two Unsorted ones of each kind, embedded:
    {kind: [Unsorted Image]}."""
    unsorted = {}
    for kind, category in (("discs", discs), ("squares", squares)):
        add_pictures(task, category, kind, 3)
        report = add_pictures(task, None, kind, 2, start=10)
        unsorted[kind] = [outcome.image for outcome in report.added]
    jobs.embed_new_images(task.pk)
    return unsorted


def suggested(image):
    image.refresh_from_db()
    return image.suggestion.name if image.suggestion else None


def test_each_unsorted_photo_gets_the_category_of_the_photos_it_looks_like(
    task, labelled_and_unsorted
):
    jobs.suggest_categories(task.pk)

    for kind, images in labelled_and_unsorted.items():
        for image in images:
            assert suggested(image) == kind
            assert 0.5 < image.suggestion_score <= 1


def test_no_suggestion_while_fewer_than_two_categories_hold_photos(task, discs, squares):
    add_pictures(task, discs, "discs", 3)
    (outcome,) = add_pictures(task, None, "squares", 1).added
    jobs.embed_new_images(task.pk)

    jobs.suggest_categories(task.pk)

    assert suggested(outcome.image) is None


def test_a_photo_that_was_labelled_loses_its_suggestion(task, squares, labelled_and_unsorted):
    jobs.suggest_categories(task.pk)
    image = labelled_and_unsorted["squares"][0]
    Image.objects.filter(pk=image.pk).update(category=squares)

    jobs.suggest_categories(task.pk)

    assert suggested(image) is None


def test_a_trained_model_lends_its_head_choice_to_the_suggestions(
    task, labelled_and_unsorted, owner_client, django_capture_on_commit_callbacks, training_queue
):
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(reverse("tasks:train", args=[task.code]), {"base_model": "lite2"})
    work(training_queue)
    task.refresh_from_db()
    assert task.active_run.recorded_head_choice() is not None

    jobs.suggest_categories(task.pk)

    for kind, images in labelled_and_unsorted.items():
        assert [suggested(image) for image in images] == [kind, kind]


def with_suggestion(image, category, score):
    Image.objects.filter(pk=image.pk).update(suggestion=category, suggestion_score=score)


@pytest.fixture
def sure_and_unsure(task, discs, squares):
    """Two Unsorted photos: one suggested discs at 95 %, one squares at 60 %."""
    sure, unsure = (outcome.image for outcome in add_pictures(task, None, "discs", 2).added)
    with_suggestion(sure, discs, 0.95)
    with_suggestion(unsure, squares, 0.6)
    return sure, unsure


def accept(client, task, **fields):
    return client.post(
        reverse("tasks:suggestions_accept", args=[task.code]), {"view": "unsorted", **fields}
    )


def test_accepting_moves_the_photos_suggested_at_least_that_surely(
    owner_client, task, discs, sure_and_unsure
):
    sure, unsure = sure_and_unsure

    response = accept(owner_client, task, at_least=90)

    assert response.status_code == 302
    sure.refresh_from_db()
    unsure.refresh_from_db()
    assert (sure.category, sure.suggestion) == (discs, None)
    assert unsure.category is None


def test_accepting_the_selected_photos_takes_their_suggestions_however_sure(
    owner_client, task, squares, sure_and_unsure
):
    sure, unsure = sure_and_unsure

    accept(owner_client, task, at_least=90, images=[str(unsure.code)])

    sure.refresh_from_db()
    unsure.refresh_from_db()
    assert sure.category is None
    assert unsure.category == squares


def test_accepting_needs_a_score_between_0_and_100(owner_client, task, sure_and_unsure):
    response = accept(owner_client, task, at_least=120)

    assert response.status_code == 302
    assert not task.images.exclude(category=None).exists()
    told = [str(message) for message in get_messages(response.wsgi_request)]
    assert any("100" in message for message in told)


def test_another_user_cannot_accept_a_task_s_suggestions(outsider_client, task, sure_and_unsure):
    response = accept(outsider_client, task, at_least=0)

    assert response.status_code == 404
    assert not task.images.exclude(category=None).exists()


def test_the_grid_shows_an_unsorted_photo_s_suggestion(owner_client, task, sure_and_unsure):
    page = owner_client.get(task.get_absolute_url(), {"view": "unsorted"}).content.decode()

    assert '<span class="name">discs</span> · 95 %' in page
    assert '<span class="name">squares</span> · 60 %' in page
    assert 'name="at_least"' in page


def test_the_api_lists_each_unsorted_image_with_its_suggestion(api, task, sure_and_unsure):
    listed = api.get(f"{V1}/tasks/{task.code}/images", {"unsorted": "true"}).json()["images"]

    assert sorted((i["suggestion"]["category"], i["suggestion"]["score"]) for i in listed) == [
        ("discs", 0.95),
        ("squares", 0.6),
    ]


def test_moves_queue_one_refresh_of_the_suggestions(
    settings,
    owner_client,
    task,
    discs,
    sure_and_unsure,
    training_queue,
    django_capture_on_commit_callbacks,
):
    settings.VIZE_SUGGESTIONS = True
    queue = django_rq.get_queue("suggestions")
    queue.empty()

    for image in sure_and_unsure:
        with django_capture_on_commit_callbacks(execute=True):
            owner_client.post(
                reverse("tasks:images_move", args=[task.code]),
                {"images": [str(image.code)], "category": str(discs.code)},
            )

    (waiting,) = queue.job_ids
    assert waiting.startswith(f"suggest-task-{task.pk}-")


def tiles(page):
    return re.findall(r'id="tile-([0-9a-f-]{36})"', page)


def test_unsorted_can_show_the_surest_suggestions_first_page_after_page(
    settings, owner_client, task, discs
):
    settings.VIZE_GRID_PAGE_SIZE = 2
    images = [outcome.image for outcome in add_pictures(task, None, "discs", 4).added]
    for image, score in zip(images, (0.5, 0.9, None, 0.7), strict=True):
        with_suggestion(image, discs if score else None, score)

    first = owner_client.get(task.get_absolute_url(), {"view": "unsorted", "order": "sure"})
    more = re.search(r'class="more" href="([^"]+)"', first.content.decode()).group(1)
    second = owner_client.get(more.replace("&amp;", "&"), HTTP_HX_REQUEST="true")

    shown = tiles(first.content.decode()) + tiles(second.content.decode())
    assert shown == [str(images[i].code) for i in (1, 3, 0, 2)]


def test_deleting_a_category_takes_its_suggestions_with_it(
    owner_client, task, discs, sure_and_unsure
):
    sure, unsure = sure_and_unsure

    owner_client.post(reverse("tasks:category_delete", args=[task.code, discs.code]))

    sure.refresh_from_db()
    unsure.refresh_from_db()
    assert (sure.suggestion, sure.suggestion_score) == (None, None)
    assert unsure.suggestion_score == 0.6


def test_a_cursor_of_the_surest_order_is_refused_in_the_newest_order(
    settings, owner_client, task, discs, sure_and_unsure
):
    settings.VIZE_GRID_PAGE_SIZE = 1
    first = owner_client.get(task.get_absolute_url(), {"view": "unsorted", "order": "sure"})
    cursor = re.search(r"cursor=([^\"&]+)", first.content.decode()).group(1)

    response = owner_client.get(task.get_absolute_url(), {"view": "unsorted", "cursor": cursor})

    assert response.status_code == 400
