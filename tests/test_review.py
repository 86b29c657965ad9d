"""Review queues: labelled photos a head fitted without them would put elsewhere
(mislabels), Unsorted photos whose suggestion barely leads (unsure), and photos far from
every category (outliers), each ranked, counted in the side bar, one key press to fix,
and the same from the API."""

import numpy as np
import pytest
from django.urls import reverse

from tasks import jobs
from tasks.models import Image
from tests.helpers import V1, add_pictures
from trainer.suggestions import out_of_fold, outlier_scores, sampled


@pytest.fixture
def square_among_discs(task, discs, squares):
    """Four photos in each category, and a square labelled discs, embedded and scored."""
    add_pictures(task, discs, "discs", 4)
    add_pictures(task, squares, "squares", 4)
    (outcome,) = add_pictures(task, discs, "squares", 1, start=10).added
    jobs.embed_new_images(task.pk)
    jobs.suggest_categories(task.pk)
    outcome.image.refresh_from_db()
    return outcome.image


def review_page(client, task, queue):
    return client.get(reverse("tasks:detail", args=[task.code]), {"view": queue})


def queued(client, task, queue, **query):
    return client.get(f"{V1}/tasks/{task.code}/review/{queue}", query)


# The rules, on features made to order


def clusters(per_category=12, categories=3, seed=0):
    """Features of photos in clusters, one per category, some photos nearer their centre
    than others, as photos are; with their mirror images."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(categories, 1960)) * 3
    labels = np.repeat(np.arange(categories), per_category)
    spread = rng.uniform(0.5, 1.5, size=(len(labels), 1))
    features = centres[labels] + spread * rng.normal(size=(len(labels), 1960))
    return features.astype(np.float32), features.astype(np.float32) + 0.01, labels


def test_out_of_fold_scores_doubt_a_flipped_label_and_trust_the_others():
    features, mirrored, labels = clusters()
    given = labels.copy()
    given[5] = 2

    scores = out_of_fold(features, mirrored, given)

    preferred = scores.argmax(axis=1)
    assert preferred[5] == labels[5]
    assert (preferred[given == labels] == labels[given == labels]).all()


def test_a_photo_alone_in_its_category_gets_no_out_of_fold_score():
    features, mirrored, labels = clusters()
    labels[0] = 3

    scores = out_of_fold(features, mirrored, labels)

    assert np.isnan(scores[0]).all()
    assert np.isfinite(scores[1:]).all()


def test_a_photo_far_from_every_category_is_an_outlier_and_the_others_are_not():
    features, _, labels = clusters()
    stranger = np.random.default_rng(9).normal(size=(1, 1960)).astype(np.float32) * 3

    on_labelled, on_unsorted = outlier_scores(features, labels, np.vstack([stranger, features[:2]]))

    assert on_unsorted[0] > 1
    assert (on_unsorted[1:] < 1).all()
    assert (on_labelled < 1).all()


def test_a_sample_of_many_photos_keeps_every_category_in_proportion():
    labels = np.array([0] * 900 + [1] * 97 + [2] * 3)

    rows = sampled(labels, np.arange(1000), np.random.default_rng(0), at_most=100)

    assert np.bincount(labels[rows]).tolist() == [90, 10, 1]
    assert len(set(rows.tolist())) == len(rows)


# The queues, from real photos


def test_a_photo_in_the_wrong_category_is_suspected_with_the_category_it_looks_like(
    square_among_discs, squares
):
    assert square_among_discs.suggestion == squares
    assert square_among_discs.suggestion_score > 0.5


def test_photos_in_their_right_category_are_not_suspected(task, square_among_discs):
    suspected = task.images.exclude(category=None).exclude(suggestion=None)

    assert list(suspected) == [square_among_discs]


def test_the_side_bar_counts_the_photos_each_queue_holds(owner_client, task, square_among_discs):
    response = owner_client.get(reverse("tasks:detail", args=[task.code]))

    assert response.context["review_queues"][0][0].key == "mislabels"
    assert response.context["review_queues"][0][1] == 1
    assert b"Suspected mislabels" in response.content


def test_the_side_bar_shows_no_queue_while_it_is_empty(owner_client, task, discs):
    add_pictures(task, discs, "discs", 2)

    response = owner_client.get(reverse("tasks:detail", args=[task.code]))

    assert response.context["review_queues"] == []
    assert b"Suspected mislabels" not in response.content


def test_the_mislabel_queue_shows_the_photo_with_its_label_and_the_suggested_one(
    owner_client, task, square_among_discs
):
    response = review_page(owner_client, task, "mislabels")

    assert [image.code for image in response.context["images"]] == [square_among_discs.code]
    assert "Labelled discs, but looks like squares" in response.content.decode()


def test_accepting_a_suspected_photos_suggestion_moves_it_to_that_category(
    owner_client, task, squares, square_among_discs
):
    owner_client.post(
        reverse("tasks:suggestions_accept", args=[task.code]),
        {"view": "mislabels", "at_least": 0, "images": [str(square_among_discs.code)]},
    )

    square_among_discs.refresh_from_db()
    assert square_among_discs.category == squares
    assert square_among_discs.suggestion is None


def test_accepting_every_sure_suggestion_leaves_the_labelled_photos_alone(
    owner_client, task, discs, square_among_discs
):
    owner_client.post(
        reverse("tasks:suggestions_accept", args=[task.code]), {"view": "all", "at_least": 0}
    )

    square_among_discs.refresh_from_db()
    assert square_among_discs.category == discs


def test_a_photo_kept_as_it_is_leaves_the_queue_for_good(owner_client, task, square_among_discs):
    owner_client.post(
        reverse("tasks:images_keep", args=[task.code]),
        {"view": "mislabels", "images": [str(square_among_discs.code)]},
    )
    jobs.suggest_categories(task.pk)

    assert review_page(owner_client, task, "mislabels").context["images"] == []


def test_a_review_queue_is_no_place_to_move_photos_to(owner_client, task, square_among_discs):
    owner_client.post(
        reverse("tasks:images_move", args=[task.code]),
        {"category": "mislabels", "images": [str(square_among_discs.code)]},
    )

    square_among_discs.refresh_from_db()
    assert square_among_discs.category.name == "discs"


# From code


def test_the_api_lists_a_queue_most_suspicious_first(api, task, square_among_discs):
    response = queued(api, task, "mislabels")

    assert response.status_code == 200
    (item,) = response.json()["items"]
    assert item["code"] == str(square_among_discs.code)
    assert (item["category"], item["suggested"]) == ("discs", "squares")
    assert item["score"] == pytest.approx(square_among_discs.suggestion_score)


@pytest.fixture
def three_unsure(task, discs, squares):
    """Unsorted photos whose suggestions lead by 0.2, 0.05 and 0.6 (not unsure)."""
    images = [outcome.image for outcome in add_pictures(task, None, "discs", 3).added]
    for image, margin in zip(images, (0.2, 0.05, 0.6), strict=True):
        Image.objects.filter(pk=image.pk).update(
            suggestion=discs, suggestion_score=0.5 + margin / 2, suggestion_margin=margin
        )
    return images


def test_the_unsure_queue_holds_the_closest_calls_first(api, task, three_unsure):
    closest, close, _ = three_unsure[1], three_unsure[0], three_unsure[2]

    items = queued(api, task, "unsure").json()["items"]

    assert [item["code"] for item in items] == [str(closest.code), str(close.code)]
    assert [item["score"] for item in items] == [0.05, 0.2]


def test_the_api_pages_a_queue_with_its_cursor(api, task, three_unsure):
    first = queued(api, task, "unsure", limit=1).json()

    second = queued(api, task, "unsure", limit=1, after=first["next"]).json()

    assert first["count"] == 2
    assert [item["score"] for item in first["items"] + second["items"]] == [0.05, 0.2]
    assert second["next"] is None


def test_the_api_keeps_photos_as_they_are(api, task, square_among_discs):
    response = api.post(
        f"{V1}/tasks/{task.code}/images/keep",
        {"images": [str(square_among_discs.code)]},
        content_type="application/json",
    )

    assert response.json() == {"kept": 1, "not_found": []}
    assert queued(api, task, "mislabels").json()["items"] == []


def test_the_api_answers_404_for_a_queue_it_does_not_have(api, task):
    response = queued(api, task, "favourites")

    assert response.status_code == 404
    assert "mislabels, unsure, outliers" in response.json()["detail"]


def test_another_users_queue_is_not_found(outsider_api, task, square_among_discs):
    assert queued(outsider_api, task, "mislabels").status_code == 404


def test_a_labelled_photos_suggestion_in_the_image_list_is_its_suspected_category(
    api, task, square_among_discs
):
    response = api.get(f"{V1}/tasks/{task.code}/images/{square_among_discs.code}")

    assert response.json()["suggestion"]["category"] == "squares"
