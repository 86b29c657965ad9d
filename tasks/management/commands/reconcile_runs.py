from django.core.management.base import BaseCommand

from tasks import runs
from tasks.models import TrainingRun


class Command(BaseCommand):
    help = "Fail the training runs whose job is gone (worker killed, out of memory, restarted)."

    def handle(self, *args, **options):
        active = list(TrainingRun.objects.filter(status__in=TrainingRun.ACTIVE))
        runs.reconcile(active)
        failed = [run for run in active if run.status == TrainingRun.Status.FAILED]
        for run in failed:
            self.stdout.write(f"{run.code}: {run.reason}")
        self.stdout.write(f"{len(active)} active runs checked, {len(failed)} marked failed.")
