"""Images into network input, with Pillow and numpy only, so that the exported
predict.py does exactly what the server does."""

import numpy as np
from PIL import Image, ImageOps

RESAMPLING = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


def load_rgb(source):
    """An RGB image from a path or a file object, upright by its EXIF orientation."""
    with Image.open(source) as image:
        image = ImageOps.exif_transpose(image)
        return to_rgb(image)


def to_rgb(image):
    """8-bit RGB that looks like the original: 16-bit scaled down, not clipped;
    transparency laid on white. (tasks/imaging.py keeps its own copy: tasks/ reaches
    trainer only through its two doors.)"""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        background = Image.new("RGB", image.size, "white")
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        image = background
    return image if image.mode == "RGB" else image.convert("RGB")


def to_input(image, preprocessing):
    """One image as a float32 array of shape (3, size, size)."""
    width, height = image.size
    scale = preprocessing.resize_to / min(width, height)
    resized = image.resize(
        (max(1, round(width * scale)), max(1, round(height * scale))),
        RESAMPLING[preprocessing.interpolation],
    )
    size = preprocessing.size
    left = (resized.width - size) // 2
    top = (resized.height - size) // 2
    crop = resized.crop((left, top, left + size, top + size))
    pixels = np.asarray(crop, dtype=np.float32) / 255.0
    pixels = (pixels - np.array(preprocessing.mean, np.float32)) / np.array(
        preprocessing.std, np.float32
    )
    return pixels.transpose(2, 0, 1)
