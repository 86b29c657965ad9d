"""The other door between tasks/ and trainer/: a stored model loaded once per process,
and predictions from it (for the preview page and the classify APIs)."""

from functools import lru_cache

from django.conf import settings

import trainer
from tasks.local_copies import local_folder
from tasks.throttling import inference
from trainer import predict
from trainer.backbones import BASE_MODELS, DEFAULT_BASE_MODEL
from trainer.runtime import cached_graph


@lru_cache(maxsize=16)
def _load(model_path):
    return predict.load(model_path, threads=settings.VIZE_INFERENCE_THREADS)


@lru_cache(maxsize=1)
def _general():
    return predict.general(
        cache_dir=settings.VIZE_MODEL_CACHE, threads=settings.VIZE_INFERENCE_THREADS
    )


def classify(run, images):
    """Predictions of a ready run for images (file objects or paths), in order; raises
    Throttled when the process is already as busy as it may be."""
    with inference.slot():
        model = local_folder(run.model_folder, (trainer.MODEL_FILE, trainer.DESCRIPTION_FILE))
        return _load(model).predict(images)


def classify_general(images, top=5):
    """The built-in ImageNet classifier: no training needed."""
    with inference.slot():
        return _general().predict(images, top=top)


def prepare(cache_dir):
    """Export every graph a run or a preview may need; returns their file names."""
    paths = [cached_graph(name, "features", cache_dir) for name in BASE_MODELS]
    paths.append(cached_graph(DEFAULT_BASE_MODEL, "imagenet", cache_dir))
    return [path.name for path in paths]
