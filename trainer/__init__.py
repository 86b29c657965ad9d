"""The machine-learning core of vizeapp. It knows nothing of Django: it takes image
paths and labels and writes a model that describes itself.

    from trainer import Sample, TrainConfig, train
    result = train(TrainConfig(), [Sample("a.jpg", "ants"), ...], "out/")
    predictor = trainer.predict.load("out/")

Importing the package is cheap (the choices and file names are plain data), so pages and
schemas may read them; train, embed and their types load numpy, onnxruntime and
scikit-learn on first use.
"""

from importlib import import_module

from trainer.choices import (
    BASE_MODELS,
    DEFAULT_BASE_MODEL,
    DEFAULT_MODE,
    DEFAULT_TIME_BUDGET,
    HOLDOUT_MIN_PER_CATEGORY,
    MODES,
    TIME_BUDGETS,
)
from trainer.files import DESCRIPTION_FILE, MODEL_FILE, TORCHSCRIPT_FILE

# Loaded when first asked for (PEP 562): the web process never needs them.
_HEAVY = {
    "Sample": "trainer.training",
    "TrainConfig": "trainer.training",
    "TrainResult": "trainer.training",
    "train": "trainer.training",
    "embed": "trainer.embedding",
    "suggest": "trainer.suggestions",
    "review": "trainer.suggestions",
}


def __getattr__(name):
    if name in _HEAVY:
        return getattr(import_module(_HEAVY[name]), name)
    raise AttributeError(f"module 'trainer' has no attribute {name!r}")


__all__ = [
    "BASE_MODELS",
    "DEFAULT_BASE_MODEL",
    "DEFAULT_MODE",
    "DEFAULT_TIME_BUDGET",
    "DESCRIPTION_FILE",
    "HOLDOUT_MIN_PER_CATEGORY",
    "MODEL_FILE",
    "MODES",
    "TIME_BUDGETS",
    "TORCHSCRIPT_FILE",
    *_HEAVY,
]
