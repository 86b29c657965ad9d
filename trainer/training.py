"""The training driver: embed what is not embedded yet, evaluate honestly, fit the
final model on every image, and write a model that describes itself."""

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime
import sklearn

from trainer import embedding, evaluation, heads
from trainer.backbones import base_model
from trainer.choices import DEFAULT_BASE_MODEL, DEFAULT_MODE, DEFAULT_TIME_BUDGET, MODES
from trainer.files import DESCRIPTION_FILE, MODEL_FILE, TORCHSCRIPT_FILE
from trainer.runtime import cached_graph, with_linear_head


@dataclass(frozen=True)
class TrainConfig:
    base_model: str = DEFAULT_BASE_MODEL
    mode: str = DEFAULT_MODE
    seed: int = 0
    negative_label: str | None = None
    cache_dir: str | None = None
    time_budget: float = DEFAULT_TIME_BUDGET  # seconds of fine-tuning, accurate mode only


@dataclass
class Sample:
    """One training image. features and mirrored are its stored embeddings, if any."""

    path: str
    label: str
    features: np.ndarray | None = None
    mirrored: np.ndarray | None = None


@dataclass
class TrainResult:
    classes: list[str]
    metrics: dict
    misclassified: list[dict]
    model_dir: Path
    new_embeddings: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


class Progress:
    """Reports (stage, percent, eta_seconds) to the caller's callback."""

    def __init__(self, callback):
        self.callback = callback
        self.started = time.monotonic()

    def __call__(self, stage, percent, eta=None):
        if self.callback:
            self.callback(stage, int(percent), eta)

    def embedding(self, done_fraction):
        elapsed = time.monotonic() - self.started
        eta = elapsed / done_fraction * (1 - done_fraction) + 2 if done_fraction else None
        self("embedding", 80 * done_fraction, eta)


def train(config, samples, out_dir, on_progress=None):
    """Train a model of config.mode on samples and write it into out_dir."""
    if config.mode not in MODES:
        raise ValueError(f"unknown mode {config.mode!r}; choose from {sorted(MODES)}")
    base = base_model(config.base_model)
    classes = sorted({s.label for s in samples} - {config.negative_label})
    if config.negative_label in {s.label for s in samples}:
        classes.append(config.negative_label)
    if len(classes) < 2:
        raise ValueError("training needs at least two categories with images")
    progress = Progress(on_progress)
    progress("embedding", 0)

    missing = [i for i, s in enumerate(samples) if s.features is None]
    new_embeddings = {}
    if missing:
        features, mirrored = embedding.embed(
            [samples[i].path for i in missing],
            base.name,
            config.cache_dir,
            on_progress=progress.embedding,
        )
        for row, i in enumerate(missing):
            new_embeddings[i] = (features[row], mirrored[row])
            samples[i].features, samples[i].mirrored = features[row], mirrored[row]
    features = np.stack([s.features for s in samples]).astype(np.float32)
    mirrored = np.stack([s.mirrored for s in samples]).astype(np.float32)
    labels = np.array([classes.index(s.label) for s in samples])

    if config.mode == "accurate":
        return train_accurate(
            config, samples, classes, features, mirrored, labels, out_dir, progress, new_embeddings
        )

    progress("evaluating", 80, 2)
    indices, probabilities, method, choice = evaluation.held_out_predictions(
        features, mirrored, labels, config.seed
    )
    metrics = evaluation.metrics(labels[indices], probabilities, classes, method)
    misclassified = mistakes(indices, probabilities, labels, classes)

    progress("fitting", 90, 1)
    choice = choice or heads.choose(features, mirrored, labels, config.seed)
    model = heads.fit(features, mirrored, labels, choice.c, config.seed)
    metrics["regularisation_c"] = choice.c
    metrics["temperature"] = choice.temperature
    weight, bias = heads.weights(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with_linear_head(
        cached_graph(base.name, "features", config.cache_dir),
        weight / choice.temperature,
        bias / choice.temperature,
        out_dir / MODEL_FILE,
    )
    describe(out_dir, config, base, classes, metrics, samples)
    progress("ready", 100, 0)
    return TrainResult(classes, metrics, misclassified, out_dir, new_embeddings)


def mistakes(indices, probabilities, labels, classes):
    return [
        {
            "index": int(i),
            "true": classes[labels[i]],
            "predicted": classes[int(p.argmax())],
            "scores": {name: float(score) for name, score in zip(classes, p, strict=True)},
        }
        for i, p in zip(indices, probabilities, strict=True)
        if p.argmax() != labels[i]
    ]


def train_accurate(
    config, samples, classes, features, mirrored, labels, out_dir, progress, new_embeddings
):
    """Fine-tune (trainer/finetune.py): measured on a hold-out against the fast model,
    then fine-tuned on all images; the fast model if fine-tuning scored clearly worse."""
    from trainer import finetune  # torch, only for this mode

    method, parts = evaluation.splits(labels, config.seed)
    if len(parts) != 1:
        raise ValueError(
            f"accurate mode needs at least {evaluation.HOLDOUT_MIN_PER_CATEGORY} images in "
            "each category, to keep some aside for measuring the fine-tuning"
        )
    ((train, test),) = parts
    progress("fitting", 80, config.time_budget)
    choice = heads.choose(features[train], mirrored[train], labels[train], config.seed)
    part_head = heads.weights(
        heads.fit(features[train], mirrored[train], labels[train], choice.c, config.seed)
    )
    all_head = heads.weights(heads.fit(features, mirrored, labels, choice.c, config.seed))
    classifier, probabilities, report = finetune.fine_tune(
        config,
        [s.path for s in samples],
        labels,
        train,
        test,
        [array / choice.temperature for array in part_head],
        [array / choice.temperature for array in all_head],
        on_progress=lambda done, left: progress("fitting", 80 + 18 * done, left),
    )
    metrics = evaluation.metrics(labels[test], probabilities, classes, method)
    metrics["fine_tuning"] = report
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if classifier is None:
        weight, bias = all_head
        with_linear_head(
            cached_graph(config.base_model, "features", config.cache_dir),
            weight / choice.temperature,
            bias / choice.temperature,
            out_dir / MODEL_FILE,
        )
    else:
        finetune.export(classifier, config, out_dir / MODEL_FILE, out_dir / TORCHSCRIPT_FILE)
    describe(out_dir, config, base_model(config.base_model), classes, metrics, samples)
    progress("ready", 100, 0)
    misclassified = mistakes(test, probabilities, labels, classes)
    return TrainResult(classes, metrics, misclassified, out_dir, new_embeddings)


def describe(out_dir, config, base, classes, metrics, samples):
    description = {
        "format": 1,
        "base_model": base.name,
        "base_model_title": base.title,
        "architecture": base.architecture,
        "mode": config.mode,
        "classes": classes,
        "negative": config.negative_label,
        "preprocessing": base.preprocessing.as_dict(),
        "input": "float32 pixels (n, 3, size, size) after the preprocessing above",
        "output": "scores (n, classes): softmax probabilities in the order of classes",
        "metrics": metrics,
        "image_count": len(samples),
        "class_counts": {name: sum(s.label == name for s in samples) for name in classes},
        "seed": config.seed,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {
            "onnxruntime": onnxruntime.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
        },
    }
    (out_dir / DESCRIPTION_FILE).write_text(json.dumps(description, indent=2))
