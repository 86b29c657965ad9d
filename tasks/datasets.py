"""A task's photos and labels as one zip, to train elsewhere or to start a task again:

    labels.csv          file, sha256, category, negative, split, prediction, score
    ants/photo-1.jpg    a folder per category, named after it
    bees/IMG_0001.jpg
    IMG_0042.jpg        the Unsorted photos, at the top

A folder per category is the layout torchvision's ImageFolder, Keras and most trainers
read. The Unsorted photos lie at the top, beside the folders: those trainers read only
the folders, so unlabelled photos never pass for a category, and an upload of the zip
puts them back in Unsorted, so nothing is left behind. Each photo is its original bytes
under the name it was uploaded with (made safe and unique in its folder). labels.csv
gives, for a run chosen (the active model by default), the part of that run's
evaluation each photo was in and what a model that had not seen a held-out photo
answered for it.

Built by a job (tasks/zips.py, as the model zip is), streamed from storage into a file
in chunks, never held in memory whole; photos are stored, not deflated (JPEG, PNG and
the like do not shrink). Dropped on a task with folders as categories, the zip recreates
its photos and categories (tasks/imports.py reads labels.csv for what folder names
cannot say: the name of a category that is not a safe file name, and which one holds
the negative examples).
"""

import csv
import hashlib
import io
import json
import re
import shutil
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.core.files.storage import default_storage
from django.utils.text import slugify

from tasks import downloads, workspaces, zips
from tasks.models import DatasetZip, display_name
from trainer.export import readable_member

LABELS_FILE = "labels.csv"
COLUMNS = ("file", "sha256", "category", "negative", "split", "prediction", "score")
# Beside a run's model: what its evaluation answered for each photo it held out
# (tasks/jobs.py write_held_out).
HELD_OUT_FILE = "held_out.json"
# Bumped when the zip's layout changes, so that zips built before are built again.
LAYOUT_VERSION = 1
JOB_PREFIX = "dataset-zip-"
WORKSPACE_PREFIX = "vizeapp-dataset-"
# Thousands of photos of up to 10 MB each, stored where object storage may be slow: more
# than the default queue's 10 minutes.
BUILD_TIMEOUT = 3600
CHUNK = 1024 * 1024

# The extensions a name may already end with for each stored format; any other name
# gets the format's own, so that trainers which pick files by extension find it.
NAME_EXTENSIONS = {
    "jpg": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "png": (".png",),
    "gif": (".gif",),
    "webp": (".webp",),
    "bmp": (".bmp", ".dib"),
    "tif": (".tif", ".tiff"),
    "heic": (".heic", ".heif"),
}
# Path separators, what Windows refuses in a name, and control characters.
UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')


# All of a photo that can change: its id names its bytes and its name, which never do.
STATE = ("id", "category_id", "category__name", "category__is_negative")


@dataclass(frozen=True)
class Photo:
    """One photo as the zip holds it."""

    id: int
    category_id: int | None
    category: str | None  # None for Unsorted
    negative: bool | None
    code: str
    sha256: str
    file: str  # its stored name
    size: int
    name: str  # the name it was uploaded with, without a zip's folders
    created: datetime

    @property
    def state(self):
        """The fields of STATE, as the task's state reads them."""
        return self.id, self.category_id, self.category, self.negative

    @property
    def extension(self):
        return self.file.rsplit(".", 1)[-1]


def photos(task):
    """The task's photos in upload order, read in one statement: one state of them."""
    rows = task.images.order_by("id").values_list(
        *STATE, "code", "sha256", "file", "size", "original_name", "created"
    )
    return [
        Photo(*changing, str(code), sha256, file, size, display_name(name), created)
        for *changing, code, sha256, file, size, name, created in rows
    ]


def state(task):
    """What fingerprint reads of each of the task's photos, in upload order: a fraction
    of photos' cost (each ask pays it, every 2 s while the page waits)."""
    return list(task.images.order_by("id").values_list(*STATE))


def fingerprint(states, run):
    """What a zip of photos in these states with this run's answers holds, as one hash:
    an upload, a deletion, a move, a renamed category or another run makes another."""
    return hashlib.sha256(
        repr((LAYOUT_VERSION, run and str(run.code), states)).encode()
    ).hexdigest()


def layout(found):
    """(path in the zip, photo) for each photo: a folder per category, the Unsorted
    photos at the top; each name safe and unique in its folder (ignoring case, as macOS
    and Windows compare names), the earliest upload keeping its own."""
    top = {LABELS_FILE.lower()}
    folders = {}
    for category_id, name in sorted({(p.category_id, p.category) for p in found if p.category_id}):
        folders[category_id] = unique(safe(name), "", top)
    taken = defaultdict(set)
    paths = []
    for photo in found:
        folder = folders.get(photo.category_id)
        stem, extension = split_extension(safe(photo.name), photo.extension)
        name = unique(stem, extension, taken[folder] if folder else top)
        paths.append((f"{folder}/{name}" if folder else name, photo))
    return paths


def safe(name):
    """name as one file or folder name that unpacks alike on Linux, macOS and Windows,
    and that an upload does not skip as hidden."""
    name = UNSAFE.sub("_", name).strip().rstrip(".")
    if name.startswith("."):
        name = f"_{name[1:]}"
    return name or "_"


def split_extension(name, extension):
    """(stem, extension): the name's own extension when it says the photo's format,
    else the whole name and the format's extension."""
    suffix = Path(name).suffix
    if suffix.lower() in NAME_EXTENSIONS[extension]:
        return name[: -len(suffix)], suffix
    return name, f".{extension}"


