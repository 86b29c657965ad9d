"""The files of a trained model's folder, named once for the trainer, the export, the
server's predictions and the storage sweep."""

MODEL_FILE = "model.onnx"
DESCRIPTION_FILE = "model.json"
# Written by accurate mode only; trainer/formats.py makes it for a linear head.
TORCHSCRIPT_FILE = "model.torchscript.pt"
# The other formats, built once per run by the packaging job (trainer/formats.py), and
# the report of how each agrees with MODEL_FILE.
COREML_FILE = "model.mlmodel"
INT8_MODEL_FILE = "model.int8.onnx"
FORMATS_FILE = "formats.json"


def fine_tuned(description):
    """Whether the model described (model.json) is a fine-tuned network, which accurate
    mode stores with its own TORCHSCRIPT_FILE; else a linear head on the base model."""
    return description["metrics"].get("fine_tuning", {}).get("kept") == "fine-tuned"
