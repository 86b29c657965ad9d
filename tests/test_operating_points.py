"""What a threshold on the top score costs, from held-out scores (trainer/operating_points.py),
and the rule that applies it (trainer/portable.py ranked)."""

import numpy as np

from trainer import operating_points, portable
from trainer.operating_points import TARGET_PRECISION, THRESHOLDS

CLASSES = ["ants", "bees"]


def at(values, threshold):
    return values[THRESHOLDS.index(threshold)]


def held_out():
    """Four photos: two sure and right, one unsure and right, one unsure and wrong."""
    true = np.array([0, 1, 0, 1])
    probabilities = np.array([[0.99, 0.01], [0.02, 0.98], [0.65, 0.35], [0.7, 0.3]])
    return true, probabilities


def test_answering_every_photo_covers_all_at_the_plain_accuracy():
    curve = operating_points.curve(*held_out(), CLASSES, "hold-out")
    assert (curve["coverage"][0], curve["precision"][0]) == (1.0, 0.75)


def test_a_threshold_answers_only_the_photos_whose_top_score_reaches_it():
    curve = operating_points.curve(*held_out(), CLASSES, "hold-out")
    assert (at(curve["coverage"], 0.7), at(curve["precision"], 0.7)) == (0.75, 0.6667)
    assert (at(curve["coverage"], 0.75), at(curve["precision"], 0.75)) == (0.5, 1.0)


def test_each_category_is_costed_over_the_photos_predicted_in_it():
    ants, bees = operating_points.curve(*held_out(), CLASSES, "hold-out")["categories"]
    assert ants["name"] == "ants"
    assert (at(ants["coverage"], 0.8), at(ants["precision"], 0.8)) == (0.3333, 1.0)
    assert (at(bees["coverage"], 0.0), at(bees["precision"], 0.0)) == (1.0, 1.0)


def test_a_threshold_that_answers_nothing_has_no_precision():
    curve = operating_points.curve(*held_out(), CLASSES, "hold-out")
    assert (at(curve["coverage"], 0.99), at(curve["precision"], 0.99)) == (0.25, 1.0)
    bees = curve["categories"][1]
    assert (at(bees["coverage"], 0.99), at(bees["precision"], 0.99)) == (0.0, None)


def test_the_suggested_threshold_is_the_lowest_from_which_precision_reaches_the_target():
    curve = operating_points.curve(*held_out(), CLASSES, "hold-out")
    assert curve["target_precision"] == TARGET_PRECISION
    assert curve["suggested"] == 0.75


def test_a_model_right_on_every_photo_answers_them_all():
    _, probabilities = held_out()
    right = probabilities.argmax(axis=1)
    assert operating_points.curve(right, probabilities, CLASSES, "hold-out")["suggested"] == 0.0


def test_a_precision_that_dips_again_above_the_target_is_not_suggested():
    precisions = [0.9] * 9 + [0.99, 0.97] + [0.99] * 6
    assert operating_points.suggested(precisions) == 0.94


def test_below_the_operating_point_a_photo_needs_review_and_has_no_label():
    label, needs_review, scores = portable.ranked(np.array([0.6, 0.4]), CLASSES, threshold=0.7)
    assert (label, needs_review) == (None, True)
    assert scores == [("ants", 0.6), ("bees", 0.4)]


def test_at_the_operating_point_the_photo_is_answered():
    label, needs_review, _ = portable.ranked(
        np.array([0.7, 0.3], np.float32), CLASSES, threshold=np.float32(0.7)
    )
    assert (label, needs_review) == ("ants", False)


def test_none_of_these_is_an_answer_distinct_from_needs_review():
    classes = [*CLASSES, "other"]
    sure = portable.ranked(np.array([0.05, 0.05, 0.9]), classes, "other", threshold=0.8)
    unsure = portable.ranked(np.array([0.2, 0.2, 0.6]), classes, "other", threshold=0.8)
    assert sure[:2] == (None, False)
    assert unsure[:2] == (None, True)
