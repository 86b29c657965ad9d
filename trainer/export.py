"""The model zip a person takes away: the ONNX model the server runs, its labels and
preprocessing, its description (model.json, with the operating point chosen for it), a
model card, predict.py (trainer/portable.py itself) and TorchScript.

    package("runs/abc/", "ants-or-bees.zip", title="Ants or bees", threshold=0.9)
"""

import json
import os
import shutil
import tempfile
import zipfile
from datetime import datetime
from pathlib import Path

from trainer import portable
from trainer.backbones import Preprocessing
from trainer.files import DESCRIPTION_FILE, MODEL_FILE, TORCHSCRIPT_FILE
from trainer.portable import operating_threshold


def package(model_dir, out_path, title, threshold):
    """Write the export zip of the model in model_dir to out_path, atomically, its
    operating point at threshold (which a person may have chosen since training)."""
    model_dir, out_path = Path(model_dir), Path(out_path)
    description = json.loads((model_dir / DESCRIPTION_FILE).read_text())
    description["operating_point"] = {"threshold": threshold}
    with tempfile.TemporaryDirectory(prefix="vizeapp-export-") as workspace:
        torchscript = Path(workspace) / TORCHSCRIPT_FILE
        if (model_dir / TORCHSCRIPT_FILE).exists():
            shutil.copyfile(model_dir / TORCHSCRIPT_FILE, torchscript)
        else:
            linear_head_torchscript(model_dir / MODEL_FILE, description, torchscript)
        temporary = out_path.with_suffix(".zip.tmp")
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(model_dir / MODEL_FILE, "model.onnx")
            archive.writestr("labels.json", json.dumps(labels(description), indent=2))
            archive.writestr("preprocess.json", json.dumps(preprocess(description), indent=2))
            archive.writestr("model.json", json.dumps(description, indent=2))
            archive.writestr("model_card.md", model_card(description, title))
            archive.write(portable.__file__, "predict.py")
            archive.write(torchscript, "model.torchscript.pt")
    os.replace(temporary, out_path)
    return out_path


def labels(description):
    return {"classes": description["classes"], "negative": description["negative"]}


def preprocess(description):
    """What to_input in predict.py reads, plus the facts a reimplementation needs."""
    return {
        **description["preprocessing"],
        "crop": "centre",
        "scale": "1/255",
        "channels": "RGB",
        "layout": "NCHW",
        "input": "pixels",
        "output": "scores",
    }


def linear_head_torchscript(onnx_path, description, out_path):
    """A fast-mode model in TorchScript: the base network with the head the ONNX graph
    carries, traced. torch is imported only here, in the packaging job."""
    import onnx
    from onnx import numpy_helper

    from trainer import networks

    weights = {
        tensor.name: numpy_helper.to_array(tensor).copy()
        for tensor in onnx.load(str(onnx_path)).graph.initializer
        if tensor.name in ("head_weight", "head_bias")
    }
    classifier = networks.Classifier(
        networks.imagenet_network(description["base_model"]),
        weights["head_weight"],
        weights["head_bias"],
    )
    size = Preprocessing.from_dict(description["preprocessing"]).size
    return networks.export_torchscript(classifier, size, out_path)


def percent(value):
    return f"{100 * value:.1f}%"


def model_card(description, title):
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
        if metrics.get("fine_tuning", {}).get("kept") == "fine-tuned"
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
to score, best first). The server that trained this model answers the same scores to
within 1e-4, and needs review for the same images.

## Files

- `model.onnx`: input `pixels`, float32 of shape (n, 3, {size}, {size}); output `scores`,
  softmax probabilities of shape (n, categories) in the order of `labels.json`.
- `preprocess.json`: how a photo becomes `pixels`: apply the EXIF orientation, convert
  to RGB, resize the shorter side to `resize_to` ({preprocessing["interpolation"]}),
  crop the centre `size` x `size`, scale to [0, 1], subtract `mean` and divide by `std`.
  `predict.py` does exactly this with Pillow and numpy.
- `labels.json`: `classes` in output order; `negative`, the category meaning "none of
  these", or null.
- `model.json`: how the model was made and measured; `operating_point.threshold`, the
  top score below which `predict.py` answers `needs_review`; `metrics.operating_points`,
  the share of held-out images answered and the precision of those answers at other
  thresholds.
- `model.torchscript.pt`: the same network for PyTorch:
  `torch.jit.load("model.torchscript.pt")(pixels)` returns the scores.
"""
