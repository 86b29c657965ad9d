"""How fast the labeling grid answers for a category of 10,000 images.

    python bench/grid.py [--images 10000] [--repeat 20]

Builds a throw-away SQLite database in a temporary folder (or uses DATABASE_URL), adds
the image rows directly (the grid reads rows and serves thumbnails separately), and
prints the median time of the full task page, the next page of the infinite scroll, the
answer to a move (the side bar and every other count of the page), and the task list.
The task has a model trained on all its images.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VIZE_VAR_DIR", tempfile.mkdtemp(prefix="vizeapp-grid-bench-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vizeapp.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from tasks.models import Image, Task  # noqa: E402


def median_ms(request, repeat):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = request()
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
    return statistics.median(times) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    setup_test_environment()  # responses carry their template context
    settings.STORAGES["staticfiles"] = {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
    }
    user = User.objects.create_user(f"grid-bench-{time.time_ns()}")
    task = Task.objects.create(owner=user, name="Big")
    big, small = task.categories.create(name="big"), task.categories.create(name="small")
    Image.objects.bulk_create(
        Image(
            task=task,
            category=big,
            sha256=f"{i:064x}",
            file=f"{task.storage_prefix}/images/{i:064x}.jpg",
            thumbnail=f"{task.storage_prefix}/thumbnails/{i:064x}.jpg",
            original_name=f"photo-{i}.jpg",
            format="JPEG",
            width=500,
            height=375,
            size=100_000,
        )
        for i in range(args.images)
    )
    # A task that has a model: the page tells what changed since it was trained.
    codes = task.images.values_list("code", flat=True)
    task.active_run = task.runs.create(
        base_model="lite0",
        mode="fast",
        status="ready",
        metrics={"accuracy": 0.9},
        samples=[[str(code), "big"] for code in codes],
    )
    task.save()
    try:
        measure(user, task, big, small, args.repeat, args.images)
    finally:
        user.delete()


def measure(user, task, big, small, repeat, image_count):
    client = Client()
    client.force_login(user)
    url = task.get_absolute_url()
    view = {"view": str(big.code)}

    page = client.get(url, view)
    cursor = page.context["next_cursor"]
    first = page.context["images"]
    htmx = {"HX-Request": "true"}
    figures = {
        "task page, first 120 of the category": lambda: client.get(url, view),
        "next page (infinite scroll)": lambda: client.get(
            url, {**view, "cursor": cursor}, headers=htmx
        ),
        "move 2 images, answer the counts": lambda: client.post(
            f"{url}images/move/",
            {"images": [str(i.code) for i in first[:2]], "category": str(small.code), **view},
            headers=htmx,
        ),
        "task list": lambda: client.get("/"),
    }
    print(f"{image_count} images in one category, {settings.DATABASES['default']['ENGINE']}")
    for label, request in figures.items():
        print(f"  {label}: median {median_ms(request, repeat):.1f} ms")


if __name__ == "__main__":
    main()
