"""The folders jobs work in, under VIZE_WORK_DIR (var/work/ by default). A copy's workers
remove only what they find there: when they shared the system's temporary folder, a
worker of a second copy on the machine, or of a test run beside a site, removed the
workspace of a run it did not know, in the middle of its training."""

import tempfile
from pathlib import Path

from django.conf import settings


def root():
    folder = Path(settings.VIZE_WORK_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def new(prefix):
    """A new folder named from prefix, for a job that removes it itself."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root()))


def temporary(prefix):
    """A folder named from prefix, removed when the with block ends."""
    return tempfile.TemporaryDirectory(prefix=prefix, dir=root())


def begun(prefix):
    """The folders named from prefix, which a killed job may have left."""
    return root().glob(f"{prefix}*")
