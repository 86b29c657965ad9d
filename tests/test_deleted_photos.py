"""A deleted photo waits, hidden, for an undo: no page, count, API answer or training
sees it, and nothing removes its files before the undo period ends."""

import os
import time

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tasks import imports, runs
from tasks.models import Image, Task
from tests import images
from tests.helpers import V1
from tests.test_sweep import sweep


def deleted(image):
    Image.objects.filter(pk=image.pk).discard()
    return image


def test_deleted_photos_leave_the_counts_of_the_side_bar(owner_client, task, ants, ant_images):
    deleted(ant_images[0])

    response = owner_client.get(task.get_absolute_url())

    assert [c.image_count for c in response.context["categories"]] == [2]
    assert response.context["image_count"] == 2


def test_deleted_photos_leave_the_task_list(owner_client, task, ant_images):
    deleted(ant_images[0])

    response = owner_client.get(reverse("tasks:list"))

    assert response.context["tasks"][0].image_count == 2


def test_deleted_photos_leave_the_grid(owner_client, task, ant_images):
    gone = deleted(ant_images[0])

    response = owner_client.get(task.get_absolute_url())

    assert gone not in response.context["images"]
    assert len(response.context["images"]) == 2


def test_a_deleted_photos_own_pages_are_not_found(owner_client, task, ant_images):
    gone = deleted(ant_images[0])

    for name in ("image_detail", "image_file", "image_thumbnail"):
        response = owner_client.get(reverse(f"tasks:{name}", args=[task.code, gone.code]))
        assert response.status_code == 404


def test_deleted_photos_are_not_trained_on(task, ant_images, bees):
    gone = deleted(ant_images[0])

    samples = runs.frozen_samples(task)

    assert str(gone.code) not in [code for code, _ in samples]
    assert len(samples) == 2


def test_deleted_photos_are_not_in_the_api(api, task, ant_images):
    gone = deleted(ant_images[0])

    listed = api.get(f"{V1}/tasks/{task.code}/images").json()
    tasks = api.get(f"{V1}/tasks").json()

    assert str(gone.code) not in [image["code"] for image in listed["images"]]
    assert listed["count"] == 2
    assert tasks[0]["image_count"] == 2
    assert api.get(f"{V1}/tasks/{task.code}/images/{gone.code}").status_code == 404


def test_the_api_deletes_as_the_pages_do_and_counts_only_photos(api, task, ant_images):
    response = api.post(
        f"{V1}/tasks/{task.code}/images/delete",
        {"images": [str(ant_images[0].code)]},
        "application/json",
    )

    assert response.json()["deleted"] == 1
    assert Image.with_deleted.get(pk=ant_images[0].pk).deleted_at is not None


def test_a_deleted_photo_uploaded_again_is_added_where_it_is_dropped(task, ants, bees):
    picture = images.png((10, 200, 30))
    (added,) = imports.import_files(
        task, [SimpleUploadedFile("a.png", picture)], category=ants
    ).added
    deleted(added.image)

    report = imports.import_files(task, [SimpleUploadedFile("b.png", picture)], category=bees)

    assert [outcome.image.pk for outcome in report.added] == [added.image.pk]
    assert Task.objects.get(pk=task.pk).images.get().category == bees


def test_the_storage_sweep_keeps_the_files_of_deleted_photos(ant_images, media_root):
    gone = deleted(ant_images[0])
    then = time.time() - 2 * 3600  # older than the sweep's own grace
    for name in (gone.file.name, gone.thumbnail.name):
        os.utime(media_root / name, (then, then))

    sweep()

    assert (media_root / gone.file.name).exists()
    assert (media_root / gone.thumbnail.name).exists()
