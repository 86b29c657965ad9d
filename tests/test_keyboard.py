"""Labelling from the keyboard alone, and undo, in a real browser (Debian's chromium
driven by Playwright): the grid's cursor, selection, moves and deletes by key, the
larger view, and the Undo of the notice a move or delete leaves."""

import pytest

from tasks.models import Category, Image, Task
from tests import test_browser
from tests.helpers import add_images
from tests.test_browser import count_of, open_view, sign_up_and_create_task, wait_for_count

pytestmark = pytest.mark.browser

page = test_browser.page  # the fixture: a chromium page on the live server


def grid_of(page, count, categories=("ants", "bees")):
    """Sign up, make a task of these categories, put count photos in the first."""
    sign_up_and_create_task(page, categories)
    add_images(Task.objects.get(), Category.objects.get(name=categories[0]), count)
    page.reload()
    page.wait_for_function(f"document.querySelectorAll('#tiles .tile').length === {count}")


def category_of(name):
    return Image.objects.get(original_name=name).category.name


def focused(page, script):
    return page.evaluate(
        f"(() => {{ const element = document.activeElement; return {script}; }})()"
    )


def cursor_index(page):
    return page.evaluate(
        "Array.from(document.querySelectorAll('#tiles .tile')).findIndex("
        "(tile) => tile.classList.contains('cursor'))"
    )


def columns(page):
    return page.evaluate(
        """(() => { const tiles = Array.from(document.querySelectorAll('#tiles .tile'));
                    return tiles.filter((t) => t.offsetTop === tiles[0].offsetTop).length; })()"""
    )


def enter_grid(page):
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")


def test_the_skip_link_comes_first_and_takes_the_focus_to_the_first_photo(page, db):
    grid_of(page, 3)

    page.keyboard.press("Tab")
    assert focused(page, "element.textContent") == "Skip to photos"
    page.keyboard.press("Enter")

    assert focused(page, "element.closest('.tile') === document.querySelector('#tiles .tile')")
    assert cursor_index(page) == 0


def test_the_arrow_keys_move_the_cursor_by_the_grids_columns(page, db):
    grid_of(page, 12)
    enter_grid(page)
    per_row = columns(page)
    assert 1 < per_row < 12

    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    assert cursor_index(page) == 1 + per_row
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowUp")
    assert cursor_index(page) == 0
    assert focused(page, "element.closest('.tile').classList.contains('cursor')")


def test_space_checks_the_cursors_photo_so_that_the_move_button_moves_it(page, db):
    grid_of(page, 3)
    enter_grid(page)
    page.keyboard.press("ArrowRight")

    page.keyboard.press("Space")
    assert page.inner_text("#selection-count").startswith("1 selected")
    assert page.is_checked("#tiles .tile >> nth=1 >> input[type=checkbox]")
    page.select_option("#grid select[name=category]", label="bees")
    page.click("#grid button[data-action=move]")

    wait_for_count(page, "bees", 1)
    assert count_of(page, "ants") == "2"


def test_a_number_key_moves_the_cursors_photo_while_it_has_the_focus(page, db):
    grid_of(page, 3)
    enter_grid(page)

    page.keyboard.press("2")  # the second category: bees

    wait_for_count(page, "bees", 1)
    assert "Moved 1 image to bees." in page.inner_text("#messages")


def test_after_a_number_key_moved_its_photo_away_the_cursor_is_on_the_next(page, db):
    grid_of(page, 3)
    open_view(page, '#sidebar [data-name="ants"]')
    page.wait_for_function("document.querySelectorAll('#tiles .tile').length === 3")
    enter_grid(page)
    following = page.locator("#tiles .tile").nth(1).get_attribute("data-code")

    page.keyboard.press("2")

    page.wait_for_function("document.querySelectorAll('#tiles .tile').length === 2")
    page.wait_for_function(
        f"document.activeElement.closest('.tile')?.dataset.code === '{following}'"
    )
    page.keyboard.press("2")
    wait_for_count(page, "bees", 2)


