import hashlib
import itertools
import secrets
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from operator import attrgetter

import numpy as np
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce, Lower
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from tasks import near_copies
from trainer.backbones import FEATURES_VERSION
from trainer.choices import BASE_MODELS, DEFAULT_TIME_BUDGET, MODES
from trainer.files import COREML_FILE, INT8_MODEL_FILE, MODEL_FILE

CATEGORY_NAME_MAX_LENGTH = 100
# What a fast run's metrics say of its head's choice, in the order TrainConfig takes it.
CARRIED_METRICS = ("regularisation_c", "temperature", "head_features")


def check_operating_threshold(threshold):
    """An operating point is a top score from 0 (every photo answered) up to, not
    including, 1 (which no photo would reach). NaN is refused too."""
    if not 0 <= threshold < 1:
        raise ValidationError(
            f"threshold must be a top score from 0 up to, not including, 1; not {threshold}."
        )


class TaskQuerySet(models.QuerySet):
    def owned_by(self, user):
        return self.filter(owner=user)

    def with_training(self):
        return self.select_related("active_run").prefetch_related(
            models.Prefetch(
                "runs",
                TrainingRun.objects.filter(status__in=TrainingRun.ACTIVE),
                to_attr="active_runs",
            )
        )

    def with_counts(self):
        # Subqueries, not two joins: joining images and categories would multiply rows.
        return self.annotate(
            image_count=count_per_task(Image),
            category_count=count_per_task(Category),
        )


class Task(models.Model):
    """One classification problem ("ants or bees"): its categories and images."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="tasks")
    name = models.CharField(max_length=100)
    active_run = models.ForeignKey(
        "TrainingRun", models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The classifier_id ("dogs_1941945966") of a task made through the Watson v3 API.
    watson_id = models.CharField(max_length=150, unique=True, null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = TaskQuerySet.as_manager()

    class Meta:
        ordering = ["-updated", "-id"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("tasks:detail", args=[self.code])

    STORAGE_ROOT = "tasks"

    @property
    def storage_prefix(self):
        return f"{self.STORAGE_ROOT}/{self.code}"

    def category_named(self, name):
        """The category with this name, ignoring case, created if it does not exist yet."""
        name = name.strip()[:CATEGORY_NAME_MAX_LENGTH]
        category = self.categories.filter(name__iexact=name).first()
        if category is None:
            try:
                with transaction.atomic():
                    category = self.categories.create(name=name)
            except IntegrityError:  # a concurrent upload created it first
                category = self.categories.get(name__iexact=name)
        return category

    def categories_with_counts(self):
        return self.categories.annotate(image_count=Count("images"))

    def current_run(self):
        """The run that is queued or training now, if any."""
        return self.runs.filter(status__in=TrainingRun.ACTIVE).first()

    def unsorted_count(self):
        return self.images.filter(category=None).count()

    def review_counts(self):
        """{queue key: how many photos wait in it}, in one query."""
        return self.images.aggregate(
            **{key: Count("id", filter=queue.members) for key, queue in REVIEW_QUEUES.items()}
        )

    def duplicate_groups(self):
        """The groups of near-copies that hold two photos or more, those whose photos
        sit in two categories (a label conflict) first."""
        grouped = (
            self.images.exclude(duplicate_group=None)
            .select_related("category")
            .order_by("duplicate_group", "id")
        )
        groups = [
            DuplicateGroup(number, list(images))
            for number, images in itertools.groupby(grouped, key=attrgetter("duplicate_group"))
        ]
        shown = [group for group in groups if len(group.images) > 1]
        return sorted(shown, key=lambda group: not group.conflict)

    def duplicate_group_count(self):
        return (
            self.images.exclude(duplicate_group=None)
            .values("duplicate_group")
            .annotate(size=Count("id"))
            .filter(size__gt=1)
            .count()
        )

    def delete_with_files(self):
        """Delete the task, its rows, and (once that has committed) its stored files."""
        prefix = self.storage_prefix
        with transaction.atomic():
            self.delete()
            transaction.on_commit(lambda: delete_folder(default_storage, prefix))


@dataclass
class DuplicateGroup:
    """Near-copies of one photo: number is the group's Image.duplicate_group."""

    number: int
    images: list

    @property
    def conflict(self):
        """Whether its photos sit in two different categories."""
        return len({image.category_id for image in self.images if image.category_id}) > 1

    def photos(self):
        return self.images[0].task.images.filter(duplicate_group=self.number)

    def keep_only(self, kept):
        """Delete the group's other photos; the one kept is a group of its own again."""
        deleted = self.photos().exclude(pk=kept.pk).delete_with_files()
        self.photos().update(duplicate_group=None)
        return deleted

    def keep_all(self):
        """Its photos are not copies after all: the group is not shown again."""
        return self.photos().update(duplicate_group=None)

    def move_to(self, category):
        """All its photos into category (None is Unsorted), where copies belong together."""
        return self.photos().update(category=category)


