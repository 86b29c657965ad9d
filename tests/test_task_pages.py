from django.urls import reverse

from tasks.models import Task
from tests.helpers import add_images


def test_the_list_shows_only_my_tasks_with_their_counts(
    owner_client, outsider, task, ants, ant_images
):
    Task.objects.create(owner=outsider, name="Somebody else's")
    response = owner_client.get(reverse("tasks:list"))
    html = response.content.decode()
    assert [t.name for t in response.context["tasks"]] == ["Ants or bees"]
    row = response.context["tasks"][0]
    assert (row.image_count, row.category_count) == (3, 1)
    assert "Somebody else" not in html
    assert "Not trained yet" in html


def test_it_creates_a_task_and_opens_it(owner_client, owner):
    response = owner_client.post(reverse("tasks:list"), {"name": "Ripe or not"})
    task = owner.tasks.get()
    assert task.name == "Ripe or not"
    assert response.url == reverse("tasks:detail", args=[task.code])


def test_a_task_needs_a_name(owner_client, owner):
    response = owner_client.post(reverse("tasks:list"), {"name": ""})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not owner.tasks.exists()


def test_it_renames_a_task(owner_client, task):
    owner_client.post(reverse("tasks:rename", args=[task.code]), {"name": "Ants, bees"})
    task.refresh_from_db()
    assert task.name == "Ants, bees"


def test_deleting_asks_first(owner_client, task, ant_images):
    response = owner_client.get(reverse("tasks:delete", args=[task.code]))
    assert "its 3 images, files included" in response.content.decode()
    assert Task.objects.filter(pk=task.pk).exists()


def test_deleting_removes_the_rows_and_the_files(
    owner_client, task, ant_images, media_root, django_capture_on_commit_callbacks
):
    folder = media_root / task.storage_prefix
    assert len(list(folder.rglob("*.*"))) == 6
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(reverse("tasks:delete", args=[task.code]))
    assert response.url == reverse("tasks:list")
    assert not Task.objects.filter(pk=task.pk).exists()
    assert not folder.exists()


def test_the_task_page_lists_categories_with_counts(
    owner_client, task, ants, bees, ant_images, unsorted_images
):
    response = owner_client.get(task.get_absolute_url())
    counts = {c.name: c.image_count for c in response.context["categories"]}
    assert counts == {"ants": 3, "bees": 0}
    assert response.context["unsorted_count"] == 2
    assert response.context["image_count"] == 5
    assert len(response.context["images"]) == 5


def test_the_grid_shows_one_category_at_a_time(
    owner_client, task, ants, ant_images, unsorted_images
):
    response = owner_client.get(task.get_absolute_url(), {"view": str(ants.code)})
    assert {i.code for i in response.context["images"]} == {i.code for i in ant_images}
    response = owner_client.get(task.get_absolute_url(), {"view": "unsorted"})
    assert {i.code for i in response.context["images"]} == {i.code for i in unsorted_images}


def test_the_grid_pages_through_a_large_category(owner_client, task, ants, settings):
    settings.VIZE_GRID_PAGE_SIZE = 4
    added = add_images(task, ants, 10)
    seen = []
    response = owner_client.get(task.get_absolute_url(), {"view": str(ants.code)})
    seen += response.context["images"]
    while response.context["next_cursor"]:
        response = owner_client.get(
            task.get_absolute_url(),
            {"view": str(ants.code), "cursor": response.context["next_cursor"]},
            headers={"HX-Request": "true"},
        )
        assert response.templates[0].name == "tasks/_grid_page.html"
        seen += response.context["images"]
    assert sorted(i.code for i in seen) == sorted(i.code for i in added)


def test_the_last_page_of_the_grid_offers_no_next_page(owner_client, task, ants, settings):
    settings.VIZE_GRID_PAGE_SIZE = 3
    add_images(task, ants, 3)
    response = owner_client.get(task.get_absolute_url(), {"view": str(ants.code)})
    assert len(response.context["images"]) == 3
    assert not response.context["next_cursor"]
    assert "More images" not in response.content.decode()


def test_a_next_page_of_the_grid_reads_only_its_images(
    owner_client, task, ants, bees, settings, django_assert_max_num_queries
):
    settings.VIZE_GRID_PAGE_SIZE = 2
    add_images(task, ants, 3)
    task.runs.create(base_model="lite0", mode="fast", samples=[])
    cursor = owner_client.get(task.get_absolute_url()).context["next_cursor"]
    # The session, its user, the task, the page of images: no side bar, no training panel.
    with django_assert_max_num_queries(4):
        response = owner_client.get(
            task.get_absolute_url(), {"cursor": cursor}, headers={"HX-Request": "true"}
        )
    assert len(response.context["images"]) == 1


def test_a_forged_grid_cursor_is_refused(owner_client, task):
    response = owner_client.get(task.get_absolute_url(), {"cursor": "12"})
    assert response.status_code == 400


def test_the_side_bar_and_the_counts_alone_come_back_to_htmx(owner_client, task, ants):
    response = owner_client.get(
        task.get_absolute_url(), headers={"HX-Request": "true", "HX-Target": "sidebar"}
    )
    assert response.templates[0].name == "tasks/_counts.html"
    assert "tasks/_grid.html" not in [template.name for template in response.templates]
    assert "<html" not in response.content.decode()


def test_names_are_escaped(owner_client, owner):
    task = Task.objects.create(owner=owner, name="<script>alert(1)</script>")
    task.categories.create(name="<img src=x onerror=alert(2)>")
    html = owner_client.get(task.get_absolute_url()).content.decode()
    assert "<script>alert(1)" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_new_task_shows_the_first_three_steps(owner_client, task):
    html = owner_client.get(task.get_absolute_url()).content.decode()
    assert 'class="first-steps"' in html
    for step in ("Add categories", "Drop photos", "Start training"):
        assert f"<strong>{step}</strong>" in html


def test_the_first_steps_go_once_the_task_has_a_model(owner_client, task):
    task.active_run = task.runs.create(base_model="lite0", mode="fast", status="ready", samples=[])
    task.save()
    html = owner_client.get(task.get_absolute_url()).content.decode()
    assert 'class="first-steps"' not in html


def test_the_code_example_says_to_export_the_key_it_uses(owner_client, task, ants, ant_images):
    run = task.runs.create(base_model="lite0", mode="fast", status="ready")
    Task.objects.filter(pk=task.pk).update(active_run=run)
    html = owner_client.get(reverse("tasks:detail", args=[task.code])).content.decode()
    assert "export VIZE_API_KEY=vize_..." in html
    assert '-H "Authorization: Bearer $VIZE_API_KEY"' in html
