"""Suggestions while people label: a linear head fitted on the photos labelled so far
scores the photos still unsorted. On stored features it fits in well under a second
for a thousand photos, so it runs again after every move and upload.

Without a trained model there is nothing to choose the head's settings from, and
choosing them on a handful of labels takes longer than the person waits (tens of fits):
the head then takes fixed settings, measured on trashnet and hymenoptera with 2 to 20
labelled photos per category (closing note of issue 13). Once a model is trained, its
head's choice, made by cross-validation, serves the suggestions too."""

from trainer import heads

# With 2, 5 and 20 labelled photos per category, C from 0.3 to 30 moved the suggestions'
# accuracy on trashnet by under a point; a larger C gives more decided scores (median
# top score 0.45 at C=10 against 0.26 at C=1 with 5 per category).
UNTRAINED_CHOICE = heads.HeadChoice(c=10.0, temperature=1.0, view="all")


def suggest(features, mirrored, labels, unsorted, trained_choice=None):
    """Probabilities (len(unsorted), categories) over the categories that labels index,
    for the unsorted photos' features; the head is fitted on the labelled photos
    (features, their mirror images' and labels) with the (C, temperature, view) a
    trained model chose, or the fixed settings without one."""
    choice = heads.HeadChoice(*trained_choice) if trained_choice else UNTRAINED_CHOICE
    model = heads.fit(features, mirrored, labels, choice.c, 0, choice.view)
    return heads.probabilities(model, unsorted, choice)
