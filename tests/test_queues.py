"""The job queues reach a real Redis: CI's server when REDIS_URL is set, otherwise the
embedded one that `manage.py serve` uses."""

import django_rq
import pytest
from django.conf import settings as django_settings
from rq import SimpleWorker

from tests.queue_jobs import add
from vizeapp import embedded_redis

QUEUES = list(django_settings.RQ_QUEUES)


@pytest.fixture
def queues(settings, redis_url):
    settings.RQ_QUEUES = {name: {"URL": redis_url} for name in QUEUES}
    return [django_rq.get_queue(name) for name in QUEUES]


@pytest.mark.parametrize("name", QUEUES)
def test_a_worker_runs_jobs_from_each_queue(queues, name):
    queue = next(queue for queue in queues if queue.name == name)
    queue.empty()
    job = queue.enqueue(add, 2, 3)
    SimpleWorker(queues, connection=queue.connection).work(burst=True)
    job.refresh()
    assert job.is_finished
    assert job.return_value() == 5


def test_the_embedded_redis_starts_on_a_socket_and_stops(tmp_path):
    import redis

    server = embedded_redis.start(tmp_path / "r.sock", tmp_path)
    client = redis.Redis(unix_socket_path=str(tmp_path / "r.sock"))
    assert client.ping()
    server.terminate()
    server.wait(timeout=10)
    with pytest.raises((redis.ConnectionError, FileNotFoundError)):
        redis.Redis(unix_socket_path=str(tmp_path / "r.sock")).ping()
