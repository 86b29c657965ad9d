"""The pages at a phone's width (390 px, touch) and a laptop's (1280 px) in Debian's
chromium: nothing scrolls sideways, the main actions are big enough for a finger, the
task's side bar opens as a drawer with or without JavaScript, the preview takes a photo
with the camera. With VIZE_SCREENSHOTS set to a folder, the tests leave there a
screenshot of each page they look at, for a person to look at too."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client
from django.urls import reverse

from tasks.models import Task
from tests import images
from tests.helpers import add_images
from tests.test_browser import CHROMIUM, FLAGS

pytestmark = pytest.mark.browser

PHONE, LAPTOP = 390, 1280
FINGER = 44  # px: the smallest target a finger hits reliably (Apple's and WCAG's figure)


@pytest.fixture
def browser(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    # As in test_browser.py: the live server's database work runs in its own thread.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()
        connections.close_all()  # test_browser.page says why


@pytest.fixture
def open_page(browser, live_server):
    """open_page(path, user, width, javascript): the page at path in a new browser of that
    width (a phone's is a touch screen), signed in as user when one is given."""
    errors = []

    def open_page(path, user=None, width=PHONE, javascript=True):
        phone = width < LAPTOP
        context = browser.new_context(
            base_url=live_server.url,
            viewport={"width": width, "height": 844 if phone else 800},
            has_touch=phone,
            is_mobile=phone,
            java_script_enabled=javascript,
        )
        if user:
            client = Client()
            client.force_login(user)
            cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
            context.add_cookies(
                [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}]
            )
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda error: errors.append(error))
        page.goto(path)
        return page

    yield open_page
    assert errors == []


def look(page, name):
    """A screenshot of the whole page in VIZE_SCREENSHOTS, when it is set."""
    folder = os.environ.get("VIZE_SCREENSHOTS")
    if folder:
        width = page.viewport_size["width"]
        page.screenshot(path=Path(folder) / f"{name}-{width}.png", full_page=True)


def scrolls_sideways(page):
    # Against the width asked for: a phone's browser widens innerWidth to fit a page
    # too wide for it, zooming out.
    width = page.evaluate("document.documentElement.scrollWidth")
    return width > page.viewport_size["width"]


def assert_tappable(target):
    target.scroll_into_view_if_needed()
    assert target.is_visible()
    box = target.bounding_box()
    assert box["width"] >= FINGER and box["height"] >= FINGER, box


@pytest.fixture
def pages(owner, shapes_task):
    """Each page to look at: its path and who is signed in. The task has photos in two
    categories and in Unsorted; the list also holds a task with a very long name."""
    add_images(shapes_task, None, 2)
    Task.objects.create(owner=owner, name="Ripe, unripe or rotten " * 3 + "bananasandplantains" * 1)
    task_url = shapes_task.get_absolute_url()
    return {
        "home": ("/", None),
        "sign in": (reverse("login"), None),
        "sign up": (reverse("signup"), None),
        "task list": ("/", owner),
        "task page": (task_url, owner),
        "category": (f"{task_url}?view={shapes_task.categories.first().code}", owner),
        "preview": (reverse("tasks:preview", args=[shapes_task.code]), owner),
        "API keys": (reverse("api_keys"), owner),
    }


@pytest.mark.parametrize("width", [PHONE, LAPTOP])
@pytest.mark.parametrize(
    "name", ["home", "sign in", "sign up", "task list", "task page", "preview", "API keys"]
)
def test_no_page_scrolls_sideways(open_page, pages, name, width):
    page = open_page(*pages[name], width=width)
    look(page, name.replace(" ", "-"))
    assert not scrolls_sideways(page)


@pytest.mark.parametrize(
    ("name", "action", "javascript"),
    [
        ("task page", "button:has-text('Start training')", True),
        ("task page", "#upload label:has(input[type=file])", True),
        ("task page", "button[data-action=move]", True),
        ("preview", "#preview label:has-text('Choose photos')", True),
        ("preview", "#preview button:has-text('Classify')", False),
        ("task list", "button:has-text('Create task')", True),
        ("sign in", "button:has-text('Sign in')", True),
        ("home", "a:has-text('Create an account')", True),
    ],
)
def test_the_main_actions_are_big_enough_to_tap_on_a_phone(
    open_page, pages, name, action, javascript
):
    page = open_page(*pages[name], javascript=javascript)
    assert_tappable(page.locator(action))


