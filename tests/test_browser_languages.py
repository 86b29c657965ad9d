"""A person whose browser speaks French or Chinese signs up and trains a model in that
language, end to end: the selectors go by structure, the assertions by the words the
catalogues give."""

import pytest

from tests import images
from tests.helpers import work
from tests.test_browser import drop_files, page, wait_for_count

__all__ = ["page"]  # the fixture, shared with the other browser tests

pytestmark = pytest.mark.browser

# (browser locale, the two categories, words each page must show in that language)
LANGUAGES = {
    "fr-FR": {
        "lang": "fr",
        "categories": ["fourmis", "abeilles"],
        "tasks": "Vos tâches",
        "first step": "Ajoutez des catégories",
        "added": "3 ajoutées",
        "accuracy": "exactitude de",
        "how good": "Quelle est sa qualité\u00a0?",
    },
    "zh-CN": {
        "lang": "zh-hans",
        "categories": ["蚂蚁", "蜜蜂"],
        "tasks": "你的任务",
        "first step": "添加类别",
        "added": "新增 3 张",
        "accuracy": "准确率",
        "how good": "效果如何？",
    },
}


@pytest.mark.parametrize("browser_locale", list(LANGUAGES))
def test_sign_up_and_train_in_the_browsers_language(
    page, browser_locale, transactional_db, training_queue
):
    words = LANGUAGES[browser_locale]
    page.goto("/accounts/signup/")
    assert page.get_attribute("html", "lang") == words["lang"]
    page.fill("#id_username", "grace")
    page.fill("#id_password1", "compilers all the way down")
    page.fill("#id_password2", "compilers all the way down")
    page.click("form.stacked button[type=submit]")
    assert page.inner_text("h1") == words["tasks"]

    page.fill("input[name=name]", "Ants or bees")
    page.click(".page-header button[type=submit]")
    assert words["first step"] in page.inner_text(".first-steps")
    for name in words["categories"]:
        page.fill("#new-category", name)
        page.click(".add-category button")
        page.wait_for_load_state()  # the page's script listens for drops once loaded
        wait_for_count(page, name, 0)
    colors = images.colors(6)
    for number, name in enumerate(words["categories"]):
        photos = {f"{name}-{i}.png": images.png(colors[number * 3 + i]) for i in range(3)}
        drop_files(page, f'#sidebar [data-name="{name}"]', photos)
        page.wait_for_function(
            "([added, reports]) => [...document.querySelectorAll('#upload-reports .summary')]"
            ".filter((summary) => summary.innerText.includes(added)).length === reports",
            arg=[words["added"], number + 1],
        )
        wait_for_count(page, name, 3)
        # The side bar is swapped after an upload: the next drop waits for it to settle.
        page.wait_for_function("() => !document.querySelector('.htmx-request')")

    page.click("#training .train-form button[type=submit]")
    page.wait_for_url("**/runs/**")
    work(training_queue)  # the training job, on a worker in this process
    page.wait_for_function(
        "(words) => document.querySelector('h1').textContent.includes(words)",
        arg=words["accuracy"],
        timeout=60_000,
    )
    assert words["how good"] in page.inner_text("main")
