"""Faults with real processes: `manage.py serve` on embedded defaults (SQLite, Redis,
granian and the worker), driven through the JSON API, and its work-horse, or the whole
worker, killed with SIGKILL in the middle of a training run."""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.images import encode, picture
from tests.test_serve import ROOT, free_port, wait_for


class Api:
    def __init__(self, port, key):
        self.root = f"http://127.0.0.1:{port}/api/v1"
        self.key = key

    def call(self, method, path, payload=None, body=None, content_type=None):
        headers = {"Authorization": f"Bearer {self.key}"}
        if payload is not None:
            body, content_type = json.dumps(payload).encode(), "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.root + path, body, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


def shapes_upload(count=12):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for kind in ("discs", "squares"):
            for i in range(count):
                zipped.writestr(f"{kind}/{i}.png", encode(picture(kind, i), "PNG"))
    boundary = "vizeapp-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="folders_as_categories"\r\n\r\n'
            f'true\r\n--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="shapes.zip"\r\nContent-Type: application/zip\r\n\r\n'
        ).encode()
        + archive.getvalue()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def children(pid):
    """The process ids whose parent is pid."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.fixture
def running_site(tmp_path, model_cache):
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(VIZE_VAR_DIR=str(var), VIZE_MODEL_CACHE=str(model_cache))
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [
            *manage,
            "createsuperuser",
            "--noinput",
            "--username",
            "ada",
            "--email",
            "ada@example.org",
        ],
        cwd=ROOT,
        env={**env, "DJANGO_SUPERUSER_PASSWORD": "a long passphrase here"},
        check=True,
        capture_output=True,
    )
    key = subprocess.run(
        [*manage, "create_api_key", "ada"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    site = Site(env, key)
    yield site
    site.stop()


SERVE = [sys.executable, "manage.py", "serve"]


class Site:
    """`manage.py serve` on a folder of its own, which can be started again after a crash."""

    def __init__(self, env, key):
        self.env, self.var = env, Path(env["VIZE_VAR_DIR"])
        self.port = free_port()
        self.api = Api(self.port, key)
        self.start()

    def start(self, **settings):
        self.process = subprocess.Popen(
            [*SERVE, "--bind", f"127.0.0.1:{self.port}", "--web-workers", "1"],
            cwd=ROOT,
            env={**self.env, **settings},
            start_new_session=True,
            stdout=subprocess.DEVNULL,
        )
        wait_for(lambda: self.api.call("GET", "/tasks")[0] == 200)

    def stop(self):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)

    def worker(self):
        """The worker of the training queue (serve starts another for background jobs)."""
        (worker,) = [
            pid
            for pid in children(self.process.pid)
            if Path(f"/proc/{pid}/cmdline").read_bytes().endswith(b"\0training\0")
        ]
        return worker


def run_state(api, task, run):
    return api.call("GET", f"/tasks/{task}/runs/{run}")[1]


def trained_then_fine_tuning(api):
    """(task, ready run, run fine-tuning now): a fast model answers while an accurate
    run is in its fitting stage."""
    _, task = api.call("POST", "/tasks", {"name": "Discs or squares"})
    task = task["code"]
    body, content_type = shapes_upload()
    assert api.call("POST", f"/tasks/{task}/images", body=body, content_type=content_type)[0] == 201
    _, first = api.call("POST", f"/tasks/{task}/runs", {"base_model": "lite0"})
    wait_for(lambda: run_state(api, task, first["code"])["status"] == "ready", timeout=120)
    _, second = api.call(
        "POST",
        f"/tasks/{task}/runs",
        {"base_model": "lite0", "mode": "accurate", "time_budget": 120},
    )
    wait_for(lambda: run_state(api, task, second["code"])["status"] == "fitting", timeout=120)
    return task, first["code"], second["code"]


def assert_the_first_model_answers(site, task, first, second):
    """The first run's model answers, and nothing of the second run is left: neither its
    stored files nor its job's workspace."""
    assert site.api.call("GET", f"/tasks/{task}")[1]["active_run"] == first
    assert not (site.var / "media" / "tasks" / task / "runs" / second).exists()
    wait_for(lambda: not list((site.var / "work").glob(f"vizeapp-run-{second}-*")))
    classified = classify(site.api, task)
    assert classified["run"] == first
    assert classified["label"] == "discs"


def test_a_killed_work_horse_fails_its_run_and_the_model_keeps_answering(running_site):
    api = running_site.api
    task, first, second = trained_then_fine_tuning(api)
    (horse,) = children(running_site.worker())
    os.kill(horse, signal.SIGKILL)

    wait_for(lambda: run_state(api, task, second)["status"] == "failed", timeout=30)
    assert "died" in run_state(api, task, second)["reason"]
    assert_the_first_model_answers(running_site, task, first, second)


def test_a_run_of_a_killed_worker_is_failed_when_a_worker_starts_again(running_site):
    api = running_site.api
    task, first, second = trained_then_fine_tuning(api)
    worker = running_site.worker()
    (horse,) = children(worker)
    for pid in (worker, horse):
        os.kill(pid, signal.SIGKILL)
    running_site.process.wait(timeout=30)  # serve stops the site when a part of it dies

    running_site.start(VIZE_RUN_STALE_SECONDS="5")
    wait_for(lambda: run_state(api, task, second)["status"] == "failed", timeout=60)
    assert "stopped reporting" in run_state(api, task, second)["reason"]
    assert_the_first_model_answers(running_site, task, first, second)


def test_cancelling_a_run_stops_its_work_horse_even_in_a_silent_step(running_site):
    api = running_site.api
    task, first, second = trained_then_fine_tuning(api)
    (horse,) = children(running_site.worker())
    os.kill(horse, signal.SIGSTOP)  # as silent as a long fit: it reports nothing more

    assert api.call("POST", f"/tasks/{task}/runs/{second}/cancel")[0] == 200
    wait_for(lambda: not Path(f"/proc/{horse}").exists(), timeout=30)
    assert run_state(api, task, second)["status"] == "cancelled"
    assert_the_first_model_answers(running_site, task, first, second)


def classify(api, task):
    boundary = "vizeapp-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="new.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + encode(picture("discs", 900), "PNG")
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, answer = api.call(
        "POST",
        f"/tasks/{task}/classify",
        body=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert status == 200, answer
    return answer["images"][0]
