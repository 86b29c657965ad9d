"""The other door between tasks/ and trainer/: a stored model loaded once per process,
and predictions from it (for the preview page and, later, the classify APIs)."""

from functools import lru_cache

from django.conf import settings
from django.core.files.storage import default_storage

from trainer import predict


@lru_cache(maxsize=16)
def _load(model_path):
    return predict.load(model_path)


@lru_cache(maxsize=1)
def _general():
    return predict.general(cache_dir=settings.VIZE_MODEL_CACHE)


def classify(run, images):
    """Predictions of a ready run for images (file objects or paths), in order."""
    return _load(default_storage.path(run.model_folder)).predict(images)


def classify_general(images, top=5):
    """The built-in ImageNet classifier: no training needed."""
    return _general().predict(images, top=top)
