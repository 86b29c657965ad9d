"""When to answer and when to ask a person: a threshold on the top score (the operating
point) below which a model answers "needs review" instead of a category. What each
threshold costs is read from scores of photos the scoring model never saw: the share of
photos it answers (coverage) and the precision of those answers, overall and per
predicted category. The rule itself is portable.ranked's, the same on the server and in
the exported predict.py."""

import numpy as np

# Top scores worth offering: finer where precision is bought (a top score is at least
# 1 / categories, so low thresholds only matter with many categories).
THRESHOLDS = (
    0.0,
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    0.75,
    0.8,
    0.85,
    0.9,
    0.92,
    0.94,
    0.95,
    0.96,
    0.97,
    0.98,
    0.99,
)
TARGET_PRECISION = 0.98


def curve(true, probabilities, classes, method):
    """The metrics entry: for each of THRESHOLDS, the coverage and precision of the
    photos whose top score reaches it, overall and per predicted category (None where
    there is nothing to share), and the suggested threshold. true indexes classes;
    probabilities are held-out scores (photos, classes), measured by method."""
    top = probabilities.max(axis=1)
    predicted = probabilities.argmax(axis=1)
    correct = predicted == true
    answered = top[np.newaxis, :] >= np.array(THRESHOLDS)[:, np.newaxis]

    def costs(rows):
        counted = (answered & rows).sum(axis=1)
        right = (answered & rows & correct).sum(axis=1)
        return {
            "coverage": [share(n, rows.sum()) for n in counted],
            "precision": [share(r, n) for r, n in zip(right, counted, strict=True)],
        }

    overall = costs(np.ones(len(true), dtype=bool))
    return {
        "method": method,
        "evaluated": len(true),
        "thresholds": list(THRESHOLDS),
        **overall,
        "categories": [{"name": name, **costs(predicted == i)} for i, name in enumerate(classes)],
        "target_precision": TARGET_PRECISION,
        "suggested": suggested(overall["precision"]),
    }


def share(part, whole):
    return round(float(part / whole), 4) if whole else None


def suggested(precisions, target=TARGET_PRECISION):
    """The lowest threshold from which the precision of the answered photos stays at
    target or above, 0 when answering every photo reaches it already, and the highest
    threshold when none does. Stays, not merely reaches: measured on a few hundred
    photos, precision is not monotone in the threshold, and a point that reaches the
    target by one lucky photo while the next one up falls short is not one to trust."""
    chosen = THRESHOLDS[-1]
    for threshold, precision in reversed(list(zip(THRESHOLDS, precisions, strict=True))):
        if precision is not None and precision < target:
            break
        chosen = threshold
    return chosen
