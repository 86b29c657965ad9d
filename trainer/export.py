"""The model zip a person takes away: the ONNX model the server runs, its labels and
preprocessing, its description (model.json, with the operating point chosen for it and
the file the server answers with), a model card, predict.py (trainer/portable.py
itself), and the other formats that trainer/formats.py built beside the model with the
report of how each agrees with it (formats.json).

    package("runs/abc/", "ants-or-bees.zip", title="Ants or bees", threshold=0.9)
"""

import json
import os
import shutil
import zipfile
from datetime import datetime
from pathlib import Path

from trainer import portable
from trainer.files import (
    DESCRIPTION_FILE,
    FORMATS_FILE,
    INT8_MODEL_FILE,
    MODEL_FILE,
    fine_tuned,
)
from trainer.portable import DECODED_SHORTER_SIDE, operating_threshold

CHUNK = 1 << 20


def package(model_dir, out_path, title, threshold, served=MODEL_FILE):
    """Write the export zip of the model in model_dir to out_path, atomically, its
    operating point at threshold (which a person may have chosen since training) and
    served the file the server answers with (MODEL_FILE, or INT8_MODEL_FILE where a
    person chose it), which predict.py then runs too."""
    model_dir, out_path = Path(model_dir), Path(out_path)
    description = json.loads((model_dir / DESCRIPTION_FILE).read_text())
    description["operating_point"] = {"threshold": threshold}
    description["served"] = served
    report = formats_report(model_dir)
    others = [
        entry["file"]
        for entry in report["formats"]
        if entry["file"] != MODEL_FILE and (model_dir / entry["file"]).exists()
    ]
    temporary = out_path.with_suffix(".zip.tmp")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
        add_file(archive, model_dir / MODEL_FILE, MODEL_FILE)
        add_text(archive, "labels.json", json.dumps(labels(description), indent=2))
        add_text(archive, "preprocess.json", json.dumps(preprocess(description), indent=2))
        add_text(archive, "model.json", json.dumps(description, indent=2))
        add_text(archive, "model_card.md", model_card(description, title, report))
        add_file(archive, Path(portable.__file__), "predict.py")
        for name in others:
            add_file(archive, model_dir / name, name)
        if report["formats"]:
            add_text(archive, FORMATS_FILE, json.dumps(report, indent=2))
    os.replace(temporary, out_path)
    return out_path


def readable_member(name, when, compress_type=zipfile.ZIP_STORED):
    """A zip member dated when that unpacks as a file anyone may read: zipfile gives
    writestr's members mode 0600 and write's the mode of the file on disk (0600 where
    the model was written through a temporary file). The dataset zip's too."""
    member = zipfile.ZipInfo(name, date_time=when.timetuple()[:6])
    member.external_attr = 0o644 << 16
    member.compress_type = compress_type
    return member


def add_text(archive, name, text):
    archive.writestr(readable_member(name, datetime.now(), zipfile.ZIP_DEFLATED), text)


def add_file(archive, path, name):
    member = readable_member(name, datetime.now(), zipfile.ZIP_DEFLATED)
    with path.open("rb") as source, archive.open(member, "w") as target:
        shutil.copyfileobj(source, target, CHUNK)


def formats_report(model_dir):
    """trainer/formats.py's report for the model in model_dir; one with no formats
    where they were never built (a folder packaged by a script, say)."""
    path = Path(model_dir) / FORMATS_FILE
    return json.loads(path.read_text()) if path.exists() else {"formats": []}


def labels(description):
    return {"classes": description["classes"], "negative": description["negative"]}


def preprocess(description):
    """What to_input in predict.py reads, plus the facts a reimplementation needs."""
    return {
        **description["preprocessing"],
        "decoded_shorter_side": DECODED_SHORTER_SIDE,
        "crop": "centre",
        "scale": "1/255",
        "channels": "RGB",
        "layout": "NCHW",
        "input": "pixels",
        "output": "scores",
    }


def percent(value):
    return f"{100 * value:.1f}%"


