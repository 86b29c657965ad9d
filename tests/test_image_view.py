"""The larger view of a photo, as a page that works without JavaScript: the photos
before and after it in the grid it was opened from, and buttons that move or delete it
and then show the next."""

from django.urls import reverse

from tasks.models import Image


def detail_url(task, image, view="all"):
    return f"{reverse('tasks:image_detail', args=[task.code, image.code])}?view={view}"


def act(client, task, image, action, view="all", **fields):
    page = client.get(detail_url(task, image, view))
    return client.post(
        reverse(f"tasks:images_{action}", args=[task.code]),
        {"images": [str(image.code)], "view": view, "next": page.context["then_url"], **fields},
    )


def test_it_links_the_photos_before_and_after_it_in_its_grid(owner_client, task, ant_images):
    newest, middle, oldest = reversed(ant_images)  # as the grid shows them

    response = owner_client.get(detail_url(task, middle))

    assert response.context["previous_url"] == detail_url(task, newest)
    assert response.context["next_url"] == detail_url(task, oldest)
    html = response.content.decode()
    assert f'rel="prev" href="{detail_url(task, newest)}"' in html
    assert f'rel="next" href="{detail_url(task, oldest)}"' in html


def test_the_first_photo_has_no_previous_and_the_last_no_next(owner_client, task, ant_images):
    newest, oldest = ant_images[-1], ant_images[0]

    first = owner_client.get(detail_url(task, newest)).context
    last = owner_client.get(detail_url(task, oldest)).context

    assert (first["previous_url"], last["next_url"]) == (None, None)


def test_its_neighbours_are_those_of_the_grid_it_was_opened_from(
    owner_client, task, ants, ant_images, unsorted_images
):
    newest_unsorted = unsorted_images[-1]

    response = owner_client.get(detail_url(task, newest_unsorted, "unsorted"))

    assert response.context["next_url"] == detail_url(task, unsorted_images[0], "unsorted")


def test_in_a_review_queue_it_follows_the_queues_order(owner_client, task, ants, bees, ant_images):
    surest, unsure, middle = ant_images[1], ant_images[0], ant_images[2]
    for image, score in ((surest, 0.9), (middle, 0.7), (unsure, 0.6)):
        Image.objects.filter(pk=image.pk).update(suggestion=bees, suggestion_score=score)

    response = owner_client.get(detail_url(task, middle, "mislabels"))

    assert response.context["previous_url"] == detail_url(task, surest, "mislabels")
    assert response.context["next_url"] == detail_url(task, unsure, "mislabels")


def test_it_has_a_move_button_for_each_category_with_its_key(
    owner_client, task, ants, bees, ant_images
):
    html = owner_client.get(detail_url(task, ant_images[0])).content.decode()

    assert 'value="unsorted" data-key="0"' in html
    assert f'value="{bees.code}" data-key="2"><kbd>2</kbd> bees</button>' in html
    assert f'value="{ants.code}" data-key="1" disabled aria-current="true">' in html


def test_its_move_button_moves_the_photo_and_shows_the_next(owner_client, task, bees, ant_images):
    middle, oldest = ant_images[1], ant_images[0]

    response = act(owner_client, task, middle, "move", category=str(bees.code))

    assert response.url == detail_url(task, oldest)
    assert Image.objects.get(pk=middle.pk).category == bees


def test_its_delete_button_deletes_the_photo_and_shows_the_next(owner_client, task, ant_images):
    middle, oldest = ant_images[1], ant_images[0]

    response = act(owner_client, task, middle, "delete")

    assert response.url == detail_url(task, oldest)
    assert not Image.objects.filter(pk=middle.pk).exists()


def test_after_the_last_photo_of_its_grid_it_leads_back_to_the_grid(
    owner_client, task, ants, bees, ant_images
):
    only = ant_images[0]
    Image.objects.exclude(pk=only.pk).discard()

    response = act(owner_client, task, only, "move", view=str(ants.code), category=str(bees.code))

    assert response.url == f"{task.get_absolute_url()}?view={ants.code}"


def test_the_next_photo_offers_the_undo_of_the_move(owner_client, task, bees, ant_images):
    response = owner_client.get(
        act(owner_client, task, ant_images[1], "move", category=str(bees.code)).url
    )

    html = response.content.decode()
    assert "Moved 1 image to bees." in html
    assert f'action="/tasks/{task.code}/undo/"' in html


def test_in_the_dialog_it_tells_htmx_to_reload_the_grid_once_its_grid_is_empty(
    owner_client, task, ants
):
    response = owner_client.get(
        f"{task.get_absolute_url()}?view={ants.code}",
        headers={"HX-Request": "true", "HX-Target": "viewer"},
    )

    assert response["HX-Refresh"] == "true"