class Category(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    task = models.ForeignKey(Task, models.CASCADE, related_name="categories")
    name = models.CharField(max_length=CATEGORY_NAME_MAX_LENGTH)
    # Images that belong to none of the categories: they teach the model to answer
    # "none of these" (Watson's negative_examples).
    is_negative = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        # Creation order keeps the number keys 1-9 of the labeling grid stable.
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint("task", Lower("name"), name="category_name_unique_in_task"),
        ]

    def __str__(self):
        return self.name

    def delete(self, *args, **kwargs):
        """The category, and the suggestions of it with their scores (SET_NULL would
        keep the scores of suggestions that no longer name a category)."""
        self.task.images.filter(suggestion=self).update(**NO_SUGGESTION)
        return super().delete(*args, **kwargs)


# A page cursor names the last image of the page before; signed, so that it stays opaque.
image_cursors = signing.Signer(salt="tasks.images-cursor")


class BadCursor(Exception):
    """A page cursor this site did not give out."""


@contextmanager
def cursor_values(cursor):
    """The text a page cursor signed; BadCursor for a forged one, or for one of another
    order that the block cannot read."""
    try:
        yield image_cursors.unsign(cursor)
    except (signing.BadSignature, ValueError):
        raise BadCursor(cursor) from None


def keyset_page(images, size, cursor_of):
    """(up to size of the ordered images; the cursor of the next page, signed from
    cursor_of(the page's last image), or None at the end)."""
    page = list(images[: size + 1])
    if len(page) > size:
        return page[:size], image_cursors.sign(cursor_of(page[size - 1]))
    return page, None


# What tasks/jobs.py suggest_categories stores for each photo it scores.
SUGGESTION_FIELDS = ("suggestion", "suggestion_score", "suggestion_margin", "outlier_score")
NO_SUGGESTION = {"suggestion": None, "suggestion_score": None, "suggestion_margin": None}
# An Unsorted photo is unsure when its suggestion leads the runner-up by less than this.
UNSURE_MARGIN = 0.25


@dataclass(frozen=True)
class ReviewQueue:
    """Photos a person should look at, most suspicious first: members, ranked by the
    field rank (highest first, or lowest when ascending)."""

    key: str
    title: str
    members: Q
    rank: str
    ascending: bool = False

    def __str__(self):
        return self.key


REVIEW_QUEUES = {
    queue.key: queue
    for queue in (
        # Labelled photos that a head which never saw them puts in another category.
        ReviewQueue(
            "mislabels",
            "Suspected mislabels",
            Q(category__isnull=False, suggestion__isnull=False, reviewed=False),
            "suggestion_score",
        ),
        # Unsorted photos whose suggestion barely leads the runner-up.
        ReviewQueue(
            "unsure",
            "Unsure",
            Q(category=None, suggestion_margin__lt=UNSURE_MARGIN),
            "suggestion_margin",
            ascending=True,
        ),
        # Photos far from every category's photos.
        ReviewQueue(
            "outliers", "Outliers", Q(outlier_score__gt=1, reviewed=False), "outlier_score"
        ),
    )
}


