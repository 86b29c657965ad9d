"""The training driver: embed what is not embedded yet, let the mode's fitter measure
and fit a model, then write that model and a description of it.

A recipe is a fitter, fit(config, data: Embedded, progress) -> Fitted, named in FITTERS
under its mode."""

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime
import sklearn
from scipy.special import softmax

from trainer import embedding, evaluation, heads, operating_points
from trainer.backbones import FEATURES_VERSION, base_model
from trainer.choices import (
    ACCURATE,
    DEFAULT_BASE_MODEL,
    DEFAULT_MODE,
    DEFAULT_TIME_BUDGET,
    FAST,
    HOLDOUT_MIN_PER_CATEGORY,
    LATE_MAPS_READ_BY,
    MODES,
)
from trainer.files import DESCRIPTION_FILE, MODEL_FILE
from trainer.runtime import cached_graph, with_linear_head


@dataclass(frozen=True)
class TrainConfig:
    base_model: str = DEFAULT_BASE_MODEL
    mode: str = DEFAULT_MODE
    seed: int = 0
    negative_label: str | None = None
    cache_dir: str | None = None
    time_budget: float = DEFAULT_TIME_BUDGET  # seconds of fine-tuning, accurate mode only
    # (C, temperature, view) of a fast head chosen on nearly the same images: fast mode then
    # measures and fits with it instead of choosing again, which is most of a retrain's
    # time on thousands of photos (35 fits instead of 2).
    carried_choice: tuple[float, float, str] | None = None


@dataclass
class Sample:
    """One training image, with its stored embeddings (trainer/embedding.py Embeddings)
    if any: features and mirrored, and the late maps (2, channels, height, width) that
    only accurate mode reads, so a fast run need not load them."""

    path: str
    label: str
    features: np.ndarray | None = None
    mirrored: np.ndarray | None = None
    late_maps: np.ndarray | None = None
    # Near-copies of one photo share a number, and stay on one side of every evaluation
    # split; None: a photo of its own.
    group: int | None = None


@dataclass
class TrainResult:
    classes: list[str]
    metrics: dict
    misclassified: list[dict]
    model_dir: Path
    new_embeddings: dict[int, embedding.Embeddings] = field(default_factory=dict)
    # The indices of the samples the metrics were measured on (all of them after a
    # k-fold cross-validation): the other formats of the model are measured on them.
    held_out: list[int] = field(default_factory=list)


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

    def stretch(self, stage, start, end, then=0):
        """A callback for a step that reports the fraction it has done: percent from
        start to end, and the time left at the pace so far plus then, the seconds of
        what follows."""
        began = time.monotonic()

        def report(done):
            left = (time.monotonic() - began) / done * (1 - done) + then if done else None
            self(stage, start + (end - start) * done, left)

        return report


@dataclass
class Embedded:
    """The images as every fitter takes them. labels index classes (the negative
    category last); late_maps are there for the modes that read them (LATE_MAPS_READ_BY);
    new_embeddings are those computed by this run, by sample index (each an Embeddings
    of one row), for the caller to store; groups number the images, near-copies alike."""

    classes: list[str]
    features: np.ndarray
    mirrored: np.ndarray
    late_maps: np.ndarray | None
    labels: np.ndarray
    new_embeddings: dict[int, embedding.Embeddings]
    groups: np.ndarray


class Model(Protocol):
    def write(self, out_dir: Path) -> None:
        """Write the model file (and any other form of the model) into out_dir."""


@dataclass
class Fitted:
    """What every fitter returns: the recipe's metrics, measured on held-out images,
    the held-out images it got wrong, and the final model, fitted on every image."""

    metrics: dict
    misclassified: list[dict]
    model: Model
    held_out: np.ndarray  # the indices of the images the metrics were measured on


@dataclass(frozen=True)
class LinearHead:
    """A linear head on the base model's cached features graph, its temperature folded
    into weight and bias."""

    base_model: str
    cache_dir: str | None
    weight: np.ndarray
    bias: np.ndarray

    def probabilities(self, features):
        """As the written graph scores images with these features."""
        return softmax(heads.normalise(features) @ self.weight.T + self.bias, axis=1)

    def write(self, out_dir):
        features = cached_graph(self.base_model, "features", self.cache_dir)
        with_linear_head(features, self.weight, self.bias, out_dir / MODEL_FILE)


