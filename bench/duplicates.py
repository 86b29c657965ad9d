"""Near-copies: how many planted copies the upload finds, how many photos it pairs
falsely, and whether copies still inflate the hold-out accuracy.

    flock /tmp/vize-bench.lock python bench/duplicates.py [--seed 0] [--skip-trashnet]

Finding: hymenoptera's train/ (245 photos) is uploaded into its two categories through
the import every upload path takes (tasks/imports.py, on a fresh SQLite database), then
30 near-copies of random ones, six of each kind (50 % resize, JPEG quality 60, a 5 %
crop at a random place, mirror, pixels rotated with an EXIF orientation that turns them
back). Printed: the share of copies reported as copies of their original (bar >= 95 %),
the originals reported as near-copies of another original (bar <= 1 %), and the same
false pairs over trashnet's 2,527 photos (which holds a few real copies of its own: the
pairs are listed to be looked at). Also the time of comparing one hash with 20,000.

Accuracy: 40 copies of random train/ photos (20 per category, eight of each kind),
labelled like their originals, are embedded (Lite2); fast mode's hold-out (the trainer's
own evaluation.held_out_predictions, as trainer.train runs it) is measured on the clean
photos, then with the copies, split with and without their groups, over three seeds.
Bar: with the copies and their groups, the accuracy stays within the clean figure's
Wilson interval.
"""

import argparse
import io
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from features import DATASETS, features_of, fixed_split  # noqa: E402

KINDS = ("resize", "jpeg60", "crop", "mirror", "exif")


