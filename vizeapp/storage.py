"""Local media storage whose files appear whole or not at all."""

import contextlib
import os
import tempfile

from django.core.files import File
from django.core.files.storage import FileSystemStorage

# Files being written carry this prefix until they are renamed into place; the sweep
# (`manage.py sweep_storage`) removes any that a killed process left behind.
STAGING_PREFIX = ".staging-"


class StagedFile(File):
    """A finished file on the storage's own disk, which FileSystemStorage renames into
    place instead of copying."""

    def __init__(self, path):
        super().__init__(None, name=path)
        self.path = path

    def temporary_file_path(self):
        return self.path


class AtomicFileSystemStorage(FileSystemStorage):
    """Each file is written and synced under a temporary name beside its final one, then
    renamed: a full disk or a killed process leaves no empty or partial file under a
    name that a row or a reader could see."""

    def _save(self, name, content):
        directory = os.path.dirname(self.path(name))
        os.makedirs(directory, exist_ok=True)
        descriptor, staged = tempfile.mkstemp(dir=directory, prefix=STAGING_PREFIX)
        try:
            with os.fdopen(descriptor, "wb") as out:
                for chunk in content.chunks():
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            return super()._save(name, StagedFile(staged))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(staged)
