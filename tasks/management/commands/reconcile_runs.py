from django.core.management.base import BaseCommand

from tasks import training
from tasks.models import TrainingRun


class Command(BaseCommand):
    help = "Fail the training runs whose job is gone (worker killed, out of memory, restarted)."

    def handle(self, *args, **options):
        runs = list(TrainingRun.objects.filter(status__in=TrainingRun.ACTIVE))
        training.reconcile(runs)
        failed = [run for run in runs if run.status == TrainingRun.Status.FAILED]
        for run in failed:
            self.stdout.write(f"{run.code}: {run.reason}")
        self.stdout.write(f"{len(runs)} active runs checked, {len(failed)} marked failed.")
