"""Pictures made on the spot with Pillow, so the suite needs no photo collection."""

import io
import struct
import zipfile
import zlib

import numpy as np
from PIL import Image, ImageDraw


def encode(image, format, **options):
    out = io.BytesIO()
    image.save(out, format, **options)
    return out.getvalue()


def png(color=(220, 40, 40), size=(64, 48)):
    return encode(Image.new("RGB", size, color), "PNG")


def jpeg(color=(40, 90, 220), size=(64, 48), **options):
    return encode(Image.new("RGB", size, color), "JPEG", quality=95, **options)


def exif_rotated_jpeg():
    """A 60x30 picture, red on its left half, whose EXIF says "rotate 90° clockwise"
    (orientation 6): it should stand 30x60 with red on top."""
    image = Image.new("RGB", (60, 30), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(image, "JPEG", quality=95, exif=exif.tobytes())


def sixteen_bit_png(level=0x8000):
    image = Image.new("I;16", (16, 16))
    image.putdata([level] * 256)
    return encode(image, "PNG")


def cmyk_jpeg():
    """Pure cyan ink on the whole page: should look like (0, 255, 255) in RGB."""
    return encode(Image.new("CMYK", (32, 32), (255, 0, 0, 0)), "JPEG", quality=95)


def transparent_png():
    return encode(Image.new("RGBA", (16, 16), (255, 0, 0, 0)), "PNG")


def palette_gif_with_transparency():
    image = Image.new("P", (16, 16), 0)
    image.putpalette([0, 255, 0] + [0, 0, 0] * 255)
    return encode(image, "GIF", transparency=0)


def animated_gif():
    """Two frames: red, then blue. The first frame is the picture."""
    frames = [Image.new("RGB", (16, 16), color) for color in ((255, 0, 0), (0, 0, 255))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:])


def heic(color=(200, 120, 0)):
    import pillow_heif

    pillow_heif.register_heif_opener()
    return encode(Image.new("RGB", (64, 48), color), "HEIF")


def png_declaring(width, height):
    """A valid PNG header that claims width x height pixels, with almost no data:
    a pixel flood that must be refused before anything is decoded."""

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def zip_of(members, compression=zipfile.ZIP_DEFLATED):
    """A zip archive of {name: bytes}, member names written exactly as given."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return out.getvalue()


def colors(count):
    """count clearly different solid colours, each a different picture."""
    return [((37 * i) % 256, (91 * i) % 256, (53 * i + 40) % 256) for i in range(count)]


def picture(kind, variant):
    """Red discs, blue squares, yellow triangles, green stripes, or nothing ("blank")
    on grey: learnable at a glance."""
    rng = np.random.default_rng(variant)
    image = Image.new("RGB", (96, 96), tuple(int(v) for v in rng.integers(90, 140, 3)))
    draw = ImageDraw.Draw(image)
    x, y = (int(v) for v in rng.integers(10, 40, 2))
    size = int(rng.integers(40, 55))
    if kind == "discs":
        draw.ellipse((x, y, x + size, y + size), fill=(220, 30, 30))
    elif kind == "squares":
        draw.rectangle((x, y, x + size, y + size), fill=(30, 40, 220))
    elif kind == "triangles":
        draw.polygon([(x, y + size), (x + size, y + size), (x + size // 2, y)], fill=(230, 210, 0))
    elif kind == "blank":
        pass
    else:
        for offset in range(0, 96, 12):
            draw.line((offset, 0, offset, 96), fill=(30, 200, 60), width=5)
    return image


def legacy_zip(members):
    """A zip archive of {raw name bytes: data} whose names carry no UTF-8 flag, as old
    Windows tools and some others write them."""
    placeholders = [f"{i:0{len(raw)}d}" for i, raw in enumerate(members)]
    archive = zip_of(dict(zip(placeholders, members.values(), strict=True)))
    for placeholder, raw in zip(placeholders, members, strict=True):
        archive = archive.replace(placeholder.encode(), raw)
    return archive


def photo(seed, size=(320, 240)):
    """A picture with the broad shapes and the detail of a photo, different for each
    seed: coloured blobs on a smooth random ground."""
    rng = np.random.default_rng(seed)
    ground = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(ground).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = (int(v) for v in rng.integers(0, min(size), 2))
        radius = int(rng.integers(8, 40))
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=color)
    return image


def copies_of(image):
    """{kind: JPEG bytes} of near-copies of image, one of each kind people make."""
    width, height = image.size
    crop = image.crop((width // 40, height // 40, width - width // 40, height - height // 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to show": the pixels lie rotated the other way
    return {
        "resized": encode(image.resize((width // 2, height // 2)), "JPEG", quality=90),
        "re-encoded": encode(image, "JPEG", quality=60),
        "cropped": encode(crop, "JPEG", quality=90),
        "mirrored": encode(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), "JPEG", quality=90),
        "exif-rotated": encode(
            image.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=90, exif=exif.tobytes()
        ),
    }
