"""What only a browser shows: refusals on the page, counts that follow every action
without a reload, the run page's heading following its poll, Add to on the preview, and a
mistake moved from the run page."""

import pytest

from tasks.models import Task
from tests import images
from tests.images import encode, picture
from tests.test_browser import count_of, drop_files, page, sign_up_and_create_task, wait_for_count
from tests.test_run_page import METRICS

__all__ = ["page"]  # the fixture, shared with the other browser tests

pytestmark = pytest.mark.browser


def add_photos(page, name, count, start=0):
    colors = images.colors(start + count)[start:]
    photos = {f"{name}-{start + i}.png": images.png(color) for i, color in enumerate(colors)}
    drop_files(page, f'#sidebar [data-name="{name}"]', photos)


def test_move_with_nothing_selected_says_why_on_the_page(page, db):
    sign_up_and_create_task(page, ["ants", "bees"])
    add_photos(page, "ants", 2)
    wait_for_count(page, "ants", 2)
    page.click("button[data-action=move]")
    page.wait_for_selector("#messages .message-error")
    assert page.inner_text("#messages") == "Select some photos first."


def test_the_training_panel_follows_drops_and_moves_without_a_reload(page, db):
    sign_up_and_create_task(page, ["ants", "bees"])
    assert "“ants” has 0 images" in page.inner_text("#training")
    add_photos(page, "ants", 3)
    wait_for_count(page, "ants", 3)
    add_photos(page, "bees", 2, start=3)
    wait_for_count(page, "bees", 2)
    page.wait_for_function("!document.querySelector('#training').innerText.includes('0 images')")
    assert page.is_enabled("#training button:has-text('Start training')")

    drop_files(page, ".dropzone", {"stray.png": images.png((1, 2, 3))})
    page.wait_for_function(
        "document.querySelector('#training').innerText"
        ".includes('1 image in Unsorted will not be used.')"
    )
    page.wait_for_function("document.querySelectorAll('#tiles .tile').length === 6")
    page.click("#tiles .tile >> nth=0")  # the newest: the stray photo
    page.keyboard.press("1")
    wait_for_count(page, "ants", 4)
    page.wait_for_function("!document.querySelector('#training').innerText.includes('in Unsorted')")
    assert page.inner_text("#tiles .tile >> nth=0 >> .tile-category") == "ants"


def test_the_counts_follow_two_drops_that_end_together(page, db):
    sign_up_and_create_task(page, ["ants", "bees"])
    add_photos(page, "ants", 3)
    add_photos(page, "bees", 2, start=3)
    wait_for_count(page, "ants", 3)
    wait_for_count(page, "bees", 2)
    page.wait_for_function("document.querySelectorAll('#tiles .tile').length === 5")


def test_the_run_pages_heading_follows_the_stage(page, db):
    sign_up_and_create_task(page, ["ants", "bees"])
    run = Task.objects.get().runs.create(base_model="lite0", mode="fast", status="queued")
    page.goto(run.get_absolute_url())
    assert page.inner_text("h1") == "Queued"
    assert run.claim()
    assert run.report("fitting", 85, 3)
    page.wait_for_function("document.querySelector('h1').textContent === 'Fitting the model'")
    assert page.inner_text("#run-progress .percent").startswith("85 %")


def test_a_mistake_moved_on_the_run_page_says_where_it_sits_now(page, db):
    sign_up_and_create_task(page, ["ants", "bees"])
    add_photos(page, "ants", 2)
    wait_for_count(page, "ants", 2)
    task = Task.objects.get()
    mistaken, other = task.images.order_by("id")
    run = task.runs.create(
        base_model="lite0",
        mode="fast",
        status="ready",
        metrics={**METRICS, "evaluated": 2, "accuracy": 0.5},
        samples=[[str(mistaken.code), "ants"], [str(other.code), "ants"]],
        misclassified=[
            {
                "image": str(mistaken.code),
                "true": "ants",
                "predicted": "bees",
                "scores": {"ants": 0.13, "bees": 0.87},
            }
        ],
    )
    page.goto(run.get_absolute_url())
    mistake = f"#mistake-{mistaken.code}"
    assert "looks like bees · 87 %" in page.inner_text(mistake)
    page.click(f"{mistake} button:has-text('Move to bees')")
    wait_for_count(page, "bees", 1)
    assert "now in bees" in page.inner_text(mistake)
    assert page.locator(f"{mistake} button").count() == 0
    assert count_of(page, "ants") == "1"
    assert "Moved 1 image to bees." in page.inner_text("#messages")
    assert "1 photo moved since this model was trained." in page.inner_text("#train-again")


def sign_in_as_owner(page):
    page.goto("/accounts/login/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", "a long owner passphrase")
    page.click("button[type=submit]")


def test_add_to_on_the_preview_counts_and_a_second_category_moves_the_photo(page, trained):
    task_code, _ = trained
    sign_in_as_owner(page)
    page.goto(f"/tasks/{task_code}/preview/")
    assert count_of(page, "discs") == "6"
    page.set_input_files(
        "#preview input[type=file]",
        files=[
            {
                "name": "new-disc.png",
                "mimeType": "image/png",
                "buffer": encode(picture("discs", 40), "PNG"),
            }
        ],
    )
    page.click(".add-to button:has-text('squares')")
    wait_for_count(page, "squares", 7)
    assert page.inner_text(".add-status") == "Added new-disc.png to squares."
    page.click(".add-to button:has-text('discs')")
    wait_for_count(page, "discs", 7)
    assert count_of(page, "squares") == "6"
    assert page.inner_text(".add-status") == "Moved new-disc.png from squares to discs."
    assert page.get_attribute(".add-to button:has-text('discs')", "aria-pressed") == "true"
    assert page.get_attribute(".add-to button:has-text('squares')", "aria-pressed") == "false"
