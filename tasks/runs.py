"""The rules about training runs that the pages, /api/v1 and the Watson API share:
whether a task may train, starting a run (one rule for pressing Start while one is
queued), the model zip (as tasks/zips.py asks for it), cancelling, and settling runs
whose worker died. The
run's state changes themselves are methods of TrainingRun; the work happens on a worker
(tasks/jobs.py)."""

import contextlib
import logging
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum

import django_rq
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from redis.exceptions import RedisError
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus

from tasks import downloads, workspaces, zips
from tasks.models import TrainingRun, delete_folder
from trainer.choices import (
    ACCURATE,
    DEFAULT_BASE_MODEL,
    DEFAULT_MODE,
    DEFAULT_TIME_BUDGET,
    HOLDOUT_MIN_PER_CATEGORY,
)

logger = logging.getLogger(__name__)

MIN_IMAGES = 2
FEW_IMAGES = 5
IMBALANCE = 3


TIMED_OUT = (
    "Training took longer than the limit (VIZE_TRAINING_TIMEOUT) and was stopped; a shorter "
    "time budget or fast mode fits."
)


QUEUE_UNAVAILABLE = "The job queue is unavailable, so the run could not start. Try again."
JOB_LOST = "The job was lost from the queue before it started."
WORKER_SILENT = "The worker stopped reporting (it was killed, ran out of memory or restarted)."


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
            gettext(
                "Training needs at least two categories with images (one of them may be the "
                "negative examples)."
            )
        )
    for category in categories:
        if category.is_negative and not category.image_count:
            continue  # negative examples are optional
        if category.image_count < MIN_IMAGES:
            result.problems.append(
                ngettext(
                    "“%(name)s” has %(count)s image; each category needs at least %(least)s "
                    "(add images or delete the category).",
                    "“%(name)s” has %(count)s images; each category needs at least %(least)s "
                    "(add images or delete the category).",
                    category.image_count,
                )
                % {"name": category.name, "count": category.image_count, "least": MIN_IMAGES}
            )
        elif category.image_count < FEW_IMAGES:
            result.warnings.append(
                gettext(
                    "“%(name)s” has only %(count)s images; %(few)s or more give a better model."
                )
                % {"name": category.name, "count": category.image_count, "few": FEW_IMAGES}
            )
    counts = [c.image_count for c in positive if c.image_count]
    if len(counts) >= 2 and max(counts) > IMBALANCE * min(counts):
        biggest = max(positive, key=lambda c: c.image_count)
        smallest = min((c for c in positive if c.image_count), key=lambda c: c.image_count)
        result.warnings.append(
            gettext(
                "The categories are out of balance: “%(biggest)s” has %(big)s images, "
                "“%(smallest)s” %(small)s. The model will lean towards the bigger one."
            )
            % {
                "biggest": biggest.name,
                "big": biggest.image_count,
                "smallest": smallest.name,
                "small": smallest.image_count,
            }
        )
    unsorted = task.unsorted_count()
    if unsorted:
        result.warnings.append(
            ngettext(
                "%(count)s image in Unsorted will not be used.",
                "%(count)s images in Unsorted will not be used.",
                unsorted,
            )
            % {"count": unsorted}
        )
    return result


def frozen_samples(task):
    rows = task.images.exclude(category=None).order_by("id")
    return [[str(code), name] for code, name in rows.values_list("code", "category__name")]


def negative_label(task):
    negative = task.categories.filter(is_negative=True).first()
    return negative.name if negative else ""


class Started(Enum):
    """What pressing Start did. Every face maps it to its own answer."""

    NEW = "new"  # a new run is queued
    JOINED = "joined"  # the queued run takes in the images added since it was queued
    BUSY = "busy"  # a run is already training on the images it took


