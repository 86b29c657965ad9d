"""Undo of the last move or delete of photos on the pages, and deleted photos kept hidden
for the undo period, then removed with their files by the workers' maintenance."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tasks.models import Image, Task
from tests.helpers import add_images


def move(client, task, images, category, **fields):
    return client.post(
        reverse("tasks:images_move", args=[task.code]),
        {"images": [str(image.code) for image in images], "category": category, **fields},
    )


def delete(client, task, images):
    return client.post(
        reverse("tasks:images_delete", args=[task.code]),
        {"images": [str(image.code) for image in images]},
    )


def undo(client, task, **fields):
    return client.post(reverse("tasks:undo", args=[task.code]), fields, follow=True)


def categories_of(images):
    return [Image.objects.get(pk=image.pk).category for image in images]


def test_undoing_a_move_puts_each_photo_back_where_it_came_from(
    owner_client, task, ants, bees, ant_images, unsorted_images
):
    moved = [ant_images[0], unsorted_images[0]]
    move(owner_client, task, moved, str(bees.code))

    response = undo(owner_client, task)

    assert categories_of(moved) == [ants, None]
    assert "Put 2 images back in Unsorted, ants." in response.content.decode()


def test_undoing_a_delete_brings_the_photos_back(owner_client, task, ant_images):
    delete(owner_client, task, ant_images[:2])

    response = undo(owner_client, task)

    assert task.images.count() == 3
    assert "Brought back 2 images." in response.content.decode()


def test_undoing_accepted_suggestions_puts_the_photos_back(
    owner_client, task, ants, bees, ant_images, unsorted_images
):
    accepted = [ant_images[0], unsorted_images[0]]
    Image.objects.filter(pk__in=[i.pk for i in accepted]).update(
        suggestion=bees, suggestion_score=0.9
    )
    owner_client.post(
        reverse("tasks:suggestions_accept", args=[task.code]),
        {"images": [str(i.code) for i in accepted], "at_least": 0},
    )
    assert categories_of(accepted) == [bees, bees]

    undo(owner_client, task)

    assert categories_of(accepted) == [ants, None]


def test_the_notice_of_a_move_offers_undo_as_a_form(owner_client, task, bees, ant_images):
    response = owner_client.get(move(owner_client, task, ant_images[:1], str(bees.code)).url)

    html = response.content.decode()
    assert "Moved 1 image to bees." in html
    assert f'<form class="undo" method="post" action="/tasks/{task.code}/undo/"' in html


def test_the_notice_is_a_plain_form_that_htmx_leaves_alone(owner_client, task, bees, ant_images):
    response = owner_client.get(move(owner_client, task, ant_images[:1], str(bees.code)).url)

    form = response.content.decode().split('<form class="undo"')[1].split(">")[0]
    assert "hx-" not in form


def test_an_undo_returns_to_the_page_it_was_asked_from(owner_client, task, bees, ant_images):
    move(owner_client, task, ant_images[:1], str(bees.code))
    back = f"{task.get_absolute_url()}?view={bees.code}"

    response = owner_client.post(reverse("tasks:undo", args=[task.code]), {"next": back})

    assert response.url == back


def test_a_second_undo_finds_nothing_to_undo(owner_client, task, bees, ant_images):
    move(owner_client, task, ant_images[:1], str(bees.code))
    undo(owner_client, task)
    move(owner_client, task, ant_images[1:2], str(bees.code))
    undo(owner_client, task)

    response = undo(owner_client, task)

    assert "Nothing to undo." in response.content.decode()
    assert bees.images.count() == 0


def test_an_undo_in_another_task_of_the_same_person_changes_nothing(
    owner_client, owner, task, bees, ant_images
):
    other = Task.objects.create(owner=owner, name="Cats or dogs")
    move(owner_client, task, ant_images[:1], str(bees.code))

    response = undo(owner_client, other)

    assert "Nothing to undo." in response.content.decode()
    assert bees.images.count() == 1


def test_nobody_else_can_undo_in_a_task(owner_client, outsider_client, task, bees, ant_images):
    move(owner_client, task, ant_images[:1], str(bees.code))

    response = outsider_client.post(reverse("tasks:undo", args=[task.code]))

    assert response.status_code == 404
    assert bees.images.count() == 1


def test_after_the_undo_period_it_is_too_late(owner_client, task, ant_images, settings):
    delete(owner_client, task, ant_images[:1])
    settings.VIZE_UNDO_MINUTES = 0

    response = undo(owner_client, task)

    assert "Too late to undo" in response.content.decode()
    assert task.images.count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_workers_maintenance_removes_photos_deleted_longer_ago_than_the_undo_period(
    task, ants, media_root, training_queue, settings
):
    from tasks.worker import Worker

    settings.VIZE_UNDO_MINUTES = 10
    expired, recent, kept = add_images(task, ants, 3)
    Image.objects.filter(pk__in=[expired.pk, recent.pk]).discard()
    Image.with_deleted.filter(pk=expired.pk).update(
        deleted_at=timezone.now() - timedelta(minutes=11)
    )

    Worker([training_queue], connection=training_queue.connection).run_maintenance_tasks()

    assert set(Image.with_deleted.all()) == {recent, kept}
    assert not (media_root / expired.file.name).exists()
    assert not (media_root / expired.thumbnail.name).exists()
    assert (media_root / recent.file.name).exists()
