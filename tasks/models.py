import hashlib
import itertools
import secrets
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import cache, lru_cache, partial
from operator import attrgetter

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Cast, Coalesce, Lower
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext_lazy, ngettext_lazy, pgettext, pgettext_lazy

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


def one_row(model, where, params, fields=None, joined=None, joined_fields=None):
    """The row of model that the SQL condition where selects, or None, as a model
    instance with only fields and its primary key loaded (all by default; the rest
    deferred, as with only()). joined names a foreign key whose object is read in the
    same query (a LEFT JOIN; its joined_fields, all by default) and set on the instance,
    None where there is none; where then names each column with its quoted table. For
    the lookups of every API call, whose floor is about 16 ms: the ORM spent 0.3 ms
    compiling such a query and a raw() queryset 0.05 ms mapping its row, where the
    database answers in 0.015 (and PostgreSQL's round trip is paid once, not twice)."""
    quote = connection.ops.quote_name
    reader = RowReader.of(model, fields or model._meta.concrete_fields, connection.ops)
    readers, source = [reader], quote(reader.table)
    if joined:
        key = model._meta.get_field(joined)
        related = key.related_model
        joined_reader = RowReader.of(
            related, joined_fields or related._meta.concrete_fields, connection.ops
        )
        readers.append(joined_reader)
        source += (
            f" LEFT JOIN {quote(joined_reader.table)} ON {quote(joined_reader.table)}."
            f"{quote(related._meta.pk.column)} = {quote(reader.table)}.{quote(key.column)}"
        )
    columns = ", ".join(each.columns for each in readers)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {source} WHERE {where}", params)  # noqa: S608 (the models' names)
        row = cursor.fetchone()
    if row is None:
        return None
    instance = reader.instance(row[: len(reader.fields)])
    if joined:
        setattr(instance, joined, joined_reader.instance(row[len(reader.fields) :]))
    return instance


@dataclass(frozen=True)
class RowReader:
    """How one_row selects fields of model and makes an instance of their values: made
    once per model, fields and database connection (each thread has its own, and the
    database's converters are its methods). Kept for the most recent few hundred: a
    server that starts a thread per request would otherwise keep every ended thread's
    connection, and a reader for it, for good."""

    model: type
    table: str
    columns: str  # the fields' quoted columns, each with its table, for a SELECT
    fields: tuple  # in the model's order, which Model.from_db expects, the key among them
    column_converters: list  # (column, the ORM's converters of its values) for each field

    @classmethod
    @lru_cache(maxsize=256)
    def of(cls, model, fields, operations):
        fields = tuple(f for f in model._meta.concrete_fields if f in fields or f.primary_key)
        table, quote = model._meta.db_table, operations.quote_name
        return cls(
            model,
            table,
            ", ".join(f"{quote(table)}.{quote(field.column)}" for field in fields),
            fields,
            [
                (
                    column,
                    operations.get_db_converters(column)
                    + column.get_db_converters(operations.connection),
                )
                for column in (field.get_col(table) for field in fields)
            ],
        )

    def instance(self, values):
        """The instance of values, or None where the primary key is NULL (no row was
        joined)."""
        converted = {}
        for field, value, (column, converters) in zip(
            self.fields, values, self.column_converters, strict=True
        ):
            for convert in converters:  # a UUID from SQLite's text, a datetime from a string
                value = convert(value, column, connection)
            converted[field.attname] = value
        if converted[self.model._meta.pk.attname] is None:
            return None
        return self.model.from_db(connection.alias, list(converted), list(converted.values()))


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
            image_count=count_per(Image.objects, "task"),
            category_count=count_per(Category.objects, "task"),
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

    @classmethod
    def answering(cls, owner, code=None, watson_id=None):
        """As Task.objects.get(owner=owner, code=code) (or watson_id=watson_id), with the
        active run as a classify reads it (TrainingRunQuerySet.answering). In one plain
        query (one_row) of 0.05 ms: the ORM's join of the two cost 0.6 ms of every
        classify."""
        if code is not None:
            column, value = "code", cls._meta.get_field("code").get_db_prep_value(code, connection)
        else:
            column, value = "watson_id", watson_id
        table = connection.ops.quote_name(cls._meta.db_table)
        task = one_row(
            cls,
            f"{table}.{column} = %s AND {table}.owner_id = %s",
            [value, owner.pk],
            joined="active_run",
            joined_fields=answering_fields(),
        )
        if task is None:
            raise cls.DoesNotExist
        return task

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
        # A subquery of Image.objects, not Count("images"): a join would count deleted photos.
        return self.categories.annotate(image_count=count_per(Image.objects, "category"))

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
        deleted = self.photos().exclude(pk=kept.pk).discard()
        self.photos().update(duplicate_group=None)
        return deleted

    def keep_all(self):
        """Its photos are not copies after all: the group is not shown again."""
        return self.photos().update(duplicate_group=None)

    def move_to(self, category):
        """All its photos into category (None is Unsorted), where copies belong together."""
        return self.photos().move_to(category)


