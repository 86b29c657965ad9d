"""Every route of a task, every method, for an outsider, an anonymous visitor and the
owner: the outsider gets 404 and changes nothing, the visitor is sent to sign in.
The routes come from the URL resolver, so a new route is covered or fails here."""

import base64

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tasks.models import ApiKey, Category, Image, Task, TrainingRun, Webhook
from tests import images

# How each URL parameter is filled from the owner's objects.
PARAMETERS = {
    "task_code": lambda objects: objects["task"].code,
    "category_code": lambda objects: objects["category"].code,
    "image_code": lambda objects: objects["image"].code,
    "run_code": lambda objects: objects["run"].code,
    # The JSON API's names for the same codes.
    "task": lambda objects: objects["task"].code,
    "category": lambda objects: objects["category"].code,
    "image": lambda objects: objects["image"].code,
    "run": lambda objects: objects["run"].code,
    "key_id": lambda objects: objects["key"].pk,
    "classifier_id": lambda objects: objects["task"].watson_id,
    "queue": lambda objects: "mislabels",
    "webhook_code": lambda objects: objects["webhook"].code,
    "webhook": lambda objects: objects["webhook"].code,
}


def routes(patterns=None, namespace=""):
    patterns = get_resolver().url_patterns if patterns is None else patterns
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from routes(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}{entry.name}", list(entry.pattern.converters)


OWNED_ROUTES = sorted(
    (name, parameters) for name, parameters in routes() if parameters and name.startswith("tasks:")
)


def test_every_route_with_parameters_is_covered():
    uncovered = [
        (name, parameter)
        for name, parameters in routes()
        for parameter in parameters
        if parameter not in PARAMETERS
    ]
    assert uncovered == []
    assert len(OWNED_ROUTES) >= 11


@pytest.fixture
def objects(task, ants, ant_images):
    run = task.runs.create(base_model="lite0", mode="fast", status="ready", samples=[])
    key, _ = ApiKey.issue(task.owner, "isolation")
    task.watson_id = "ants_1234567890"
    task.save()
    webhook = task.webhooks.create(
        url="https://hooks.example.org/vize", secret=Webhook.new_secret(), site="http://testserver"
    )
    return {
        "task": task,
        "category": ants,
        "image": ant_images[0],
        "run": run,
        "key": key,
        "webhook": webhook,
    }


def url_of(name, parameters, objects):
    return reverse(name, kwargs={p: PARAMETERS[p](objects) for p in parameters})


def hostile_post_data(objects):
    return {
        "name": "taken over",
        "images": [str(objects["image"].code)],
        "category": "unsorted",
        "target": "unsorted",
        "url": "https://hooks.example.org/theirs",
        "files": SimpleUploadedFile("x.png", images.png((1, 2, 3))),
    }


def snapshot(media_root):
    return (
        list(Task.objects.values_list("name", "owner")),
        list(Category.objects.values_list("name", "task")),
        list(Image.objects.values_list("code", "category")),
        list(TrainingRun.objects.values_list("code", "status")),
        list(Task.objects.values_list("active_run", flat=True)),
        list(Webhook.objects.values_list("code", "url")),
        sorted(str(path) for path in media_root.rglob("*")),
    )


@pytest.mark.parametrize(("name", "parameters"), OWNED_ROUTES)
@pytest.mark.parametrize("method", ["get", "post"])
def test_an_outsider_gets_404_and_changes_nothing(
    outsider_client,
    objects,
    media_root,
    name,
    parameters,
    method,
    django_capture_on_commit_callbacks,
):
    before = snapshot(media_root)
    url = url_of(name, parameters, objects)
    with django_capture_on_commit_callbacks(execute=True):
        if method == "get":
            response = outsider_client.get(url)
        else:
            response = outsider_client.post(url, hostile_post_data(objects))
    assert response.status_code in (404, 405)
    assert snapshot(media_root) == before


