"""Photos sent to classify that the task keeps when asked (keep=unsure or keep=all):
stored in Unsorted with the model's answer as their suggestion, for a person to label
(the Unsure review queue shows the closest calls first), up to VIZE_KEEP_PER_DAY a day
per task; those still in Unsorted VIZE_KEEP_DAYS later are deleted. Nothing is stored
unless asked."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from tasks import imports, runs
from tasks.models import UNSURE_MARGIN, Image, NearCopies

NOTHING, UNSURE, EVERYTHING = "none", "unsure", "all"
KEEP_CHOICES = (NOTHING, UNSURE, EVERYTHING)


@dataclass
class Kept:
    """What became of a photo the task was asked to keep: the image that holds it (new,
    or the same picture already in the task), or why it was not kept."""

    image: Image | None = None
    refusal: str = ""


def is_unsure(prediction):
    """Below the run's operating point, or its best category barely ahead of the next."""
    scores = [score for _, score in prediction.scores]
    return prediction.needs_review or (len(scores) > 1 and scores[0] - scores[1] < UNSURE_MARGIN)


def keep(task, answers, which):
    """A Kept, or None where nothing was asked, for each of answers (predictions.Answer
    with one prediction each), keeping the photos which names (UNSURE or EVERYTHING)."""
    if which == NOTHING:
        return [None] * len(answers)
    limits = imports.Limits.from_settings()
    room = (
        settings.VIZE_KEEP_PER_DAY
        - task.images.filter(kept_at__gte=timezone.now() - timedelta(days=1)).count()
    )
    categories = {category.name: category for category in task.categories.all()}
    copies = NearCopies(task)
    outcomes = []
    for answer in answers:
        if not answer.predictions or (which == UNSURE and not is_unsure(answer.predictions[0])):
            outcomes.append(None)
        elif room <= 0:
            outcomes.append(Kept(refusal=over_the_day(settings.VIZE_KEEP_PER_DAY)))
        else:
            outcome = imports.import_image(
                task, answer.sent.name, answer.sent.image.getvalue(), None, limits, copies
            )
            if outcome.outcome == "added":
                room -= 1
                with_the_answer(outcome.image, answer.predictions[0], categories)
            outcomes.append(Kept(outcome.image, "" if outcome.image else outcome.reason))
    if any(kept and kept.image for kept in outcomes):
        runs.embed_in_background(task)
    return outcomes


def over_the_day(limit):
    return f"Not kept: this task keeps at most {limit} photos from classify a day."


def with_the_answer(image, prediction, categories):
    """The kept photo, with the model's answer as its suggestion until the refresh that
    follows its embedding suggests again."""
    (best, top), *rest = prediction.scores
    image.kept_at = timezone.now()
    image.suggestion = categories.get(best)
    if image.suggestion:
        image.suggestion_score = top
        image.suggestion_margin = top - rest[0][1] if rest else top
    image.save(update_fields=["kept_at", "suggestion", "suggestion_score", "suggestion_margin"])


def remove_expired():
    """Delete the kept photos still in Unsorted after the retention period."""
    expired = Image.objects.filter(
        category=None, kept_at__lt=timezone.now() - timedelta(days=settings.VIZE_KEEP_DAYS)
    )
    return expired.delete_with_files()
