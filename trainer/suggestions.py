"""What the labelled photos say about every photo, while people label: a linear head
fitted on the photos labelled so far suggests a category for each photo still
unsorted; heads fitted without each labelled photo doubt the labels they would not
have given (out-of-fold scores); and the photos far from every category's photos stand
out. On stored features all of it takes about a second for a thousand photos, so it
runs again after every move and upload.

Without a trained model there is nothing to choose the head's settings from, and
choosing them on a handful of labels takes longer than the person waits (tens of fits):
the head then takes fixed settings, measured on trashnet and hymenoptera with 2 to 20
labelled photos per category (closing note of issue 13). Once a model is trained, its
head's choice, made by cross-validation, serves the suggestions too."""

from dataclasses import dataclass

import numpy as np

from trainer import heads

# With 2, 5 and 20 labelled photos per category, C from 0.3 to 30 moved the suggestions'
# accuracy on trashnet by under a point; a larger C gives more decided scores (median
# top score 0.45 at C=10 against 0.26 at C=1 with 5 per category).
UNTRAINED_CHOICE = heads.HeadChoice(c=10.0, temperature=1.0, view="all")
# Each labelled photo is scored by a head fitted on the other folds of its category.
DOUBT_FOLDS = 5
# Beyond this many labelled photos, each head is fitted on (and distances are measured
# to) a sample of them, every category kept in proportion: at 20,000 photos the full
# refresh would take minutes of the worker after every move.
AT_MOST = heads.CHOICE_ROWS
# A photo's distance to a category: the mean over its nearest photos of that category.
NEAREST = 5
# Outliers lie beyond the labelled photos' own distances by this many interquartile
# ranges above the upper quartile (Tukey's fence). 20 photos of trashnet planted among
# hymenoptera's train photos (2 labelled, 18 unsorted): all 20 found at 1.5, 14 at 2,
# with 4 and 3 of hymenoptera's 245 own photos flagged; the other way round, 20 of 20
# at both, with 6 and 1 of trashnet's 2,019 (bench/review.py).
OUTLIER_FENCE_IQRS = 1.5


def head_choice(trained_choice):
    return heads.HeadChoice(*trained_choice) if trained_choice else UNTRAINED_CHOICE


@heads.ONE_THREAD
def suggest(features, mirrored, labels, unsorted, trained_choice=None):
    """Probabilities (len(unsorted), categories) over the categories that labels index,
    for the unsorted photos' features; the head is fitted on the labelled photos
    (features, their mirror images' and labels) with the (C, temperature, view) a
    trained model chose, or the fixed settings without one."""
    choice = head_choice(trained_choice)
    rows = sampled(labels, np.arange(len(labels)), np.random.default_rng(0))
    model = heads.fit(features, mirrored, labels, choice.c, 0, choice.view, rows=rows)
    return heads.probabilities(model, unsorted, choice)


def sampled(labels, rows, rng, at_most=AT_MOST):
    """rows, or beyond at_most of them a sample of each category's in proportion (at
    least one each, so that every head knows every category)."""
    if len(rows) <= at_most:
        return rows
    share = at_most / len(rows)
    return np.concatenate(
        [
            rng.choice(members, max(1, round(share * len(members))), replace=False)
            for members in (rows[labels[rows] == category] for category in np.unique(labels))
        ]
    )


@heads.ONE_THREAD
def out_of_fold(features, mirrored, labels, trained_choice=None, seed=0):
    """Probabilities (len(labels), categories) of each labelled photo from a head that
    never saw it; NaN rows for the photos of a category that holds one photo alone, which
    no head could learn without it. Each category's photos are dealt round the folds, so
    every fold's head knows every category."""
    choice = head_choice(trained_choice)
    rng = np.random.default_rng(seed)
    folds = np.full(len(labels), -1)
    for category in np.unique(labels):
        members = np.flatnonzero(labels == category)
        if len(members) > 1:
            folds[rng.permutation(members)] = np.arange(len(members)) % DOUBT_FOLDS
    scores = np.full((len(labels), labels.max() + 1), np.nan)
    for fold in range(DOUBT_FOLDS):
        held_out = np.flatnonzero(folds == fold)
        if len(held_out) == 0:
            continue
        rows = sampled(labels, np.flatnonzero(folds != fold), rng)
        model = heads.fit(features, mirrored, labels, choice.c, seed, choice.view, rows=rows)
        scores[held_out] = heads.probabilities(model, features[held_out], choice)
    return scores


def distances_to_categories(features, labels, photos, labelled_rows=None):
    """(len(photos), categories): the cosine distance of each photo to each category, the
    mean over its NEAREST closest photos of that category among the labelled ones
    (features, labels), on the final features. labelled_rows: for photos that are among
    those labelled ones, their row there (-1 for the others), so no photo counts itself."""
    known = heads.normalise(heads.in_view(features, "final"))
    asked = heads.normalise(heads.in_view(photos, "final"))
    categories = labels.max() + 1
    distances = np.empty((len(photos), categories), np.float32)
    for start in range(0, len(photos), 1024):  # bounded memory at 20,000 photos
        block = 1 - asked[start : start + 1024] @ known.T
        if labelled_rows is not None:
            rows = labelled_rows[start : start + 1024]
            own = np.flatnonzero(rows >= 0)
            block[own, rows[own]] = np.inf
        for category in range(categories):
            within = block[:, labels == category]
            nearest = min(NEAREST, within.shape[1])
            closest = np.partition(within, nearest - 1, axis=1)[:, :nearest]
            closest = np.where(np.isinf(closest), np.nan, closest)
            distances[start : start + 1024, category] = np.nanmean(closest, axis=1)
    return distances


@heads.ONE_THREAD
def outlier_scores(features, labels, unsorted):
    """(labelled scores, unsorted scores): each photo's distance to its nearest category
    over the fence that the labelled photos' own distances set; above 1, an outlier.
    A photo alone in its category has no distance of its own and scores NaN."""
    reference = np.sort(sampled(labels, np.arange(len(labels)), np.random.default_rng(0)))
    row_in_reference = np.full(len(labels), -1)
    row_in_reference[reference] = np.arange(len(reference))
    known, known_labels = features[reference], labels[reference]
    with np.errstate(all="ignore"):  # a photo alone in its category: mean of nothing
        own = distances_to_categories(known, known_labels, features, row_in_reference)
        nearest_labelled = np.nanmin(own, axis=1)
        nearest_unsorted = (
            np.nanmin(distances_to_categories(known, known_labels, unsorted), axis=1)
            if len(unsorted)
            else np.empty(0, np.float32)
        )
    usual = nearest_labelled[np.isfinite(nearest_labelled)]
    if len(usual) < 4:
        return np.full(len(labels), np.nan), np.full(len(unsorted), np.nan)
    low, high = np.percentile(usual, [25, 75])
    fence = high + OUTLIER_FENCE_IQRS * (high - low)
    return nearest_labelled / fence, nearest_unsorted / fence


@dataclass
class Review:
    """What the review queues read: out-of-fold probabilities of the labelled photos
    (out_of_fold), and the outlier scores of the labelled and of the unsorted photos."""

    doubts: np.ndarray
    far_labelled: np.ndarray
    far_unsorted: np.ndarray


def review(features, mirrored, labels, unsorted, trained_choice=None):
    """The Review of labelled photos (features, mirrored, labels) and unsorted ones."""
    return Review(
        out_of_fold(features, mirrored, labels, trained_choice),
        *outlier_scores(features, labels, unsorted),
    )
