"""The trainer's words on the pages, in the reader's language: the choices of the
training form, and what the trainer and the workers store in English (a run's reason for
failing, its evaluation method, why a zip could not be made). trainer/ never imports
Django, so its words are translated here, where tasks/ shows them; a stored text not
known here (an error's own words) is shown as it was stored."""

import re

from django.utils.functional import lazy
from django.utils.translation import gettext_lazy, ngettext, pgettext, pgettext_lazy

from tasks import runs, zips
from tasks.datasets import DatasetBuild
from tasks.models import TrainingRun
from trainer.choices import ACCURATE, BASE_MODELS, FAST, MODES, TIME_BUDGETS

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

# Why a zip is missing (tasks/zips.py), for each kind of zip.
for kind, queue_unavailable, not_made in (
    (
        runs.ModelZip,
        gettext_lazy("The job queue is unavailable, so the model zip could not be packaged."),
        gettext_lazy("The model zip could not be packaged: %(reason)s."),
    ),
    (
        DatasetBuild,
        gettext_lazy("The job queue is unavailable, so the dataset zip could not be built."),
        gettext_lazy("The dataset zip could not be built: %(reason)s."),
    ),
):
    KNOWN[zips.QUEUE_UNAVAILABLE.format(what=kind.what, making=kind.making)] = queue_unavailable
    stored = re.escape(zips.NOT_MADE.format(what=kind.what, making=kind.making, reason="@"))
    PATTERNS.append((re.compile(stored.replace("@", "(?P<reason>.*)"), re.S), not_made))

MODE_NAMES = {
    FAST: pgettext_lazy("training mode", "fast mode"),
    ACCURATE: pgettext_lazy("training mode", "accurate mode"),
}
# In a column headed "Mode".
MODE_WORDS = {
    FAST: pgettext_lazy("training mode", "fast"),
    ACCURATE: pgettext_lazy("training mode", "accurate"),
}


MODE_LABELS = {
    FAST: gettext_lazy("Fast: a new head on the base model's features (seconds)"),
    ACCURATE: gettext_lazy("Accurate: fine-tune the network's last stage (minutes)"),
}
BASE_MODEL_SUMMARIES = {
    "lite0": gettext_lazy("fastest"),
    "lite1": gettext_lazy("between the two"),
    "lite2": gettext_lazy("most accurate"),
}


def _base_model_label(name):
    base = BASE_MODELS[name]
    summary = BASE_MODEL_SUMMARIES.get(name, base.summary)
    return pgettext("base model choice", "%(title)s: %(summary)s") % {
        "title": base.title,
        "summary": summary,
    }


def _minutes(seconds):
    count = seconds // 60
    return ngettext("%(count)s minute", "%(count)s minutes", count) % {"count": count}


base_model_label = lazy(_base_model_label, str)
minutes = lazy(_minutes, str)

# The training form's choices, labelled in the reader's language when it is drawn.
BASE_MODEL_CHOICES = [(name, base_model_label(name)) for name in BASE_MODELS]
MODE_CHOICES = [(name, MODE_LABELS.get(name, mode.label)) for name, mode in MODES.items()]
TIME_BUDGET_CHOICES = [(seconds, minutes(seconds)) for seconds in TIME_BUDGETS]


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