class ImageQuerySet(models.QuerySet):
    def page(self, after, size):
        """(up to `size` of these images, newest first; the cursor of the next page, or
        None at the end). `after` is the cursor a previous page gave, or None or "" for
        the first page; BadCursor for one this site did not give out. Keyset paging: a
        page deep in a large category costs what the first does, and images added
        meanwhile do not shift the pages after."""
        images = self.order_by("-id")
        if after:
            with cursor_values(after) as last:
                images = images.filter(id__lt=int(last))
        return keyset_page(images, size, lambda image: str(image.id))

    def page_ranked(self, after, size, rank, ascending=False):
        """As page, ordered by the field rank, highest first unless ascending (the newest
        first among equal values, those without one last): the cursor holds value and id."""
        field = models.F(rank)
        images = self.order_by(
            field.asc(nulls_last=True) if ascending else field.desc(nulls_last=True), "-id"
        )
        if after:
            with cursor_values(after) as values:
                value, last = values.split(":")
                if value == "none":
                    images = images.filter(**{rank: None}, id__lt=int(last))
                else:
                    beyond = f"{rank}__gt" if ascending else f"{rank}__lt"
                    images = images.filter(
                        Q(**{beyond: float(value)})
                        | Q(**{rank: float(value)}, id__lt=int(last))
                        | Q(**{rank: None})
                    )

        def cursor(image):
            value = getattr(image, rank)
            return f"{'none' if value is None else repr(value)}:{image.id}"

        return keyset_page(images, size, cursor)

    def in_review(self, queue):
        """These images in the review queue, most suspicious first."""
        return self.filter(queue.members)

    def accept_suggestions(self, at_least=0.0):
        """Move the images among these whose suggestion scores at least at_least into
        the suggested categories (for a labelled photo, the category a head that never saw
        it prefers); the codes of those moved."""
        accepted = self.filter(suggestion__isnull=False, suggestion_score__gte=at_least)
        with transaction.atomic():
            codes = list(accepted.select_for_update().values_list("code", flat=True))
            accepted.filter(code__in=codes).update(category=models.F("suggestion"), **NO_SUGGESTION)
        return codes

    def keep_as_they_are(self):
        """A person looked at these photos in review and keeps them: no queue of doubts
        holds them again."""
        return self.update(reviewed=True)

    def suggest(self, suggestions):
        """Store (image id, category id, score, margin, outlier score) in one statement
        run for each: bulk_update spent 0.7 s building the expression of 1,000 rows, most
        of a refresh that should follow a move within seconds."""
        meta, quote = self.model._meta, connection.ops.quote_name
        table, pk = quote(meta.db_table), quote(meta.pk.column)
        columns = ", ".join(
            f"{quote(meta.get_field(name).column)} = %s" for name in SUGGESTION_FIELDS
        )
        # Only the model's own names go into the text; the values are parameters.
        statement = f"UPDATE {table} SET {columns} WHERE {pk} = %s"  # noqa: S608
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(statement, [(*values, image) for image, *values in suggestions])

    def near_copy_of(self, fingerprint):
        """The image among these that a photo of this fingerprint is a near-copy of
        (tasks/near_copies.py), the likest; None for none, or for no fingerprint."""
        if fingerprint is None:
            return None
        rows = self.exclude(perceptual_hash=None).values_list("id", "perceptual_hash")
        ids, hashes = np.array(list(rows), dtype=np.int64).reshape(-1, 2).T
        nearest = ids[near_copies.candidates(fingerprint, hashes)].tolist()
        if not nearest:
            return None
        found = self.select_related("category").in_bulk(nearest)
        others = [found[pk] for pk in nearest if pk in found]
        likest = near_copies.likest_copy(fingerprint, [bytes(o.fingerprint) for o in others])
        return None if likest is None else others[likest]

    def delete_with_files(self):
        """Delete these images and, once that has committed, their stored files."""
        names = []
        for original, thumbnail in self.values_list("file", "thumbnail"):
            names += [original, thumbnail]
        with transaction.atomic():
            count, _ = self.delete()
            transaction.on_commit(lambda: delete_files(default_storage, names))
        return count