# "12 photos added, 3 moved": the first change names the photos, the others only count.
FIRST_CHANGE = {
    "added": ngettext_lazy("%(count)s photo added", "%(count)s photos added", "count"),
    "moved": ngettext_lazy("%(count)s photo moved", "%(count)s photos moved", "count"),
    "deleted": ngettext_lazy("%(count)s photo deleted", "%(count)s photos deleted", "count"),
}
LATER_CHANGES = {
    "added": pgettext_lazy("photos", "%(count)s added"),
    "moved": pgettext_lazy("photos", "%(count)s moved"),
    "deleted": pgettext_lazy("photos", "%(count)s deleted"),
}


@dataclass(frozen=True)
class PhotoChanges:
    """How a task's labelled photos differ from those a run trained on."""

    added: int  # in a category now, not among those it trained on
    moved: int  # in another category now, or in Unsorted
    deleted: int

    def __bool__(self):
        return bool(self.added or self.moved or self.deleted)

    def __str__(self):
        """ "12 photos added, 3 moved, 1 deleted", naming only what happened."""
        done = [
            (count, verb)
            for count, verb in (
                (self.added, "added"),
                (self.moved, "moved"),
                (self.deleted, "deleted"),
            )
            if count
        ]
        words = [
            (LATER_CHANGES if words_before else FIRST_CHANGE)[verb] % {"count": count}
            for words_before, (count, verb) in enumerate(done)
        ]
        return pgettext("list separator", ", ").join(words)


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
            gettext_lazy("Suspected mislabels"),
            Q(category__isnull=False, suggestion__isnull=False, reviewed=False),
            "suggestion_score",
        ),
        # Unsorted photos whose suggestion barely leads the runner-up.
        ReviewQueue(
            "unsure",
            gettext_lazy("Unsure"),
            Q(category=None, suggestion_margin__lt=UNSURE_MARGIN),
            "suggestion_margin",
            ascending=True,
        ),
        # Photos far from every category's photos.
        ReviewQueue(
            "outliers",
            gettext_lazy("Outliers"),
            Q(outlier_score__gt=1, reviewed=False),
            "outlier_score",
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
                value = None if value == "none" else float(value)
                images = images.filter(ranked_after(rank, value, int(last), ascending))

        def cursor(image):
            value = getattr(image, rank)
            return f"{'none' if value is None else repr(value)}:{image.id}"

        return keyset_page(images, size, cursor)

    def neighbours(self, image, rank=None, ascending=False):
        """(the image before image among these, the one after it), in the order page
        (rank None) or page_ranked gives them; None at either end. image itself need not
        be among these."""
        if rank is None:
            before = self.filter(id__gt=image.id).order_by("id")
            after = self.filter(id__lt=image.id).order_by("-id")
        else:
            field, value = models.F(rank), getattr(image, rank)
            forward = field.asc(nulls_last=True) if ascending else field.desc(nulls_last=True)
            backward = field.desc(nulls_first=True) if ascending else field.asc(nulls_first=True)
            after = self.filter(ranked_after(rank, value, image.id, ascending))
            after = after.order_by(forward, "-id")
            before = self.exclude(ranked_after(rank, value, image.id, ascending))
            before = before.exclude(pk=image.pk).order_by(backward, "id")
        return before.first(), after.first()

    def discard(self):
        """Delete these images as a person does: hidden at once from every page, count,
        answer and training (Image.objects), and kept VIZE_UNDO_MINUTES for an undo
        (tasks/undoing.py) before the workers remove them and their files. How many."""
        return self.update(deleted_at=timezone.now())

    def restore(self):
        """Bring back those of these images that were deleted and not removed yet; how
        many. Only Image.with_deleted holds deleted images."""
        return self.exclude(deleted_at=None).update(deleted_at=None)

    def in_review(self, queue):
        """These images in the review queue, most suspicious first."""
        return self.filter(queue.members)

    def accept_suggestions(self, at_least=0.0):
        """Move the images among these whose suggestion scores at least at_least into
        the suggested categories (for a labelled photo, the category a head that never saw
        it prefers); (code, id of the category it left or None) of each photo moved."""
        accepted = self.filter(suggestion__isnull=False, suggestion_score__gte=at_least)
        with transaction.atomic():
            moved = list(accepted.select_for_update().values_list("code", "category_id"))
            accepted.filter(code__in=[code for code, _ in moved]).update(
                category=models.F("suggestion"), **NO_SUGGESTION
            )
        return moved

    def move_to(self, category):
        """Move these images into category (None is Unsorted); how many. A suggestion of
        the category they land in is answered, so it goes (accept_suggestions does the
        same): a tile must not go on suggesting the category it now sits in."""
        with transaction.atomic():
            if category is not None:
                self.filter(suggestion=category).update(**NO_SUGGESTION)
            return self.update(category=category)

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

    def delete_with_files(self):
        """Delete these images and, once that has committed, their stored files."""
        names = []
        for original, thumbnail in self.values_list("file", "thumbnail"):
            names += [original, thumbnail]
        with transaction.atomic():
            _, deleted = self.delete()
            transaction.on_commit(lambda: delete_files(default_storage, names))
        # delete() counts the embedding rows that go with the images as well.
        return deleted.get(self.model._meta.label, 0)


def display_name(original_name):
    """The file name without the folders it had inside a zip archive."""
    return original_name.rsplit("/", 1)[-1]


def ranked_after(rank, value, last_id, ascending):
    """Where an image comes after the image (value of rank, last_id) in the order of
    page_ranked: rank highest first (lowest when ascending), those without one last, the
    newest first among equals."""
    if value is None:
        return Q(**{rank: None}, id__lt=last_id)
    beyond = f"{rank}__gt" if ascending else f"{rank}__lt"
    return Q(**{beyond: value}) | Q(**{rank: value}, id__lt=last_id) | Q(**{rank: None})


class NearCopies:
    """Which of a task's images each photo of an upload is a near-copy of
    (tasks/near_copies.py), asked photo by photo. The images' hashes are read at the
    first photo, then only those of images stored since: read whole for every photo, at
    20,000 photos they took 30 ms of the 41 each photo's lookup cost, and storing a photo
    took 54 to 68 ms instead of 14 to 15. An image stored out of its id's order while
    the upload runs (committed late by a concurrent upload, or brought back from
    deletion by another) can go unseen by it; one it brings back itself is told
    (brought_back). An image deleted meanwhile is left out of the answer, but may take
    one of the closest hashes' places (near_copies.MOST_CANDIDATES)."""

    def __init__(self, task):
        self.images = task.images
        self.ids = self.hashes = np.empty(0, dtype=np.int64)
        self.read_up_to = 0  # the highest id read

    def copy_of(self, fingerprint):
        """The image a photo of this fingerprint is a near-copy of, the likest; None for
        none, or for no fingerprint."""
        if fingerprint is None:
            return None
        self.read_stored_since()
        nearest = self.ids[near_copies.candidates(fingerprint, self.hashes)].tolist()
        if not nearest:
            return None
        found = self.images.select_related("category").in_bulk(nearest)
        others = [found[pk] for pk in nearest if pk in found]  # not deleted since
        likest = near_copies.likest_copy(fingerprint, [bytes(o.fingerprint) for o in others])
        return None if likest is None else others[likest]

    def brought_back(self, image):
        """An image the upload brought back from deletion: its id is as old as it was, so
        the reads of images stored since may have passed it."""
        if image.pk <= self.read_up_to and image.perceptual_hash is not None:
            self.remember([image.pk], [image.perceptual_hash])

    def read_stored_since(self):
        newer = self.images.filter(id__gt=self.read_up_to).exclude(perceptual_hash=None)
        rows = newer.values_list("id", "perceptual_hash")
        ids, hashes = np.array(list(rows), dtype=np.int64).reshape(-1, 2).T
        self.remember(ids, hashes)
        self.read_up_to = max(self.read_up_to, ids.max(initial=0))

    def remember(self, ids, hashes):
        self.ids = np.concatenate([self.ids, np.asarray(ids, dtype=np.int64)])
        self.hashes = np.concatenate([self.hashes, np.asarray(hashes, dtype=np.int64)])


class ImageManager(models.Manager.from_queryset(ImageQuerySet)):
    """The images not deleted: the default manager, so that every list and count of the
    site (a task's images, a category's, the API's, training's) leaves deleted ones out
    in this one place. Image.with_deleted sees them all."""

    def get_queryset(self):
        return super().get_queryset().filter(deleted_at=None)


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
    # When a person deleted it: it waits, hidden, for an undo (ImageQuerySet.discard).
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = ImageManager()
    with_deleted = ImageQuerySet.as_manager()

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
        return display_name(self.original_name)

    def join_copies_of(self, original):
        """This photo joins the group of the photo it copies, which starts one if it
        had none."""
        if original.duplicate_group is None:
            Image.objects.filter(pk=original.pk).update(duplicate_group=original.pk)
            original.duplicate_group = original.pk
        self.duplicate_group = original.duplicate_group
        Image.objects.filter(pk=self.pk).update(duplicate_group=self.duplicate_group)


class JSONArrayLength(models.Func):
    """The length of a JSON array in the database, so that listing runs does not decode
    their lists of samples (10,000 photos: about 40 ms each)."""

    function = "JSON_ARRAY_LENGTH"
    output_field = models.IntegerField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, function="JSONB_ARRAY_LENGTH", **extra_context)


