"""The entries of a task's side bar, named by one key wherever a page sends one (the
grid's `view`, the upload's `target`, the move's `category`): "all" (the whole task),
"unsorted", a review queue's key, or a category's code."""

import uuid

from tasks.models import REVIEW_QUEUES, Category, ReviewQueue

ALL = "all"
UNSORTED = "unsorted"


class UnknownEntry(Exception):
    """A key that names no entry of this task's side bar."""


def entry(task, key):
    """ALL, UNSORTED, a ReviewQueue, or the task's Category with that code."""
    if key in (ALL, UNSORTED):
        return key
    if key in REVIEW_QUEUES:
        return REVIEW_QUEUES[key]
    try:
        return task.categories.get(code=uuid.UUID(key))
    except (ValueError, Category.DoesNotExist):
        raise UnknownEntry(key) from None


def key(chosen):
    """The key that names an entry: the inverse of `entry`."""
    if isinstance(chosen, Category):
        return str(chosen.code)
    return str(chosen)


def is_destination(chosen):
    """Whether photos can be moved into the entry: Unsorted or a category."""
    return chosen == UNSORTED or isinstance(chosen, Category)


def images(task, chosen):
    """The task's images shown under an entry, with their categories and suggestions."""
    shown = task.images.select_related("suggestion", "category")
    if chosen == ALL:
        return shown
    if chosen == UNSORTED:
        return shown.filter(category=None)
    if isinstance(chosen, ReviewQueue):
        return shown.in_review(chosen)
    return shown.filter(category=chosen)


def page(images, chosen, after, size, most_sure=False):
    """A page of the images shown under an entry, in its order: a review queue's most
    suspicious first, the surest suggestions first when asked, else the newest first."""
    if isinstance(chosen, ReviewQueue):
        return images.page_ranked(after, size, chosen.rank, chosen.ascending)
    if most_sure:
        return images.page_ranked(after, size, "suggestion_score")
    return images.page(after, size)


def neighbours(images, chosen, image, most_sure=False):
    """(the image before image, the one after it) among the images shown under an entry,
    in the order page gives them; None at either end."""
    if isinstance(chosen, ReviewQueue):
        return images.neighbours(image, chosen.rank, chosen.ascending)
    if most_sure:
        return images.neighbours(image, "suggestion_score")
    return images.neighbours(image)
