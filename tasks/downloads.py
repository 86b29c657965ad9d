"""Stored files sent back (a task's images, a run's model zip, a task's dataset zip),
one way for the pages and the API."""

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404

from tasks.imaging import CONTENT_TYPES


def original(image, as_attachment):
    """The file as uploaded; saved under the name it was uploaded with."""
    extension = image.file.name.rsplit(".", 1)[-1]
    return stored_file(image.file.name, CONTENT_TYPES[extension], as_attachment, image.display_name)


def thumbnail(image):
    return stored_file(image.thumbnail.name, "image/jpeg", False, f"{image.code}.jpg")


def model_zip(run):
    """A ready run's packaged model zip (runs.ModelZip says when there is one)."""
    return built_zip(run.export_file, run.export_filename)


def built_zip(name, filename):
    """A zip built by a job (tasks/zips.py). Its URL stays when the zip changes (a run's
    new operating point, a task's new photos): the browser asks again."""
    response = stored_file(name, "application/zip", True, filename)
    response["Cache-Control"] = "private, no-cache"
    return response


def stored_file(name, content_type, as_attachment, filename):
    """Always with the content type the server chose when it read the image, never one
    the browser sniffs. A stored file never changes under its name: the browser keeps it."""
    try:
        handle = default_storage.open(name)
    except FileNotFoundError:
        raise Http404("The stored file is missing.") from None
    response = FileResponse(
        handle, content_type=content_type, as_attachment=as_attachment, filename=filename
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=86400"
    return response
