"""Near-copies of a photo already in the task: told at upload, grouped, shown on the
duplicates page and through the API, and kept on one side of an evaluation split."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from tasks import imports, jobs, near_copies
from tasks.models import NearCopies
from tests.helpers import V1
from tests.images import copies_of, encode, photo


def upload(task, *files, category=None):
    uploads = [SimpleUploadedFile(name, data) for name, data in files]
    return imports.import_files(task, uploads, category=category)


@pytest.fixture
def bee(task, bees):
    """A photo in the category bees."""
    return upload(task, ("bee1.png", encode(photo(1), "PNG")), category=bees).added[0].image


@pytest.mark.parametrize("kind", ["resized", "re-encoded", "cropped", "mirrored", "exif-rotated"])
def test_it_reports_a_near_copy_with_the_photo_it_copies(task, bee, kind):
    report = upload(task, (f"{kind}.jpg", copies_of(photo(1))[kind]))
    (copy,) = report.near_duplicates
    assert copy.outcome == "added"
    assert copy.copy_of == bee


def test_it_does_not_call_a_different_photo_a_copy(task, bee):
    report = upload(task, ("other.png", encode(photo(2), "PNG")))
    assert report.added and not report.near_duplicates


def test_a_plain_picture_is_never_a_copy(task):
    report = upload(task, *[(f"{i}.png", encode(photo(3).resize((1, 1)), "PNG")) for i in (1, 2)])
    assert len(report.added) == 1  # the same bytes twice: a duplicate, not a near-copy
    assert task.images.get().fingerprint is None


def test_the_page_report_names_the_copy_the_photo_and_its_category(owner_client, task, bee):
    response = owner_client.post(
        reverse("tasks:upload", args=[task.code]),
        {"files": [SimpleUploadedFile("bee1_small.jpg", copies_of(photo(1))["resized"])]},
        headers={"HX-Request": "true"},
    )
    assert "bee1_small.jpg</span> looks like a copy of bee1.png (bees)" in response.content.decode()


def test_the_page_without_javascript_says_it_too(owner_client, task, bee):
    response = owner_client.post(
        reverse("tasks:upload", args=[task.code]),
        {"files": [SimpleUploadedFile("bee1_small.jpg", copies_of(photo(1))["resized"])]},
        follow=True,
    )
    assert "bee1_small.jpg looks like a copy of bee1.png (bees)." in response.content.decode()


def test_the_api_report_lists_near_duplicates(api, task, bee):
    response = api.post(
        f"{V1}/tasks/{task.code}/images",
        {"files": [SimpleUploadedFile("bee1_small.jpg", copies_of(photo(1))["resized"])]},
    )
    assert response.status_code == 201
    assert response.json()["near_duplicates"] == [
        {"name": "bee1_small.jpg", "of": str(bee.code), "category": "bees"}
    ]


def test_copies_of_one_photo_share_its_group(task, bee):
    report = upload(task, *[(f"{kind}.jpg", data) for kind, data in copies_of(photo(1)).items()])
    bee.refresh_from_db()
    groups = {outcome.image.duplicate_group for outcome in report.added}
    assert groups == {bee.pk} and bee.duplicate_group == bee.pk


def test_a_copy_of_a_photo_sent_earlier_in_the_same_upload_is_told(task):
    first, copy = upload(
        task,
        ("bee2.png", encode(photo(2), "PNG")),
        ("bee2_small.jpg", copies_of(photo(2))["resized"]),
    ).added
    assert copy.copy_of == first.image


def fingerprint(data):
    return near_copies.fingerprint(Image.open(io.BytesIO(data)))


def test_an_upload_sees_a_photo_another_upload_stored_while_it_ran(task, bee):
    copies = NearCopies(task)
    assert copies.copy_of(fingerprint(copies_of(photo(1))["resized"])) == bee
    other = upload(task, ("bee2.png", encode(photo(2), "PNG"))).added[0].image
    assert copies.copy_of(fingerprint(copies_of(photo(2))["resized"])) == other


def test_a_photo_deleted_while_an_upload_runs_is_no_longer_copied(task, bee):
    copies = NearCopies(task)
    assert copies.copy_of(fingerprint(copies_of(photo(1))["cropped"])) == bee
    task.images.filter(pk=bee.pk).discard()
    assert copies.copy_of(fingerprint(copies_of(photo(1))["resized"])) is None


def test_a_copy_of_a_photo_the_same_upload_brought_back_from_deletion_is_told(task, bee):
    upload(task, ("other.png", encode(photo(3), "PNG")))
    task.images.filter(pk=bee.pk).discard()
    report = upload(
        task,
        ("bee2.png", encode(photo(2), "PNG")),
        ("bee1.png", encode(photo(1), "PNG")),
        ("bee1_small.jpg", copies_of(photo(1))["resized"]),
    )
    assert report.files[2].copy_of == bee


def test_a_run_trains_on_the_groups_of_its_photos(task, bee):
    copy = upload(task, ("copy.jpg", copies_of(photo(1))["mirrored"])).added[0].image
    other = upload(task, ("other.png", encode(photo(2), "PNG"))).added[0].image
    run = task.runs.create(
        base_model="lite0",
        mode="fast",
        samples=[[str(image.code), "bees"] for image in (bee, copy, other)],
    )
    _, samples = jobs.load_samples(run)
    assert [sample.group for sample in samples] == [bee.pk, bee.pk, None]


@pytest.fixture
def conflict(task, bee, ants):
    """A group of three: bee1.png in bees, its mirrored copy in ants, its crop Unsorted."""
    copies = copies_of(photo(1))
    mirrored = upload(task, ("mirrored.jpg", copies["mirrored"]), category=ants).added[0].image
    cropped = upload(task, ("cropped.jpg", copies["cropped"])).added[0].image
    return [bee, mirrored, cropped]


@pytest.fixture
def agreeing(task, bees):
    """A group of two in bees."""
    first = upload(task, ("bee2.png", encode(photo(2), "PNG")), category=bees).added[0].image
    upload(task, ("bee2_small.jpg", copies_of(photo(2))["resized"]), category=bees)
    return first.pk


def settle(client, task, **fields):
    return client.post(reverse("tasks:duplicates", args=[task.code]), fields)


def test_the_api_lists_groups_label_conflicts_first(api, task, conflict, agreeing):
    response = api.get(f"{V1}/tasks/{task.code}/duplicates")
    assert response.status_code == 200
    assert response.json()["groups"][0] == {
        "images": [str(image.code) for image in conflict],
        "categories": ["bees", "ants", None],
        "conflict": True,
    }
    assert response.json()["groups"][1]["conflict"] is False


def test_the_page_shows_each_group_with_names_and_categories(owner_client, task, conflict):
    html = owner_client.get(reverse("tasks:duplicates", args=[task.code])).content.decode()
    assert "label conflict" in html
    assert all(name in html for name in ("bee1.png", "mirrored.jpg", "cropped.jpg"))


def test_the_task_page_links_to_the_groups_with_their_count(owner_client, task, conflict, agreeing):
    html = owner_client.get(task.get_absolute_url()).content.decode()
    assert "Near-copies (2)" in html


def test_keeping_one_deletes_the_others(owner_client, task, conflict):
    bee = conflict[0]
    response = settle(owner_client, task, group=bee.pk, action="keep_one", image=bee.code)
    assert response.status_code == 302
    assert list(task.images.all()) == [bee]
    assert task.duplicate_groups() == []


def test_keeping_all_stops_showing_the_group(owner_client, task, conflict):
    settle(owner_client, task, group=conflict[0].pk, action="keep_all")
    assert task.images.count() == 3
    assert task.duplicate_groups() == []


def test_moving_all_puts_them_in_one_category(owner_client, task, conflict, bees):
    settle(owner_client, task, group=conflict[0].pk, action="move", category=bees.code)
    assert set(task.images.values_list("category", flat=True)) == {bees.pk}
    assert not task.duplicate_groups()[0].conflict


def test_another_user_cannot_see_the_groups(outsider_client, outsider_api, task, conflict):
    assert outsider_client.get(reverse("tasks:duplicates", args=[task.code])).status_code == 404
    assert outsider_api.get(f"{V1}/tasks/{task.code}/duplicates").status_code == 404


def test_another_user_cannot_settle_a_group(outsider_client, task, conflict):
    response = settle(outsider_client, task, group=conflict[0].pk, action="keep_all")
    assert response.status_code == 404
    assert len(task.duplicate_groups()) == 1
