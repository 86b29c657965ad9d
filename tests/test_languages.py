"""The pages in English, French and Simplified Chinese: chosen from the browser's
Accept-Language or the switch, the APIs in English whatever is asked, and catalogues
that are whole and compile without GNU gettext."""

import gettext
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.utils import translation

from tasks.templatetags import vize
from tests import images
from tests.helpers import V1

LOCALE = Path(settings.BASE_DIR) / "locale"
CATALOGUES = sorted(LOCALE.glob("*/LC_MESSAGES/*.po"))
FRENCH = "fr-FR,fr;q=0.9,en;q=0.5"
CHINESE = "zh-CN,zh;q=0.9,en;q=0.5"


def switch(client, language, next_page="/"):
    return client.post("/language/", {"language": language, "next": next_page})


@pytest.mark.parametrize(
    ("accept", "heading", "lang"),
    [(FRENCH, "Vos tâches", "fr"), (CHINESE, "你的任务", "zh-hans"), ("", "Your tasks", "en")],
)
def test_the_page_follows_the_browsers_language(owner_client, accept, heading, lang):
    page = owner_client.get("/", HTTP_ACCEPT_LANGUAGE=accept).content.decode()
    assert f"<h1>{heading}</h1>" in page
    assert f'<html lang="{lang}">' in page


def test_the_switch_sets_the_language_and_it_sticks(owner_client):
    answer = switch(owner_client, "zh-hans", "/")
    assert answer.status_code == 302
    # The choice outranks what the browser asks for, on every page after.
    page = owner_client.get("/", HTTP_ACCEPT_LANGUAGE=FRENCH).content.decode()
    assert "<h1>你的任务</h1>" in page
    assert "<h1>API 密钥</h1>" in owner_client.get("/accounts/api-keys/").content.decode()


@pytest.mark.parametrize("accept", ["", FRENCH, CHINESE])
def test_the_account_menu_offers_the_three_languages_in_their_own_words(owner_client, accept):
    page = owner_client.get("/", HTTP_ACCEPT_LANGUAGE=accept).content.decode()
    menu = page[page.index('class="menu-body"') :]
    for code, name in (("en", "English"), ("fr", "Français"), ("zh-hans", "简体中文")):
        assert f'value="{code}" lang="{code}"' in menu
        assert name in menu


def test_a_signed_out_visitor_switches_at_the_foot_of_the_page(db):
    visitor = Client()
    foot = visitor.get("/").content.decode().split('<footer class="page-foot">')[1]
    assert 'action="/language/"' in foot
    switch(visitor, "fr")
    assert "Apprenez à un ordinateur à trier vos photos." in visitor.get("/").content.decode()


def test_the_api_answers_in_english_whatever_the_language(api, task):
    api.cookies[settings.LANGUAGE_COOKIE_NAME] = "fr"
    answer = api.post(
        f"{V1}/tasks/{task.code}/images",
        {"files": [SimpleUploadedFile("notes.txt", b"not a picture")]},
        HTTP_ACCEPT_LANGUAGE=CHINESE,
    )
    assert answer.headers["Content-Language"] == "en"
    assert answer.json()["rejected"][0]["reason"].startswith("not an image in a supported")


def test_the_watson_api_answers_in_english(db, api_key):
    answer = Client().get(
        "/visual-recognition/api/v3/classifiers?version=2018-03-19",
        HTTP_ACCEPT_LANGUAGE=FRENCH,
    )
    assert answer.status_code == 401
    assert answer.headers["Content-Language"] == "en"


def test_a_message_after_an_action_is_translated(owner_client, task):
    answer = owner_client.post(
        f"/tasks/{task.code}/categories/new/",
        {"name": "fourmis"},
        HTTP_ACCEPT_LANGUAGE=FRENCH,
        follow=True,
    )
    assert "Catégorie «\u00a0fourmis\u00a0» ajoutée." in answer.content.decode()


