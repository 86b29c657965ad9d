"""Each web thread keeps its database connection between requests (opening one cost
0.7 ms of every classify on SQLite). One dropped underneath the site (a PostgreSQL
restart, a proxy's idle timeout, pg_terminate_backend) costs no request and no job: the
web process checks a PostgreSQL connection before each request, and each job of the
worker opens its own."""

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection, connections
from django.test import RequestFactory

from tasks import runs
from tasks.worker import Worker

pytestmark = pytest.mark.django_db(transaction=True)


def drop_connection():
    """End this process's database session from outside, as a server restart would."""
    connection.ensure_connection()
    if connection.vendor == "postgresql":
        killer = connections.create_connection("default")
        with killer.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid]
            )
        killer.close()
    else:
        connection.connection.close()


def serve(path, **headers):
    """One request through Django's WSGI handler with its request signals, which the
    test client leaves out."""
    statuses = []
    body = WSGIHandler()(
        RequestFactory().get(path, **headers).environ,
        lambda status, response_headers: statuses.append(status),
    )
    content = b"".join(body)
    body.close()
    return statuses[0], content


def test_a_web_thread_keeps_its_connection_between_requests(api_key):
    authorization = {"HTTP_AUTHORIZATION": f"Bearer {api_key}"}
    serve("/api/v1/tasks", **authorization)
    kept = connection.connection
    assert kept is not None
    assert serve("/api/v1/tasks", **authorization) == ("200 OK", b"[]")
    assert connection.connection is kept


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="an SQLite file has no server to drop its connection, and Django's health "
    "check cannot see a broken SQLite one (it counts as usable until its age is up)",
)
def test_a_request_after_the_connection_was_dropped_succeeds(api_key):
    authorization = {"HTTP_AUTHORIZATION": f"Bearer {api_key}"}
    assert serve("/api/v1/tasks", **authorization)[0] == "200 OK"
    drop_connection()
    assert serve("/api/v1/tasks", **authorization) == ("200 OK", b"[]")


def test_a_worker_whose_connection_was_dropped_runs_the_next_job(shapes_task, training_queue):
    run, _ = runs.start(shapes_task, base_model="lite0")
    drop_connection()
    Worker([training_queue], connection=training_queue.connection).work(burst=True)
    run.refresh_from_db()
    assert run.status == "ready", run.reason
