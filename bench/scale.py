"""A task of 20,000 photos through the real product path: upload rate, background
embedding rate, fast and accurate click to ready against the budget, grid page time, and
the peak memory of the web processes and of the workers' work-horses.

    python bench/scale.py [--photos 20000] [--budget 300] [--modes fast,accurate]
                          [--base-model lite2] [--source ../shared/datasets]

The photos are made from every photo under --source, all splits together. Their classes
are the folders of photos below it, named without train/, val/ or test/: from the shared
sets, the 12 set/class pairs (hymenoptera-ants ... trashnet-trash). Photo i belongs to
class i mod their count (about 1,667 photos each of the 12) and is a variant of one of
that class's photos drawn with random.Random(i): a rotation of up to 10 degrees, a crop
of 60-100 % of each side, a horizontal flip half the time, a longer side of 256-384 px,
JPEG quality 85; so every photo is distinct (the upload's duplicate count says so). They
are written once into a cache folder in the system's temporary folder (about 0.35 GB for
20,000) and found there by later runs.

A site on embedded defaults; a new task with a category per class; the photos uploaded
over HTTP in batches of 100, as the browser does. Printed as it goes: the photos made (or
found), the upload rate (photos/s) and the added / duplicate / rejected counts, the
background embedding rate (counted in the database until every photo is embedded), for
each mode the click to ready (created -> finished of the run; for accurate also its ratio
to the budget) and the run's own accuracy, the grid page time (GET /tasks/<code>/, median
of 5), and the peak RSS of the web processes (granian's server and workers) and of each
worker's work-horses, sampled every 0.2 s throughout: per phase, then overall.
"""

import argparse
import hashlib
import io
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from features import DATASETS
from ingest import Site, stop_site
from PIL import Image, ImageOps
from quality import MemoryWatch, mib, outcomes, start_bench_site, wait_embedded

from trainer.backbones import DEFAULT_BASE_MODEL
from trainer.choices import DEFAULT_TIME_BUDGET, TIME_BUDGETS

SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"}
SPLITS = {"train", "val", "test"}
VARIANTS_VERSION = 1  # of variant(): a new version makes a new cache folder


def source_classes(source):
    """{class: [photo path]} under source, each class's photos in a fixed shuffled order."""
    classes = defaultdict(list)
    for path in sorted(source.rglob("*")):
        parts = [part for part in path.relative_to(source).parent.parts if part not in SPLITS]
        if path.suffix.lower() in SUFFIXES and parts:
            classes["-".join(parts)].append(path)
    for paths in classes.values():
        random.Random(0).shuffle(paths)
    return dict(sorted(classes.items()))


