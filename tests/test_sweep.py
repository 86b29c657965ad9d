"""`manage.py sweep_storage`: files no row points to are removed, rows whose file is
gone are reported, and nothing a row or a running job needs is touched."""

import io
import os
import time

import pytest
from django.core.management import call_command

from vizeapp.storage import STAGING_PREFIX

HOURS = 3600


def write(path, data=b"x", age=2 * HOURS):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def sweep(*options):
    output = io.StringIO()
    call_command("sweep_storage", *options, stdout=output)
    return output.getvalue()


@pytest.fixture
def ready_run(task, media_root):
    run = task.runs.create(base_model="lite0", mode="fast", status="ready", samples=[])
    run.model_folder = run.storage_folder
    run.save()
    for name in ("model.onnx", "model.json"):
        write(media_root / run.storage_folder / name)
    write(media_root / run.export_file)
    return run


def test_it_removes_an_old_file_that_no_row_points_to(task, media_root):
    stray = write(media_root / task.storage_prefix / "images" / "stray.jpg", b"12345")
    output = sweep()
    assert not stray.exists()
    assert f"removed: {task.storage_prefix}/images/stray.jpg" in output
    assert "1 files with no row removed" in output


def test_it_removes_a_staging_file_left_by_a_killed_process(task, media_root):
    staged = write(media_root / task.storage_prefix / "images" / f"{STAGING_PREFIX}abc")
    sweep()
    assert not staged.exists()


def test_it_leaves_a_young_file_that_an_upload_may_be_committing(task, media_root):
    fresh = write(media_root / task.storage_prefix / "images" / "fresh.jpg", age=60)
    sweep()
    assert fresh.exists()


def test_it_keeps_every_image_and_thumbnail_with_a_row(ant_images, media_root):
    sweep()
    for image in ant_images:
        assert (media_root / image.file.name).exists()
        assert (media_root / image.thumbnail.name).exists()


def test_it_keeps_the_model_of_a_ready_run(ready_run, media_root):
    sweep()
    assert (media_root / ready_run.storage_folder / "model.onnx").exists()
    assert (media_root / ready_run.export_file).exists()


def test_it_keeps_the_files_of_a_run_still_training(task, media_root):
    run = task.runs.create(base_model="lite0", mode="fast", status="fitting", samples=[])
    storing = write(media_root / run.storage_folder / "model.onnx")
    sweep()
    assert storing.exists()


def test_it_removes_the_files_of_a_failed_run(task, media_root):
    run = task.runs.create(base_model="lite0", mode="fast", status="failed", samples=[])
    partial = write(media_root / run.storage_folder / "model.onnx")
    sweep()
    assert not partial.exists()


def test_it_removes_the_files_of_a_deleted_task(owner, media_root):
    gone = write(media_root / "tasks" / "00000000-0000-0000-0000-000000000000" / "images" / "a")
    sweep()
    assert not gone.exists()


def test_it_reports_an_image_whose_file_is_missing_and_keeps_the_row(ant_images, media_root):
    (media_root / ant_images[0].file.name).unlink()
    output = sweep()
    assert f"missing: image {ant_images[0].code}" in output
    assert "1 rows whose file is missing" in output
    assert ant_images[0].task.images.filter(pk=ant_images[0].pk).exists()


def test_it_reports_a_ready_run_whose_model_is_missing(ready_run, media_root):
    (media_root / ready_run.storage_folder / "model.onnx").unlink()
    assert f"missing: model of run {ready_run.code}" in sweep()


def test_a_dry_run_lists_what_it_would_remove_and_removes_nothing(task, media_root):
    stray = write(media_root / task.storage_prefix / "thumbnails" / "stray.jpg")
    output = sweep("--dry-run")
    assert f"would remove: {task.storage_prefix}/thumbnails/stray.jpg" in output
    assert stray.exists()