class Image(models.Model):
    """A stored photo: the original bytes as uploaded, named by their SHA-256, and a
    thumbnail with the EXIF orientation applied."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    task = models.ForeignKey(Task, models.CASCADE, related_name="images")
    category = models.ForeignKey(
        Category, models.SET_NULL, null=True, blank=True, related_name="images"
    )
    sha256 = models.CharField(max_length=64)
    file = models.FileField(max_length=200)
    thumbnail = models.FileField(max_length=200)
    original_name = models.CharField(max_length=255)
    format = models.CharField(max_length=10)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)
    # For an Unsorted photo: the category a head fitted on the labelled photos gives it,
    # that head's probability, and its lead over the runner-up's. For a labelled photo:
    # the category a head that never saw it prefers to its own, and that head's
    # probability, or none (tasks/jobs.py suggest_categories).
    suggestion = models.ForeignKey(
        Category, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    suggestion_score = models.FloatField(null=True, blank=True)
    suggestion_margin = models.FloatField(null=True, blank=True)
    # The distance to the nearest category over what is usual among the labelled photos:
    # above 1, the photo is far from every category's photos.
    outlier_score = models.FloatField(null=True, blank=True)
    # A person kept the photo as it is when a review queue showed it: doubted no more.
    reviewed = models.BooleanField(default=False)
    # When classify kept the photo, asked to (tasks/keeping.py): one still in Unsorted
    # VIZE_KEEP_DAYS later is deleted.
    kept_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # The upright picture as 32x32 grey levels and its 64-bit DCT hash, to tell near-copies
    # by (tasks/near_copies.py); none for a picture too plain to compare.
    fingerprint = models.BinaryField(null=True, blank=True)
    perceptual_hash = models.BigIntegerField(null=True, blank=True)
    # The id of the first photo of the near-copies this one belongs to: a plain number, so
    # that deleting that photo leaves the others grouped. A group of one is no group.
    duplicate_group = models.BigIntegerField(null=True, blank=True)

    objects = ImageQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint("task", "sha256", name="image_unique_in_task"),
        ]
        indexes = [models.Index(fields=["task", "category", "-id"], name="image_grid")]

    def __str__(self):
        return self.original_name

    @property
    def display_name(self):
        """The file name without the folders it had inside a zip archive."""
        return self.original_name.rsplit("/", 1)[-1]

    def join_copies_of(self, original):
        """This photo joins the group of the photo it copies, which starts one if it
        had none."""
        if original.duplicate_group is None:
            Image.objects.filter(pk=original.pk).update(duplicate_group=original.pk)
            original.duplicate_group = original.pk
        self.duplicate_group = original.duplicate_group
        Image.objects.filter(pk=self.pk).update(duplicate_group=self.duplicate_group)


class TrainingRun(models.Model):
    """One training of a task's model: what it trained on, how it went, what it made.

    Its life, each arrow a method below that changes the row only if the run is still
    where the arrow starts and says whether it did (a cancel, a dead worker and the job
    itself may race; the database decides):

        queued ──claim──▶ embedding ─report─▶ evaluating ─report─▶ fitting ──finish──▶ ready
          │ take_in            │                   │                  │
          └──────────────┬─────┴───────────────────┴──────────────────┘
                         ├──fail──▶ failed
                         └──cancel──▶ cancelled

    A ready run's model zip is packaged by a job: waiting ──packaged──▶ packaged, or
    waiting ──packaging_failed──▶ failed (export_failure says why) ──retry_packaging──▶
    waiting. activate makes a ready run the one that answers for its task.
    choose_operating_point changes a ready run's operating point, and so its model zip,
    which goes back to waiting.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        EMBEDDING = "embedding", "Reading the images"
        EVALUATING = "evaluating", "Measuring accuracy"
        FITTING = "fitting", "Fitting the model"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.EMBEDDING, Status.EVALUATING, Status.FITTING)
    WORKING = (Status.EMBEDDING, Status.EVALUATING, Status.FITTING)  # claimed by a job

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    task = models.ForeignKey(Task, models.CASCADE, related_name="runs")
    base_model = models.CharField(
        max_length=20, choices=[(name, base.title) for name, base in BASE_MODELS.items()]
    )
    mode = models.CharField(
        max_length=20, choices=[(name, mode.title) for name, mode in MODES.items()]
    )
    seed = models.PositiveIntegerField(default=0)
    # Seconds of fine-tuning in accurate mode.
    time_budget = models.PositiveIntegerField(default=DEFAULT_TIME_BUDGET)
    status = models.CharField(max_length=20, choices=Status, default=Status.QUEUED)
    percent = models.PositiveSmallIntegerField(default=0)
    eta_seconds = models.PositiveIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True)
    # The images and labels it trains on, frozen when the run was started:
    # [[image code, category name], ...]
    samples = models.JSONField(default=list)
    # The name of the negative category among those labels, if the task has one.
    negative_label = models.CharField(max_length=100, blank=True)
    metrics = models.JSONField(null=True, blank=True)
    # [{"image": code, "true": name, "predicted": name, "scores": {name: score}}]
    misclassified = models.JSONField(default=list)
    model_folder = models.CharField(max_length=200, blank=True)
    # Whether the model zip is packaged and stored, so that listing runs never asks storage.
    export_ready = models.BooleanField(default=False)
    # Why the last packaging of the model zip failed; empty once it succeeds.
    export_failure = models.TextField(blank=True)
    # The top score below which the model answers "needs review" (trainer/portable.py
    # ranked): the suggested one when the run is ready, then the person's choice. The
    # server passes it to the model, and the model zip's model.json carries it, so that
    # changing it needs no new model files.
    operating_threshold = models.FloatField(default=0.0, validators=[check_operating_threshold])
    # The codes of the images its evaluation held out (every image, after a k-fold
    # cross-validation): the other formats of its model are measured on them.
    held_out = models.JSONField(default=list)
    # How each other format of its model agrees with model.onnx (trainer/formats.py's
    # report), once the packaging job has built them beside it; {} before.
    formats = models.JSONField(default=dict)
    # Whether the server answers with the int8 model (a person's choice, where the
    # formats offer one); its model zip's predict.py then runs it too.
    serves_int8 = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # Two presses of "Start training" can never make two runs of one task.
            models.UniqueConstraint(
                fields=["task"],
                condition=models.Q(status__in=["queued", "embedding", "evaluating", "fitting"]),
                name="one_active_run_per_task",
            ),
        ]

    def __str__(self):
        return f"{self.task} run {self.code}"

    def get_absolute_url(self):
        return reverse("tasks:run_detail", args=[self.task.code, self.code])

    @property
    def is_active(self):
        return self.status in self.ACTIVE

    JOB_PREFIX = "training-run-"

    @property
    def job_id(self):
        return f"{self.JOB_PREFIX}{self.code}"

    @property
    def storage_folder(self):
        """Where the job stores the run's model files."""
        return f"{self.task.storage_prefix}/runs/{self.code}"

    @property
    def duration(self):
        if self.started and self.finished:
            return self.finished - self.started
        return None

    @property
    def accuracy(self):
        return self.metrics["accuracy"] if self.metrics else None

    # A retrain whose images differ from the active model's by at most this share of them
    # (added, removed or moved) keeps that model's head choice.
    CARRY_CHOICE_UP_TO = 0.1

    def head_choice_to_carry(self):
        """(C, temperature, view) of the head the task's active model chose (in either
        mode) when this run trains on the same base model and nearly the same images,
        else None: choosing again costs a retrain of thousands of photos most of its
        time, and a few new photos do not move the choice. Accurate mode keeps that time
        for fine-tuning, and starts from a head chosen on more photos than it has time
        for (at 20,000 photos, 0.959 against 0.935 on the hold-out)."""
        previous = self.task.active_run
        if previous is None or not previous.metrics:
            return None
        if (previous.base_model, previous.negative_label) != (
            self.base_model,
            self.negative_label,
        ):
            return None
        before = {tuple(sample) for sample in previous.samples}
        now = {tuple(sample) for sample in self.samples}
        if {label for _, label in before} != {label for _, label in now}:
            return None
        if len(before ^ now) > self.CARRY_CHOICE_UP_TO * len(before):
            return None
        return previous.recorded_head_choice()

    def recorded_head_choice(self):
        """(C, temperature, view) of the head this run chose, if it was chosen on the
        features stored now; else None."""
        if not self.metrics or self.metrics.get("features_version") != FEATURES_VERSION:
            return None
        choice = [self.metrics.get(key) for key in CARRIED_METRICS]
        return tuple(choice) if all(choice) else None

    @property
    def export_file(self):
        """The model zip a person downloads, packaged by a job once the run is ready, one
        per operating point and served model: a stored file never changes under its name,
        so a zip stored under this one was packaged at this point, for this model."""
        served = "int8" if self.serves_int8 else "float"
        return f"{self.model_folder}/export-{self.operating_threshold!r}-{served}.zip"

    @property
    def served_file(self):
        """The model file the server answers with."""
        return INT8_MODEL_FILE if self.serves_int8 else MODEL_FILE

    def format_entry(self, file):
        """The formats report's entry of file if the run's model has it, else None."""
        entries = self.formats.get("formats", [])
        return next((e for e in entries if e["file"] == file and e.get("offered", True)), None)

    @property
    def offers_int8(self):
        return self.format_entry(INT8_MODEL_FILE) is not None

    @property
    def has_core_ml(self):
        return self.format_entry(COREML_FILE) is not None

    @property
    def operating_point(self):
        """The chosen threshold, the suggested one, and the share of held-out photos
        answered at the chosen one and their precision (None where that threshold was not
        measured, or before the run measured any)."""
        if self.status != self.Status.READY:
            return None
        curve = (self.metrics or {}).get("operating_points")
        point = {
            "threshold": self.operating_threshold,
            "suggested": curve["suggested"] if curve else None,
            "coverage": None,
            "precision": None,
        }
        if curve and self.operating_threshold in curve["thresholds"]:
            at = curve["thresholds"].index(self.operating_threshold)
            point.update(coverage=curve["coverage"][at], precision=curve["precision"][at])
        return point

    @property
    def export_filename(self):
        return f"{slugify(self.task.name) or 'model'}-{str(self.code)[:8]}.zip"

    # State changes

    def _change(self, condition, **changes):
        """Write changes if the row still meets condition; whether it did. This object
        follows the row only when it did."""
        applied = bool(TrainingRun.objects.filter(condition, pk=self.pk).update(**changes))
        if applied:
            for name, value in changes.items():
                setattr(self, name, value)
        return applied

    def take_in(self, samples, negative_label):
        """A queued run trains on the images as they are now, not as when it was queued."""
        return self._change(
            models.Q(status=self.Status.QUEUED), samples=samples, negative_label=negative_label
        )

    def claim(self):
        """The job starts working on a queued run (and no other job will)."""
        now = timezone.now()
        return self._change(
            models.Q(status=self.Status.QUEUED),
            status=self.Status.EMBEDDING,
            started=now,
            heartbeat=now,
        )

    def report(self, status, percent, eta_seconds):
        """The job's progress, which is also the heartbeat the reconciler watches."""
        return self._change(
            models.Q(status__in=self.WORKING),
            status=status,
            percent=percent,
            eta_seconds=eta_seconds,
            heartbeat=timezone.now(),
        )

    def finish(self, metrics, misclassified, held_out, model_folder, operating_threshold):
        """Ready at its first operating point, and the task's active model, in one
        transaction."""
        now = timezone.now()
        with transaction.atomic():
            finished = self._change(
                models.Q(status__in=self.WORKING),
                status=self.Status.READY,
                percent=100,
                eta_seconds=0,
                metrics=metrics,
                misclassified=misclassified,
                held_out=held_out,
                model_folder=model_folder,
                operating_threshold=operating_threshold,
                finished=now,
                heartbeat=now,
            )
            if finished:
                Task.objects.filter(pk=self.task_id).update(active_run=self.pk, updated=now)
        return finished

    def fail(self, reason):
        return self._change(
            models.Q(status__in=self.ACTIVE),
            status=self.Status.FAILED,
            reason=reason,
            finished=timezone.now(),
        )

    def cancel(self):
        return self._change(
            models.Q(status__in=self.ACTIVE),
            status=self.Status.CANCELLED,
            reason="Cancelled.",
            finished=timezone.now(),
        )

    def activate(self):
        """Make this run, if it is ready, the model that answers for its task (a
        rollback, or a redo)."""
        activated = bool(
            Task.objects.filter(
                pk=self.task_id, runs__pk=self.pk, runs__status=self.Status.READY
            ).update(active_run=self.pk, updated=timezone.now())
        )
        if activated:
            self.task.refresh_from_db(fields=["active_run", "updated"])
        return activated

    def packaged(self, threshold, serves_int8):
        """The zip packaged at threshold, serving int8 or not, is stored; it is the run's
        while the run's choices are still those."""
        return self._change(
            models.Q(
                status=self.Status.READY, operating_threshold=threshold, serves_int8=serves_int8
            ),
            export_ready=True,
            export_failure="",
        )

    def choose_operating_point(self, threshold):
        """A ready run answers below threshold "needs review" from now on; its model zip
        is packaged again. Raises ValidationError for a threshold out of bounds."""
        check_operating_threshold(threshold)
        return self._change(
            models.Q(status=self.Status.READY),
            operating_threshold=threshold,
            export_ready=False,
            export_failure="",
        )

    def formats_built(self, report):
        """The other formats of its model are stored beside it, measured as report says."""
        return self._change(models.Q(status=self.Status.READY), formats=report)

    def choose_served_model(self, int8):
        """A ready run answers with its int8 model (int8 True, where its formats offer
        one) or with model.onnx from now on; its model zip is packaged again."""
        if int8 and not self.offers_int8:
            return False
        return self._change(
            models.Q(status=self.Status.READY),
            serves_int8=int8,
            export_ready=False,
            export_failure="",
        )

    def packaging_failed(self, reason):
        """The first reason a packaging failed; a later one (the worker seeing the same
        job end) changes nothing until someone retries."""
        return self._change(
            models.Q(status=self.Status.READY, export_ready=False, export_failure=""),
            export_failure=reason,
        )

    def retry_packaging(self):
        """A failed packaging may be tried again (when someone asks for it)."""
        return self._change(models.Q(export_failure__gt=""), export_failure="")


