from django.urls import reverse


def test_it_adds_a_category(owner_client, task):
    response = owner_client.post(
        reverse("tasks:category_create", args=[task.code]), {"name": " wasps "}
    )
    assert response.url == task.get_absolute_url()
    assert list(task.categories.values_list("name", flat=True)) == ["wasps"]


def test_category_names_are_unique_in_a_task_ignoring_case(owner_client, task, ants):
    response = owner_client.post(
        reverse("tasks:category_create", args=[task.code]), {"name": "Ants"}, follow=True
    )
    assert "This task already has a category named “Ants”." in response.content.decode()
    assert task.categories.count() == 1


def test_it_renames_a_category(owner_client, task, ants):
    owner_client.post(
        reverse("tasks:category_rename", args=[task.code, ants.code]), {"name": "formicidae"}
    )
    ants.refresh_from_db()
    assert ants.name == "formicidae"


def test_renaming_onto_another_name_is_refused(owner_client, task, ants, bees):
    owner_client.post(
        reverse("tasks:category_rename", args=[task.code, ants.code]), {"name": "BEES"}
    )
    ants.refresh_from_db()
    assert ants.name == "ants"


def test_deleting_a_category_moves_its_images_to_unsorted(owner_client, task, ants, ant_images):
    response = owner_client.post(
        reverse("tasks:category_delete", args=[task.code, ants.code]), follow=True
    )
    assert "its 3 images are in Unsorted" in response.content.decode()
    assert not task.categories.exists()
    assert task.images.filter(category=None).count() == 3


def test_a_category_can_hold_negative_examples(owner_client, task, ants):
    owner_client.post(
        reverse("tasks:category_rename", args=[task.code, ants.code]),
        {"name": "none", "is_negative": "on"},
    )
    ants.refresh_from_db()
    assert ants.is_negative


def test_only_one_category_holds_negative_examples(owner_client, task, ants, bees):
    bees.is_negative = True
    bees.save()
    response = owner_client.post(
        reverse("tasks:category_rename", args=[task.code, ants.code]),
        {"name": "ants", "is_negative": "on"},
        follow=True,
    )
    assert "“bees” already holds the negative examples of this task." in response.content.decode()
    ants.refresh_from_db()
    assert not ants.is_negative
