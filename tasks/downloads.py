"""A task's stored images sent back as files, one way for the pages and the API."""

from django.http import FileResponse, Http404

from tasks.imaging import CONTENT_TYPES


def original(image, as_attachment):
    """The file as uploaded; saved under the name it was uploaded with."""
    extension = image.file.name.rsplit(".", 1)[-1]
    return stored_file(image.file, CONTENT_TYPES[extension], as_attachment, image.display_name)


def thumbnail(image):
    return stored_file(image.thumbnail, "image/jpeg", False, f"{image.code}.jpg")


def stored_file(field_file, content_type, as_attachment, filename):
    """Always with the content type the server chose when it read the image, never one
    the browser sniffs. A stored file never changes under its name: the browser keeps it."""
    try:
        handle = field_file.open("rb")
    except FileNotFoundError:
        raise Http404("The stored file is missing.") from None
    response = FileResponse(
        handle, content_type=content_type, as_attachment=as_attachment, filename=filename
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=86400"
    return response
