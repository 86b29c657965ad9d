"""The RQ worker that runs vizeapp's jobs: RQ's own, which also keeps the training runs
in PostgreSQL true when a job dies where it cannot report (a work-horse killed by a
signal or the out-of-memory killer), and settles the runs of workers that died
altogether. `manage.py rqworker --worker-class tasks.worker.Worker training default`."""

from rq import Worker as RQWorker

from tasks import training
from tasks.models import TrainingRun

# Seconds between the worker's sweeps of runs whose job is gone or silent.
RECONCILE_INTERVAL = 30


class Worker(RQWorker):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("maintenance_interval", RECONCILE_INTERVAL)
        super().__init__(*args, **kwargs)

    def handle_job_failure(self, job, queue, *args, **kwargs):
        super().handle_job_failure(job, queue, *args, **kwargs)
        training.job_died(job.id, kwargs.get("exc_string", ""))

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        training.reconcile(TrainingRun.objects.filter(status__in=TrainingRun.ACTIVE))