def variant(path, rng):
    """JPEG bytes of a rotated, cropped, maybe mirrored and resized copy of the photo."""
    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    image = image.rotate(rng.uniform(-10, 10), resample=Image.Resampling.BILINEAR)
    width, height = image.size
    crop_width = max(1, round(width * rng.uniform(0.6, 1)))
    crop_height = max(1, round(height * rng.uniform(0.6, 1)))
    left, top = rng.randint(0, width - crop_width), rng.randint(0, height - crop_height)
    image = image.crop((left, top, left + crop_width, top + crop_height))
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    scale = rng.randint(256, 384) / max(image.size)
    size = (max(1, round(crop_width * scale)), max(1, round(crop_height * scale)))
    buffer = io.BytesIO()
    image.resize(size, Image.Resampling.BICUBIC).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def make_photos(source, count):
    """({class: [path]} of the count photos, how many were made now, the cache folder)."""
    classes = source_classes(source)
    if not classes:
        sys.exit(f"no photos in folders under {source}")
    names = list(classes)
    key = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:8]
    cache = Path(tempfile.gettempdir()) / f"vizeapp-scale-{key}-v{VARIANTS_VERSION}"
    photos, made = defaultdict(list), 0
    for i in range(count):
        name = names[i % len(names)]
        path = cache / name / f"{i:05d}.jpg"
        if not path.exists():
            originals = classes[name]
            data = variant(originals[i // len(names) % len(originals)], random.Random(i))
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            partial.write_bytes(data)
            partial.rename(path)  # a run stopped half-way leaves no half-written photo
            made += 1
            if made % 2000 == 0:
                print(f"  {made} photos made", flush=True)
        photos[name].append(path)
    return dict(photos), made, cache


def print_peaks(phase, peaks):
    groups = ("web", "default work-horse", "training work-horse")
    listed = ", ".join(f"{group} {mib(peaks[group])}" for group in groups)
    print(f"  peak RSS during {phase}: {listed}", flush=True)


def upload(site, browser, task, categories, photos):
    """(seconds, outcome counts) of uploading the photos, a class at a time."""
    counts, done = Counter(), 0
    started = time.perf_counter()
    for name, paths in photos.items():
        counts += site.upload(browser, task, categories, {name: paths})
        done += len(paths)
        seconds = time.perf_counter() - started
        print(f"  {done} uploaded, {seconds:.0f} s, {done / seconds:.1f} photos/s", flush=True)
    return time.perf_counter() - started, counts


def train(site, browser, task, mode, args):
    seconds, run = site.train(browser, task, args.base_model, mode, args.budget)
    metrics = site.metrics(run)
    budget = (
        f", {seconds / args.budget:.2f} of the {args.budget} s budget" if mode == "accurate" else ""
    )
    print(
        f"{mode} ({args.base_model}): click to ready {seconds:.1f} s{budget}; the run's own "
        f"accuracy {metrics['accuracy']:.3f} ({metrics['accuracy_low']:.3f}-"
        f"{metrics['accuracy_high']:.3f}, 95 %) on {metrics['evaluated']} images, "
        f"{metrics['method']}",
        flush=True,
    )
    packaging = site.wait_packaged(run)
    print(f"  model zip packaged {packaging:.1f} s after ready was seen", flush=True)


def grid_page(browser, task, repeat=5):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        browser.get(f"/tasks/{task}/")
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=20_000)
    parser.add_argument(
        "--budget", type=int, default=DEFAULT_TIME_BUDGET, choices=sorted(TIME_BUDGETS)
    )
    parser.add_argument("--modes", default="fast,accurate")
    parser.add_argument("--base-model", default=DEFAULT_BASE_MODEL)
    parser.add_argument("--source", type=Path, default=DATASETS)
    parser.add_argument("--port", type=int, default=8769)
    args = parser.parse_args()

    started = time.perf_counter()
    photos, made, cache = make_photos(args.source, args.photos)
    print(
        f"{args.photos} photos in {len(photos)} classes in {cache} ({made} made now, "
        f"{time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    process, url, var = start_bench_site(args)
    try:
        site = Site(url, var)
        with MemoryWatch(process) as memory:
            browser, task, categories = site.new_task(list(photos), f"{args.photos} photos")
            started = time.perf_counter()
            seconds, counts = upload(site, browser, task, categories, photos)
            at_upload = site.embedded(task, DEFAULT_BASE_MODEL)
            print(
                f"upload: {args.photos} photos in {seconds:.1f} s, "
                f"{args.photos / seconds:.1f} photos/s; {outcomes(counts)}",
                flush=True,
            )
            print_peaks("the upload", memory.take())

            images = site.images(task)
            embedded = wait_embedded(site, task, images, started, every=60)
            total = time.perf_counter() - started
            after = total - seconds
            rest = embedded - at_upload
            rate = f" ({rest / after:.1f} photos/s)" if rest else ""
            print(
                f"background embedding ({DEFAULT_BASE_MODEL}): {at_upload} embedded by the end "
                f"of the upload, {embedded} of {images} {total:.0f} s after the first upload "
                f"({embedded / total:.1f} photos/s overall); the {rest} after the upload in "
                f"{after:.0f} s{rate}",
                flush=True,
            )
            print_peaks("the embedding after the upload", memory.take())

            for mode in args.modes.split(","):
                train(site, browser, task, mode, args)
                print_peaks(f"{mode} training and packaging", memory.take())

            grid = grid_page(browser, task)
            print(f"grid page GET /tasks/<code>/: median of 5 {grid:.3f} s", flush=True)
        print_peaks("the whole run", memory.overall)
    finally:
        stop_site(process)


if __name__ == "__main__":
    main()
