"""The entries of a task's side bar, named by one key wherever a page sends one (the
grid's `view`, the upload's `target`, the move's `category`): "all" (the whole task),
"unsorted", or a category's code."""

import uuid

from tasks.models import Category

ALL = "all"
UNSORTED = "unsorted"


class UnknownEntry(Exception):
    """A key that names no entry of this task's side bar."""


def entry(task, key):
    """ALL, UNSORTED, or the task's Category with that code."""
    if key in (ALL, UNSORTED):
        return key
    try:
        return task.categories.get(code=uuid.UUID(key))
    except (ValueError, Category.DoesNotExist):
        raise UnknownEntry(key) from None


def key(chosen):
    """The key that names an entry: the inverse of `entry`."""
    return str(chosen.code) if isinstance(chosen, Category) else chosen


def images(task, chosen):
    """The task's images shown under an entry, with the suggestions of those Unsorted."""
    shown = task.images.select_related("suggestion")
    if chosen == ALL:
        return shown
    if chosen == UNSORTED:
        return shown.filter(category=None)
    return shown.filter(category=chosen)
