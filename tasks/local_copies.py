"""Local files for the code that needs paths (training reads images, onnxruntime loads
a model): on a local disk, the stored file itself; on object storage (S3), a copy in
VIZE_STORAGE_CACHE. A stored file never changes under its name (images are named by
their hash, model files by their run), so a copy stays good for as long as it exists,
and the cache can be emptied at any time."""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage

from vizeapp.storage import STAGING_PREFIX


def local_file(name):
    """A local path with the bytes of the stored file name."""
    try:
        return Path(default_storage.path(name))
    except NotImplementedError:
        pass
    copy = Path(settings.VIZE_STORAGE_CACHE) / name
    if copy.exists():
        return copy
    copy.parent.mkdir(parents=True, exist_ok=True)
    descriptor, staged = tempfile.mkstemp(dir=copy.parent, prefix=STAGING_PREFIX)
    try:
        with os.fdopen(descriptor, "wb") as out, default_storage.open(name, "rb") as stored:
            shutil.copyfileobj(stored, out, 1024 * 1024)
        os.replace(staged, copy)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged)
    return copy


def local_folder(prefix, names=None):
    """A local folder holding the files under prefix (or only those named)."""
    try:
        return Path(default_storage.path(prefix))
    except NotImplementedError:
        pass
    if names is None:
        _, names = default_storage.listdir(prefix)
    for name in names:
        local_file(f"{prefix}/{name}")
    return Path(settings.VIZE_STORAGE_CACHE) / prefix
