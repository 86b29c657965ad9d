"""What several test files do the same way: add photos to a task, start and run
training, fill a disk. Fixtures live in conftest.py; these are plain functions."""

import os

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rq import SimpleWorker

from tasks import imports
from tests import images
from tests.images import encode, picture, zip_of

V1 = "/api/v1"


def add_images(task, category, count, start=0):
    files = [
        SimpleUploadedFile(f"photo-{start + i}.png", images.png(color))
        for i, color in enumerate(images.colors(start + count)[start:])
    ]
    report = imports.import_files(task, files, category=category)
    assert len(report.added) == count, report.files
    return [outcome.image for outcome in report.added]


def add_pictures(task, category, kind, count, start=0):
    files = [
        SimpleUploadedFile(f"{kind}-{i}.png", encode(picture(kind, i), "PNG"))
        for i in range(start, start + count)
    ]
    return imports.import_files(task, files, category=category)


def start_training(client, task, django_capture_on_commit_callbacks, **fields):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(
            reverse("tasks:train", args=[task.code]), {"base_model": "lite0", **fields}
        )


def work(queue):
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def fill(disk, leave=0):
    """Fill the disk with one file, then free `leave` bytes of it again."""
    filler = disk / "filler"
    chunk = bytes(1024 * 1024)
    with filler.open("wb") as out:
        try:
            while True:
                out.write(chunk)
                out.flush()
        except OSError:
            pass
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - leave))


def shapes_zip(count=6):
    return zip_of(
        {
            f"shapes/{kind}/{kind}-{i}.png": encode(picture(kind, i), "PNG")
            for kind in ("discs", "squares")
            for i in range(count)
        }
    )
