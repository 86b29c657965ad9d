"""Undo of the last move or delete of photos a person made on the pages: what it needs is
kept in their session (server-side, so no page can forge it, and it is theirs alone),
for one task, for VIZE_UNDO_MINUTES. A delete only hides the photos for that long
(ImageQuerySet.discard); the workers' maintenance then removes them and their files."""

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext, ngettext

from tasks.models import Image

SESSION_KEY = "vize_undo"
# The extra tag of the message that offers Undo (templates/_undo.html).
TAG = "undo"
MOVE, DELETE = "move", "delete"
UNSORTED = "unsorted"


@dataclass
class Undone:
    """How many photos an undo brought back, and for a move the names of the categories
    (Unsorted included) they went back to."""

    count: int
    places: list[str] = field(default_factory=list)


class CannotUndo(Exception):
    """Nothing to undo here, or too late: the message says which."""


def remember_move(request, task, moved_from):
    """moved_from: (image code, id of the category it left or None for Unsorted) of each
    photo just moved (by hand, or by accepting a suggestion)."""
    where = {}
    for image, category in moved_from:
        where.setdefault(str(category) if category else UNSORTED, []).append(str(image))
    remember(request, task, MOVE, where)


def remember_delete(request, task, codes):
    remember(request, task, DELETE, [str(code) for code in codes])


def remember(request, task, action, images):
    request.session[SESSION_KEY] = {
        "task": str(task.code),
        "action": action,
        "images": images,
        "at": timezone.now().isoformat(),
    }


def undo(request, task):
    """Undo the session's last move or delete in task: an Undone. Raises CannotUndo when
    there is none here or it is too late."""
    last = request.session.get(SESSION_KEY)
    if not last or last["task"] != str(task.code):
        raise CannotUndo(gettext("Nothing to undo."))
    del request.session[SESSION_KEY]
    if timezone.now() - parse_datetime(last["at"]) > grace_period():
        minutes = settings.VIZE_UNDO_MINUTES
        raise CannotUndo(
            ngettext(
                "Too late to undo: that was over %(minutes)s minute ago.",
                "Too late to undo: that was over %(minutes)s minutes ago.",
                minutes,
            )
            % {"minutes": minutes}
        )
    if last["action"] == MOVE:
        return move_back(task, last["images"])
    return bring_back(task, last["images"])


def move_back(task, where):
    known = task.categories.filter(pk__in=[int(key) for key in where.keys() - {UNSORTED}])
    categories = {str(category.pk): category for category in known}
    undone = Undone(0)
    for key, codes in where.items():
        # A category deleted since then had left its photos in Unsorted: they stay there.
        category = categories.get(key)
        undone.count += task.images.filter(code__in=codes).update(category=category)
        undone.places.append(category.name if category else gettext("Unsorted"))
    undone.places.sort()
    return undone


def bring_back(task, codes):
    restored = Image.with_deleted.filter(task=task, code__in=codes).restore()
    if not restored:
        raise CannotUndo(gettext("Too late to undo: those images are removed."))
    return Undone(restored)


def grace_period():
    return timedelta(minutes=settings.VIZE_UNDO_MINUTES)


def remove_deleted():
    """Remove, with their files, the photos deleted longer ago than the undo period."""
    expired = Image.with_deleted.filter(deleted_at__lt=timezone.now() - grace_period())
    return expired.delete_with_files()