def train(config, samples, out_dir, on_progress=None):
    """Train a model of config.mode on samples and write it into out_dir."""
    if config.mode not in FITTERS:
        raise ValueError(f"unknown mode {config.mode!r}; choose from {sorted(MODES)}")
    progress = Progress(on_progress)
    data = embedded(samples, config, progress)
    fitted = FITTERS[config.mode](config, data, progress)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fitted.model.write(out_dir)
    describe(out_dir, config, data.classes, fitted.metrics, samples)
    progress("ready", 100, 0)
    return TrainResult(
        data.classes,
        fitted.metrics,
        fitted.misclassified,
        out_dir,
        data.new_embeddings,
        sorted(int(i) for i in fitted.held_out),
    )


def embedded(samples, config, progress):
    """The samples' classes, labels and embeddings, embedding those that lack what the
    mode reads. The embeddings move from the samples into one array per kind, in place
    where they are the rows of one already (tasks/jobs.py loads them so): at 20,000
    photos the late maps are 1.35 GB and the features 0.3 GB, held once."""
    base = base_model(config.base_model)
    classes = sorted({s.label for s in samples} - {config.negative_label})
    if config.negative_label in {s.label for s in samples}:
        classes.append(config.negative_label)
    if len(classes) < 2:
        raise ValueError("training needs at least two categories with images")
    progress("embedding", 0)

    with_maps = config.mode in LATE_MAPS_READ_BY
    missing = [
        i
        for i, s in enumerate(samples)
        if s.features is None or (with_maps and s.late_maps is None)
    ]
    new_embeddings = {}
    if missing:
        computed = embedding.embed(
            [samples[i].path for i in missing],
            base.name,
            config.cache_dir,
            on_progress=progress.embedding,
        )
        for row, i in enumerate(missing):
            new_embeddings[i] = embedding.Embeddings(*(part[row] for part in computed))
            samples[i].features, samples[i].mirrored, samples[i].late_maps = new_embeddings[i]
    features = in_one_array([s.features for s in samples]).astype(np.float32, copy=False)
    mirrored = in_one_array([s.mirrored for s in samples]).astype(np.float32, copy=False)
    late_maps = in_one_array([s.late_maps for s in samples]) if with_maps else None
    for sample in samples:
        sample.features = sample.mirrored = sample.late_maps = None
    labels = np.array([classes.index(s.label) for s in samples])
    # A photo of no group is a group of its own, numbered below every group's number.
    groups = np.array([-1 - i if s.group is None else s.group for i, s in enumerate(samples)])
    return Embedded(classes, features, mirrored, late_maps, labels, new_embeddings, groups)


def in_one_array(rows):
    """rows stacked: in place when they are the rows of one array already, in order."""
    whole = rows[0].base
    in_place = (
        isinstance(whole, np.ndarray)
        and whole.shape == (len(rows), *rows[0].shape)
        and all(
            row.base is whole and row.ctypes.data == whole[i].ctypes.data
            for i, row in enumerate(rows)
        )
    )
    return whole if in_place else np.stack(rows)


def fit_fast(config, data, progress):
    """A linear head on the features (trainer/heads.py), measured as
    evaluation.held_out_predictions says, then fitted on all images."""
    progress("evaluating", 80)
    carried = heads.HeadChoice(*config.carried_choice) if config.carried_choice else None
    indices, probabilities, method, choice = evaluation.held_out_predictions(
        data.features,
        data.mirrored,
        data.labels,
        config.seed,
        on_fit=progress.stretch("evaluating", 80, 90),
        choice=carried,
        groups=data.groups,
    )
    metrics = evaluation.metrics(data.labels[indices], probabilities, data.classes, method)
    metrics["groups_kept_together"] = evaluation.groups_kept_together(data.groups)

    progress("fitting", 90)
    choice = choice or heads.choose(
        data.features,
        data.mirrored,
        data.labels,
        config.seed,
        on_fit=progress.stretch("fitting", 90, 99),
    )
    metrics.update(head_choice_metrics(choice, carried=carried is not None))
    held_out = len(indices) < len(data.labels)
    if held_out and len(data.labels) <= OPERATING_POINTS_OUT_OF_FOLD_UP_TO:
        # A hold-out is too few photos to cost thresholds near 98 % precision: on
        # hymenoptera's 49, one mistake is 2 points, and the precision predicted at the
        # suggested point missed the val/ photos' by 2.7 points; out-of-fold scores of
        # all 245 (5 more fits of the chosen head) missed by 1.0 (bench/operating_point.py).
        every, method = evaluation.out_of_fold(
            data.features,
            data.mirrored,
            data.labels,
            choice,
            config.seed,
            on_fit=progress.stretch("fitting", 90, 99),
        )
        metrics["operating_points"] = operating_points.curve(
            data.labels, every, data.classes, method
        )
    return Fitted(
        metrics,
        mistakes(data, indices, probabilities),
        linear_head(config, data, choice),
        indices,
    )


