"""Choosing a run's operating point, the top score below which its model answers "needs
review": through the API and on the run page. That the server and predict.py then
answer alike is tested end to end in test_api_training.py."""

import pytest
from django.urls import reverse

from tests.helpers import V1
from trainer.operating_points import THRESHOLDS


def curve(coverage, precision):
    """metrics.operating_points of a run of ants and bees, with the figures given per
    threshold for the whole run and for each category."""
    return {
        "method": "5-fold out-of-fold scores of all 250 images",
        "evaluated": 250,
        "thresholds": list(THRESHOLDS),
        "coverage": coverage,
        "precision": precision,
        "categories": [
            {"name": name, "coverage": coverage, "precision": precision}
            for name in ("ants", "bees")
        ],
        "target_precision": 0.98,
        "suggested": 0.9,
    }


@pytest.fixture
def ready(task):
    """A ready run at its suggested point, 0.9 (its model files are not needed here)."""
    covered = [1.0] * 9 + [0.84] + [0.8] * 7
    precise = [0.9] * 9 + [0.985] + [0.99] * 7
    return task.runs.create(
        base_model="lite0",
        mode="fast",
        status="ready",
        model_folder="models/ready",
        metrics={
            "method": "hold-out of 20% of the images",
            "evaluated": 50,
            "accuracy": 0.9,
            "accuracy_low": 0.79,
            "accuracy_high": 0.96,
            "categories": [
                {"name": name, "precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 25}
                for name in ("ants", "bees")
            ],
            "confusion": [[23, 2], [3, 22]],
            "operating_points": curve(covered, precise),
        },
        operating_threshold=0.9,
        export_ready=True,
    )


def put(client, run, body):
    url = f"{V1}/tasks/{run.task.code}/runs/{run.code}/operating-point"
    return client.put(url, body, "application/json")


def test_it_sets_the_operating_point_and_packages_the_zip_again(api, ready, training_queue):
    response = put(api, ready, {"threshold": 0.95})
    assert response.status_code == 200
    assert response.json()["operating_point"] == {
        "threshold": 0.95,
        "suggested": 0.9,
        "coverage": 0.8,
        "precision": 0.99,
    }
    assert response.json()["export_ready"] is False
    ready.refresh_from_db()
    assert ready.operating_threshold == 0.95


def test_a_threshold_between_the_measured_ones_has_no_figures(api, ready, training_queue):
    point = put(api, ready, {"threshold": 0.912}).json()["operating_point"]
    assert (point["threshold"], point["coverage"], point["precision"]) == (0.912, None, None)


@pytest.mark.parametrize("threshold", [1.0, -0.01, 3])
def test_a_threshold_out_of_bounds_is_refused_with_the_reason(api, ready, threshold):
    response = put(api, ready, {"threshold": threshold})
    assert response.status_code == 400
    assert response.json()["detail"].startswith(
        "threshold must be a top score from 0 up to, not including, 1"
    )
    ready.refresh_from_db()
    assert ready.operating_threshold == 0.9


def test_a_threshold_that_is_not_a_number_is_refused(api, ready):
    response = put(api, ready, {"threshold": "high"})
    assert response.status_code == 400
    assert "threshold" in response.json()["detail"]


def test_another_users_run_is_not_found(outsider_api, ready):
    assert put(outsider_api, ready, {"threshold": 0.5}).status_code == 404
    ready.refresh_from_db()
    assert ready.operating_threshold == 0.9


def test_a_run_still_training_has_no_operating_point_to_set(api, task):
    run = task.runs.create(base_model="lite0", mode="fast", status="fitting")
    response = put(api, run, {"threshold": 0.5})
    assert response.status_code == 409
    assert response.json()["detail"].endswith("only a ready run answers.")


def choose_on_the_page(client, run, threshold):
    url = reverse("tasks:run_operating_point", args=[run.task.code, run.code])
    return client.post(url, {"threshold": threshold}, follow=True)


def test_the_run_page_offers_the_points_with_the_chosen_one_checked(owner_client, ready):
    html = owner_client.get(ready.get_absolute_url()).content.decode()
    assert "at 98.5 % precision, 84 % of photos get an automatic answer" in html
    assert 'value="0.9" checked' in html
    assert 'value="0.92"' in html


def test_the_run_page_leaves_out_points_that_answer_the_same_photos(owner_client, ready):
    html = owner_client.get(ready.get_absolute_url()).content.decode()
    assert 'value="0.0"' in html and 'value="0.3"' not in html  # both answer every photo
    assert 'value="0.92"' in html and 'value="0.94"' not in html  # both answer 80 %


def test_the_run_page_form_changes_the_point(owner_client, ready, training_queue):
    response = choose_on_the_page(owner_client, ready, "0.95")
    assert response.redirect_chain[-1][0].endswith("#operating-point")
    assert 'value="0.95" checked' in response.content.decode()
    ready.refresh_from_db()
    assert (ready.operating_threshold, ready.export_ready) == (0.95, False)


def test_the_run_page_refuses_a_point_out_of_bounds_and_says_why(owner_client, ready):
    response = choose_on_the_page(owner_client, ready, "1")
    assert "threshold must be a top score from 0 up to, not including, 1" in (
        response.content.decode()
    )
    ready.refresh_from_db()
    assert ready.operating_threshold == 0.9


def test_the_run_page_form_of_another_users_run_is_not_found(outsider_client, ready):
    assert choose_on_the_page(outsider_client, ready, "0.5").status_code == 404
