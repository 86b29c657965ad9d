"""Zips that a job builds for a person to download: a run's model zip (runs.ModelZip)
and a task's dataset zip (datasets.DatasetBuild). One policy for asking for one, which
the pages and the API share, and one way for a job to queue, store or fail one."""

import logging
from enum import Enum
from pathlib import Path
from typing import Protocol

import django_rq
from django.core.files import File
from django.core.files.storage import default_storage
from django.http import HttpResponse
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from tasks import workspaces

logger = logging.getLogger(__name__)

# Why a zip is missing, as it is stored (the pages translate it: tasks/trainer_words.py).
QUEUE_UNAVAILABLE = "The job queue is unavailable, so the {what} could not be {making}."
NOT_MADE = "The {what} could not be {making}: {reason}."


class Built(Enum):
    """Where a zip stands, for whoever asked for it."""

    READY = "ready"  # stored: download it
    BUILDING = "building"  # a job is building it: ask again in a few seconds
    FAILED = "failed"  # its failure says why; asking with retry builds it again


class BuiltZip(Protocol):
    """A zip that a job builds once. what names it and making says what the job does,
    for the messages ("model zip", "packaged")."""

    what: str
    making: str

    @property
    def ready(self) -> bool:
        """Stored, and still the zip asked for."""

    @property
    def failure(self) -> str:
        """Why the last build failed; empty while none has."""

    def retry(self) -> None:
        """Clear a failure, so that the zip is built again, and read the state again (a
        racing retry may have cleared it first)."""

    def failed(self, reason: str) -> None:
        """Record the first reason a build failed."""

    def build_in_background(self) -> None:
        """Queue the job (enqueue below)."""

    def download(self) -> HttpResponse:
        """The stored zip, as an attachment."""


def ask(built, retry=False):
    """The one policy of the pages and the API: asking for a zip builds it if that has
    not happened yet; a build that failed is reported, and tried again only when asked
    with retry (the page's Try again, the API's POST), so that looking at a failure
    never repeats the work on every refresh."""
    if built.failure and retry:
        built.retry()
    if built.ready:
        return Built.READY
    if not built.failure:
        built.build_in_background()
    return Built.FAILED if built.failure else Built.BUILDING


WAITING = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED)


def enqueue(built, function, *args, job_id, **options):
    """Queue function(*args) on the default queue under job_id, unless that job is
    waiting or at work already: a page asks again every few seconds while it waits,
    and a second build of thousands of photos would only repeat the first. With the
    queue down, the build fails with that reason, so that nobody waits on a job that
    never runs."""
    queue = django_rq.get_queue("default")
    try:
        try:
            if Job.fetch(job_id, connection=queue.connection).get_status() in WAITING:
                return
        except NoSuchJobError:
            pass
        queue.enqueue(function, *args, job_id=job_id, **options)
    except RedisError:
        logger.warning(
            "Redis is unavailable; the %s %s is not %s", built.what, job_id, built.making
        )
        built.failed(QUEUE_UNAVAILABLE.format(what=built.what, making=built.making))


def store(built, name, write, workspace_prefix):
    """Have write(path) write the zip into a temporary folder named from
    workspace_prefix, then store it under name, once: a stored file never changes under
    its name, so a concurrent job that stored it first wins. A failure is recorded on
    built, in words (a full disk without the server's paths), and raised for the log."""
    try:
        with workspaces.temporary(workspace_prefix) as workspace:
            path = Path(workspace) / "built.zip"
            write(path)
            with path.open("rb") as handle:
                stored = default_storage.save(name, File(handle))
    except Exception as error:
        reason = error.strerror if is_file_error(error) else error
        built.failed(NOT_MADE.format(what=built.what, making=built.making, reason=reason))
        raise
    if stored != name:
        default_storage.delete(stored)


def died(built, detail):
    """The job building it was killed where it could not say so (tasks/worker.py)."""
    reason = f"the job died ({detail})"
    built.failed(NOT_MADE.format(what=built.what, making=built.making, reason=reason))


def is_file_error(error):
    """A full disk or a refused write: the server's trouble, told without the path of
    the file inside the server."""
    return isinstance(error, OSError) and bool(error.strerror)
