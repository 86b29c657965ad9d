"""Names people type (tasks, categories, files) are shown as text, never run as HTML or
template code: in pages, in htmx fragments and in the APIs' JSON."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tasks import imports
from tasks.models import Task
from tests import images
from tests.test_watson import basic

HOSTILE = '<script>alert("x")</script>{{ 7|add:7 }}'


@pytest.fixture
def hostile_task(owner):
    task = Task.objects.create(owner=owner, name=HOSTILE)
    category = task.categories.create(name=HOSTILE)
    imports.import_files(
        task, [SimpleUploadedFile(f"{HOSTILE}.png", images.png())], category=category
    )
    return task


def assert_shown_as_text(html):
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;{{ 7|add:7 }}" in html


def test_the_task_list_shows_names_as_text(owner_client, hostile_task):
    assert_shown_as_text(owner_client.get("/").content.decode())


def test_the_task_page_shows_names_as_text(owner_client, hostile_task):
    assert_shown_as_text(owner_client.get(hostile_task.get_absolute_url()).content.decode())


def test_the_sidebar_fragment_shows_names_as_text(owner_client, hostile_task):
    response = owner_client.get(
        hostile_task.get_absolute_url(), headers={"HX-Request": "true", "HX-Target": "sidebar"}
    )
    assert_shown_as_text(response.content.decode())


def test_the_image_fragment_shows_the_file_name_as_text(owner_client, hostile_task):
    image = hostile_task.images.get()
    response = owner_client.get(
        f"/tasks/{hostile_task.code}/images/{image.code}/", headers={"HX-Request": "true"}
    )
    assert "<script>alert" not in response.content.decode()


def test_the_api_answers_names_in_json_not_html(api, hostile_task):
    response = api.get(f"/api/v1/tasks/{hostile_task.code}")
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["name"] == HOSTILE


def test_the_watson_api_answers_names_in_json_not_html(client, api_key, hostile_task):
    hostile_task.watson_id = "hostile_0123456789"
    hostile_task.save()
    response = client.get(
        "/visual-recognition/api/v3/classifiers/hostile_0123456789?version=2018-03-19",
        HTTP_AUTHORIZATION=basic(api_key),
    )
    assert response["Content-Type"] == "application/json"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.json()["name"] == HOSTILE