def test_an_upload_refusal_is_translated_on_the_page(owner_client, task):
    switch(owner_client, "zh-hans")
    answer = owner_client.post(
        f"/tasks/{task.code}/upload/",
        {"files": [SimpleUploadedFile("notes.txt", b"not a picture"), photo()]},
        follow=True,
    )
    page = answer.content.decode()
    assert "新增 1 张，0 张重复，1 张被拒绝。" in page
    assert "notes.txt: 不是受支持格式的图片" in page


def photo():
    return SimpleUploadedFile("photo.png", images.png((200, 30, 30)))


def test_the_javascript_catalogue_follows_the_language(db):
    catalogue = Client().get("/jsi18n/", HTTP_ACCEPT_LANGUAGE=FRENCH).content.decode()
    assert "Appuyez sur Ctrl+C" in catalogue


def test_percentages_durations_and_dates_are_written_the_readers_way():
    moment = datetime(2026, 12, 2, 9, 5, tzinfo=UTC)
    with translation.override("fr"):
        assert vize.percent(0.9673) == "96,7\u00a0%"
        assert vize.seconds(4.25) == "4,2\u00a0s"
        assert vize.when(moment, "day") == "2 déc. 2026"
    with translation.override("zh-hans"):
        assert vize.percent(0.9673, 0) == "97%"
        assert vize.seconds(600) == "10 分钟"
        assert vize.when(moment, "minute") == "2026年12月2日 09:05"
    with translation.override("en"):
        assert vize.percent(0.9673) == "96.7 %"
        assert vize.when(moment, "minute") == "2 Dec 2026, 09:05"


def test_a_runs_stored_reason_and_method_are_translated(owner_client, task):
    from tasks.models import TrainingRun

    run = TrainingRun.objects.create(
        task=task, base_model="lite0", mode="fast", status="cancelled", reason="Cancelled."
    )
    page = owner_client.get(run.get_absolute_url(), HTTP_ACCEPT_LANGUAGE=CHINESE)
    assert '<p class="message message-error">已取消。' in page.content.decode()
    with translation.override("fr"):
        assert vize.translated("5-fold cross-validation") == "validation croisée à 5 plis"
        assert vize.translated("The model zip could not be packaged: disk full.") == (
            "Le zip du modèle n’a pas pu être préparé\u00a0: disk full."
        )
        assert vize.translated("an error of its own") == "an error of its own"


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda path: str(path.relative_to(LOCALE)))
def test_every_catalogue_is_whole_and_keeps_the_placeholders(path):
    with path.open("rb") as po:
        catalogue = read_po(po)
    assert catalogue.locale is not None and not catalogue.fuzzy
    for message in catalogue:
        if not message.id:
            continue
        originals = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"untranslated: {originals[0]!r}"
        assert not message.fuzzy, f"fuzzy: {originals[0]!r}"
        for string in strings:
            assert placeholders(string) == placeholders(originals[-1]), originals[0]


def placeholders(text):
    """%(name)s, %%, and {name}: what a translation must keep from its original."""
    named = re.findall(r"%\([a-z_]+\)[sd]|%%|\{[a-z_]*\}", text)
    return sorted(named)


def test_compile_translations_builds_every_catalogue_without_gettext(settings, tmp_path):
    shutil.copytree(LOCALE, tmp_path / "locale")
    settings.LOCALE_PATHS = [tmp_path / "locale"]
    call_command("compile_translations", verbosity=0)
    compiled = sorted((tmp_path / "locale").glob("*/LC_MESSAGES/*.mo"))
    assert len(compiled) == len(CATALOGUES)
    with (tmp_path / "locale/fr/LC_MESSAGES/django.mo").open("rb") as mo:
        french = gettext.GNUTranslations(mo)
    assert french.gettext("Unsorted") == "Non triées"
    assert french.ngettext("%(count)s image", "%(count)s images", 2) == "%(count)s images"


def test_english_stays_the_default_language():
    assert settings.LANGUAGE_CODE == "en"
