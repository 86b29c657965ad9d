"""The run page: its heading follows the progress it polls, its mistakes show how sure
the model was and where each photo sits now, and it trains again."""

from django.urls import reverse

from tests.helpers import add_images

METRICS = {
    "method": "5-fold cross-validation",
    "evaluated": 3,
    "accuracy": 0.667,
    "accuracy_low": 0.2,
    "accuracy_high": 0.9,
    "categories": [],
    "confusion": [],
}


def ready_run(task, images, mistaken=None, score=0.87, **fields):
    """A ready run of task trained on images as they are labelled now; the photo mistaken
    for bees with that score."""
    misclassified = []
    if mistaken is not None:
        misclassified.append(
            {
                "image": str(mistaken.code),
                "true": mistaken.category.name,
                "predicted": "bees",
                "scores": {"bees": score, mistaken.category.name: 1 - score},
            }
        )
    return task.runs.create(
        **{"base_model": "lite0", "mode": "fast", **fields},
        status="ready",
        metrics=METRICS,
        samples=[[str(image.code), image.category.name] for image in images],
        misclassified=misclassified,
    )


def add_two_bees(task, bees):
    return add_images(task, bees, 2, start=20)


def poll(client, run):
    return client.get(
        run.get_absolute_url(), headers={"HX-Request": "true", "HX-Target": "run-progress"}
    )


def test_the_heading_follows_the_stage_the_page_polls(owner_client, task):
    run = task.runs.create(base_model="lite0", mode="fast", status="fitting", percent=85)
    html = poll(owner_client, run).content.decode()
    assert '<div id="run-heading" hx-swap-oob="true">' in html
    assert "<h1>Fitting the model</h1>" in html
    assert "85 %" in html


def test_a_mistake_shows_the_score_of_the_category_the_model_saw(
    owner_client, task, ants, bees, ant_images
):
    run = ready_run(task, ant_images, mistaken=ant_images[0])
    html = owner_client.get(run.get_absolute_url()).content.decode()
    assert 'looks like <strong>bees</strong> · <span class="score">87 %</span>' in html
    assert "in <strong>ants</strong>" in html
    assert "Move to bees" in html


def test_a_mistake_moved_says_where_it_sits_now_and_offers_no_move(
    owner_client, task, ants, bees, ant_images
):
    mistaken = ant_images[0]
    run = ready_run(task, ant_images, mistaken=mistaken)
    owner_client.post(
        reverse("tasks:images_move", args=[task.code]),
        {"images": [str(mistaken.code)], "category": str(bees.code), "view": "all"},
    )
    html = owner_client.get(run.get_absolute_url()).content.decode()
    assert "now in <strong>bees</strong>" in html
    assert "in <strong>ants</strong>" not in html
    assert "Move to bees" not in html


def test_moving_a_mistake_with_htmx_answers_the_run_page(
    owner_client, task, ants, bees, ant_images
):
    """The run page's form names itself as next: htmx follows the redirect and takes the
    mistake, the side bar and the message from the page."""
    mistaken = ant_images[0]
    run = ready_run(task, ant_images, mistaken=mistaken)
    response = owner_client.post(
        reverse("tasks:images_move", args=[task.code]),
        {
            "images": [str(mistaken.code)],
            "category": str(bees.code),
            "view": "all",
            "next": run.get_absolute_url(),
        },
        headers={"HX-Request": "true", "HX-Target": f"mistake-{mistaken.code}"},
        follow=True,
    )
    assert response.redirect_chain[0][0] == run.get_absolute_url()
    html = response.content.decode()
    assert f'id="mistake-{mistaken.code}"' in html
    assert "Moved 1 image to bees." in html


def test_a_ready_run_offers_to_train_again_with_its_choices(
    owner_client, task, ants, bees, ant_images
):
    add_two_bees(task, bees)
    run = ready_run(task, ant_images, base_model="lite2")
    html = owner_client.get(run.get_absolute_url()).content.decode()
    assert f'action="{reverse("tasks:train", args=[task.code])}"' in html
    assert '<option value="lite2" selected>' in html
    assert '<button type="submit" class="primary">Train again</button>' in html


def test_train_again_follows_the_task_pages_rules(owner_client, task, ants, bees, ant_images):
    run = ready_run(task, ant_images)
    html = owner_client.get(run.get_absolute_url()).content.decode()
    assert "Train again</button>" in html
    assert 'disabled aria-describedby="readiness">Train again' in html
    assert "“bees” has 0 images" in html


def test_train_again_starts_a_run(
    owner_client, task, ants, bees, ant_images, training_queue, django_capture_on_commit_callbacks
):
    add_two_bees(task, bees)
    run = ready_run(task, ant_images)
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            reverse("tasks:train", args=[task.code]),
            {"base_model": run.base_model, "mode": run.mode, "time_budget": run.time_budget},
        )
    newer = task.runs.exclude(pk=run.pk).get()
    assert response.url == newer.get_absolute_url()
    assert len(newer.samples) == 5


def test_a_run_page_points_to_the_newer_run_that_trains(owner_client, task, ants, ant_images):
    run = ready_run(task, ant_images)
    newer = task.runs.create(base_model="lite0", mode="fast", status="queued")
    html = owner_client.get(run.get_absolute_url()).content.decode()
    assert newer.get_absolute_url() in html
    assert "Train again</button>" not in html


def test_a_run_that_trains_offers_no_train_again(owner_client, task):
    run = task.runs.create(base_model="lite0", mode="fast", status="embedding")
    assert "Train again" not in owner_client.get(run.get_absolute_url()).content.decode()


def test_the_run_page_says_what_changed_since_its_model(owner_client, task, ants, bees, ant_images):
    run = ready_run(task, ant_images)
    task.images.filter(pk=ant_images[0].pk).update(category=None)
    html = owner_client.get(run.get_absolute_url()).content.decode()
    assert "1 photo moved since this model was trained." in html


def test_cancelling_a_run_that_ended_says_there_was_nothing_to_cancel(owner_client, task):
    run = task.runs.create(base_model="lite0", mode="fast", status="ready", metrics=METRICS)
    response = owner_client.post(
        reverse("tasks:run_cancel", args=[task.code, run.code]), follow=True
    )
    assert "This run had already ended; there was nothing to cancel." in response.content.decode()