def model_card(description, title, report):
    metrics = description["metrics"]
    counts = description.get("class_counts", {})
    negative = description["negative"]
    preprocessing = description["preprocessing"]
    trained = datetime.fromisoformat(description["trained_at"]).strftime("%Y-%m-%d %H:%M UTC")
    size = preprocessing["size"]
    rows = "\n".join(
        f"| {category['name']}{' (none of these)' if category['name'] == negative else ''} "
        f"| {counts.get(category['name'], '')} | {percent(category['precision'])} "
        f"| {percent(category['recall'])} |"
        for category in metrics["categories"]
    )
    read = {"final": "final pooled features", "all": "final and last stages' pooled features"}
    mode = (
        "its last stage and a head fine-tuned, each photo scored with its mirror image"
        if fine_tuned(description)
        else f"linear head on the base model's {read.get(metrics.get('head_features'), 'features')}"
    )
    base = f"{description['base_model_title']} (ImageNet weights), {mode}"
    base += f" ({description['mode']} mode)."
    accuracy = (
        f"{percent(metrics['accuracy'])} of {metrics['evaluated']} images the model had not seen "
        f"(95% interval {percent(metrics['accuracy_low'])} to "
        f"{percent(metrics['accuracy_high'])}), measured by {metrics['method']}."
    )
    negative_note = (
        f"\nImages like those in “{negative}” get the label `null`: none of the categories.\n"
        if negative
        else ""
    )
    threshold = operating_threshold(description)
    review_note = (
        f"\nAn image whose top score is below {threshold:g} (the operating point) gets "
        "`needs_review: true` and the label `null`: the model is not sure enough to answer, "
        "and a person should look.\n"
        if threshold
        else ""
    )
    return f"""# {title}

An image classifier trained with vizeapp on {trained} from {description["image_count"]} images.

- Base model: {base}
- Accuracy: {accuracy}

| category | images | precision | recall |
|---|---|---|---|
{rows}
{negative_note}{review_note}
## Use it

    pip install onnxruntime numpy pillow
    python predict.py photo.jpg other.png

prints one JSON line per image: `name`, `label`, `needs_review` and `scores` (category
to score, best first), with `{description["served"]}`, the model the server answers
with: the server that trained this model answers the same scores to within 1e-4, and
needs review for the same images.
{formats_section(report)}
## Files

- `model.onnx`: input `pixels`, float32 of shape (n, 3, {size}, {size}); output `scores`,
  softmax probabilities of shape (n, categories) in the order of `labels.json`.
- `preprocess.json`: how a photo becomes `pixels`: decode a JPEG at the smallest
  fraction of its size (1/2, 1/4 or 1/8, libjpeg's scaled decoding) that keeps
  `decoded_shorter_side` pixels of its shorter side, apply the EXIF orientation,
  convert to RGB, resize the shorter side to `resize_to`
  ({preprocessing["interpolation"]}), crop the centre `size` x `size`, scale to [0, 1],
  subtract `mean` and divide by `std`. `predict.py` does exactly this with Pillow and
  numpy. Decoding a large JPEG whole instead moves its scores by about 0.01 at most.
- `labels.json`: `classes` in output order; `negative`, the category meaning "none of
  these", or null.
- `model.json`: how the model was made and measured; `operating_point.threshold`, the
  top score below which `predict.py` answers `needs_review`; `metrics.operating_points`,
  the share of held-out images answered and the precision of those answers at other
  thresholds; `served`, the file `predict.py` runs.
{files_section(report, description)}"""


def offered(report):
    """The rows of the formats in the zip (an int8 model that agrees too little is
    measured, and left out)."""
    return [entry for entry in report["formats"] if entry.get("offered", True)]


def formats_section(report):
    """The table of how every format in the zip agrees with model.onnx."""
    if not report["formats"]:
        return ""
    apart = (
        f"int8 was calibrated on {report['calibration_photos']} others"
        if report["calibrated_apart"]
        else "too few to keep apart, so int8 was calibrated on them too"
    )
    rows = "\n".join(
        f"| `{entry['file']}` | {entry['format']} | {percent(entry['agreement'])} "
        f"| {entry['max_score_difference']:.2g} "
        f"| {'' if 'measured_as' in entry else format(entry['ms_per_photo'], '.1f')} |"
        for entry in offered(report)
    )
    notes = [
        f"`{entry['file']}`: measured as {entry['measured_as']}."
        for entry in offered(report)
        if "measured_as" in entry
    ]
    notes += [
        f"`{entry['file']}` ({entry['format']}) is not included: it gave the top category "
        f"of `model.onnx` for only {percent(entry['agreement'])} of the photos, under 99%."
        for entry in report["formats"]
        if not entry.get("offered", True)
    ]
    return f"""
## Formats and how they agree

Every format in this zip, measured against `model.onnx` on {report["photos"]} of the
run's held-out photos ({apart}): the share of photos given the same top category, the
largest difference of a score, and the milliseconds per photo, one photo at a time on
one thread (as the server answers a request), on the server that packaged it.

| file | format | top-1 agreement | max score difference | ms per photo |
|---|---|---|---|---|
{rows}
{"".join(f"{chr(10)}{note}{chr(10)}" for note in notes)}"""


def files_section(report, description):
    """The Files entries of the formats in the zip besides model.onnx."""
    size = description["preprocessing"]["size"]
    resize_to = description["preprocessing"]["resize_to"]
    present = {entry["file"] for entry in offered(report)}
    entries = []
    if INT8_MODEL_FILE in present:
        entries.append(
            f"- `{INT8_MODEL_FILE}`: the same inputs and outputs as `model.onnx`, its weights "
            "and activations quantized to 8 bits by onnxruntime (static, per-channel): "
            "smaller and faster on a CPU. `predict.py` runs it when the server answers with "
            "it (`served` in `model.json`), as a person may choose on the run's page."
        )
    if "model.torchscript.pt" in present:
        entries.append(
            "- `model.torchscript.pt`: the same network for PyTorch:\n"
            '  `torch.jit.load("model.torchscript.pt")(pixels)` returns the scores.'
        )
    if "model.mlmodel" in present:
        entries.append(
            f"""- `model.mlmodel`: the same network for Core ML (iOS 13, macOS 10.15 and later),
  float32, converted by coremltools. Input `image`: an RGB image of {size} x {size}, whose
  pixels the model scales itself (`preprocess.json`'s mean and std are built in).
  To see what the server sees, crop the centre square of the photo's shorter side
  times {size / resize_to:.3f} ({size} of {resize_to}), then scale it to {size} x {size}
  (with Vision: crop first, then `.scaleFill`). Outputs: `classLabel`, the best
  category, and `classLabelProbs`, every category's score, named as in `labels.json`;
  the operating point and the negative category are yours to apply. Converted and
  checked on Linux, where Core ML cannot run a model: the file was read back and its
  input, outputs, labels, scaling and head weights compared with the trained model,
  and its agreement above is that of the torch network it was converted from. Check
  it on an Apple device before you rely on it."""
        )
    return "\n".join(entries) + ("\n" if entries else "")
