"""The review queues at the trainer's level, on the shared photo sets: how many flipped
labels the mislabel queue puts near its top, and which photos the outlier queue holds.

    python bench/review.py [hymenoptera trashnet] [--seeds 3] [--flip 0.05]

Mislabels: the labels of --flip of each set's train split (bench/features.py fixed_split)
are flipped at random to another category; the queue is the one the product builds
(trainer/suggestions.py out_of_fold: photos whose out-of-fold head prefers another
category, the most sure of it first). Printed: the share of flipped photos among the
first 2 x (flipped count) of the queue (the bar is 0.80), per seed, with the fixed
settings a task has before its first model and with the head a trained model chose.
Outliers: 20 photos of the other set are planted, 2 among the labelled photos and 18
among the unsorted ones (a quarter of the set); printed: how many of them the queue
holds, and how many of the set's own photos it holds.
"""

import argparse
import statistics
import time

import numpy as np
from features import DATASETS, features_of, fixed_split
from threadpoolctl import threadpool_limits

from trainer import heads
from trainer.suggestions import out_of_fold, outlier_scores

OTHER = {"hymenoptera": "trashnet", "trashnet": "hymenoptera", "corn_leaf": "hymenoptera"}


def train_features(name, cache_dir):
    train, test = fixed_split(DATASETS / name)
    features, mirrored, _ = features_of(name, train + test, "lite2", cache_dir)
    classes = sorted({kind for _, kind in train})
    labels = np.array([classes.index(kind) for _, kind in train])
    return features[: len(train)], mirrored[: len(train)], labels


def flipped_found(features, mirrored, labels, share, seed, choice):
    """(share of the flipped photos among the first 2 x flipped of the queue, queue
    length, seconds of the out-of-fold scoring)."""
    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(labels), round(share * len(labels)), replace=False)
    given = labels.copy()
    categories = labels.max() + 1
    given[flipped] = (labels[flipped] + rng.integers(1, categories, len(flipped))) % categories
    started = time.perf_counter()
    scores = out_of_fold(features, mirrored, given, choice, seed)
    seconds = time.perf_counter() - started
    suggested = scores.argmax(axis=1)
    queue = np.flatnonzero(suggested != given)
    queue = queue[np.argsort(-scores[queue, suggested[queue]], kind="stable")]
    top = set(queue[: 2 * len(flipped)].tolist())
    return len(top & set(flipped.tolist())) / len(flipped), len(queue), seconds


def outliers_found(name, features, labels, cache_dir):
    """(planted photos in the queue, of how many; own photos in the queue, of how many).
    Strays, not a new kind of photo: planted labelled photos of one kind would make a
    category of their own, so two are labelled (in two categories) and 18 unsorted."""
    other, _, _ = train_features(OTHER[name], cache_dir)
    planted = other[np.random.default_rng(0).choice(len(other), 20, replace=False)]
    rng = np.random.default_rng(1)
    unsorted_rows = rng.choice(len(labels), len(labels) // 4, replace=False)
    labelled = np.setdiff1d(np.arange(len(labels)), unsorted_rows)
    known = np.concatenate([features[labelled], planted[:2]])
    known_labels = np.concatenate([labels[labelled], [0, 1]])
    unsorted = np.concatenate([features[unsorted_rows], planted[2:]])
    on_labelled, on_unsorted = outlier_scores(known, known_labels, unsorted)
    own = np.concatenate([on_labelled[: len(labelled)], on_unsorted[: len(unsorted_rows)]])
    strangers = np.concatenate([on_labelled[len(labelled) :], on_unsorted[len(unsorted_rows) :]])
    return int((strangers > 1).sum()), len(strangers), int((own > 1).sum()), len(own)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", default=["hymenoptera", "trashnet"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--flip", type=float, default=0.05)
    parser.add_argument("--cache-dir", default="var/model-cache")
    args = parser.parse_args()
    for name in args.sets:
        features, mirrored, labels = train_features(name, args.cache_dir)
        with threadpool_limits(1):  # what a trained model would have chosen
            trained = heads.choose(features, mirrored, labels, 0)
        for title, choice in (("before a model", None), ("with the trained head", trained)):
            recorded = choice and (choice.c, choice.temperature, choice.view)
            found, lengths, seconds = [], [], []
            for seed in range(args.seeds):
                share, length, took = flipped_found(
                    features, mirrored, labels, args.flip, seed, recorded
                )
                found.append(share)
                lengths.append(length)
                seconds.append(took)
            print(
                f"{name} mislabels {title}: flipped in the first 2x of the queue "
                f"{' '.join(f'{share:.2f}' for share in found)} "
                f"(mean {statistics.mean(found):.2f}); "
                f"queue {statistics.median(lengths)} photos of {len(labels)}; "
                f"out-of-fold {statistics.median(seconds):.2f} s"
            )
        strangers, planted, own, total = outliers_found(name, features, labels, args.cache_dir)
        print(
            f"{name} outliers: {strangers} of {planted} planted photos of {OTHER[name]}, "
            f"{own} of {total} of its own photos"
        )


if __name__ == "__main__":
    main()
