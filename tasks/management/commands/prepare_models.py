from django.conf import settings
from django.core.management.base import BaseCommand

from tasks import predictions


class Command(BaseCommand):
    help = (
        "Export the ONNX graphs of the base models into VIZE_MODEL_CACHE once, so that "
        "no training run or preview pays for it (make run and the release step call this)."
    )

    def handle(self, *args, **options):
        for name in predictions.prepare(settings.VIZE_MODEL_CACHE):
            self.stdout.write(f"ready: {name}")
