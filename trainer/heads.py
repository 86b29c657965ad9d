"""The linear head of fast mode: logistic regression on L2-normalised features, with
each image's mirror image as a second training example, and a temperature that makes
its scores honest probabilities. It reads all the features (the last stages' and the
final ones) or the final ones alone, whichever cross-validation prefers: the stages help
on photos far from ImageNet (trashnet 0.925 against 0.896), and only add noise on photos
ImageNet knows (hymenoptera 0.954 against 0.967)."""

import itertools
import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from trainer.backbones import FINAL_FEATURES, POOLED_PARTS

C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
# The choice's 70 fits grow with every image, and beyond a few thousand the choice moves
# little: above this many, a random sample of them chooses.
CHOICE_ROWS = 4000
# Simplest first: within one standard error of the best, the final features alone win.
VIEWS = ("final", "all")
# A worker shares the cores with the web server, the other worker and training: with
# BLAS's threads spinning against them, the choice on trashnet's 2,019 photos took 217 s,
# and 15-31 s on one thread (same choice; the 5 out-of-fold fits on corn_leaf's 3,346:
# 40 s against 5.4 s).
ONE_THREAD = threadpool_limits.wrap(limits=1)


@dataclass(frozen=True)
class HeadChoice:
    c: float
    temperature: float
    view: str = "all"


def in_view(features, view):
    """The columns a head of this view reads."""
    return features[:, -FINAL_FEATURES:] if view == "final" else features


def normalise(features):
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


@ONE_THREAD
def fit(features, mirrored, labels, c, seed, view="all", start=None, rows=slice(None)):
    """A logistic regression over the given rows of the images (all by default) and of
    their mirror images. start: a model fitted on the same rows with another C, refitted
    from its weights (the optimum moves little from one C to the next, so the solver
    needs a fraction of the steps)."""
    # The rows go straight into one copy, normalised in place (scikit-learn reads float32
    # as it is): at 20,000 photos each copy of the inputs is 250 MB of the work-horse's peak.
    picked = np.arange(len(labels))[rows]
    columns = in_view(features, view)
    inputs = np.empty((2 * len(picked), columns.shape[1]), features.dtype)
    # mode="clip": "raise" buffers a whole copy first; picked is always in range.
    np.take(columns, picked, axis=0, out=inputs[: len(picked)], mode="clip")
    np.take(in_view(mirrored, view), picked, axis=0, out=inputs[len(picked) :], mode="clip")
    inputs /= np.maximum(np.linalg.norm(inputs, axis=1, keepdims=True), 1e-12)
    targets = np.concatenate([labels[picked], labels[picked]])
    model = start or LogisticRegression(max_iter=2000, random_state=seed, warm_start=True)
    model.set_params(C=c)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(inputs, targets)


def weights(model):
    """(classes, dim) weights and (classes,) bias of the logits. scikit-learn keeps one
    row for two classes (the logit of the second); (-z/2, z/2) has the same softmax."""
    if model.coef_.shape[0] == 1:
        return np.concatenate([-model.coef_, model.coef_]) / 2, np.concatenate(
            [-model.intercept_, model.intercept_]
        ) / 2
    return model.coef_, model.intercept_


def graph_weights(model, view, dims):
    """(weight, bias) over all dims features as the exported graph normalises them: the
    vector is POOLED_PARTS unit-length parts side by side, so its length is
    sqrt(POOLED_PARTS), and a head of the final part alone sees that part scaled down by
    as much."""
    weight, bias = weights(model)
    if view == "all":
        return weight, bias
    full = np.zeros((weight.shape[0], dims), weight.dtype)
    full[:, -FINAL_FEATURES:] = weight * math.sqrt(POOLED_PARTS)
    return full, bias


def logits(model, features, view="all"):
    weight, bias = weights(model)
    return normalise(in_view(features, view)) @ weight.T + bias


def probabilities(model, features, choice):
    return softmax(logits(model, features, choice.view) / choice.temperature, axis=1)


@ONE_THREAD
def choose(features, mirrored, labels, seed, on_fit=None, at_most=CHOICE_ROWS):
    """The view and C by cross-validated accuracy with the one-standard-error rule: the
    simplest view and strongest regularisation whose accuracy is within one standard
    error of the best (accuracy on a few hundred images is too coarse to split hairs).
    Then the temperature that makes the cross-validated scores of that choice honest
    probabilities. on_fit(done) after
    each fit, done the fraction made: on thousands of photos the choice takes
    a while, and a silent step must not look like a dead worker. On more than at_most
    images, a random at_most of them choose."""
    if len(labels) > at_most:
        rows = np.random.default_rng(seed).permutation(len(labels))[:at_most]
        features, mirrored, labels = features[rows], mirrored[rows], labels[rows]
    folds = min(5, int(np.bincount(labels).min()))
    if folds < 2:
        return HeadChoice(1.0, 1.0)
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(features, labels))
    candidates = [(view, c) for view in VIEWS for c in C_GRID]
    out_of_fold = {}
    correct = []
    fits = itertools.count(1)
    for view in VIEWS:
        models = [None] * len(splits)  # each fold's model, refitted along the path of C
        for c in C_GRID:
            scores = np.zeros((len(labels), labels.max() + 1))
            for fold, (train, test) in enumerate(splits):
                part = (features[train], mirrored[train], labels[train])
                models[fold] = fit(*part, c, seed, view, models[fold])
                scores[test] = logits(models[fold], features[test], view)
                if on_fit:
                    on_fit(next(fits) / (len(candidates) * len(splits)))
            out_of_fold[view, c] = scores
            correct.append(int((scores.argmax(axis=1) == labels).sum()))
    best = max(correct) / len(labels)
    standard_error = math.sqrt(best * (1 - best) / len(labels)) * len(labels)
    view, c = next(
        candidate
        for candidate, n in zip(candidates, correct, strict=True)
        if n >= max(correct) - standard_error
    )
    return HeadChoice(c, temperature(out_of_fold[view, c], labels), view)


def temperature(scores, labels):
    def loss(log_t):
        return -log_softmax(scores / math.exp(log_t), axis=1)[np.arange(len(labels)), labels].mean()

    return math.exp(minimize_scalar(loss, bounds=(-5, 5), method="bounded").x)
