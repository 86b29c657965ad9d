"""What counts as an image, and how every kind of image becomes correct RGB."""

import io

import pytest
from PIL import Image

from tasks.imaging import ImageRejected, check_image, decoded_photo
from tests import images
from trainer.portable import load_rgb


def check(data, max_pixels=10_000_000):
    return check_image(data, max_pixels=max_pixels, thumbnail_size=256)


def thumbnail_of(data):
    return Image.open(io.BytesIO(check(data).thumbnail)).convert("RGB")


def rejection(data, **limits):
    with pytest.raises(ImageRejected) as caught:
        check(data, **limits)
    return str(caught.value)


def close(pixel, expected, tolerance=12):
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


def test_it_reads_the_format_from_the_content_not_the_name():
    assert check(images.png()).format == "PNG"
    assert check(images.jpeg()).extension == "jpg"


def test_it_rejects_a_text_file():
    assert "not an image" in rejection(b"just some words, named photo.jpg")


def test_it_rejects_html_and_svg_disguised_as_images():
    assert "not an image" in rejection(b"<html><script>alert(1)</script></html>")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="9" height="9"/></svg>'
    assert "not an image" in rejection(svg)


def test_it_rejects_an_empty_file():
    assert rejection(b"") == "the file is empty"


def test_it_rejects_a_truncated_jpeg():
    data = images.jpeg(size=(400, 300))
    assert "damaged or truncated" in rejection(data[: len(data) // 2])


def test_it_refuses_a_pixel_flood_before_decoding_it():
    flood = images.png_declaring(30000, 30000)
    assert len(flood) < 200
    assert "more than the limit of 10 megapixels" in rejection(flood)


def test_it_names_the_size_of_an_image_over_the_pixel_limit():
    reason = rejection(images.png(size=(400, 300)), max_pixels=100_000)
    assert reason == "400x300 pixels is more than the limit of 0.1 megapixels per image"


def test_it_applies_the_exif_orientation_once():
    checked = check(images.exif_rotated_jpeg())
    assert (checked.width, checked.height) == (30, 60)
    thumbnail = Image.open(io.BytesIO(checked.thumbnail)).convert("RGB")
    assert thumbnail.size == (30, 60)
    assert close(thumbnail.getpixel((15, 10)), (255, 0, 0), tolerance=40)
    assert close(thumbnail.getpixel((15, 50)), (0, 0, 255), tolerance=40)


def test_it_turns_cmyk_into_the_right_rgb_colour():
    assert close(thumbnail_of(images.cmyk_jpeg()).getpixel((5, 5)), (0, 255, 255))


def test_it_scales_16_bit_greys_instead_of_clipping_them():
    assert close(thumbnail_of(images.sixteen_bit_png(0x8000)).getpixel((5, 5)), (128, 128, 128))


def test_it_lays_transparency_on_white():
    assert close(thumbnail_of(images.transparent_png()).getpixel((5, 5)), (255, 255, 255))


def test_it_lays_a_transparent_palette_colour_on_white():
    pixel = thumbnail_of(images.palette_gif_with_transparency()).getpixel((5, 5))
    assert close(pixel, (255, 255, 255))


def test_it_takes_the_first_frame_of_an_animated_gif():
    assert close(thumbnail_of(images.animated_gif()).getpixel((5, 5)), (255, 0, 0))


def test_it_reads_heic_photos():
    checked = check(images.heic((200, 120, 0)))
    assert (checked.format, checked.extension) == ("HEIF", "heic")
    pixel = Image.open(io.BytesIO(checked.thumbnail)).convert("RGB").getpixel((5, 5))
    assert close(pixel, (200, 120, 0), tolerance=20)


def test_it_makes_a_thumbnail_no_larger_than_asked():
    checked = check(images.jpeg(size=(1200, 900)))
    assert Image.open(io.BytesIO(checked.thumbnail)).size == (256, 192)
    assert (checked.width, checked.height) == (1200, 900)


def test_a_photo_sent_to_classify_decodes_as_the_model_zips_predict_py_decodes_it():
    exif = Image.Exif()
    exif[0x0112] = 6
    data = images.encode(images.photo(1, size=(2600, 1900)), "JPEG", exif=exif.tobytes())
    served = decoded_photo(data, max_pixels=50_000_000)
    exported = load_rgb(io.BytesIO(data))
    assert served.size == exported.size == (950, 1300)
    assert served.tobytes() == exported.tobytes()
