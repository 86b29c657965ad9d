"""axe-core (tests/vendor, from the npm registry) finds no serious or critical
accessibility violation on the main pages: the grid with photos, the task list, a run's
page and the preview."""

from pathlib import Path

import pytest

from tasks.models import Task
from tests import test_browser

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
SERIOUS = ("serious", "critical")

page = test_browser.page  # the fixture: a chromium page on the live server


def violations(page):
    """The serious and critical violations axe finds on the page: 'rule: where' lines."""
    page.add_script_tag(path=AXE)
    found = page.evaluate("axe.run(document).then((results) => results.violations)")
    return [
        f"{rule['id']} ({rule['impact']}): {node['target']} {node['failureSummary']}"
        for rule in found
        if rule["impact"] in SERIOUS
        for node in rule["nodes"]
    ]


@pytest.fixture
def signed_in(page, trained):
    """The page, signed in as the owner of a trained task: (page, task)."""
    task = Task.objects.get(code=trained[0])
    page.goto("/accounts/login/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", "a long owner passphrase")
    page.click("button:has-text('Sign in')")
    page.wait_for_url("**/")
    return page, task


def test_the_grid_with_a_cursor_and_an_undo_notice_has_no_serious_violation(signed_in):
    page, task = signed_in
    page.goto(task.get_absolute_url())
    page.click("#tiles .tile >> nth=0")
    page.keyboard.press("1")
    page.wait_for_selector("#messages form.undo")

    assert violations(page) == []


def test_the_task_list_has_no_serious_violation(signed_in):
    page, _ = signed_in
    page.goto("/")

    assert violations(page) == []


def test_a_run_page_has_no_serious_violation(signed_in):
    page, task = signed_in
    page.goto(task.active_run.get_absolute_url())

    assert violations(page) == []


def test_the_preview_has_no_serious_violation(signed_in):
    page, task = signed_in
    page.goto(f"{task.get_absolute_url()}preview/")

    assert violations(page) == []


def test_the_larger_view_has_no_serious_violation(signed_in):
    page, task = signed_in
    page.goto(task.get_absolute_url())
    page.click("#tiles .tile >> nth=0 >> .open", force=True)
    page.wait_for_selector("#viewer[open] .image-view")

    assert violations(page) == []
