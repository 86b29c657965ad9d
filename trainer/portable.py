"""Images into network input and a model's answers, with onnxruntime, numpy and Pillow
alone.

Every exported model carries this very file as its predict.py, so the server and the
export prepare pixels and read scores with the same code; it must import nothing else.

    python predict.py IMAGE...    one JSON line per image: name, label, needs_review, scores
"""

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

RESAMPLING = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}
# Pillow parses only these photo formats (HEIF where pillow-heif is installed), never
# the dozens of others it knows.
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "HEIF")
# The name of the batch dimension of every graph vizeapp writes (trainer/networks.py).
BATCH_DIMENSION = "n"
# A JPEG decodes at the smallest fraction of its size (1/2, 1/4 or 1/8) whose shorter
# side keeps at least this many pixels: twice every base model's resize_to, so the
# resize that follows still averages two pixels into one. A 12-megapixel phone photo
# then decodes and resizes in about a fifth of the time; no score moved by more than
# 0.01 on photos of 2,500 x 1,875 (README: figures).
DECODED_SHORTER_SIDE = 600


def photo_formats():
    """The FORMATS this Pillow opens: HEIF only where pillow-heif registered it (Pillow
    answers a format it does not know with a KeyError, not with "not an image")."""
    Image.init()
    return [name for name in FORMATS if name in Image.OPEN]


def load_rgb(source):
    """An RGB image from a path or a file object, as upright_rgb decodes it."""
    with Image.open(source, formats=photo_formats()) as image:
        return upright_rgb(image)


def upright_rgb(image):
    """An opened image decoded as the models read it: a JPEG at a fraction of its size
    (DECODED_SHORTER_SIDE says which), upright by its EXIF orientation, in RGB."""
    image.draft("RGB", (DECODED_SHORTER_SIDE, DECODED_SHORTER_SIDE))
    return to_rgb(ImageOps.exif_transpose(image))


def to_rgb(image):
    """8-bit RGB that looks like the original: 16-bit scaled down, not clipped;
    transparency laid on white; CMYK and palettes converted. The server's thumbnails
    use it too (tasks/imaging.py), so what a person sees is what the model saw."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    elif image.mode == "F":
        image = image.convert("L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        background = Image.new("RGB", image.size, "white")
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        image = background
    return image if image.mode == "RGB" else image.convert("RGB")


def to_input(image, preprocessing):
    """One image as a float32 array of shape (3, size, size): the shorter side resized
    to resize_to, a centre crop of size, scaled to [0, 1], then (x - mean) / std."""
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
    # Channels first while still 8-bit, then the arithmetic in place: the formula's own
    # float32 operations, so the very same values, in one contiguous array that
    # onnxruntime takes without a copy, in about a third of the formula's time.
    pixels = np.asarray(crop).transpose(2, 0, 1).astype(np.float32, order="C")
    pixels /= 255.0
    pixels -= np.array(preprocessing.mean, np.float32)[:, None, None]
    pixels /= np.array(preprocessing.std, np.float32)[:, None, None]
    return pixels


def session(path, threads=None, providers=("CPUExecutionProvider",)):
    """An onnxruntime session that runs one image at a time, as the server and this
    script do. With the batch dimension fixed to 1, onnxruntime plans every shape when
    it loads the graph: a run of Lite2 on one core takes about a fifth less time than
    with a free batch, and sixteen photos one by one take less than one batch of them.
    Its threads (all cores by default) sleep between runs instead of spinning, which
    is no slower for a lone run and much faster for several at once. Safe to share
    between threads."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.add_free_dimension_override_by_name(BATCH_DIMENSION, 1)
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=list(providers))


def ranked(row, classes, negative=None, threshold=0.0):
    """(label, needs_review, [(category, score), ...] best first). Below threshold, the
    model's operating point, the top score is too low to answer: the photo needs review
    and its label is None. The label is None too when the negative category ("none of
    these") wins, which is an answer; the negative category is not listed."""
    order = np.argsort(-row, kind="stable")
    best = classes[order[0]]
    needs_review = bool(row[order[0]] < threshold)
    scores = [(classes[i], float(row[i])) for i in order if classes[i] != negative]
    return (None if best == negative or needs_review else best), needs_review, scores


def operating_threshold(description):
    """The threshold of the operating point in a model's model.json; 0 (answer every
    photo) for a model described before operating points."""
    return description.get("operating_point", {}).get("threshold", 0.0)


def main(arguments=None):
    try:  # HEIC photos from phones, where pillow-heif is installed
        import pillow_heif

        pillow_heif.register_heif_opener()
    except ImportError:
        pass

    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description="Classify images with an exported vizeapp model.")
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, GIF, WebP, BMP, TIFF)")
    parser.add_argument("--model", default=here, type=Path, help="the unpacked export folder")
    options = parser.parse_args(arguments)
    labels = json.loads((options.model / "labels.json").read_text())
    preprocessing = SimpleNamespace(**json.loads((options.model / "preprocess.json").read_text()))
    description = json.loads((options.model / "model.json").read_text())
    threshold = operating_threshold(description)
    # The file the server answers with: model.onnx, or its int8 form where a person chose it.
    served = description.get("served", "model.onnx")
    model = session(options.model / served)
    failed = False
    for path in options.images:
        try:
            pixels = to_input(load_rgb(path), preprocessing)
        except (OSError, UnidentifiedImageError, ValueError) as error:
            print(json.dumps({"name": path, "error": f"not a readable image ({error})"}))
            failed = True
            continue
        (scores,) = model.run(None, {"pixels": pixels[np.newaxis]})
        label, needs_review, ordered = ranked(
            scores[0], labels["classes"], labels.get("negative"), threshold
        )
        answer = {"name": path, "label": label, "needs_review": needs_review}
        print(json.dumps({**answer, "scores": dict(ordered)}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
