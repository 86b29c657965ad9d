"""Schemathesis sends requests made from the OpenAPI schema, many of them malformed,
with a valid key and the owner's real codes in the paths: none may fail the server."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings

from tasks.api import api
from vizeapp.wsgi import application


@pytest.fixture
def api_schema(db):
    """The schema, over the WSGI application. Like Django's test client, it keeps the
    database connection open between requests: the test's transaction lives on it."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


OPERATIONS = [
    (method.upper(), path)
    for path, item in api.get_openapi_schema()["paths"].items()
    for method in item
]


@pytest.fixture
def owned_codes(task, ants, ant_images):
    run = task.runs.create(base_model="lite0", mode="fast", samples=[], status="failed")
    webhook = task.webhooks.create(
        url="https://hooks.example.org/vize", secret="whsec_x", site="http://testserver"
    )
    return {
        "task": task.code,
        "category": ants.code,
        "image": ant_images[0].code,
        "run": run.code,
        "webhook": webhook.code,
    }


# With the job queues up, as in production: a queue that is down is answered 503 on purpose.
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_request_makes_the_api_fail(api_schema, api_key, owned_codes, queues, method, path):
    @given(case=api_schema[path][method].as_strategy())
    @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case):
        for name in case.path_parameters or {}:
            if name in owned_codes:
                case.path_parameters[name] = str(owned_codes[name])
        response = case.call(headers={"Authorization": f"Bearer {api_key}"})
        assert response.status_code < 500, (case.formatted_path, response.text[:500])

    check()
