"""The linear head of fast mode: logistic regression on L2-normalised features, with
each image's mirror image as a second training example, and a temperature that makes
its scores honest probabilities."""

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

C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


@dataclass(frozen=True)
class HeadChoice:
    c: float
    temperature: float


def normalise(features):
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def fit(features, mirrored, labels, c, seed):
    """A logistic regression over the images and their mirror images."""
    inputs = normalise(np.concatenate([features, mirrored]))
    targets = np.concatenate([labels, labels])
    model = LogisticRegression(C=c, max_iter=2000, random_state=seed)
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


def logits(model, features):
    weight, bias = weights(model)
    return normalise(features) @ weight.T + bias


def probabilities(model, features, temperature):
    return softmax(logits(model, features) / temperature, axis=1)


def choose(features, mirrored, labels, seed, on_fit=None):
    """C by cross-validated accuracy with the one-standard-error rule: the strongest
    regularisation whose accuracy is within one standard error of the best (accuracy
    on a few hundred images is too coarse to split hairs). Then the temperature that
    makes the cross-validated scores of that C honest probabilities. on_fit(done) after
    each fit, done the fraction made: on thousands of photos the choice takes
    a while, and a silent step must not look like a dead worker."""
    folds = min(5, int(np.bincount(labels).min()))
    if folds < 2:
        return HeadChoice(1.0, 1.0)
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(features, labels))
    out_of_fold = {}
    correct = []
    fits = itertools.count(1)
    for c in C_GRID:
        scores = np.zeros((len(labels), labels.max() + 1))
        for train, test in splits:
            model = fit(features[train], mirrored[train], labels[train], c, seed)
            scores[test] = logits(model, features[test])
            if on_fit:
                on_fit(next(fits) / (len(C_GRID) * len(splits)))
        out_of_fold[c] = scores
        correct.append(int((scores.argmax(axis=1) == labels).sum()))
    best = max(correct) / len(labels)
    standard_error = math.sqrt(best * (1 - best) / len(labels)) * len(labels)
    c = next(c for c, n in zip(C_GRID, correct, strict=True) if n >= max(correct) - standard_error)
    return HeadChoice(c, temperature(out_of_fold[c], labels))


def temperature(scores, labels):
    def loss(log_t):
        return -log_softmax(scores / math.exp(log_t), axis=1)[np.arange(len(labels)), labels].mean()

    return math.exp(minimize_scalar(loss, bounds=(-5, 5), method="bounded").x)
