"""The storage checked against the database: files no row points to are removed (an
upload or a job killed between writing a file and committing its row leaves one), and
rows whose file is missing are reported, never deleted, for a person to look at. With S3,
the local copies of files no row points to any more are removed from this machine's
VIZE_STORAGE_CACHE too."""

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

import trainer
from tasks.models import DatasetZip, Image, Task, TrainingRun, delete_files, stored_files

# A file younger than this may belong to an upload or a run still being committed.
GRACE = timedelta(hours=1)


@dataclass
class SweepReport:
    orphans: list[str] = field(default_factory=list)  # files no row points to
    orphan_bytes: int = 0
    missing: list[str] = field(default_factory=list)  # rows whose file is gone
    stale_copies: int = 0  # local copies (S3) of files no row points to


def sweep(storage, *, remove=True, grace=GRACE):
    report = SweepReport()
    kept_files, kept_folders = referenced(storage, report)
    young = timezone.now() - grace
    for name in stored_files(storage, Task.STORAGE_ROOT):
        if name in kept_files or name.startswith(kept_folders):
            continue
        if storage.get_modified_time(name) > young:
            continue
        report.orphans.append(name)
        report.orphan_bytes += storage.size(name)
    if remove:
        delete_files(storage, report.orphans)
    cache = Path(settings.VIZE_STORAGE_CACHE)
    for copy in cache.rglob("*") if cache.exists() else ():
        name = copy.relative_to(cache).as_posix()
        if copy.is_file() and name not in kept_files and not name.startswith(kept_folders):
            report.stale_copies += 1
            if remove:
                copy.unlink()
    return report


def referenced(storage, report):
    """The files the rows point to (photos, thumbnails, built dataset zips), and the run
    folders that are kept whole: those of ready runs and of runs still training, which
    store their model before they commit."""
    kept_files = set()
    # Deleted photos too: their files stay until the undo period ends (tasks/undoing.py).
    for image in Image.with_deleted.select_related("task").iterator():
        for name in (image.file.name, image.thumbnail.name):
            kept_files.add(name)
            if not storage.exists(name):
                report.missing.append(f"image {image.code} of task {image.task.code}: {name}")
    kept_files.update(
        dataset.file_name
        for dataset in DatasetZip.objects.filter(ready=True).select_related("task")
    )
    kept_folders = []
    runs = TrainingRun.objects.filter(
        status__in=[TrainingRun.Status.READY, *TrainingRun.ACTIVE]
    ).select_related("task")
    for run in runs.iterator():
        kept_folders.append(f"{run.storage_folder}/")
        if run.status != TrainingRun.Status.READY:
            continue
        for name in dict.fromkeys((trainer.MODEL_FILE, run.served_file, trainer.DESCRIPTION_FILE)):
            if not storage.exists(f"{run.model_folder}/{name}"):
                report.missing.append(f"model of run {run.code}: {run.model_folder}/{name}")
    return kept_files, tuple(kept_folders)
