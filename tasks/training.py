"""Starting, cancelling, activating and reconciling training runs: the rules about
runs that pages and APIs share. The work itself happens in tasks/jobs.py, on a worker."""

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta

import django_rq
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from tasks.models import TrainingRun, delete_folder

logger = logging.getLogger(__name__)

BASE_MODELS = {
    TrainingRun.BaseModel.LITE0: "EfficientNet-Lite0: fastest",
    TrainingRun.BaseModel.LITE1: "EfficientNet-Lite1",
    TrainingRun.BaseModel.LITE2: "EfficientNet-Lite2: most accurate",
}
# Lite2: 0.967 against Lite0's 0.941 on hymenoptera (bench/train.py), seconds either way.
DEFAULT_BASE_MODEL = TrainingRun.BaseModel.LITE2
MODES = {
    TrainingRun.Mode.FAST: "Fast: a new head on the base model's features (seconds)",
    TrainingRun.Mode.ACCURATE: "Accurate: fine-tune the whole network (minutes)",
}
DEFAULT_MODE = TrainingRun.Mode.FAST
TIME_BUDGETS = {120: "2 minutes", 300: "5 minutes", 600: "10 minutes", 1200: "20 minutes"}
DEFAULT_TIME_BUDGET = 300
ACCURATE_MIN_IMAGES = 10
MIN_IMAGES = 2
FEW_IMAGES = 5
IMBALANCE = 3


TIMED_OUT = (
    "Training took longer than the limit (VIZE_TRAINING_TIMEOUT) and was stopped; a shorter "
    "time budget or fast mode fits."
)


class TrainingRefused(Exception):
    pass


class QueueUnavailable(Exception):
    pass


@dataclass
class Readiness:
    problems: list[str] = field(default_factory=list)  # training is refused
    warnings: list[str] = field(default_factory=list)  # the model may be poor

    @property
    def can_train(self):
        return not self.problems


def readiness(task):
    categories = list(task.categories_with_counts())
    positive = [c for c in categories if not c.is_negative]
    result = Readiness()
    filled = [c for c in categories if c.image_count]
    if len(filled) < 2 or not any(not c.is_negative for c in filled):
        # One category and its negative examples make a model too ("discs or not").
        result.problems.append(
            "Training needs at least two categories with images (one of them may be the "
            "negative examples)."
        )
    for category in categories:
        if category.is_negative and not category.image_count:
            continue  # negative examples are optional
        if category.image_count < MIN_IMAGES:
            result.problems.append(
                f"“{category.name}” has {category.image_count} image"
                f"{'' if category.image_count == 1 else 's'}; each category needs at least "
                f"{MIN_IMAGES} (add images or delete the category)."
            )
        elif category.image_count < FEW_IMAGES:
            result.warnings.append(
                f"“{category.name}” has only {category.image_count} images; "
                f"{FEW_IMAGES} or more give a better model."
            )
    counts = [c.image_count for c in positive if c.image_count]
    if len(counts) >= 2 and max(counts) > IMBALANCE * min(counts):
        biggest = max(positive, key=lambda c: c.image_count)
        smallest = min((c for c in positive if c.image_count), key=lambda c: c.image_count)
        result.warnings.append(
            f"The categories are out of balance: “{biggest.name}” has {biggest.image_count} "
            f"images, “{smallest.name}” {smallest.image_count}. The model will lean "
            f"towards the bigger one."
        )
    unsorted = task.unsorted_count()
    if unsorted:
        result.warnings.append(
            f"{unsorted} image{'' if unsorted == 1 else 's'} in Unsorted will not be used."
        )
    return result


def frozen_samples(task):
    rows = task.images.exclude(category=None).order_by("id")
    return [[str(code), name] for code, name in rows.values_list("code", "category__name")]


def negative_label(task):
    negative = task.categories.filter(is_negative=True).first()
    return negative.name if negative else ""


def start(task, base_model=DEFAULT_BASE_MODEL, mode=DEFAULT_MODE, time_budget=DEFAULT_TIME_BUDGET):
    """(run, started): a new queued run, or the run already queued or training. A run
    still queued takes in the images added since it was queued."""
    current = task.current_run()
    if current:
        TrainingRun.objects.filter(pk=current.pk, status=TrainingRun.Status.QUEUED).update(
            samples=frozen_samples(task), negative_label=negative_label(task)
        )
        current.refresh_from_db()
        return current, False
    if base_model not in BASE_MODELS:
        raise TrainingRefused(f"Unknown base model “{base_model}”.")
    if mode not in MODES:
        raise TrainingRefused(f"Unknown training mode “{mode}”.")
    if time_budget not in TIME_BUDGETS:
        raise TrainingRefused("Choose a time budget from the list.")
    check = readiness(task)
    if not check.can_train:
        raise TrainingRefused(" ".join(check.problems))
    if mode == TrainingRun.Mode.ACCURATE:
        small = [
            c for c in task.categories_with_counts() if 0 < c.image_count < ACCURATE_MIN_IMAGES
        ]
        if small:
            raise TrainingRefused(
                f"Accurate mode needs at least {ACCURATE_MIN_IMAGES} images in each category "
                f"(“{small[0].name}” has {small[0].image_count}); fast mode works with fewer."
            )
    try:
        with transaction.atomic():
            run = task.runs.create(
                base_model=base_model,
                mode=mode,
                time_budget=time_budget,
                samples=frozen_samples(task),
                negative_label=negative_label(task),
            )
    except IntegrityError:
        # Another request started one between our check and our insert.
        return task.current_run(), False
    enqueue(run)
    return run, True


