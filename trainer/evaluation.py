"""Honest accuracy: predictions for images the evaluated model never saw."""

import math

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, StratifiedShuffleSplit

from trainer import heads, operating_points
from trainer.choices import HOLDOUT_MIN_PER_CATEGORY

HOLDOUT_FRACTION = 0.2


def splits(labels, seed, groups=None):
    """(method, [(train indices, test indices), ...]): a stratified hold-out when every
    category has enough images, k-fold cross-validation otherwise. Images of one group
    (near-copies of one photo, numbered alike in groups) stay on one side of every
    split: a copy on each side would score the model on a photo it learned."""
    smallest = int(np.bincount(labels).min())
    together = groups is not None and groups_kept_together(groups) > 0
    rows = np.zeros(len(labels))
    if smallest >= HOLDOUT_MIN_PER_CATEGORY:
        method = f"hold-out of {HOLDOUT_FRACTION:.0%} of the images"
        if not together:
            splitter = StratifiedShuffleSplit(1, test_size=HOLDOUT_FRACTION, random_state=seed)
            return method, list(splitter.split(rows, labels))
        # The first of five folds of whole groups is the hold-out of a fifth.
        folds = StratifiedGroupKFold(round(1 / HOLDOUT_FRACTION), shuffle=True, random_state=seed)
        return method, list(folds.split(rows, labels, groups))[:1]
    folds = min(5, smallest)
    method = f"{folds}-fold cross-validation"
    if not together:
        return method, list(
            StratifiedKFold(folds, shuffle=True, random_state=seed).split(rows, labels)
        )
    splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
    return method, list(splitter.split(rows, labels, groups))


def groups_kept_together(groups):
    """How many groups of groups (one number per image) hold more than one image."""
    _, counts = np.unique(groups, return_counts=True)
    return int((counts > 1).sum())


def held_out_predictions(features, mirrored, labels, seed, on_fit=None, choice=None, groups=None):
    """(indices, probabilities, method, choice, folds): a stratified hold-out when every
    category has enough images, k-fold cross-validation otherwise. The head's settings
    are chosen inside each training part, so the held-out images play no part in any
    choice. A hold-out's choice (made on 80% of the images) serves the final model
    too; after cross-validation the caller chooses again on all images. on_fit(done)
    as the choices go, done the fraction of them made. A choice given (carried from an
    earlier run) is used as it is. groups as splits takes them. folds numbers the part
    (from 0) in which each of indices was held out."""
    method, parts = splits(labels, seed, groups)
    indices, probabilities, choices, folds = [], [], [], []
    for part, (train, test) in enumerate(parts):
        chosen = choice or heads.choose(
            features[train],
            mirrored[train],
            labels[train],
            seed,
            on_fit and (lambda done, part=part: on_fit((part + done) / len(parts))),
        )
        model = heads.fit(features, mirrored, labels, chosen.c, seed, chosen.view, rows=train)
        indices.append(test)
        probabilities.append(heads.probabilities(model, features[test], chosen))
        choices.append(chosen)
        folds.append(np.full(len(test), part))
    single = choice or (choices[0] if len(choices) == 1 else None)
    return (
        np.concatenate(indices),
        np.concatenate(probabilities),
        method,
        single,
        np.concatenate(folds),
    )


def out_of_fold(features, mirrored, labels, choice, seed, on_fit=None):
    """(probabilities, method): every image scored by a head of choice fitted on the
    other images' folds (5, stratified). on_fit(done) after each fit."""
    folds = min(5, int(np.bincount(labels).min()))
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    probabilities = np.zeros((len(labels), int(labels.max()) + 1))
    for fold, (train, test) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        model = heads.fit(features, mirrored, labels, choice.c, seed, choice.view, rows=train)
        probabilities[test] = heads.probabilities(model, features[test], choice)
        if on_fit:
            on_fit((fold + 1) / folds)
    return probabilities, f"{folds}-fold out-of-fold scores of all {len(labels)} images"


def wilson_interval(correct, total, z=1.96):
    if total == 0:
        return 0.0, 0.0
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def metrics(true, probabilities, classes, method):
    predicted = probabilities.argmax(axis=1)
    correct = int((predicted == true).sum())
    low, high = wilson_interval(correct, len(true))
    label_range = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        true, predicted, labels=label_range, zero_division=0
    )
    return {
        "method": method,
        "evaluated": len(true),
        "accuracy": correct / len(true),
        "accuracy_low": low,
        "accuracy_high": high,
        "categories": [
            {
                "name": name,
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(classes)
        ],
        "confusion": confusion_matrix(true, predicted, labels=label_range).tolist(),
        "operating_points": operating_points.curve(true, probabilities, classes, method),
    }
