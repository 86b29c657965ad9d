"""Fast mode's head on the shared photo sets, at the trainer's level: the product's
features graph (with mirror images) and its head choice (view, C, temperature), trained on
each set's fixed train split and scored on its test split.

    python bench/features.py [hymenoptera trashnet corn_leaf] [--base-model lite2]

The splits are those of ../shared/datasets/README.md: train/ and val/ (or test/) where a
set has them, otherwise 80 % of each class's sorted file names shuffled with random.Random(0).
Features are cached in the system's temporary folder per set, base model and features
version, so a second run only fits heads. It measures a recipe, not the product's path
(no upload, no worker): bench/train.py does that.
"""

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trainer import heads  # noqa: E402
from trainer.backbones import FEATURES_VERSION  # noqa: E402
from trainer.embedding import embed  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"


def fixed_split(folder):
    """([(path, class)] to train on, [(path, class)] to test on)."""
    if (folder / "train").is_dir():
        held_out = folder / "val" if (folder / "val").is_dir() else folder / "test"
        return tuple(
            [
                (str(path), kind.name)
                for kind in sorted(part.iterdir())
                for path in sorted(kind.iterdir())
            ]
            for part in (folder / "train", held_out)
        )
    train, test = [], []
    for kind in sorted(path for path in folder.iterdir() if path.is_dir()):
        names = sorted(path.name for path in kind.iterdir())
        random.Random(0).shuffle(names)
        cut = int(len(names) * 0.8)
        train += [(str(kind / name), kind.name) for name in names[:cut]]
        test += [(str(kind / name), kind.name) for name in names[cut:]]
    return train, test


def features_of(name, photos, base_model, cache_dir):
    cache = Path(tempfile.gettempdir()) / f"vizeapp-{name}-{base_model}-v{FEATURES_VERSION}.npz"
    if cache.exists():
        stored = np.load(cache)
        return stored["features"], stored["mirrored"], 0.0
    started = time.perf_counter()
    features, mirrored, _ = embed([path for path, _ in photos], base_model, cache_dir)
    np.savez(cache, features=features, mirrored=mirrored)
    return features, mirrored, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", default=["hymenoptera", "trashnet", "corn_leaf"])
    parser.add_argument("--base-model", default="lite2")
    parser.add_argument("--cache-dir", default=str(ROOT / "var" / "model-cache"))
    args = parser.parse_args()
    for name in args.sets:
        train, test = fixed_split(DATASETS / name)
        features, mirrored, embedding = features_of(
            name, train + test, args.base_model, args.cache_dir
        )
        classes = sorted({kind for _, kind in train})
        labels = np.array([classes.index(kind) for _, kind in train + test])
        n = len(train)
        started = time.perf_counter()
        choice = heads.choose(features[:n], mirrored[:n], labels[:n], seed=0)
        model = heads.fit(features[:n], mirrored[:n], labels[:n], choice.c, 0, choice.view)
        predicted = heads.probabilities(model, features[n:], choice).argmax(axis=1)
        accuracy = float((predicted == labels[n:]).mean())
        print(
            f"{name}: test accuracy {accuracy:.3f} on {len(test)} photos "
            f"(head on {choice.view} features, C={choice.c}; features v{FEATURES_VERSION}, "
            f"{features.shape[1]} dims; embedding {embedding:.0f} s, "
            f"head {time.perf_counter() - started:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
