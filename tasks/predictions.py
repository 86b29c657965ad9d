"""The other door between tasks/ and trainer/: a stored model loaded once per process,
and predictions from it. The preview page, /api/v1 and Watson all classify through
classify_files, which takes the inference slot before reading what was sent."""

import logging
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.db.models import F

import trainer
from tasks import imports
from tasks.local_copies import local_folder
from tasks.models import TrainingRun
from tasks.throttling import inference
from trainer import predict
from trainer.choices import BASE_MODELS, DEFAULT_BASE_MODEL
from trainer.runtime import cached_graph

logger = logging.getLogger(__name__)


@lru_cache(maxsize=16)
def _load(model_path, model_file):
    """A stored model file, loaded once per process (about a third of a second for
    Lite2) and kept: its session is shared by the process's threads."""
    return predict.load(model_path, threads=settings.VIZE_INFERENCE_THREADS, model_file=model_file)


@lru_cache(maxsize=1)
def _general():
    return predict.general(
        cache_dir=settings.VIZE_MODEL_CACHE, threads=settings.VIZE_INFERENCE_THREADS
    )


@dataclass
class Answer:
    sent: imports.Sent
    predictions: list  # one per run asked, in that order; empty for a refused file


def classify_files(files, runs, *, urls=(), limits=None, top=5, check=None):
    """An Answer for each image sent (uploads, zip members, then urls), in the order sent,
    each read once and predicted by every one of runs (None: the general classifier, with
    its top classes). The inference slot is taken before any file is read, so a request
    turned away (Throttled) costs almost nothing; URLs are fetched before it, as waiting
    on another server is no inference. check(sent) may refuse the request (by raising)
    before anything is predicted."""
    limits = limits or imports.Limits.from_settings()
    fetched = [imports.fetch(url, limits) for url in urls]
    with inference.slot():
        sent = imports.images_to_classify(files, limits, settings.VIZE_PREVIEW_MAX_FILES, fetched)
        if check:
            check(sent)
        images = [file.to_predict for file in sent if file.image is not None]
        if not images:
            return [Answer(file, []) for file in sent]
        by_run = [classify(run, images) if run else classify_general(images, top) for run in runs]
    per_image = iter(zip(*by_run, strict=True))
    return [Answer(file, [] if file.image is None else list(next(per_image))) for file in sent]


def classify(run, images):
    """Predictions of a ready run for images (file objects or paths), in order, at the
    run's operating point (which its model zip carries too). The caller holds the
    inference slot."""
    return served_model(run).predict(images, threshold=run.operating_threshold)


def served_model(run):
    """The loaded model a ready run answers with."""
    served = run.served_file  # model.onnx, or its int8 form where a person chose it
    return _load(local_folder(run.model_folder, (served, trainer.DESCRIPTION_FILE)), served)


def preload():
    """Load the models of the tasks' active runs, the newest first, as many as a
    process keeps, so that a new web process answers the first classify of each at the
    usual speed (vizeapp/web.py calls this before the process takes requests). A model
    that fails to load is logged and left for its first classify to report."""
    runs = TrainingRun.objects.answering().filter(
        status=TrainingRun.Status.READY, task__active_run=F("pk")
    )
    for run in runs.order_by("-finished")[: _load.cache_info().maxsize]:
        try:
            served_model(run)
        except Exception:
            logger.exception("The model of run %s did not load", run.code)


def classify_general(images, top=5):
    """The built-in ImageNet classifier: no training needed. The caller holds the
    inference slot."""
    return _general().predict(images, top=top)


def prepare(cache_dir):
    """Export every graph a run or a preview may need; returns their file names."""
    paths = [cached_graph(name, "features", cache_dir) for name in BASE_MODELS]
    paths.append(cached_graph(DEFAULT_BASE_MODEL, "imagenet", cache_dir))
    return [path.name for path in paths]
