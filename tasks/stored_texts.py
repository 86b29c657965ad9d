"""What the trainer and the workers store in English, read on the pages in the reader's
language: a run's reason for failing and its evaluation method. trainer/ never imports
Django, so its words are translated here, where tasks/ shows them; a text not known here
(an error's own words) is shown as it was stored."""

import re

from django.utils.translation import gettext_lazy, pgettext_lazy

from tasks import runs
from tasks.models import TrainingRun
from trainer.choices import ACCURATE, FAST

KNOWN = {
    TrainingRun.CANCELLED_REASON: gettext_lazy("Cancelled."),
    runs.TIMED_OUT: gettext_lazy(
        "Training took longer than the limit (VIZE_TRAINING_TIMEOUT) and was stopped; a shorter "
        "time budget or fast mode fits."
    ),
    runs.QUEUE_UNAVAILABLE: gettext_lazy(
        "The job queue is unavailable, so the run could not start. Try again."
    ),
    runs.JOB_LOST: gettext_lazy("The job was lost from the queue before it started."),
    runs.WORKER_SILENT: gettext_lazy(
        "The worker stopped reporting (it was killed, ran out of memory or restarted)."
    ),
}

# Texts with a number or a detail in them: (pattern, translated text with its groups).
PATTERNS = [
    (
        re.compile(r"hold-out of (?P<share>\d+)% of the images"),
        gettext_lazy("hold-out of %(share)s%% of the images"),
    ),
    (
        re.compile(r"(?P<folds>\d+)-fold cross-validation"),
        gettext_lazy("%(folds)s-fold cross-validation"),
    ),
    (
        re.compile(r"(?P<folds>\d+)-fold out-of-fold scores of all (?P<images>\d+) images"),
        gettext_lazy("%(folds)s-fold out-of-fold scores of all %(images)s images"),
    ),
    (
        re.compile(r"The training process died \(killed, or out of memory\): (?P<detail>.*)", re.S),
        gettext_lazy("The training process died (killed, or out of memory): %(detail)s"),
    ),
]

MODE_NAMES = {
    FAST: pgettext_lazy("training mode", "fast mode"),
    ACCURATE: pgettext_lazy("training mode", "accurate mode"),
}


def translated(text):
    """The stored English text in the reader's language, when it is one we know."""
    if not text:
        return text
    if text in KNOWN:
        return str(KNOWN[text])
    for pattern, translation in PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return str(translation) % match.groupdict()
    return text