@pytest.mark.parametrize("javascript", [True, False])
def test_on_a_phone_the_side_bar_is_a_drawer_opened_by_its_button(open_page, pages, javascript):
    page = open_page(*pages["task page"], javascript=javascript)
    assert not page.is_visible("#sidebar")
    page.locator(".drawer-button").tap()
    look(page, "drawer")
    assert page.is_visible("#sidebar")
    assert_tappable(page.locator("#sidebar .bucket:has-text('squares')"))
    assert not scrolls_sideways(page)


def test_on_a_laptop_the_side_bar_shows_beside_the_page(open_page, pages):
    page = open_page(*pages["task page"], width=LAPTOP)
    assert page.is_visible("#sidebar")
    assert not page.is_visible(".drawer-button")


def test_on_a_phone_the_grid_shows_two_or_three_photos_a_row(open_page, pages):
    page = open_page(*pages["task page"])
    lefts = page.eval_on_selector_all(
        "#tiles .tile", "tiles => new Set(tiles.map(t => t.getBoundingClientRect().left)).size"
    )
    assert 2 <= lefts <= 3


def test_on_a_phone_each_tapped_photo_joins_the_selection(open_page, pages):
    page = open_page(*pages["category"])
    look(page, "category")
    page.locator("#tiles .tile >> nth=0").tap()
    page.locator("#tiles .tile >> nth=2").tap()
    assert page.locator("#tiles .tile.selected").count() == 2
    assert page.inner_text("#selection-count").startswith("2 selected")


def test_the_run_page_of_a_trained_model_fits_a_phone_and_a_laptop(open_page, owner, trained):
    """One training for every check of the run page: fits both widths, its tables
    scroll in boxes of their own, Download model is big enough to tap."""
    path = reverse("tasks:run_detail", args=trained)
    for width in (LAPTOP, PHONE):
        page = open_page(path, owner, width)
        look(page, "run")
        assert not scrolls_sideways(page)
    overflowing = page.eval_on_selector_all(
        "table",
        """tables => tables.filter(table => {
            const room = table.parentElement.clientWidth;
            if (table.getBoundingClientRect().width <= room) return false;
            for (let box = table.parentElement; box !== document.body; box = box.parentElement) {
                if (["auto", "scroll"].includes(getComputedStyle(box).overflowX)) return false;
            }
            return true;
        }).map(table => table.className)""",
    )
    assert overflowing == []
    assert_tappable(page.locator(".task-actions a:has-text('Download model')"))


def test_the_preview_offers_the_phone_camera_beside_the_gallery(open_page, pages):
    page = open_page(*pages["preview"])
    look(page, "preview-camera")
    camera = page.locator("#preview input[type=file][capture=environment]")
    assert camera.get_attribute("accept") == "image/*"
    assert_tappable(page.locator("#preview label:has-text('Take a photo')"))
    assert page.locator("#preview input[type=file]:not([capture])").count() == 1


def test_a_photo_taken_with_the_camera_is_scored_like_a_dropped_one(open_page, pages):
    page = open_page(*pages["preview"])
    page.set_input_files(
        "#preview input[capture]",
        {"name": "camera.png", "mimeType": "image/png", "buffer": images.png((200, 80, 40))},
    )
    page.wait_for_selector(".prediction .bars li", timeout=120_000)
    look(page, "preview-scored")
    assert page.inner_text(".prediction h3") == "camera.png"
    assert page.get_attribute(".prediction img", "src").startswith("blob:")
    assert not scrolls_sideways(page)


def test_a_new_task_shows_nothing_in_red_before_anything_was_done(open_page, owner):
    task = Task.objects.create(owner=owner, name="Ripe or not")
    for width in (LAPTOP, PHONE):
        page = open_page(task.get_absolute_url(), owner, width)
        look(page, "new-task")
        red = page.eval_on_selector_all(
            ".workspace *",
            """elements => elements.filter(element => element.checkVisibility()
                && !element.closest("a, button, summary")
                && getComputedStyle(element).color === "rgb(201, 42, 42)"
                && element.textContent.trim()).map(element => element.textContent.trim())""",
        )
        assert red == [], width


@pytest.mark.parametrize("width", [PHONE, LAPTOP])
def test_the_time_budget_shows_only_in_accurate_mode(open_page, pages, width):
    page = open_page(*pages["task page"], width=width)
    assert not page.is_visible("[name=time_budget]")
    page.select_option("[name=mode]", "accurate")
    assert page.is_visible("[name=time_budget]")


def test_without_javascript_the_time_budget_shows_in_both_modes(open_page, pages):
    page = open_page(*pages["task page"], width=LAPTOP, javascript=False)
    assert page.input_value("[name=mode]") == "fast"
    assert page.is_visible("[name=time_budget]")
