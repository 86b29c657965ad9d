"""Moving, deleting and looking at images from the labeling grid."""

from django.urls import reverse


def move(client, task, images, category, view="all"):
    return client.post(
        reverse("tasks:images_move", args=[task.code]),
        {"images": [str(i.code) for i in images], "category": category, "view": view},
        headers={"HX-Request": "true"},
    )


def test_moving_answers_the_side_bar_with_new_counts(owner_client, task, ants, bees, ant_images):
    response = move(owner_client, task, ant_images[:2], str(bees.code))
    assert bees.images.count() == 2
    assert ants.images.count() == 1
    counts = {c.name: c.image_count for c in response.context["categories"]}
    assert counts == {"ants": 1, "bees": 2}
    assert "Moved 2 images to bees." in response.content.decode()


def test_moved_tiles_leave_a_grid_that_no_longer_shows_them(
    owner_client, task, ants, bees, ant_images
):
    response = move(owner_client, task, ant_images[:1], str(bees.code), view=str(ants.code))
    html = response.content.decode()
    assert f'<div id="tile-{ant_images[0].code}" hx-swap-oob="delete"></div>' in html
    assert f"tile-{ant_images[1].code}" not in html


def test_moved_tiles_stay_in_the_all_images_grid(owner_client, task, bees, ant_images):
    html = move(owner_client, task, ant_images[:1], str(bees.code)).content.decode()
    assert 'hx-swap-oob="delete"' not in html


def test_it_moves_images_to_unsorted(owner_client, task, ants, ant_images):
    move(owner_client, task, ant_images, "unsorted")
    assert task.images.filter(category=None).count() == 3


def shown_messages(response):
    """The messages the answer puts on the page: for htmx, out of band into #messages."""
    html = response.content.decode()
    start = html.index('<div id="messages"')
    return html[start : html.index("</div>", start)]


def test_a_move_with_nothing_selected_says_why_on_the_page(owner_client, task, bees):
    response = move(owner_client, task, [], str(bees.code))
    # htmx swaps only a 2xx answer: a 400 left the page silent.
    assert response.status_code == 200
    assert 'hx-swap-oob="true"' in shown_messages(response)
    assert "Select some photos first." in shown_messages(response)


def test_a_plain_form_move_with_nothing_selected_says_why_in_the_same_view(
    owner_client, task, ants, bees
):
    response = owner_client.post(
        reverse("tasks:images_move", args=[task.code]),
        {"category": str(bees.code), "view": str(ants.code)},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == f"{task.get_absolute_url()}?view={ants.code}"
    assert "Select some photos first." in shown_messages(response)


def test_a_delete_with_nothing_selected_says_why_on_the_page(owner_client, task, ant_images):
    response = owner_client.post(
        reverse("tasks:images_delete", args=[task.code]),
        {"view": "all"},
        headers={"HX-Request": "true"},
    )
    assert "Select some photos first." in shown_messages(response)
    assert task.images.count() == 3


def test_a_move_to_a_category_of_another_task_is_refused(owner_client, owner, task, ant_images):
    elsewhere = owner.tasks.create(name="Other").categories.create(name="cats")
    response = move(owner_client, task, ant_images, str(elsewhere.code))
    assert "That category is not in this task." in shown_messages(response)
    assert not elsewhere.images.exists()


def test_images_cannot_be_moved_to_all_images(owner_client, task, ants, ant_images):
    response = move(owner_client, task, ant_images, "all")
    assert "That category is not in this task." in shown_messages(response)
    assert ants.images.count() == 3


def test_a_plain_form_move_redirects_back_to_the_same_view(
    owner_client, task, ants, bees, ant_images
):
    response = owner_client.post(
        reverse("tasks:images_move", args=[task.code]),
        {"images": [str(ant_images[0].code)], "category": str(bees.code), "view": str(ants.code)},
    )
    assert response.url == f"{task.get_absolute_url()}?view={ants.code}"
    assert bees.images.count() == 1


def test_deleting_one_embedded_photo_counts_one_image(owner_client, task, ant_images):
    image = ant_images[0]
    image.embeddings.create(base_model="lite0", features=b"", mirrored=b"", late_maps=b"")
    response = owner_client.post(
        reverse("tasks:images_delete", args=[task.code]),
        {"images": [str(image.code)], "view": "all"},
        headers={"HX-Request": "true"},
    )
    assert "Deleted 1 image." in shown_messages(response)


def test_accepting_the_suggestions_of_photos_that_have_none_says_so(owner_client, task, ant_images):
    response = owner_client.post(
        reverse("tasks:suggestions_accept", args=[task.code]),
        {"images": [str(ant_images[0].code)], "at_least": "0", "view": "all"},
        headers={"HX-Request": "true"},
    )
    assert "None of the selected photos has a suggestion to accept." in shown_messages(response)


def test_an_upload_of_nothing_without_javascript_says_why(owner_client, task):
    response = owner_client.post(
        reverse("tasks:upload", args=[task.code]), {"target": "unsorted"}, follow=True
    )
    assert "Choose at least one photo or zip file to upload." in shown_messages(response)


def test_deleting_images_hides_them_and_keeps_their_files_for_an_undo(
    owner_client, task, ant_images, media_root, django_capture_on_commit_callbacks
):
    doomed = ant_images[:2]
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            reverse("tasks:images_delete", args=[task.code]),
            {"images": [str(i.code) for i in doomed], "view": "all"},
            headers={"HX-Request": "true"},
        )
    assert "Deleted 2 images." in response.content.decode()
    assert task.images.count() == 1
    assert all((media_root / image.file.name).exists() for image in doomed)


def test_the_larger_view_names_the_file_its_size_and_category(owner_client, task, ants, ant_images):
    image = ant_images[0]
    response = owner_client.get(reverse("tasks:image_detail", args=[task.code, image.code]))
    html = response.content.decode()
    assert image.original_name in html
    assert "64 × 48 pixels" in html
    assert "<dd>ants</dd>" in html


def test_the_original_is_served_as_an_image_never_sniffed(owner_client, task, ant_images):
    image = ant_images[0]
    response = owner_client.get(reverse("tasks:image_file", args=[task.code, image.code]))
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content)[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_download_is_an_attachment(owner_client, task, ant_images):
    image = ant_images[0]
    response = owner_client.get(
        reverse("tasks:image_file", args=[task.code, image.code]), {"download": ""}
    )
    assert response["Content-Disposition"].startswith("attachment;")


def test_a_download_keeps_the_name_it_was_uploaded_with(owner_client, task, ant_images):
    image = ant_images[0]
    response = owner_client.get(
        reverse("tasks:image_file", args=[task.code, image.code]), {"download": ""}
    )
    assert response["Content-Disposition"] == 'attachment; filename="photo-0.png"'


def test_the_larger_view_alone_reads_the_image_its_neighbours_and_the_categories(
    owner_client, task, ants, ant_images, django_assert_max_num_queries
):
    image = ant_images[0]
    # The session, its user, the task, the image, the photos before and after it, the
    # categories to move it to: no side bar behind the dialog.
    with django_assert_max_num_queries(7):
        response = owner_client.get(
            reverse("tasks:image_detail", args=[task.code, image.code]),
            headers={"HX-Request": "true"},
        )
    assert response.templates[0].name == "tasks/_image.html"


def test_the_thumbnail_is_a_jpeg(owner_client, task, ant_images):
    image = ant_images[0]
    response = owner_client.get(reverse("tasks:image_thumbnail", args=[task.code, image.code]))
    assert response["Content-Type"] == "image/jpeg"