class ImageEmbedding(models.Model):
    """The pooled backbone features of an image and of its mirror image for one base
    model, as its features graph of one version computes them, and the late maps that
    accurate mode trains on (float16, about 67 KB for Lite2: a fast run defers them).
    They never change, so every later run reuses them; features of another version are
    computed again."""

    image = models.ForeignKey(Image, models.CASCADE, related_name="embeddings")
    base_model = models.CharField(max_length=20)
    version = models.PositiveSmallIntegerField(default=FEATURES_VERSION)
    features = models.BinaryField()
    mirrored = models.BinaryField()
    late_maps = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "image", "base_model", "version", name="embedding_unique_per_model_version"
            ),
        ]

    def __str__(self):
        return f"{self.base_model} features (version {self.version}) of {self.image}"


class ApiKey(models.Model):
    """A secret that lets code act as its owner through the APIs. Only its SHA-256 is
    stored: the key is random and long, so a slow password hash would add nothing."""

    PREFIX = "vize_"
    # last_used is written at most this often, not on every request.
    LAST_USED_PRECISION = timedelta(minutes=1)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    # The first characters of the key, shown in the list so that people can tell keys apart.
    start = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.name} ({self.start}…)"

    @classmethod
    def issue(cls, owner, name):
        """(api_key, secret): the secret exists only in this return value."""
        secret = cls.PREFIX + secrets.token_urlsafe(32)
        key = cls.objects.create(
            owner=owner, name=name, start=secret[:12], digest=cls.digest_of(secret)
        )
        return key, secret

    @classmethod
    def find(cls, secret):
        """The unrevoked key of an active user with this secret, or None."""
        key = (
            cls.objects.select_related("owner")
            .filter(digest=cls.digest_of(secret), revoked=None, owner__is_active=True)
            .first()
        )
        if key is None:
            return None
        now = timezone.now()
        if key.last_used is None or now - key.last_used > cls.LAST_USED_PRECISION:
            cls.objects.filter(pk=key.pk).update(last_used=now)
        return key

    @staticmethod
    def digest_of(secret):
        return hashlib.sha256(secret.encode()).hexdigest()

    def revoke(self):
        if self.revoked is None:
            self.revoked = timezone.now()
            self.save(update_fields=["revoked"])


def count_per_task(model):
    rows = model.objects.filter(task=OuterRef("pk")).order_by().values("task")
    return Coalesce(Subquery(rows.annotate(count=Count("pk")).values("count")), 0)


def delete_files(storage, names):
    for name in names:
        storage.delete(name)


def delete_folder(storage, prefix):
    """Delete every file under prefix, and on a local disk the emptied folders too."""
    delete_files(storage, list(stored_files(storage, prefix)))
    if isinstance(storage, FileSystemStorage):
        # Object stores have no folders; a local disk keeps the emptied ones.
        shutil.rmtree(storage.path(prefix), ignore_errors=True)


def stored_files(storage, prefix):
    """The name of every file under prefix, walking the folders the storage reports."""
    try:
        directories, files = storage.listdir(prefix)
    except FileNotFoundError:
        return
    for name in files:
        yield f"{prefix}/{name}"
    for directory in directories:
        yield from stored_files(storage, f"{prefix}/{directory}")
