"""Core ML: a run's network converted by coremltools into a classifier that Apple's
Core ML and Vision frameworks take as it is.

coremltools reads the network's graph, so the "same" padding that timm's EfficientNet-
Lite computes from each input at run time is first fixed for the input size
(networks.with_fixed_padding: the same numbers). The model's input is an RGB image of
size x size whose pixels it scales itself (Core ML's image preprocessing: one scale for
every channel, then a bias per channel); its outputs are the best category's name
(classLabel) and every category's score (classLabelProbs), named as in labels.json.

coremltools runs a model only on Apple systems: here the conversion is checked by
reading the model back (its input, outputs, labels, preprocessing and head weights),
and what it computes is measured on the torch network it was converted from.

torch and coremltools are imported here, by the packaging job only.
"""

import copy
import os
import warnings
from pathlib import Path

import coremltools
import torch

from trainer.backbones import Preprocessing

INPUT = "image"
LABEL_OUTPUT = "classLabel"  # the names Create ML gives an image classifier's outputs
SCORES_OUTPUT = "classLabelProbs"


def image_scaling(preprocessing):
    """(scale, biases, gains): Core ML's image input computes scale * pixel + bias of
    the channel, one scale for all three channels, where the network wants
    (pixel / 255 - mean) / std with a std per channel. The scale divides by the first
    channel's std; gains[c] = std[0] / std[c] is what each channel still needs, folded
    into the first convolution's weights (fold_gains). EfficientNet-Lite's std is 0.5
    for every channel: its gains are all 1."""
    reference = preprocessing.std[0]
    scale = 1 / (255 * reference)
    biases = [-mean / reference for mean in preprocessing.mean]
    gains = [reference / std for std in preprocessing.std]
    return scale, biases, gains


def fold_gains(network, gains):
    """A copy of network whose first convolution multiplies each input channel by its
    gain. Exact, the zero padding included: a zero pixel stays zero at any gain."""
    folded = copy.deepcopy(network)
    first = next(layer for layer in folded.modules() if isinstance(layer, torch.nn.Conv2d))
    with torch.no_grad():
        first.weight.mul_(torch.tensor(gains, dtype=first.weight.dtype).view(1, -1, 1, 1))
    return folded


def convert(network, description, out_path):
    """Write network (pixels to scores, its padding fixed) as a Core ML classifier of
    description's classes, float32 weights (an .mlmodel: one file, as Watson served
    it), atomically."""
    preprocessing = Preprocessing.from_dict(description["preprocessing"])
    size = preprocessing.size
    scale, biases, gains = image_scaling(preprocessing)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracing warns that TorchScript is in maintenance
        traced = torch.jit.trace(fold_gains(network, gains).eval(), torch.zeros(1, 3, size, size))
    with warnings.catch_warnings():
        # It warns that it renames the graph's output, which describe() names anyway.
        warnings.filterwarnings("ignore", "Output, .* has been renamed", UserWarning)
        model = coremltools.convert(
            traced,
            inputs=[
                coremltools.ImageType(
                    name=INPUT,
                    shape=(1, 3, size, size),
                    scale=scale,
                    bias=biases,
                    color_layout=coremltools.colorlayout.RGB,
                )
            ],
            classifier_config=coremltools.ClassifierConfig(
                list(description["classes"]), predicted_feature_name=LABEL_OUTPUT
            ),
            convert_to="neuralnetwork",
        )
    spec = model.get_spec()
    probabilities = spec.description.predictedProbabilitiesName
    coremltools.utils.rename_feature(spec, probabilities, SCORES_OUTPUT)
    describe(spec, description)
    out_path = Path(out_path)
    temporary = out_path.with_name(f"{out_path.stem}.tmp{out_path.suffix}")
    coremltools.utils.save_spec(spec, str(temporary))
    os.replace(temporary, out_path)
    return out_path


def describe(spec, description):
    """What Xcode shows of the model, and what a reimplementation needs to know."""
    preprocessing = description["preprocessing"]
    size = preprocessing["size"]
    negative = description["negative"]
    spec.description.metadata.shortDescription = (
        f"{description['base_model_title']} classifier trained with vizeapp "
        f"({description['mode']} mode)"
        + (f"; “{negative}” means none of the other categories" if negative else "")
    )
    spec.description.metadata.author = "vizeapp"
    inputs = {feature.name: feature for feature in spec.description.input}
    inputs[INPUT].shortDescription = (
        f"An RGB photo of {size} x {size}: resize its shorter side to "
        f"{preprocessing['resize_to']} ({preprocessing['interpolation']}) and crop the "
        "centre, as the server does; scaling is built in."
    )
    outputs = {feature.name: feature for feature in spec.description.output}
    outputs[LABEL_OUTPUT].shortDescription = "The category with the highest score."
    outputs[SCORES_OUTPUT].shortDescription = "Every category's softmax probability."
    user = spec.description.metadata.userDefined
    user["vizeapp.base_model"] = description["base_model"]
    user["vizeapp.mode"] = description["mode"]
    user["vizeapp.negative"] = negative or ""
    user["vizeapp.trained_at"] = description["trained_at"]
