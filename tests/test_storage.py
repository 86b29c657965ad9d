"""A full disk loses nothing: uploads and model files are written whole or not at all,
on a real tmpfs that runs out of space."""

import hashlib

import django_rq
import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tasks import imports, predictions
from tests import images
from tests.helpers import fill, start_training, work
from tests.images import encode, picture
from vizeapp.storage import AtomicFileSystemStorage

PAGE = 4096  # tmpfs hands out space a page at a time


@pytest.fixture
def media_on_small_disk(settings, small_disk):
    settings.MEDIA_ROOT = small_disk / "media"
    return settings.MEDIA_ROOT


def files_under(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def digests(folder):
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in folder.rglob("*")
        if path.is_file()
    }


def test_a_write_that_fills_the_disk_leaves_no_file_behind(small_disk):
    storage = AtomicFileSystemStorage(location=small_disk / "media")
    fill(small_disk, leave=PAGE)
    with pytest.raises(OSError, match="No space left on device"):
        storage.save("big.bin", ContentFile(bytes(10 * PAGE)))
    assert files_under(small_disk / "media") == []


def test_a_file_is_renamed_into_place_with_the_usual_permissions(tmp_path):
    storage = AtomicFileSystemStorage(location=tmp_path)
    name = storage.save("a/b.bin", ContentFile(b"bytes"))
    assert (tmp_path / name).read_bytes() == b"bytes"
    assert (tmp_path / name).stat().st_mode & 0o777 == 0o644
    assert files_under(tmp_path) == ["a/b.bin"]


def test_an_upload_on_a_full_disk_names_the_file_and_keeps_the_earlier_ones(
    task, small_disk, media_on_small_disk
):
    imports.import_files(task, [SimpleUploadedFile("first.jpg", images.jpeg((10, 200, 10)))])
    before = digests(media_on_small_disk)
    # Room for the photo but not for its thumbnail: the photo must not stay alone.
    fill(small_disk, leave=PAGE)
    report = imports.import_files(
        task, [SimpleUploadedFile("second.jpg", images.jpeg((200, 10, 10)))]
    )
    assert [(f.name, f.outcome, f.reason) for f in report.files] == [
        ("second.jpg", "rejected", "could not be stored (No space left on device)")
    ]
    assert list(task.images.values_list("original_name", flat=True)) == ["first.jpg"]
    assert digests(media_on_small_disk) == before


@pytest.fixture
def trained_on_small_disk(
    small_disk,
    media_on_small_disk,
    owner_client,
    shapes_task,
    training_queue,
    django_capture_on_commit_callbacks,
):
    django_rq.get_queue("default").empty()
    with django_capture_on_commit_callbacks(execute=True):
        start_training(owner_client, shapes_task, django_capture_on_commit_callbacks)
        work(training_queue)
    return shapes_task.runs.get()


def test_a_full_disk_while_storing_a_model_fails_the_run_and_the_active_model_answers(
    small_disk, owner_client, trained_on_small_disk, django_capture_on_commit_callbacks
):
    active = trained_on_small_disk
    task = active.task
    model_folder = small_disk / "media" / active.model_folder
    serving = digests(model_folder)
    # The pictures and the first model fit; the second model does not.
    fill(small_disk, leave=PAGE)

    start_training(owner_client, task, django_capture_on_commit_callbacks)
    work(django_rq.get_queue("training"))

    failed = task.runs.exclude(pk=active.pk).get()
    assert failed.status == "failed"
    assert failed.reason == (
        "Training failed: the server could not store the model (No space left on device)."
    )
    assert not (small_disk / "media" / failed.storage_folder).exists()
    task.refresh_from_db()
    assert task.active_run == active
    assert digests(model_folder) == serving
    disc = encode(picture("discs", 900), "PNG")
    assert predictions.classify(active, [SimpleUploadedFile("d.png", disc)])[0].label == "discs"


def test_a_model_zip_that_cannot_be_packaged_says_why_and_is_tried_again_on_request(
    small_disk, owner_client, trained_on_small_disk, django_capture_on_commit_callbacks
):
    run, packaging = trained_on_small_disk, django_rq.get_queue("default")
    fill(small_disk)
    work(packaging)
    run.refresh_from_db()
    assert run.export_failure == "The model zip could not be packaged: No space left on device."

    page = owner_client.get(reverse("tasks:run_export", args=[run.task.code, run.code]))
    assert "No space left on device" in page.content.decode()
    assert 'http-equiv="refresh"' not in page.content.decode()
    assert packaging.count == 0  # looking at the page does not start it again

    (small_disk / "filler").unlink()
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(reverse("tasks:run_export", args=[run.task.code, run.code]))
    work(packaging)
    run.refresh_from_db()
    assert (run.export_failure, run.export_ready) == ("", True)


def test_the_api_answers_503_for_a_failed_packaging_and_tries_again_on_post(
    small_disk, api, trained_on_small_disk, django_capture_on_commit_callbacks
):
    run, packaging = trained_on_small_disk, django_rq.get_queue("default")
    fill(small_disk)
    work(packaging)
    state = api.get(f"/api/v1/tasks/{run.task.code}/runs/{run.code}").json()
    assert (
        state["export_failure"] == "The model zip could not be packaged: No space left on device."
    )
    # One export policy for the page and the API: looking (GET) reports the failure and
    # never repeats the work; asking again (the page's Try again, the API's POST) does.
    response = api.get(f"/api/v1/tasks/{run.task.code}/export")
    assert response.status_code == 503
    assert "No space left on device" in response.json()["detail"]
    assert packaging.count == 0  # asking again with GET does not start it again

    (small_disk / "filler").unlink()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/tasks/{run.task.code}/export")
    assert (response.status_code, response["Retry-After"]) == (202, "5")
    work(packaging)
    assert api.get(f"/api/v1/tasks/{run.task.code}/export").status_code == 200