def near_copy(path, kind, rng):
    """JPEG bytes of a near-copy of the photo at path."""
    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    width, height = image.size
    options = {"quality": 90}
    if kind == "resize":
        image = image.resize((width // 2, height // 2), Image.Resampling.LANCZOS)
    elif kind == "jpeg60":
        options["quality"] = 60
    elif kind == "crop":
        cut_x, cut_y = round(width * 0.05), round(height * 0.05)
        left, top = rng.randint(0, cut_x), rng.randint(0, cut_y)
        image = image.crop((left, top, left + width - cut_x, top + height - cut_y))
    elif kind == "mirror":
        image = ImageOps.mirror(image)
    elif kind == "exif":
        exif = Image.Exif()
        exif[0x0112] = 6  # shown rotated 90° clockwise: the pixels lie the other way
        image = image.transpose(Image.Transpose.ROTATE_90)
        options["exif"] = exif.tobytes()
    out = io.BytesIO()
    image.save(out, "JPEG", **options)
    return out.getvalue()


def planted(photos, count, rng):
    """[(index of the original in photos, kind)]: count copies, the kinds in turn, of
    distinct photos chosen at random, as many of each category as the other."""
    by_label = {}
    for index, (_, label) in enumerate(photos):
        by_label.setdefault(label, []).append(index)
    chosen = []
    for indices in by_label.values():
        chosen += rng.sample(indices, count // len(by_label))
    return [(index, KINDS[i % len(KINDS)]) for i, index in enumerate(chosen)]


def django_site():
    os.environ["VIZE_VAR_DIR"] = tempfile.mkdtemp(prefix="vizeapp-bench-duplicates-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vizeapp.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth.models import User

    return User.objects.create_user("bench")


def upload(task, photos, category_of):
    """The import's outcome for each of photos [(name, bytes, label)], in order."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tasks import imports

    outcomes = []
    for name, data, label in photos:
        report = imports.import_files(
            task, [SimpleUploadedFile(name, data)], category=category_of.get(label)
        )
        outcomes += report.files
    return outcomes


def finding(user, seed):
    from tasks.models import Task

    train, _ = fixed_split(DATASETS / "hymenoptera")
    task = Task.objects.create(owner=user, name="hymenoptera")
    categories = {label: task.category_named(label) for _, label in train}
    originals = upload(
        task, [(Path(p).name, Path(p).read_bytes(), label) for p, label in train], categories
    )
    false = [outcome for outcome in originals if outcome.copy_of]
    rng = random.Random(seed)
    copies = planted(train, 30, rng)
    started = time.perf_counter()
    outcomes = upload(
        task,
        [
            (
                f"copy-{kind}-{Path(train[i][0]).name}",
                near_copy(train[i][0], kind, rng),
                train[i][1],
            )
            for i, kind in copies
        ],
        categories,
    )
    per_upload = (time.perf_counter() - started) / len(copies)
    found = {kind: 0 for kind in KINDS}
    for (index, kind), outcome in zip(copies, outcomes, strict=True):
        original = originals[index].image
        found[kind] += bool(outcome.copy_of and outcome.copy_of.pk == original.pk)
    share = sum(found.values()) / len(copies)
    print(
        f"hymenoptera: {sum(found.values())} of {len(copies)} planted near-copies found "
        f"({share:.1%}; bar >= 95 %): "
        + ", ".join(f"{kind} {found[kind]}/{len(copies) // len(KINDS)}" for kind in KINDS)
    )
    print(
        f"hymenoptera: {len(false)} of {len(originals)} originals reported as near-copies "
        f"of another ({len(false) / len(originals):.1%}; bar <= 1 %)"
        + "".join(f"\n  {o.name} ~ {o.copy_of.display_name}" for o in false)
    )
    print(f"  one upload of a copy into a task of 245 photos: {per_upload * 1000:.0f} ms")


def trashnet_pairs(user):
    from tasks.models import Task

    folder = DATASETS / "trashnet"
    photos = [
        (f"{kind.name}/{path.name}", path.read_bytes(), kind.name)
        for kind in sorted(p for p in folder.iterdir() if p.is_dir())
        for path in sorted(kind.iterdir())
    ]
    task = Task.objects.create(owner=user, name="trashnet")
    categories = {label: task.category_named(label) for label in {label for *_, label in photos}}
    started = time.perf_counter()
    outcomes = upload(task, photos, categories)
    seconds = time.perf_counter() - started
    paired = [o for o in outcomes if o.copy_of]
    exact = [o for o in outcomes if o.outcome == "duplicate"]
    print(
        f"trashnet: {len(paired)} of {len(outcomes)} photos reported as near-copies "
        f"({len(paired) / len(outcomes):.1%}), {len(exact)} as exact duplicates; "
        f"upload {seconds / len(outcomes) * 1000:.0f} ms a photo"
    )
    for outcome in paired:
        print(f"  {outcome.name} ~ {outcome.copy_of.original_name}")


def hash_time():
    from tasks import near_copies

    rng = np.random.default_rng(0)
    hashes = rng.integers(-(2**63), 2**63 - 1, 20_000, dtype=np.int64)
    fingerprint = rng.integers(0, 256, 32 * 32, dtype=np.uint8).tobytes()
    near_copies.candidates(fingerprint, hashes)
    started = time.perf_counter()
    for _ in range(100):
        near_copies.candidates(fingerprint, hashes)
    print(
        f"one fingerprint against 20,000 hashes (both hashes, XOR, popcount, nearest): "
        f"{(time.perf_counter() - started) * 10:.2f} ms"
    )


def accuracy(seed, cache_dir):
    from trainer import evaluation
    from trainer.embedding import embed

    train, test = fixed_split(DATASETS / "hymenoptera")
    features, mirrored, _ = features_of("hymenoptera", train + test, "lite2", cache_dir)
    features, mirrored = features[: len(train)], mirrored[: len(train)]
    classes = sorted({label for _, label in train})
    labels = np.array([classes.index(label) for _, label in train])
    rng = random.Random(100 + seed)
    copies = planted(train, 40, rng)
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for n, (index, kind) in enumerate(copies):
            path = Path(folder) / f"{n}.jpg"
            path.write_bytes(near_copy(train[index][0], kind, rng))
            paths.append(str(path))
        copy_features, copy_mirrored, _ = embed(paths, "lite2", cache_dir)
    originals = [index for index, _ in copies]
    all_features = np.concatenate([features, copy_features])
    all_mirrored = np.concatenate([mirrored, copy_mirrored])
    all_labels = np.concatenate([labels, labels[originals]])
    groups = np.concatenate([-1 - np.arange(len(train)), np.array(originals)])
    groups[originals] = originals  # each original numbered like its copy
    figures = {}
    for name, args in (
        ("clean", (features, mirrored, labels, None)),
        ("copies, groups kept together", (all_features, all_mirrored, all_labels, groups)),
        ("copies, split as if unrelated", (all_features, all_mirrored, all_labels, None)),
    ):
        f, m, y, g = args
        indices, probabilities, method, *_ = evaluation.held_out_predictions(
            f, m, y, seed, groups=g
        )
        metrics = evaluation.metrics(y[indices], probabilities, classes, method)
        figures[name] = metrics
    clean = figures["clean"]
    line = [f"seed {seed}:"]
    for name, metrics in figures.items():
        line.append(
            f"{name} {metrics['accuracy']:.3f} [{metrics['accuracy_low']:.3f}, "
            f"{metrics['accuracy_high']:.3f}] on {metrics['evaluated']}"
        )
    together = figures["copies, groups kept together"]["accuracy"]
    within = clean["accuracy_low"] <= together <= clean["accuracy_high"]
    print("  ".join(line) + f"  -> within the clean interval: {within}")
    return within


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-trashnet", action="store_true")
    parser.add_argument("--cache-dir", default=str(ROOT / "var" / "model-cache"))
    args = parser.parse_args()
    user = django_site()
    hash_time()
    finding(user, args.seed)
    if not args.skip_trashnet:
        trashnet_pairs(user)
    held = [accuracy(seed, args.cache_dir) for seed in range(3)]
    print(f"hold-out with copies within the clean interval: {sum(held)} of {len(held)} seeds")


if __name__ == "__main__":
    main()
