from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand

from tasks.sweep import sweep


class Command(BaseCommand):
    help = (
        "Remove stored files that no row points to (older than an hour) and report rows "
        "whose file is missing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="List the files it would remove; remove none."
        )

    def handle(self, *args, dry_run, **options):
        report = sweep(default_storage, remove=not dry_run)
        verb = "would remove" if dry_run else "removed"
        for name in report.orphans:
            self.stdout.write(f"{verb}: {name}")
        for row in report.missing:
            self.stdout.write(f"missing: {row}")
        self.stdout.write(
            f"{len(report.orphans)} files with no row {verb} "
            f"({report.orphan_bytes / 1e6:.1f} MB); {len(report.missing)} rows whose file "
            f"is missing; {report.stale_copies} local copies of such files {verb}."
        )
