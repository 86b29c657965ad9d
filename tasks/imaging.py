"""What a stored photo must be: a decodable image in an allowed format, within the pixel
limit, turned into correct RGB with its EXIF orientation applied, plus a thumbnail."""

import contextlib
import io
from dataclasses import dataclass

import pillow_heif
from django.utils.translation import gettext
from PIL import Image, ImageOps, UnidentifiedImageError

from tasks.near_copies import fingerprint
from trainer.portable import to_rgb, upright_rgb

pillow_heif.register_heif_opener()

# Pillow parses only these; anything else (SVG, HTML, PDF, PSD ...) is refused unread.
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "HEIF")
EXTENSIONS = {
    "JPEG": "jpg",
    "MPO": "jpg",  # multi-picture JPEG from some cameras; Pillow names it MPO
    "PNG": "png",
    "GIF": "gif",
    "WEBP": "webp",
    "BMP": "bmp",
    "TIFF": "tif",
    "HEIF": "heic",
}
CONTENT_TYPES = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "heic": "image/heic",
}
BROWSER_FORMATS = {"jpg", "png", "gif", "webp", "bmp"}
EXIF_ORIENTATION = 0x0112
TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}


class ImageRejected(Exception):
    """The reason a file cannot become a stored image, worded for the person who sent it."""


@dataclass(frozen=True)
class CheckedImage:
    format: str
    extension: str
    width: int
    height: int
    thumbnail: bytes
    fingerprint: bytes | None  # tasks/near_copies.py; None for a picture too plain


def check_image(data: bytes, *, max_pixels: int, thumbnail_size: int) -> CheckedImage:
    """Decode data as an image, whatever its name says, and make its thumbnail and its
    fingerprint, from the one decoding."""
    with opened(data, max_pixels) as image:
        width, height = image.size
        if image.getexif().get(EXIF_ORIENTATION) in TRANSPOSING_ORIENTATIONS:
            width, height = height, width
        # A JPEG can decode straight at a fraction of its size: much faster for a
        # thumbnail, and the whole file is still read, so damage is still found.
        image.draft("RGB", (thumbnail_size, thumbnail_size))
        thumbnail = to_rgb(ImageOps.exif_transpose(image))
        format = image.format
    thumbnail.thumbnail((thumbnail_size, thumbnail_size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    thumbnail.save(out, "JPEG", quality=85)
    return CheckedImage(
        format, EXTENSIONS[format], width, height, out.getvalue(), fingerprint(thumbnail)
    )


def decoded_photo(data: bytes, *, max_pixels: int) -> Image.Image:
    """data decoded once into the upright RGB image a model reads, with check_image's
    checks and reasons: a photo sent to be classified needs no thumbnail or
    fingerprint, and decoding it a second time to predict would cost as much again."""
    with opened(data, max_pixels) as image:
        return upright_rgb(image)


@contextlib.contextmanager
def opened(data, max_pixels):
    """data opened as an image in an allowed format within the pixel limit; what fails
    to decode inside the block is refused with the reason."""
    if not data:
        raise ImageRejected(gettext("the file is empty"))
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise ImageRejected(
                    gettext(
                        "%(width)sx%(height)s pixels is more than the limit of "
                        "%(limit)s megapixels per image"
                    )
                    % {"width": width, "height": height, "limit": f"{max_pixels / 1e6:g}"}
                )
            yield image
    except UnidentifiedImageError:
        raise ImageRejected(
            gettext("not an image in a supported format (JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC)")
        ) from None
    except Image.DecompressionBombError:
        raise ImageRejected(
            gettext("more than the limit of %(limit)s megapixels per image")
            % {"limit": f"{max_pixels / 1e6:g}"}
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ImageRejected(gettext("the image data is damaged or truncated")) from None
