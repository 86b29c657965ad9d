"""The labeling flow in a real browser: Debian's chromium driven by Playwright."""

import base64
import re
from pathlib import Path

import pytest
from django.db import connections

from tests import images

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = pytest.mark.browser


@pytest.fixture
def page(live_server, monkeypatch, browser_locale):
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), (
        "The browser tests need Debian's chromium (apt-get install chromium); "
        "run pytest -m 'not browser' to leave them out."
    )
    # Playwright's sync API runs an event loop in this thread; the live server's
    # database work happens in its own thread, so Django's async guard does not apply.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(base_url=live_server.url, locale=browser_locale)
        page.set_default_timeout(15_000)
        errors = []
        page.on("pageerror", lambda error: errors.append(error))
        yield page
        browser.close()
        # Django's connections belong to a context, and test code run while Playwright's
        # loop runs gets one of its own: closed here, or its session outlives the test
        # database (whose drop then fails on PostgreSQL).
        connections.close_all()
    assert errors == []


def drop_files(page, selector, files):
    """Drop {name: bytes} onto selector as the desktop would."""
    encoded = [
        {"name": name, "data": base64.b64encode(data).decode()} for name, data in files.items()
    ]
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const file of files) {
                const bytes = Uint8Array.from(atob(file.data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], file.name));
            }
            return transfer;
        }""",
        encoded,
    )
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def count_of(page, name):
    return page.locator(f'#sidebar [data-name="{name}"] .count').inner_text()


def sign_up_and_create_task(page, categories):
    page.goto("/accounts/signup/")
    page.fill("#id_username", "grace")
    page.fill("#id_password1", "compilers all the way down")
    page.fill("#id_password2", "compilers all the way down")
    page.click("button:has-text('Create account')")
    page.fill("input[name=name]", "Ants or bees")
    page.click("button:has-text('Create task')")
    for name in categories:
        page.fill("#new-category", name)
        page.click(".add-category button")
    # A drop reaches the grid only once the page's scripts have run (after the catalogue
    # of their words, /jsi18n/): the page must have loaded.
    page.wait_for_load_state()


def open_view(page, link):
    """Follow a link of the side bar, and wait for the page it opens to have loaded its
    scripts: a key pressed before then is lost."""
    page.click(link)
    page.wait_for_load_state()


def wait_for_count(page, name, count):
    page.wait_for_function(
        f"""() => document.querySelector('#sidebar [data-name="{name}"] .count')
                  .textContent === '{count}'"""
    )


def test_sign_up_drop_photos_on_a_category_and_move_two_with_the_keyboard(page, db):
    sign_up_and_create_task(page, ["ants", "bees"])
    assert count_of(page, "ants") == "0"

    photos = {f"ant-{i}.png": images.png(color) for i, color in enumerate(images.colors(4))}
    photos["notes.jpg"] = b"not a picture"
    drop_files(page, '#sidebar [data-name="ants"]', photos)
    page.wait_for_selector("#upload-reports .report")
    report = page.inner_text("#upload-reports")
    assert "4 added" in report
    assert re.search(r"notes\.jpg: not an image", report)
    page.wait_for_function("document.querySelectorAll('#tiles .tile').length === 4")
    assert count_of(page, "ants") == "4"

    page.click("#tiles .tile >> nth=0")
    page.click("#tiles .tile >> nth=1", modifiers=["Shift"])
    assert page.inner_text("#selection-count").startswith("2 selected")
    page.keyboard.press("2")  # the second category: bees
    wait_for_count(page, "bees", 2)
    assert count_of(page, "ants") == "2"
    assert "Moved 2 images to bees." in page.inner_text("#messages")


def test_dragging_the_selection_onto_a_category_moves_it(page, db):
    sign_up_and_create_task(page, ["ants", "bees"])
    photos = {f"{i}.png": images.png(color) for i, color in enumerate(images.colors(3))}
    drop_files(page, ".dropzone", photos)
    page.wait_for_function("document.querySelectorAll('#tiles .tile').length === 3")
    assert page.locator('#sidebar [data-name="Unsorted"] .count').inner_text() == "3"

    page.click("#tiles .tile >> nth=0")
    page.click("#tiles .tile >> nth=2", modifiers=["Control"])
    page.drag_and_drop("#tiles .tile >> nth=0", '#sidebar [data-name="bees"]')
    wait_for_count(page, "bees", 2)
    assert page.locator('#sidebar [data-name="Unsorted"] .count').inner_text() == "1"


def test_suggestions_are_accepted_with_the_key_a_and_above_a_score(page, db):
    from tasks.models import Category, Image

    sign_up_and_create_task(page, ["ants", "bees"])
    photos = {f"{i}.png": images.png(color) for i, color in enumerate(images.colors(3))}
    drop_files(page, ".dropzone", photos)
    page.wait_for_function("document.querySelectorAll('#tiles .tile').length === 3")
    ants, bees = (Category.objects.get(name=name) for name in ("ants", "bees"))
    first, second, third = Image.objects.order_by("-id")  # as the grid shows them
    for image, category, score in ((first, bees, 0.6), (second, bees, 0.97), (third, ants, 0.5)):
        Image.objects.filter(pk=image.pk).update(suggestion=category, suggestion_score=score)
    page.reload()
    assert page.text_content("#tiles .tile >> nth=0 >> .suggestion") == "bees · 60 %"

    page.click("#tiles .tile >> nth=0")
    page.keyboard.press("a")
    wait_for_count(page, "bees", 1)
    page.click("button[data-action=accept]")  # 90 % and above: the second photo alone
    wait_for_count(page, "bees", 2)
    assert count_of(page, "ants") == "0"
    assert page.locator('#sidebar [data-name="Unsorted"] .count').inner_text() == "1"
    assert "Accepted the suggestions of 1 image." in page.inner_text("#messages")


def test_a_suspected_mislabel_is_fixed_with_the_key_a_and_an_outlier_kept_with_k(page, db):
    from tasks.models import Category, Image

    sign_up_and_create_task(page, ["ants", "bees"])
    photos = {f"{i}.png": images.png(color) for i, color in enumerate(images.colors(3))}
    drop_files(page, '#sidebar [data-name="ants"]', photos)
    wait_for_count(page, "ants", 3)
    bees = Category.objects.get(name="bees")
    suspected, far, _ = Image.objects.order_by("-id")
    Image.objects.filter(pk=suspected.pk).update(suggestion=bees, suggestion_score=0.9)
    Image.objects.filter(pk=far.pk).update(outlier_score=2.5)
    page.reload()
    open_view(page, "#sidebar a:has-text('Suspected mislabels')")
    assert page.text_content("#tiles .tile >> nth=0 >> .suggestion") == "→ bees · 90 %"

    page.click("#tiles .tile >> nth=0")
    page.keyboard.press("a")
    wait_for_count(page, "bees", 1)
    assert page.locator("#tiles .tile").count() == 0
    open_view(page, "#sidebar a:has-text('Outliers')")
    page.click("#tiles .tile >> nth=0")
    page.keyboard.press("k")
    page.wait_for_function("document.querySelectorAll('#tiles .tile').length === 0")
    assert "Kept 1 image as it is: review will not ask again." in page.inner_text("#messages")
    assert count_of(page, "ants") == "2"