def fit_accurate(config, data, progress):
    """Fine-tune the backbone's last stage and the head on the late maps
    (trainer/finetune.py), measured on a hold-out against the fast model, within the
    time budget: everything after the embedding, the head's choice included, ends by
    its deadline. The fast model, fitted on all images, if fine-tuning did not score
    better."""
    started = time.monotonic()
    deadline = started + config.time_budget
    method, parts = evaluation.splits(data.labels, config.seed, data.groups)
    if len(parts) != 1:
        raise ValueError(
            f"accurate mode needs at least {HOLDOUT_MIN_PER_CATEGORY} images in "
            "each category, to keep some aside for measuring the fine-tuning"
        )
    ((train, test),) = parts
    progress("fitting", 80, config.time_budget)
    choice = heads.HeadChoice(*config.carried_choice) if config.carried_choice else None
    if choice is None:
        choice = heads.choose(
            data.features[train],
            data.mirrored[train],
            data.labels[train],
            config.seed,
            on_fit=progress.stretch("fitting", 80, 82, then=config.time_budget),
            at_most=ACCURATE_CHOICE_ROWS,
        )
    part_head = linear_head(config, data, choice, train)
    # torch, only for this mode, and only now: with timm it adds 0.8 GB, on top of what
    # the head's fit held a moment ago (0.25 GB at 20,000 photos).
    from trainer import finetune

    tuning = finetune.fine_tune(
        config,
        data,
        train,
        test,
        part_head,
        part_head.probabilities(data.features[test]),
        deadline,
        report=lambda done, left: progress("fitting", 82 + 17 * done, left),
    )
    data.late_maps = None  # 1.35 GB at 20,000 photos, gone before the last fit and writing
    metrics = evaluation.metrics(data.labels[test], tuning.probabilities, data.classes, method)
    metrics["groups_kept_together"] = evaluation.groups_kept_together(data.groups)
    metrics["fine_tuning"] = {**tuning.report, "seconds": round(time.monotonic() - started, 1)}
    metrics.update(head_choice_metrics(choice, carried=config.carried_choice is not None))
    model = tuning.network or linear_head(config, data, choice)
    return Fitted(metrics, mistakes(data, test, tuning.probabilities), model, test)


FITTERS = {FAST: fit_fast, ACCURATE: fit_accurate}
# Above this many images, the hold-out (a fifth of them) costs the operating points
# well enough, and 5 more fits of the head would take a while.
OPERATING_POINTS_OUT_OF_FOLD_UP_TO = 4000
# At most this many images choose accurate mode's starting head (25 s on two cores), so
# that at 20,000 photos the choice leaves the budget to the fine-tuning.
ACCURATE_CHOICE_ROWS = 1000


def head_choice_metrics(choice, carried):
    """The head's choice as a run records it, for the next run to carry."""
    return {
        "regularisation_carried": carried,
        "regularisation_c": choice.c,
        "temperature": choice.temperature,
        "head_features": choice.view,
        "features_version": FEATURES_VERSION,  # what the choice was made on
    }


def linear_head(config, data, choice, rows=slice(None)):
    """The head of choice.c fitted on the given rows of data (all by default)."""
    model = heads.fit(
        data.features,
        data.mirrored,
        data.labels,
        choice.c,
        config.seed,
        choice.view,
        rows=rows,
    )
    weight, bias = heads.graph_weights(model, choice.view, data.features.shape[1])
    return LinearHead(
        config.base_model,
        config.cache_dir,
        weight / choice.temperature,
        bias / choice.temperature,
    )


def mistakes(data, indices, probabilities):
    return [
        {
            "index": int(i),
            "true": data.classes[data.labels[i]],
            "predicted": data.classes[int(p.argmax())],
            "scores": {name: float(score) for name, score in zip(data.classes, p, strict=True)},
        }
        for i, p in zip(indices, probabilities, strict=True)
        if p.argmax() != data.labels[i]
    ]


def describe(out_dir, config, classes, metrics, samples):
    base = base_model(config.base_model)
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
        # Below this top score the model answers "needs review" (portable.ranked); a
        # person may choose another point, which the server and the export then apply.
        "operating_point": {"threshold": metrics["operating_points"]["suggested"]},
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
