"""The RQ worker that runs vizeapp's jobs: RQ's own, which also keeps the training runs
in PostgreSQL true when a job dies where it cannot report (a work-horse killed by a
signal or the out-of-memory killer), and settles the runs of workers that died
altogether, and removes the temporary folders such jobs left. `manage.py rqworker
--worker-class tasks.worker.Worker training default` (and `suggestions`)."""

import importlib
from contextlib import contextmanager

from django.db import connections
from rq import Worker as RQWorker

from tasks import datasets, keeping, runs, undoing
from tasks.models import TrainingRun

# Seconds between the worker's sweeps of runs whose job is gone or silent.
RECONCILE_INTERVAL = 30


# Imported once by the worker, before it forks a work-horse for each job: imported in
# every horse, numpy, scikit-learn, onnxruntime and the trainer cost about a second of
# each job, most of a suggestions refresh and half of a small retrain. torch stays out
# (accurate mode imports it): it would add 0.8 GB to every worker.
PRELOADED = ("tasks.jobs", "trainer.embedding", "trainer.training")


class Worker(RQWorker):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("maintenance_interval", RECONCILE_INTERVAL)
        # RQ's default, 30 s, would leave a dead worker's run looking alive for minutes.
        kwargs.setdefault("job_monitoring_interval", runs.WORKER_HEARTBEAT)
        super().__init__(*args, **kwargs)
        for module in PRELOADED:
            importlib.import_module(module)

    def fork_work_horse(self, job, queue):
        # A forked work-horse must not share the parent's database socket: each job
        # opens its own connection, so one dropped while the worker idled is never used.
        connections.close_all()
        super().fork_work_horse(job, queue)

    def handle_job_failure(self, job, queue, *args, **kwargs):
        super().handle_job_failure(job, queue, *args, **kwargs)
        with own_connections():
            runs.job_died(job.id, kwargs.get("exc_string", ""))
            datasets.job_died(job.id, kwargs.get("exc_string", ""))

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        with own_connections():
            runs.reconcile(TrainingRun.objects.filter(status__in=TrainingRun.ACTIVE))
            runs.remove_settled_workspaces()
            keeping.remove_expired()
            undoing.remove_deleted()


@contextmanager
def own_connections():
    """Database connections opened for this block and closed after it: the worker holds
    none while it waits, so none is found dropped when it next writes."""
    connections.close_all()
    try:
        yield
    finally:
        connections.close_all()