def unique(stem, extension, taken):
    """stem + extension, or stem (2) + extension, (3) ... whichever taken does not hold
    yet, ignoring case; taken gains it."""
    name, number = f"{stem}{extension}", 1
    while name.lower() in taken:
        number += 1
        name = f"{stem} ({number}){extension}"
    taken.add(name.lower())
    return name


def run_answers(run):
    """{image code: (split, prediction, score)} for a run: each photo it trained on is
    in "train", each it held out in "test" (or a fold of its cross-validation) with what
    a model that had not seen it answered. Empty for no run, and for a run trained
    before runs kept their held-out answers."""
    if run is None:
        return {}
    try:
        with default_storage.open(f"{run.model_folder}/{HELD_OUT_FILE}") as handle:
            held_out = json.load(handle)
    except FileNotFoundError:
        return {}
    answers = {code: ("train", "", "") for code, _ in run.samples}
    for answer in held_out:
        answers[answer["image"]] = (answer["split"], answer["predicted"], f"{answer['score']:.6f}")
    return answers


def write(path, found, answers):
    """Write the zip of found into path: labels.csv (deflated), then each photo stored as
    it is, copied from storage in chunks. Past 4 GiB or 65,535 files zipfile writes the
    zip64 records that every current unzip tool reads."""
    paths = layout(found)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        labels = readable_member(LABELS_FILE, datetime.now(UTC))
        archive.writestr(labels, labels_csv(paths, answers), zipfile.ZIP_DEFLATED)
        for name, photo in paths:
            stored = readable_member(name, photo.created)
            stored.file_size = photo.size
            with default_storage.open(photo.file) as source, archive.open(stored, "w") as target:
                shutil.copyfileobj(source, target, CHUNK)


def labels_csv(paths, answers):
    """labels.csv, a line for each photo (about 150 bytes: 3 MB for 20,000 photos)."""
    text = io.StringIO()
    rows = csv.writer(text)
    rows.writerow(COLUMNS)
    for name, photo in paths:
        negative = "true" if photo.negative else "false"
        answer = answers.get(photo.code, ("", "", ""))
        rows.writerow((name, photo.sha256, photo.category or "", negative, *answer))
    return text.getvalue()


@dataclass
class DatasetBuild:
    """A task's dataset zip, as tasks/zips.py asks for it."""

    dataset: DatasetZip
    what = "dataset zip"
    making = "built"

    @property
    def ready(self):
        return self.dataset.ready

    @property
    def failure(self):
        return self.dataset.failure

    def retry(self):
        self.dataset.retry_build()

    def failed(self, reason):
        self.dataset.build_failed(reason)

    def build_in_background(self):
        zips.enqueue(
            self,
            "tasks.datasets.build",
            self.dataset.pk,
            job_id=f"{JOB_PREFIX}{self.dataset.code}",
            job_timeout=BUILD_TIMEOUT,
        )

    def download(self):
        task = self.dataset.task
        return downloads.built_zip(
            self.dataset.file_name, f"{slugify(task.name) or 'task'}-dataset.zip"
        )


def current(task, run):
    """The dataset zip of the task as it is now, with run's answers (None: none)."""
    dataset, _ = task.dataset_zips.get_or_create(
        fingerprint=fingerprint(state(task), run), defaults={"run": run}
    )
    return DatasetBuild(dataset)


def build(dataset_id):
    """The job: build and store the zip, if the task is still as the row's fingerprint
    says (else a later ask has a row of its own, and this one goes), then remove the
    zips of the task's earlier states."""
    dataset = DatasetZip.objects.select_related("task", "run").filter(pk=dataset_id).first()
    if dataset is None or dataset.ready:
        return
    found = photos(dataset.task)
    if fingerprint([photo.state for photo in found], dataset.run) != dataset.fingerprint:
        dataset.delete()
        return
    answers = run_answers(dataset.run)
    zips.store(
        DatasetBuild(dataset),
        dataset.file_name,
        lambda path: write(path, found, answers),
        workspace_prefix(dataset),
    )
    if dataset.built():
        dataset.replace_older()
    else:  # the task was deleted meanwhile, or the row replaced
        default_storage.delete(dataset.file_name)


def workspace_prefix(dataset):
    return f"{WORKSPACE_PREFIX}{dataset.code}-"


def job_died(job_id, detail):
    """Settle the dataset zip of a job that the worker saw die (tasks/worker.py): say why,
    and remove the temporary file it had begun, which may be gigabytes."""
    code = job_id.removeprefix(JOB_PREFIX)
    if code == job_id:
        return
    dataset = DatasetZip.objects.filter(code=code).first()
    if dataset is None:
        return
    zips.died(DatasetBuild(dataset), detail.strip())
    for folder in workspaces.begun(workspace_prefix(dataset)):
        shutil.rmtree(folder, ignore_errors=True)


def folder_categories(data):
    """{folder: (category name, negative)} as the labels.csv of a dataset zip names
    them; empty for a file that is not one."""
    try:
        rows = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        if not {"file", "category", "negative"} <= set(rows.fieldnames or ()):
            return {}
        named = {}
        for row in rows:
            folder, _, name = (row["file"] or "").partition("/")
            if name and row["category"]:
                named.setdefault(folder, (row["category"], row["negative"] == "true"))
    except (UnicodeDecodeError, csv.Error):
        return {}
    return named
