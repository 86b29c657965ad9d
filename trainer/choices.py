"""What a person chooses when a training starts, defined once for the trainer, the model
fields, the training form, the API schemas and the pages. Plain data: importing it loads
neither numpy nor onnxruntime nor scikit-learn."""

from dataclasses import dataclass

from trainer.backbones import BASE_MODELS, DEFAULT_BASE_MODEL


@dataclass(frozen=True)
class Mode:
    name: str
    title: str
    summary: str

    @property
    def label(self):
        return f"{self.title}: {self.summary}"


FAST = "fast"
ACCURATE = "accurate"
MODES = {
    FAST: Mode(FAST, "Fast", "a new head on the base model's features (seconds)"),
    ACCURATE: Mode(ACCURATE, "Accurate", "fine-tune the network's last stage (minutes)"),
}
DEFAULT_MODE = FAST
# The modes that train on the stored late maps (trainer/finetune.py): a run of another
# mode need not load them.
LATE_MAPS_READ_BY = {ACCURATE}

# Seconds of fine-tuning in accurate mode: a promise the person chooses from this list.
TIME_BUDGETS = {120: "2 minutes", 300: "5 minutes", 600: "10 minutes", 1200: "20 minutes"}
DEFAULT_TIME_BUDGET = 300

# Accurate mode measures its fine-tuning on a stratified hold-out of a fifth of the
# images, which needs this many in each category; with fewer, fast mode measures itself
# by cross-validation instead.
HOLDOUT_MIN_PER_CATEGORY = 10

__all__ = [
    "ACCURATE",
    "BASE_MODELS",
    "DEFAULT_BASE_MODEL",
    "DEFAULT_MODE",
    "DEFAULT_TIME_BUDGET",
    "FAST",
    "HOLDOUT_MIN_PER_CATEGORY",
    "LATE_MAPS_READ_BY",
    "MODES",
    "TIME_BUDGETS",
    "Mode",
]