@cache
def answering_fields():
    """TrainingRun's fields but the growing ones (TrainingRunQuerySet.answering)."""
    fields = TrainingRun._meta.concrete_fields
    return tuple(field for field in fields if field.name not in TrainingRun.GROWING_FIELDS)


class TrainingRunQuerySet(models.QuerySet):
    def answering(self):
        """Runs as a classify reads them: without the columns that grow with the task,
        which a classify never reads (the samples alone are tens of kilobytes of JSON
        to fetch and parse per request for a few hundred photos)."""
        return self.defer(*TrainingRun.GROWING_FIELDS)

    def listed(self):
        """Runs as a list shows them: sample_count, without the samples and mistakes."""
        return self.defer("samples", "misclassified").annotate(
            sample_count=JSONArrayLength("samples")
        )


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
    which goes back to waiting. finish and fail call the task's webhooks once they commit.
    """

    # The JSON columns that grow with the task's photos and the run's measures.
    GROWING_FIELDS = ("samples", "misclassified", "held_out", "metrics", "formats")

    class Status(models.TextChoices):
        QUEUED = "queued", pgettext_lazy("run status", "Queued")
        EMBEDDING = "embedding", pgettext_lazy("run status", "Reading the images")
        EVALUATING = "evaluating", pgettext_lazy("run status", "Measuring accuracy")
        FITTING = "fitting", pgettext_lazy("run status", "Fitting the model")
        READY = "ready", pgettext_lazy("run status", "Ready")
        FAILED = "failed", pgettext_lazy("run status", "Failed")
        CANCELLED = "cancelled", pgettext_lazy("run status", "Cancelled")

    CANCELLED_REASON = "Cancelled."

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

    objects = TrainingRunQuerySet.as_manager()

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

    def photo_changes(self):
        """What happened to the task's photos since this run took them (its samples, the
        labelled photos of the moment it was queued, or of its last take_in). A category
        renamed or deleted since counts its photos as moved: the model still answers the
        old name."""
        # The old name itself stands for a category that no longer has it: it equals no id.
        ids = dict(self.task.categories.values_list("name", "pk"))
        took = {plain_code(code): ids.get(name, name) for code, name in self.samples}
        # Codes read as text: making 10,000 of them UUID objects took 200 ms of 260.
        rows = self.task.images.annotate(text=Cast("code", models.CharField()))
        now = {
            plain_code(code): category for code, category in rows.values_list("text", "category")
        }
        return PhotoChanges(
            added=sum(1 for code, category in now.items() if category and code not in took),
            moved=sum(1 for code, label in took.items() if code in now and now[code] != label),
            deleted=sum(1 for code in took if code not in now),
        )

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
                self.announce()
        return finished

    def fail(self, reason):
        failed = self._change(
            models.Q(status__in=self.ACTIVE),
            status=self.Status.FAILED,
            reason=reason,
            finished=timezone.now(),
        )
        if failed:
            self.announce()
        return failed

    def announce(self):
        """Once this change commits, the task's webhooks are called about the run's new
        state (tasks/webhooks.py, which imports this module: hence the import here)."""
        from tasks import webhooks

        transaction.on_commit(partial(webhooks.announce, self.pk, self.status))

    def cancel(self):
        return self._change(
            models.Q(status__in=self.ACTIVE),
            status=self.Status.CANCELLED,
            reason=self.CANCELLED_REASON,
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
        """The unrevoked key of an active user with this secret, with its owner, or None
        (one_row: every API call asks)."""
        quote = connection.ops.quote_name
        keys, users = quote(cls._meta.db_table), quote(get_user_model()._meta.db_table)
        key = one_row(
            cls,
            f"{keys}.digest = %s AND {keys}.revoked IS NULL AND {users}.is_active",
            [cls.digest_of(secret)],
            joined="owner",
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


def count_per(rows, field):
    """A subquery: how many of rows (a queryset) point to the outer row by field."""
    grouped = rows.filter(**{field: OuterRef("pk")}).order_by().values(field)
    return Coalesce(Subquery(grouped.annotate(count=Count("pk")).values("count")), 0)


class Webhook(models.Model):
    """A URL that tasks/webhooks.py calls with a signed POST when a run of its task
    becomes ready or fails."""

    # Hooks one task may have.
    LIMIT = 5
    # Deliveries each hook keeps in its log.
    LOG_LENGTH = 20
    # Every secret starts so, as API keys start with vize_: a leaked one is recognised.
    PREFIX = "whsec_"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    task = models.ForeignKey(Task, models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    # Kept as it is, since every call is signed with it; shown only in the answer that
    # created the hook.
    secret = models.CharField(max_length=64)
    # The site's address as the person who added the hook reached it: the links in the
    # calls start with it (the worker that calls has no request to ask).
    site = models.URLField(max_length=200)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.url

    @classmethod
    def new_secret(cls):
        return cls.PREFIX + secrets.token_urlsafe(32)

    def log(self, delivery, event, attempt, status_code, error):
        """Record one call (its HTTP status, or why none came), keeping the last
        LOG_LENGTH."""
        self.deliveries.create(
            delivery=delivery, event=event, attempt=attempt, status_code=status_code, error=error
        )
        kept = list(self.deliveries.values_list("pk", flat=True)[: self.LOG_LENGTH])
        self.deliveries.exclude(pk__in=kept).delete()


class WebhookDelivery(models.Model):
    """One call of a webhook: an attempt at delivering one event."""

    webhook = models.ForeignKey(Webhook, models.CASCADE, related_name="deliveries")
    # The same for every attempt at one event (the X-Vize-Delivery header).
    delivery = models.UUIDField()
    event = models.CharField(max_length=20)
    attempt = models.PositiveSmallIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.event} to {self.webhook} (attempt {self.attempt})"

    @property
    def delivered(self):
        return self.status_code is not None and 200 <= self.status_code < 300


def plain_code(code):
    """A code as text, without the hyphens that PostgreSQL writes and SQLite does not."""
    return code.replace("-", "")


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


class DatasetZip(models.Model):
    """A task's photos and labels as one zip (tasks/datasets.py), built by a job for one
    state of its photos, names and categories and one run's answers, which fingerprint
    names: a change makes another fingerprint, so a zip is never served stale. Once a
    zip is stored, those of the same run's earlier states go (replace_older)."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    task = models.ForeignKey(Task, models.CASCADE, related_name="dataset_zips")
    # The run whose split, prediction and score labels.csv gives; none for none.
    run = models.ForeignKey(TrainingRun, models.CASCADE, null=True, blank=True, related_name="+")
    fingerprint = models.CharField(max_length=64)
    ready = models.BooleanField(default=False)
    # Why the last build failed; empty while none has.
    failure = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint("task", "fingerprint", name="dataset_zip_unique_state"),
        ]

    def __str__(self):
        return f"dataset zip {self.fingerprint[:12]} of {self.task}"

    @property
    def file_name(self):
        return f"{self.task.storage_prefix}/datasets/{self.fingerprint}.zip"

    def _change(self, condition, **changes):
        return bool(DatasetZip.objects.filter(condition, pk=self.pk).update(**changes))

    def built(self):
        """Its zip is stored; False when the row was replaced meanwhile."""
        return self._change(Q(ready=False), ready=True, failure="")

    def build_failed(self, reason):
        """The first reason a build failed; a later one changes nothing until a retry."""
        if self._change(Q(ready=False, failure=""), failure=reason):
            self.failure = reason

    def retry_build(self):
        """A failed build may be tried again (when someone asks for it)."""
        self._change(Q(failure__gt=""), failure="")
        self.refresh_from_db(fields=["ready", "failure"])

    def replace_older(self):
        """Remove the zips of the task's earlier states for the same run, rows and files."""
        older = list(
            DatasetZip.objects.filter(
                task=self.task_id, run=self.run_id, pk__lt=self.pk
            ).select_related("task")
        )
        names = [dataset.file_name for dataset in older]
        with transaction.atomic():
            DatasetZip.objects.filter(pk__in=[dataset.pk for dataset in older]).delete()
            transaction.on_commit(lambda: delete_files(default_storage, names))
