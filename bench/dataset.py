"""How long Download dataset takes to build, how big the zip is, and what asking costs.

    flock /tmp/vize-bench.lock .venv/bin/python bench/dataset.py [--repeat 3] [--rows 20000]

Puts ../shared/datasets/trashnet (2,527 photos, a folder per class) into a task of a
throw-away SQLite database and media folder (the originals stored as an upload stores
them; no thumbnails, which the zip does not read), then prints: the median time of the
build job over --repeat builds, in photos and megabytes a second; the zip's size against
the photos' bytes; the peak memory the build allocates; what the fingerprint (read on
every ask, and every 2 s while the page waits) costs for trashnet and for --rows photo
rows; and whether the zip, uploaded to a new task, recreates the task (the real upload
path, which decodes every photo).
"""

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VIZE_VAR_DIR", tempfile.mkdtemp(prefix="vizeapp-dataset-bench-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vizeapp.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.files.base import ContentFile  # noqa: E402
from django.core.files.storage import default_storage  # noqa: E402
from django.core.files.uploadedfile import UploadedFile  # noqa: E402
from django.core.management import call_command  # noqa: E402

from tasks import datasets, imports  # noqa: E402
from tasks.models import DatasetZip, Image, Task  # noqa: E402

TRASHNET = ROOT.parent / "shared" / "datasets" / "trashnet"


def stored_task(user, folder):
    """A task holding every photo of folder/CLASS/*, stored as an upload stores them."""
    task = Task.objects.create(owner=user, name=folder.name)
    rows = {}
    for class_folder in sorted(path for path in folder.iterdir() if path.is_dir()):
        category = task.categories.create(name=class_folder.name)
        for path in sorted(class_folder.iterdir()):
            data = path.read_bytes()
            sha256 = hashlib.sha256(data).hexdigest()
            if sha256 in rows:
                continue  # trashnet holds three photos twice, under two labels
            name = f"{task.storage_prefix}/images/{sha256}.jpg"
            default_storage.save(name, ContentFile(data))
            rows[sha256] = Image(
                task=task,
                category=category,
                sha256=sha256,
                file=name,
                thumbnail=name,
                original_name=path.name,
                format="JPEG",
                width=0,
                height=0,
                size=len(data),
            )
    Image.objects.bulk_create(rows.values())
    return task


def build_once(task):
    """Seconds of one build of the task's zip, from nothing."""
    for dataset in DatasetZip.objects.filter(task=task).select_related("task"):
        default_storage.delete(dataset.file_name)
        dataset.delete()
    dataset = datasets.current(task, None).dataset
    started = time.perf_counter()
    datasets.build(dataset.pk)
    return time.perf_counter() - started, dataset


def median_ms(call, repeat=5):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def fingerprint_ms(task):
    return median_ms(lambda: datasets.fingerprint(datasets.state(task), None))


def many_rows(user, count):
    """A task of count photo rows (no files): what asking reads."""
    task = Task.objects.create(owner=user, name="Many")
    category = task.categories.create(name="all")
    Image.objects.bulk_create(
        Image(
            task=task,
            category=category,
            sha256=f"{i:064x}",
            file=f"{task.storage_prefix}/images/{i:064x}.jpg",
            thumbnail=f"{task.storage_prefix}/thumbnails/{i:064x}.jpg",
            original_name=f"IMG_{i:05d}.jpg",
            format="JPEG",
            width=500,
            height=375,
            size=100_000,
        )
        for i in range(count)
    )
    return task


def contents(task):
    return sorted(task.images.values_list("sha256", "category__name"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    user = User.objects.create_user(f"dataset-bench-{time.time_ns()}")
    task = stored_task(user, TRASHNET)
    photos, photo_bytes = task.images.count(), sum(task.images.values_list("size", flat=True))
    print(f"trashnet: {photos} photos, {photo_bytes / 1e6:.1f} MB")

    times = []
    for _ in range(args.repeat):
        seconds, dataset = build_once(task)
        times.append(seconds)
    build = statistics.median(times)
    size = default_storage.size(dataset.file_name)
    print(
        f"  build: median {build:.2f} s of {args.repeat} ({', '.join(f'{t:.2f}' for t in times)}"
        f"), {photos / build:.0f} photos/s, {photo_bytes / 1e6 / build:.0f} MB/s"
    )
    print(
        f"  zip: {size / 1e6:.1f} MB, {size - photo_bytes:,} bytes over the photos' "
        f"({(size - photo_bytes) / photos:.0f} per photo, labels.csv included)"
    )

    tracemalloc.start()
    build_once(task)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"  peak memory allocated by a build: {peak / 1e6:.1f} MB")

    print(f"  fingerprint (each ask): median {fingerprint_ms(task):.1f} ms")
    many = many_rows(user, args.rows)
    print(f"{args.rows} photo rows: fingerprint (each ask) median {fingerprint_ms(many):.0f} ms")

    again = Task.objects.create(owner=user, name="Again")
    with default_storage.open(dataset.file_name) as handle:
        upload = UploadedFile(handle, name="trashnet-dataset.zip", size=size)
        started = time.perf_counter()
        report = imports.import_files(again, [upload], folders_as_categories=True)
        seconds = time.perf_counter() - started
    same = contents(again) == contents(task)
    print(
        f"round trip: uploaded in {seconds:.0f} s, {len(report.added)} added, "
        f"{len(report.duplicates)} duplicates, {len(report.rejected)} rejected; "
        f"same photos and categories: {same}"
    )
    user.delete()


if __name__ == "__main__":
    main()
