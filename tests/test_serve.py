"""`manage.py serve` (what `make run` ends with) on embedded defaults: SQLite and the
embedded Redis in a var/ folder of the test's own, a web server and a worker; Ctrl-C
stops them all."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis
from rq import Queue

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting after {timeout} s")


def prepared_var(var):
    """The environment of a site whose data lives in var, migrated."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "PORT")}
    env["VIZE_VAR_DIR"] = str(var)
    for command in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):
        subprocess.run(
            [sys.executable, "manage.py", *command, "-v0"], cwd=ROOT, env=env, check=True
        )
    return env


def stop(process):
    if process.poll() is None:
        # As on Ctrl-C, so that serve stops its parts: a SIGKILL to serve alone left its
        # Redis, web server and workers running after every test run.
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def serve():
    """serve(var, port): `manage.py serve` on $PORT with its data in var, stopped after
    the test."""
    started = []

    def start(var, port):
        env = {**prepared_var(var), "PORT": str(port)}
        command = [sys.executable, "manage.py", "serve", "--web-workers", "1"]
        started.append(subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True))
        return started[-1]

    yield start
    for process in started:
        stop(process)


@pytest.fixture
def site(serve, tmp_path):
    port = free_port()
    return serve(tmp_path / "var", port), port, tmp_path / "var"


def serve_once(env, *arguments):
    """`manage.py serve` run to its end, for the tests of what it refuses to start."""
    command = [sys.executable, "manage.py", "serve", *arguments]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def answering(port):
    login = f"http://127.0.0.1:{port}/accounts/login/"
    return urllib.request.urlopen(login, timeout=2).status == 200


def test_it_serves_pages_runs_jobs_and_stops_on_ctrl_c(site):
    process, port, var = site
    login = f"http://127.0.0.1:{port}/accounts/login/"
    wait_for(lambda: urllib.request.urlopen(login, timeout=2).status == 200)
    assert (var / "db.sqlite3").exists()

    connection = redis.Redis(unix_socket_path=str(var / "redis.sock"))
    job = Queue("default", connection=connection).enqueue("tests.queue_jobs.add", 20, 22)
    wait_for(lambda: job.refresh() or job.is_finished)
    assert job.return_value() == 42

    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
    assert process.wait(timeout=30) == 0
    leftovers = subprocess.run(
        ["/usr/bin/pgrep", "-f", f"granian.*--port={port}"], capture_output=True
    )
    assert leftovers.stdout == b"", "a web server process outlived serve"
    with pytest.raises(OSError):
        urllib.request.urlopen(login, timeout=2)
    with pytest.raises((redis.ConnectionError, FileNotFoundError)):
        redis.Redis(unix_socket_path=str(var / "redis.sock")).ping()


def test_a_training_job_never_waits_behind_a_background_job(site):
    _, port, var = site
    wait_for(lambda: answering(port))
    connection = redis.Redis(unix_socket_path=str(var / "redis.sock"))
    busy = Queue("default", connection=connection).enqueue("tests.queue_jobs.sleep", 10)
    wait_for(lambda: busy.refresh() or busy.is_started)
    training = Queue("training", connection=connection).enqueue("tests.queue_jobs.add", 1, 2)
    wait_for(lambda: training.refresh() or training.is_finished, timeout=20)
    assert busy.refresh() or busy.is_started  # still embedding, say, while it trained


def test_two_copies_serve_side_by_side_and_stopping_one_leaves_the_other(serve, tmp_path):
    first_port, second_port = free_port(), free_port()
    first = serve(tmp_path / "first", first_port)
    serve(tmp_path / "second", second_port)
    wait_for(lambda: answering(first_port) and answering(second_port))

    os.killpg(first.pid, signal.SIGINT)
    assert first.wait(timeout=30) == 0
    assert answering(second_port)


def test_a_second_copy_on_the_same_data_is_refused_with_what_to_do(site, tmp_path):
    _, port, var = site
    wait_for(lambda: answering(port))
    env = {**prepared_var(var), "PORT": str(free_port())}
    second = serve_once(env)
    assert second.returncode != 0
    assert "Another copy of vizeapp is running" in second.stderr
    assert "VIZE_VAR_DIR" in second.stderr
    assert answering(port)


def test_serving_on_a_port_another_server_listens_on_is_refused_with_what_to_do(tmp_path):
    env = prepared_var(tmp_path / "var")
    with socket.socket() as taken:
        # As granian's own workers listen, each on a socket of its own sharing the port.
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = serve_once({**env, "PORT": str(port)})
    assert refused.returncode != 0
    assert f"127.0.0.1:{port} is taken" in refused.stderr
    assert "make run PORT=8001" in refused.stderr
    assert not (tmp_path / "var" / "redis.sock").exists()  # it started nothing


def test_a_bind_without_a_port_is_refused_with_the_form_it_takes(tmp_path):
    env = prepared_var(tmp_path / "var")
    refused = serve_once(env, "--bind", "localhost")
    assert refused.returncode != 0
    assert "--bind takes HOST:PORT, such as 127.0.0.1:8000" in refused.stderr
