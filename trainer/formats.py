"""The model zip's other formats, built once per run by the packaging job beside the
model the server runs (model.onnx), each measured against it on the run's photos: top-1
agreement, the largest score difference and the time per photo.

- TorchScript (model.torchscript.pt): a fine-tuned network has its own from training;
  a linear head's is traced here.
- Core ML (model.mlmodel, trainer/coreml.py): the same torch network, its padding fixed.
  Core ML runs only on Apple systems, so its row gives what the torch network it was
  converted from computes.
- int8 ONNX (model.int8.onnx): onnxruntime's static quantization, calibrated on photos
  of the run other than those measured; kept only when it gives the served model's top
  category for at least INT8_MIN_AGREEMENT of them.

    report = build("runs/abc/", "out/", measured=[...], calibration=[...])

The photos are paths: the caller chooses them (the run's held-out photos, tasks/jobs.py).
torch, coremltools and onnxruntime's quantization are imported only when build runs.
"""

import json
import statistics
import time
from pathlib import Path

import numpy as np

from trainer.backbones import Preprocessing
from trainer.files import (
    COREML_FILE,
    DESCRIPTION_FILE,
    FORMATS_FILE,
    INT8_MODEL_FILE,
    MODEL_FILE,
    TORCHSCRIPT_FILE,
    fine_tuned,
)
from trainer.portable import load_rgb, session, to_input
from trainer.runtime import providers

# At most this many photos are measured and calibrated on, spread evenly over those
# given: enough to see one disagreement in 200, and a few seconds per format.
MEASURED_PHOTOS = 200
CALIBRATION_PHOTOS = 64
# An int8 model that gives another top category than model.onnx for more than 1 % of
# the photos is not offered.
INT8_MIN_AGREEMENT = 0.99


def build(model_dir, out_dir, measured, calibration):
    """Write the other formats of the model in model_dir into out_dir, and the report
    of their agreement with model.onnx on the photos measured (paths; calibration, the
    photos int8 is calibrated on) as FORMATS_FILE. Returns the report."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    description = json.loads((model_dir / DESCRIPTION_FILE).read_text())
    preprocessing = Preprocessing.from_dict(description["preprocessing"])
    measured = spread(measured, MEASURED_PHOTOS)
    calibration = spread(calibration, CALIBRATION_PHOTOS)
    pixels = np.stack([to_input(load_rgb(path), preprocessing) for path in measured])
    served = onnx_scores(model_dir / MODEL_FILE, pixels)
    calibration_pixels = np.stack([to_input(load_rgb(path), preprocessing) for path in calibration])
    rows = [
        row(MODEL_FILE, "ONNX float32", served, served),
        int8(model_dir / MODEL_FILE, out_dir, calibration_pixels, pixels, served),
        *torch_formats(model_dir, description, out_dir, pixels, served),
    ]
    report = {
        "photos": len(measured),
        "calibration_photos": len(calibration),
        "calibrated_apart": not set(calibration) & set(measured),
        "formats": rows,
    }
    (out_dir / FORMATS_FILE).write_text(json.dumps(report, indent=2))
    return report


def spread(paths, most):
    """At most most of paths, evenly spaced, in their order."""
    paths = list(paths)
    if len(paths) <= most:
        return paths
    return [paths[i] for i in np.linspace(0, len(paths) - 1, most).round().astype(int)]


class Scored:
    """A format's scores of the photos measured, and its median time per photo: each
    photo run alone on one thread, as the server answers a request (its setting
    VIZE_INFERENCE_THREADS), which also spares the figures the swings of threads that
    wait on each other on a busy machine (700 ms a photo for torch, 30 ms on one)."""

    def __init__(self, run, pixels):
        scores, seconds = [], []
        run(pixels[:1])  # the first run allocates; it is not what a photo costs
        for photo in pixels:
            started = time.perf_counter()
            scores.append(run(photo[np.newaxis])[0])
            seconds.append(time.perf_counter() - started)
        self.scores = np.stack(scores)
        self.ms_per_photo = 1000 * statistics.median(seconds)


def onnx_scores(path, pixels):
    model = session(path, threads=1, providers=providers())
    return Scored(lambda batch: model.run(None, {"pixels": batch})[0], pixels)


def row(file, kind, scored, served, **more):
    return {
        "file": file,
        "format": kind,
        "agreement": float((scored.scores.argmax(1) == served.scores.argmax(1)).mean()),
        "max_score_difference": float(np.abs(scored.scores - served.scores).max()),
        "ms_per_photo": round(scored.ms_per_photo, 2),
        **more,
    }


def torch_formats(model_dir, description, out_dir, pixels, served):
    """The TorchScript and Core ML rows: both come from the torch network that answers
    as model.onnx does, its padding fixed for the input size (the same numbers)."""
    import torch

    from trainer import coreml, networks

    size = pixels.shape[-1]
    network = networks.with_fixed_padding(networks.served_network(model_dir, description), size)
    rows = []
    if not fine_tuned(description):  # a fine-tuned network's was written by training
        networks.export_torchscript(network, size, out_dir / TORCHSCRIPT_FILE)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            scored = Scored(lambda batch: network(torch.from_numpy(batch)).numpy(), pixels)
    finally:
        torch.set_num_threads(threads)
    rows.append(row(TORCHSCRIPT_FILE, "TorchScript", scored, served))
    coreml.convert(network, description, out_dir / COREML_FILE)
    rows.append(
        row(
            COREML_FILE,
            "Core ML float32",
            scored,
            served,
            measured_as="the torch network it was converted from: Core ML runs only on "
            "Apple systems",
        )
    )
    return rows


def int8(model_path, out_dir, calibration, pixels, served):
    """The int8 row: static quantization (int8 weights per channel and activations,
    ranges from the calibration photos); its file is removed unless it agrees enough."""
    # Imported here: with onnx's shape inference it takes a second and a half.
    from onnxruntime import quantization

    class Photos(quantization.CalibrationDataReader):
        def __init__(self, pixels):
            self.rows = iter(pixels)

        def get_next(self):
            photo = next(self.rows, None)
            return None if photo is None else {"pixels": photo[np.newaxis]}

    path = out_dir / INT8_MODEL_FILE
    prepared = out_dir / "prepared.onnx.tmp"
    quantization.shape_inference.quant_pre_process(
        str(model_path), str(prepared), skip_symbolic_shape=True
    )
    try:
        quantization.quantize_static(
            prepared,
            path,
            Photos(calibration),
            per_channel=True,
        )
    finally:
        prepared.unlink(missing_ok=True)
    found = row(INT8_MODEL_FILE, "ONNX int8", onnx_scores(path, pixels), served)
    found["offered"] = found["agreement"] >= INT8_MIN_AGREEMENT
    if not found["offered"]:
        path.unlink()
    return found
