"""The files of a trained model's folder, named once for the trainer, the export, the
server's predictions and the storage sweep."""

MODEL_FILE = "model.onnx"
DESCRIPTION_FILE = "model.json"
# Written by accurate mode only; trainer/export.py makes it for a linear head.
TORCHSCRIPT_FILE = "model.torchscript.pt"