def start(task, base_model=DEFAULT_BASE_MODEL, mode=DEFAULT_MODE, time_budget=DEFAULT_TIME_BUDGET):
    """(run, Started): a new queued run, or the run already queued or training. The
    choices are the caller's to validate (TrainForm, the API's RunIn); the rules about the
    task's images are checked here."""
    current = task.current_run()
    if current:
        return join(task, current)
    check = readiness(task)
    if not check.can_train:
        raise TrainingRefused(" ".join(check.problems))
    if mode == ACCURATE:
        small = [
            c for c in task.categories_with_counts() if 0 < c.image_count < HOLDOUT_MIN_PER_CATEGORY
        ]
        if small:
            raise TrainingRefused(
                f"Accurate mode needs at least {HOLDOUT_MIN_PER_CATEGORY} images in each "
                f"category (“{small[0].name}” has {small[0].image_count}); fast mode works "
                "with fewer."
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
        # Another request started one between our check and our insert; if that run has
        # already ended too, this press starts the next.
        current = task.current_run()
        return join(task, current) if current else start(task, base_model, mode, time_budget)
    enqueue(run)
    return run, Started.NEW


def join(task, current):
    joined = current.take_in(frozen_samples(task), negative_label(task))
    return current, Started.JOINED if joined else Started.BUSY


def enqueue(run):
    # The job is named, not imported: tasks.jobs imports this module, and the web
    # process has no need to load the worker's side.
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
        run.fail(QUEUE_UNAVAILABLE)
        raise QueueUnavailable(str(error)) from error


def embed_in_background(task, continued=False):
    """Queue the embedding of new images. Only a head start: if the queue is down,
    training embeds them itself. A job continued from one still running gets an id of
    its own (RQ would take the running job's id for the same job)."""
    if not settings.VIZE_EMBED_ON_UPLOAD:
        return
    try:
        django_rq.get_queue("default").enqueue(
            "tasks.jobs.embed_new_images",
            task.pk,
            job_id=None if continued else f"embed-task-{task.code}",
        )
    except RedisError:
        logger.warning(
            "Redis is unavailable; the images of task %s will be embedded when it trains", task.code
        )


SUGGESTING_PREFIX = "suggest-task-"


def suggest_in_background(task_id):
    """Queue a refresh of the task's suggestions (tasks/jobs.py suggest_categories) on a
    queue of their own, so that they follow a move within seconds whatever the other
    workers are doing. One is enough while one waits: it reads the labels as they are
    when it runs. Only a help: with the queue down, the suggestions wait for the next."""
    if not settings.VIZE_SUGGESTIONS:
        return
    queue = django_rq.get_queue("suggestions")
    # Each job an id of its own: one enqueued under the id of the job running now would
    # share its record, which expires when that job ends, and be skipped.
    prefix = f"{SUGGESTING_PREFIX}{task_id}-"
    try:
        if not any(job.startswith(prefix) for job in queue.get_job_ids()):
            queue.enqueue(
                "tasks.jobs.suggest_categories", task_id, job_id=f"{prefix}{uuid.uuid4().hex}"
            )
    except RedisError:
        logger.warning("Redis is unavailable; the suggestions of task %s wait", task_id)


PACKAGING_PREFIX = "package-run-"


def package_in_background(run):
    """Queue the packaging of the run's model zip (tasks/jobs.py package_run). Asking
    twice is harmless: the job does nothing once the zip is stored."""
    zips.enqueue(
        ModelZip(run), "tasks.jobs.package_run", run.pk, job_id=f"{PACKAGING_PREFIX}{run.code}"
    )


def choose_operating_point(run, threshold):
    """The one rule of the pages and the API: a ready run's model answers "needs review"
    below threshold from now on, on the server at once, and in its model zip once
    packaged again. False for a run that is not ready; ValidationError for a threshold
    out of bounds."""
    if not run.choose_operating_point(threshold):
        return False
    package_in_background(run)
    return True


def choose_served_model(run, int8):
    """The one rule of the pages and the API: a ready run answers with its int8 model
    (int8 True, where its formats offer one) or with model.onnx, on the server at once,
    and in its model zip's predict.py once packaged again. False for a run that is not
    ready, or has no int8 model to offer."""
    if not run.choose_served_model(int8):
        return False
    package_in_background(run)
    return True


@dataclass
class ModelZip:
    """A ready run's model zip, as tasks/zips.py asks for it: packaged by a job once the
    run is ready (TorchScript needs torch, which the web process never imports), and
    again at each new operating point."""

    run: TrainingRun
    what = "model zip"
    making = "packaged"

    @property
    def ready(self):
        return self.run.export_ready

    @property
    def failure(self):
        return self.run.export_failure

    def retry(self):
        if not self.run.retry_packaging():
            self.run.refresh_from_db(fields=["export_ready", "export_failure"])

    def failed(self, reason):
        self.run.packaging_failed(reason)

    def build_in_background(self):
        package_in_background(self.run)

    def download(self):
        return downloads.model_zip(self.run)


def cancel(run):
    """Cancel the run: a queued job is taken off the queue, and the work-horse of a job
    at work is stopped by its worker, whatever step it is in (a head's fit on thousands
    of photos is silent for many seconds); job_died then removes what it had written."""
    if not run.cancel():
        return False
    with contextlib.suppress(NoSuchJobError, InvalidJobOperation, RedisError, ValueError):
        connection = django_rq.get_connection("training")
        job = Job.fetch(run.job_id, connection=connection)
        if job.worker_name:
            send_stop_job_command(connection, job.id)
        else:
            job.cancel()
    return True


WORKSPACE_PREFIX = "vizeapp-run-"


def workspace_prefix(run):
    """The name's start of the temporary folder a training job works on run in."""
    return f"{WORKSPACE_PREFIX}{run.code}-"


def job_died(job_id, detail):
    """Settle the run of a job that the worker saw end without reporting (its process
    killed, out of memory): a training run fails and any model files it had begun to
    store are removed; a packaging says why it failed, so that nobody waits on it. A job
    that failed on its own has already said so; this then changes nothing."""
    for prefix, settle in (
        (TrainingRun.JOB_PREFIX, training_died),
        (PACKAGING_PREFIX, packaging_died),
    ):
        code = job_id.removeprefix(prefix)
        if code != job_id:
            run = TrainingRun.objects.select_related("task").filter(code=code).first()
            if run is not None:
                settle(run, detail.strip())
            return


def packaging_died(run, detail):
    zips.died(ModelZip(run), detail)


def training_died(run, detail):
    if run.started and timezone.now() - run.started >= timedelta(
        seconds=settings.VIZE_TRAINING_TIMEOUT
    ):
        reason = TIMED_OUT
    else:
        reason = f"The training process died (killed, or out of memory): {detail}"
    # A cancelled run's work-horse is stopped by the cancel (cancel above): what it had
    # stored or begun in its workspace goes as a failed run's does.
    if run.fail(reason) or run.status == TrainingRun.Status.CANCELLED:
        delete_folder(default_storage, run.storage_folder)
    remove_settled_workspaces()


def remove_settled_workspaces():
    """The workspaces of this copy's runs that are no longer active, which
    their killed jobs could not remove: called by the worker that saw a job die and by
    every worker's sweep (for a worker that died with its job), never by a page."""
    active = tuple(
        workspace_prefix(run)
        for run in TrainingRun.objects.filter(status__in=TrainingRun.ACTIVE).only("code")
    )
    for folder in workspaces.begun(WORKSPACE_PREFIX):
        if not folder.name.startswith(active):
            shutil.rmtree(folder, ignore_errors=True)


# Seconds between the heartbeats a worker (tasks/worker.py) sends for the job it runs;
# six missed in a row and the worker is gone.
WORKER_HEARTBEAT = 5
WORKER_SILENCE = timedelta(seconds=6 * WORKER_HEARTBEAT)


def reconcile(runs):
    """Fail the runs whose job is gone: a worker killed, out of memory or restarted
    never reports back, so the database is settled from what Redis still knows. A run
    silent for VIZE_RUN_STALE_SECONDS is asked about, and failed only when its job is
    neither waiting in the queue nor held by a worker whose heartbeat still comes; a long
    silent step of a live job is left alone."""
    stale_before = timezone.now() - timedelta(seconds=settings.VIZE_RUN_STALE_SECONDS)
    for run in runs:
        if not run.is_active or (run.heartbeat or run.created) > stale_before:
            continue
        try:
            job = Job.fetch(run.job_id, connection=django_rq.get_connection("training"))
        except NoSuchJobError:
            job = None
        except RedisError:
            logger.warning("Redis is unavailable; run %s is left as it is", run.code)
            continue
        if job_is_alive(job, run):
            continue
        reason = JOB_LOST if run.status == TrainingRun.Status.QUEUED else WORKER_SILENT
        if not run.fail(reason):
            run.refresh_from_db()


def job_is_alive(job, run):
    """Whether Redis still has the run's job waiting (for a queued run) or held by a
    worker that beats."""
    if job is None:
        return False
    status = job.get_status()
    if run.status == TrainingRun.Status.QUEUED and status in (
        JobStatus.QUEUED,
        JobStatus.DEFERRED,
        JobStatus.SCHEDULED,
    ):
        return True
    return (
        status == JobStatus.STARTED
        and job.last_heartbeat is not None
        and timezone.now() - job.last_heartbeat < WORKER_SILENCE
    )