@pytest.mark.parametrize(("name", "parameters"), OWNED_ROUTES)
@pytest.mark.parametrize("method", ["get", "post"])
def test_an_anonymous_visitor_is_sent_to_sign_in(client, objects, name, parameters, method):
    url = url_of(name, parameters, objects)
    response = getattr(client, method)(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize(("name", "parameters"), OWNED_ROUTES)
def test_the_owner_reaches_every_route(owner_client, objects, name, parameters):
    url = url_of(name, parameters, objects)
    response = owner_client.get(url)
    if response.status_code == 405:
        response = owner_client.post(url, hostile_post_data(objects))
    assert response.status_code in (200, 302)


API_ROUTES = sorted((name, parameters) for name, parameters in routes() if name.startswith("api:"))
API_OWNED_ROUTES = [(name, parameters) for name, parameters in API_ROUTES if parameters]
# The schema and its docs are public (tests/test_api.py reads them without a key).
API_DOCS = {"api:openapi-json", "api:openapi-view", "api:api-root"}


def hostile_json(objects):
    return {
        "name": "taken over",
        "images": [str(objects["image"].code)],
        "category": None,
        "url": "https://hooks.example.org/theirs",
        "base_model": "lite0",
        "mode": "fast",
    }


@pytest.mark.parametrize(("name", "parameters"), API_OWNED_ROUTES)
@pytest.mark.parametrize("method", ["get", "post", "patch", "delete"])
def test_an_outsiders_api_key_gets_404_and_changes_nothing(
    outsider_api,
    objects,
    media_root,
    name,
    parameters,
    method,
    django_capture_on_commit_callbacks,
):
    before = snapshot(media_root)
    url = url_of(name, parameters, objects)
    send = getattr(outsider_api, method)
    with django_capture_on_commit_callbacks(execute=True):
        if method == "get":
            response = send(url)
        else:
            response = send(url, hostile_json(objects), "application/json")
            if response.status_code == 400:  # the endpoint takes a multipart form
                response = send(url, hostile_post_data(objects))
    assert response.status_code in (404, 405), response.content
    assert snapshot(media_root) == before


@pytest.mark.parametrize(
    ("name", "parameters"), [route for route in API_ROUTES if route[0] not in API_DOCS]
)
def test_the_api_without_a_key_answers_401(client, objects, name, parameters):
    url = url_of(name, parameters, objects)
    for method in ("get", "post", "patch", "delete"):
        assert getattr(client, method)(url).status_code in (401, 405)


WATSON_OWNED_ROUTES = sorted(
    (name, parameters) for name, parameters in routes() if name.startswith("watson_") and parameters
)


@pytest.mark.parametrize(("name", "parameters"), WATSON_OWNED_ROUTES)
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_an_outsiders_watson_key_gets_404_and_changes_nothing(
    client, outsider, objects, media_root, name, parameters, method
):
    key = ApiKey.issue(outsider, "theirs")[1]
    before = snapshot(media_root)
    url = url_of(name, parameters, objects) + "?version=2018-03-19"
    credentials = "Basic " + base64.b64encode(f"apikey:{key}".encode()).decode()
    response = getattr(client, method)(url, HTTP_AUTHORIZATION=credentials)
    assert response.status_code in (404, 405)
    assert snapshot(media_root) == before


@pytest.fixture
def owner_client_enforcing_csrf(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    return client


@pytest.mark.parametrize(("name", "parameters"), OWNED_ROUTES)
def test_a_post_without_the_csrf_token_is_refused(
    owner_client_enforcing_csrf, objects, media_root, name, parameters
):
    before = snapshot(media_root)
    url = url_of(name, parameters, objects)
    response = owner_client_enforcing_csrf.post(
        url, hostile_post_data(objects), headers={"HX-Request": "true"}
    )
    assert response.status_code in (403, 405)
    assert snapshot(media_root) == before
