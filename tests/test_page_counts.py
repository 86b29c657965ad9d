"""Every count on the task page is true after every action, without a reload: the answer
to a change brings the side bar, the training panel and the header anew, and the tiles of
the photos changed."""

import re

from django.urls import reverse

from tests.helpers import add_images


def move(client, task, images, category, view="all"):
    return client.post(
        reverse("tasks:images_move", args=[task.code]),
        {"images": [str(i.code) for i in images], "category": category, "view": view},
        headers={"HX-Request": "true"},
    )


def out_of_band(html, element_id):
    """The element with this id that the answer swaps in out of band, with its children."""
    found = re.search(rf'<(\w+)[^>]*id="{element_id}"[^>]*hx-swap-oob="true"', html)
    assert found, f"no out-of-band #{element_id}"
    tag, depth = found.group(1), 0
    for mark in re.finditer(rf"<(/?){tag}\b", html[found.start() :]):
        depth += -1 if mark.group(1) else 1
        if depth == 0:
            return html[found.start() : found.start() + mark.end()]
    raise AssertionError(f"#{element_id} is not closed")


def test_a_move_brings_the_training_panel_with_the_category_filled(
    owner_client, task, ants, bees, ant_images
):
    before = owner_client.get(task.get_absolute_url()).content.decode()
    assert "“bees” has 0 images" in before

    panel = out_of_band(
        move(owner_client, task, ant_images[:2], str(bees.code)).content.decode(), "training"
    )
    assert "has 0 images" not in panel
    assert "has 1 image;" in panel  # ants, left with one
    assert "disabled" in panel


def test_start_training_is_enabled_by_the_move_that_fills_the_last_category(
    owner_client, task, ants, bees, ant_images
):
    add_images(task, ants, 1, start=20)
    panel = out_of_band(
        move(owner_client, task, ant_images[:2], str(bees.code)).content.decode(), "training"
    )
    assert re.search(r'<button type="submit" class="primary">Start training</button>', panel)


def test_the_unsorted_warning_follows_a_move(owner_client, task, ants, unsorted_images):
    panel = out_of_band(
        move(owner_client, task, unsorted_images[:1], str(ants.code)).content.decode(), "training"
    )
    assert "1 image in Unsorted will not be used." in panel


def test_the_side_bar_asked_for_after_an_upload_brings_the_training_panel(
    owner_client, task, ants, ant_images
):
    response = owner_client.get(
        task.get_absolute_url(), headers={"HX-Request": "true", "HX-Target": "sidebar"}
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<nav id="sidebar"')
    assert "Start training" in out_of_band(html, "training")


def test_a_delete_brings_the_near_copies_count_anew(owner_client, task, ant_images):
    first, second, _ = ant_images
    for image in (first, second):
        image.duplicate_group = first.pk
        image.save()
    page = owner_client.get(task.get_absolute_url()).content.decode()
    assert "Near-copies (1)" in page
    response = owner_client.post(
        reverse("tasks:images_delete", args=[task.code]),
        {"images": [str(second.code)], "view": "all"},
        headers={"HX-Request": "true"},
    )
    header = out_of_band(response.content.decode(), "task-header")
    assert "Near-copies" not in header


def test_all_images_shows_each_photos_category(owner_client, task, ant_images, unsorted_images):
    html = owner_client.get(task.get_absolute_url(), {"view": "all"}).content.decode()
    assert html.count('<span class="tile-category" title="In ants">ants</span>') == 3
    assert (
        html.count('<span class="tile-category unsorted" title="In Unsorted">Unsorted</span>') == 2
    )


def test_a_category_shows_no_category_on_its_tiles(owner_client, task, ants, ant_images):
    html = owner_client.get(task.get_absolute_url(), {"view": str(ants.code)}).content.decode()
    assert "tile-category" not in html


def test_a_move_in_all_images_shows_the_photos_new_category(
    owner_client, task, ants, bees, ant_images
):
    moved = ant_images[0]
    html = move(owner_client, task, [moved], str(bees.code)).content.decode()
    labels = out_of_band(html, f"labels-{moved.code}")
    assert ">bees</span>" in labels
    assert f"labels-{ant_images[1].code}" not in html


def test_a_photo_moved_where_its_suggestion_pointed_suggests_it_no_more(
    owner_client, task, ants, bees, ant_images
):
    doubted = ant_images[0]
    task.images.filter(pk=doubted.pk).update(suggestion=bees, suggestion_score=0.9)
    html = move(owner_client, task, [doubted], str(bees.code)).content.decode()
    assert "→ bees" not in out_of_band(html, f"labels-{doubted.code}")
    doubted.refresh_from_db()
    assert (doubted.suggestion, doubted.suggestion_score) == (None, None)


def test_accepting_in_all_images_shows_the_accepted_category(
    owner_client, task, bees, unsorted_images
):
    photo = unsorted_images[0]
    task.images.filter(pk=photo.pk).update(suggestion=bees, suggestion_score=0.95)
    response = owner_client.post(
        reverse("tasks:suggestions_accept", args=[task.code]),
        {"at_least": "90", "view": "all"},
        headers={"HX-Request": "true"},
    )
    labels = out_of_band(response.content.decode(), f"labels-{photo.code}")
    assert ">bees</span>" in labels
    assert "suggestion" not in labels.split(">bees</span>", 1)[1]


def test_what_changed_since_the_active_model_is_on_the_task_page(
    owner_client, task, ants, bees, ant_images
):
    moved, deleted, _ = ant_images
    samples = [[str(image.code), "ants"] for image in ant_images]
    task.active_run = task.runs.create(
        base_model="lite0", mode="fast", status="ready", metrics={"accuracy": 1}, samples=samples
    )
    task.save()
    task.images.filter(pk=moved.pk).update(category=bees)
    task.images.filter(pk=deleted.pk).delete()
    add_images(task, bees, 2, start=20)
    add_images(task, None, 1, start=30)  # Unsorted: not a change to what trains

    html = owner_client.get(task.get_absolute_url()).content.decode()
    assert "2 photos added, 1 moved, 1 deleted since this model was trained" in html


def test_a_task_whose_photos_are_as_its_model_took_them_says_nothing_changed(
    owner_client, task, ants, ant_images
):
    samples = [[str(image.code), "ants"] for image in ant_images]
    task.active_run = task.runs.create(
        base_model="lite0", mode="fast", status="ready", metrics={"accuracy": 1}, samples=samples
    )
    task.save()
    assert "since this model" not in owner_client.get(task.get_absolute_url()).content.decode()


def test_the_photos_of_a_category_deleted_since_the_model_count_as_moved(task, ants, ant_images):
    samples = [[str(image.code), "ants"] for image in ant_images]
    run = task.runs.create(base_model="lite0", mode="fast", status="ready", samples=samples)
    ants.delete()
    assert str(run.photo_changes()) == "3 photos moved"


def test_the_photos_of_a_category_renamed_since_the_model_count_as_moved(task, ants, ant_images):
    samples = [[str(image.code), "ants"] for image in ant_images[:2]]
    run = task.runs.create(base_model="lite0", mode="fast", status="ready", samples=samples)
    ants.name = "formicidae"
    ants.save()
    assert str(run.photo_changes()) == "1 photo added, 2 moved"


def test_the_model_versions_count_each_runs_photos_without_reading_them(
    owner_client, task, ants, ant_images
):
    samples = [[str(image.code), "ants"] for image in ant_images]
    task.runs.create(base_model="lite0", mode="fast", status="failed", samples=samples)
    html = owner_client.get(task.get_absolute_url()).content.decode()
    assert '<td>fast</td>\n              <td class="num">3</td>' in html
