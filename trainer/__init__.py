"""The machine-learning core of vizeapp. It knows nothing of Django: it takes image
paths and labels and writes a model that describes itself.

    from trainer import Sample, TrainConfig, train
    result = train(TrainConfig(), [Sample("a.jpg", "ants"), ...], "out/")
    predictor = trainer.predict.load("out/")
"""

from trainer.backbones import BASE_MODELS, DEFAULT_BASE_MODEL
from trainer.embedding import embed
from trainer.training import (
    DESCRIPTION_FILE,
    MODEL_FILE,
    MODES,
    Sample,
    TrainConfig,
    TrainResult,
    train,
)

__all__ = [
    "BASE_MODELS",
    "DEFAULT_BASE_MODEL",
    "DESCRIPTION_FILE",
    "MODEL_FILE",
    "MODES",
    "Sample",
    "TrainConfig",
    "TrainResult",
    "embed",
    "train",
]