def test_delete_asks_first_then_deletes_the_cursors_photo(page, db):
    grid_of(page, 3)
    enter_grid(page)
    questions = []
    page.on("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))

    page.keyboard.press("Delete")

    wait_for_count(page, "ants", 2)
    assert questions == ["Delete the selected images? Undo brings them back for a few minutes."]
    assert page.locator("#tiles .tile").count() == 2


def test_focus_is_visible_on_the_skip_link_and_on_a_photo(page, db):
    grid_of(page, 2)

    page.keyboard.press("Tab")
    assert focused(page, "getComputedStyle(element).outlineStyle") == "solid"
    page.keyboard.press("Enter")
    ring = "getComputedStyle(element.closest('.tile')).boxShadow"
    assert focused(page, ring) != "none"


def test_enter_opens_the_larger_view_whose_keys_show_the_next_photo_and_move_it(page, db):
    grid_of(page, 3)
    enter_grid(page)
    first, second = (page.locator("#tiles .tile img").nth(i).get_attribute("alt") for i in (0, 1))

    page.keyboard.press("Enter")
    page.wait_for_selector("#viewer[open] .image-view")
    assert page.inner_text("#viewer h2") == first
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"document.querySelector('#viewer h2').textContent === '{second}'")
    page.keyboard.press("2")  # into bees; the view goes on to the third photo

    wait_for_count(page, "bees", 1)
    assert "Moved 1 image to bees." in page.inner_text("#viewer .viewer-messages")
    assert category_of(second) == "bees"


def test_the_undo_of_a_move_puts_the_photos_back_and_the_counts_with_them(page, db):
    grid_of(page, 3)
    open_view(page, '#sidebar [data-name="ants"]')
    page.click("#tiles .tile >> nth=0")
    page.click("#tiles .tile >> nth=1", modifiers=["Shift"])
    page.keyboard.press("2")
    wait_for_count(page, "bees", 2)
    page.wait_for_function("document.querySelectorAll('#tiles .tile').length === 1")

    page.click("#messages form.undo button")

    wait_for_count(page, "ants", 3)
    assert count_of(page, "bees") == "0"
    assert "Put 2 images back in ants." in page.inner_text("#messages")
    page.wait_for_function("document.querySelectorAll('#tiles .tile').length === 3")


def test_ctrl_z_brings_a_deleted_photo_back(page, db):
    grid_of(page, 2)
    enter_grid(page)
    page.on("dialog", lambda dialog: dialog.accept())
    page.keyboard.press("Delete")
    wait_for_count(page, "ants", 1)

    page.keyboard.press("Control+z")

    wait_for_count(page, "ants", 2)
    assert "Brought back 1 image." in page.inner_text("#messages")
    page.wait_for_function("document.querySelectorAll('#tiles .tile').length === 2")


def test_without_javascript_the_larger_view_walks_moves_and_undoes_with_links_and_forms(
    page, db, live_server
):
    grid_of(page, 3)
    plain = page.context.browser.new_context(java_script_enabled=False, base_url=live_server.url)
    plain.add_cookies(page.context.cookies())
    view = plain.new_page()
    view.goto(page.locator("#tiles .tile .open").first.get_attribute("href"))
    second = page.locator("#tiles .tile img").nth(1).get_attribute("alt")

    view.click("a[rel=next]")
    assert view.inner_text(".image-view h2") == second
    view.click(".move-to button:has-text('bees')")
    assert "Moved 1 image to bees." in view.inner_text("#messages")
    assert category_of(second) == "bees"
    view.click("#messages form.undo button")

    assert "Put 1 image back in ants." in view.inner_text("#messages")
    assert category_of(second) == "ants"
    plain.close()


@pytest.mark.parametrize("width, height", [(1280, 800), (390, 844)])
def test_the_larger_view_fits_the_screen_with_its_buttons_in_reach(
    page, db, tmp_path, width, height
):
    grid_of(page, 8)
    page.set_viewport_size({"width": width, "height": height})
    page.reload()
    enter_grid(page)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("2")
    page.wait_for_selector("#messages form.undo")
    page.screenshot(path=tmp_path / f"grid-{width}.png")

    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#viewer[open] .image-view img')?.complete")
    page.screenshot(path=tmp_path / f"larger-view-{width}.png")

    dialog = "document.querySelector('#viewer')"
    assert page.evaluate(f"{dialog}.scrollWidth <= {dialog}.clientWidth")
    for button in page.locator("#viewer .move-to button, #viewer [data-action=delete]").all():
        box = button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width