def enqueue(run):
    try:
        django_rq.get_queue("training").enqueue(
            "tasks.jobs.train_run",
            run.pk,
            job_id=run.job_id,
            job_timeout=settings.VIZE_TRAINING_TIMEOUT,
            result_ttl=3600,
            failure_ttl=86400,
        )
    except RedisError as error:
        fail(run, "The job queue is unavailable, so the run could not start. Try again.")
        raise QueueUnavailable(str(error)) from error


def embed_in_background(task):
    """Queue the embedding of new images. Only a head start: if the queue is down,
    training embeds them itself."""
    if not settings.VIZE_EMBED_ON_UPLOAD:
        return
    try:
        django_rq.get_queue("default").enqueue(
            "tasks.jobs.embed_new_images", task.pk, job_id=f"embed-task-{task.code}"
        )
    except RedisError:
        logger.warning(
            "Redis is unavailable; the images of task %s will be embedded when it trains", task.code
        )


def package_in_background(run):
    """Queue the packaging of the run's model zip (tasks/jobs.py package_run); a failed
    packaging is tried again only when someone asks (retry_packaging), not on every
    visit of the waiting page."""
    if run.export_failure:
        return
    try:
        django_rq.get_queue("default").enqueue(
            "tasks.jobs.package_run", run.pk, job_id=f"package-run-{run.code}"
        )
    except RedisError:
        logger.warning("Redis is unavailable; the model zip of run %s waits", run.code)


def retry_packaging(run):
    TrainingRun.objects.filter(pk=run.pk).update(export_failure="")
    run.export_failure = ""
    package_in_background(run)


def fail(run, reason):
    """Whether the run was still active and is now failed."""
    return bool(
        TrainingRun.objects.filter(pk=run.pk, status__in=TrainingRun.ACTIVE).update(
            status=TrainingRun.Status.FAILED, reason=reason, finished=timezone.now()
        )
    )


def cancel(run):
    """Mark the run cancelled; a job that is training sees it at its next progress
    report and stops, and a queued job is taken off the queue."""
    cancelled = TrainingRun.objects.filter(pk=run.pk, status__in=TrainingRun.ACTIVE).update(
        status=TrainingRun.Status.CANCELLED, reason="Cancelled.", finished=timezone.now()
    )
    if cancelled:
        with contextlib.suppress(NoSuchJobError, RedisError, ValueError):
            Job.fetch(run.job_id, connection=django_rq.get_connection("training")).cancel()
    return bool(cancelled)


def activate(run):
    """Make a ready run the model that answers for its task (a rollback, or a redo)."""
    if run.status != TrainingRun.Status.READY:
        raise TrainingRefused("Only a ready run can answer for the task.")
    run.task.active_run = run
    run.task.save(update_fields=["active_run", "updated"])


def job_died(job_id, detail):
    """Fail the run of a training job that the worker saw end without reporting (its
    process killed, out of memory), and remove any model files it had begun to store.
    A job that failed on its own has already failed its run; this then changes nothing."""
    code = job_id.removeprefix(TrainingRun.JOB_PREFIX)
    if code == job_id:
        return
    run = TrainingRun.objects.select_related("task").filter(code=code).first()
    if run is None:
        return
    if run.started and timezone.now() - run.started >= timedelta(
        seconds=settings.VIZE_TRAINING_TIMEOUT
    ):
        reason = TIMED_OUT
    else:
        reason = f"The training process died (killed, or out of memory): {detail.strip()}"
    if fail(run, reason):
        delete_folder(default_storage, run.storage_folder)


def reconcile(runs):
    """Fail the runs whose job is gone: a worker killed, out of memory or restarted
    never reports back, so the database is settled from what Redis still knows."""
    stale_before = timezone.now() - timedelta(seconds=settings.VIZE_RUN_STALE_SECONDS)
    for run in runs:
        if not run.is_active:
            continue
        last_sign = run.heartbeat or run.created
        if last_sign > stale_before:
            continue
        try:
            status = Job.fetch(
                run.job_id, connection=django_rq.get_connection("training")
            ).get_status()
        except NoSuchJobError:
            status = None
        except RedisError:
            logger.warning("Redis is unavailable; run %s is left as it is", run.code)
            continue
        if run.status == TrainingRun.Status.QUEUED and status in (
            JobStatus.QUEUED,
            JobStatus.DEFERRED,
            JobStatus.SCHEDULED,
        ):
            continue
        reason = (
            "The job was lost from the queue before it started."
            if run.status == TrainingRun.Status.QUEUED
            else "The worker stopped reporting (it was killed, ran out of memory or restarted)."
        )
        fail(run, reason)
        run.refresh_from_db()
