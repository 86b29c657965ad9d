"""Add to on the preview page: a photo tried there goes into a category, or, when the task
holds it already, moves there; the side bar's counts come back with the answer."""

import json

from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.loader import render_to_string
from django.urls import reverse

from tasks.models import TrainingRun
from tests import images


def add_to(client, task, category, photo=None, name="tried.png"):
    photo = images.png((10, 200, 90)) if photo is None else photo
    return client.post(
        reverse("tasks:preview_add", args=[task.code]),
        {"photo": SimpleUploadedFile(name, photo), "category": category},
        headers={"HX-Request": "true"},
    )


def added_event(response):
    return json.loads(response["HX-Trigger"])["added"]


def count_in_side_bar(response, name):
    categories = {c.name: c.image_count for c in response.context["categories"]}
    return categories[name]


def test_it_stores_the_photo_in_the_category_and_answers_the_side_bar(owner_client, task, ants):
    response = add_to(owner_client, task, str(ants.code))
    assert ants.images.get().original_name == "tried.png"
    assert count_in_side_bar(response, "ants") == 1
    assert added_event(response) == {
        "outcome": "added",
        "category": str(ants.code),
        "message": "Added tried.png to ants.",
    }
    assert "Added tried.png to ants." in response.content.decode()


def test_a_second_category_pressed_moves_the_photo_there(owner_client, task, ants, bees):
    add_to(owner_client, task, str(ants.code))
    response = add_to(owner_client, task, str(bees.code))
    assert task.images.get().category == bees
    assert (count_in_side_bar(response, "ants"), count_in_side_bar(response, "bees")) == (0, 1)
    assert added_event(response)["message"] == "Moved tried.png from ants to bees."


def test_the_same_category_pressed_again_changes_nothing(owner_client, task, ants):
    add_to(owner_client, task, str(ants.code))
    response = add_to(owner_client, task, str(ants.code))
    assert added_event(response)["outcome"] == "already"
    assert added_event(response)["message"] == "tried.png is already in ants."
    assert task.images.count() == 1


def test_a_zip_is_refused_with_the_reason(owner_client, task, ants):
    archive = images.zip_of({"a.png": images.png()})
    response = add_to(owner_client, task, str(ants.code), photo=archive, name="photos.zip")
    assert added_event(response)["message"] == "Add one photo at a time, not a zip."
    assert not task.images.exists()


def test_a_category_of_another_task_is_refused(owner_client, owner, task):
    elsewhere = owner.tasks.create(name="Other").categories.create(name="cats")
    response = add_to(owner_client, task, str(elsewhere.code))
    assert added_event(response)["outcome"] is None
    assert "That category is not in this task." in response.content.decode()
    assert not elsewhere.images.exists()


def test_a_file_that_is_no_image_is_refused_with_the_reason(owner_client, task, ants):
    response = add_to(owner_client, task, str(ants.code), photo=b"not a picture", name="x.jpg")
    assert added_event(response)["outcome"] == "rejected"
    assert added_event(response)["message"].startswith("x.jpg: not an image")


def test_an_outsider_cannot_add_to_my_task(outsider_client, task, ants):
    assert add_to(outsider_client, task, str(ants.code)).status_code == 404


def test_the_predictions_offer_add_to_where_the_photo_goes(owner_client, task, ants):
    run = TrainingRun(task=task, base_model="lite0", mode="fast")
    result = {"index": 0, "name": "a.png", "error": "", "prediction": None}
    html = render_to_string(
        "tasks/_predictions.html", {"task": task, "run": run, "results": [result]}
    )
    assert f'data-add-url="{reverse("tasks:preview_add", args=[task.code])}"' in html
    assert f'data-add-to="{ants.code}" aria-pressed="false"' in html
