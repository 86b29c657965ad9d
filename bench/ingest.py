"""Upload ../shared/datasets/hymenoptera/train through HTTP, as the browser does, and
print images per second and the added / duplicate / rejected counts.

    python bench/ingest.py [--url http://127.0.0.1:8000] [--repeat 3]

Against a running site (`make run`) it signs up a fresh user per repeat; without --url
it starts its own site on embedded defaults in a temporary folder.
"""

import argparse
import json
import os
import re
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from datetime import datetime
from http.cookiejar import CookieJar
from pathlib import Path
from uuid import uuid4

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # Site.accuracy loads a stored model with trainer.predict
DATASET = ROOT.parent / "shared" / "datasets" / "hymenoptera" / "train"
BATCH = 100
REJECTED = re.compile(
    r'<span class="badge">rejected</span> <span class="file-name">([^<]+)</span>: ([^<]+)'
)
OUTCOMES = ("added", "duplicate", "rejected")
RUN_QUERY = "SELECT status, reason, created, finished FROM tasks_trainingrun WHERE code = ?"
EMBEDDED_QUERY = """
    SELECT count(*) FROM tasks_imageembedding e
    JOIN tasks_image i ON e.image_id = i.id JOIN tasks_task t ON i.task_id = t.id
    WHERE t.code = ? AND e.base_model = ?
"""
IMAGES_QUERY = """
    SELECT count(*) FROM tasks_image i JOIN tasks_task t ON i.task_id = t.id WHERE t.code = ?
"""


class Browser:
    """Just enough of a browser: cookies, the CSRF token, forms and multipart posts."""

    def __init__(self, base):
        self.base = base.rstrip("/")
        self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def csrf(self):
        return next(c.value for c in self.cookies if c.name == "csrftoken")

    def get(self, path):
        with self.opener.open(self.base + path) as response:
            return response.geturl(), response.read().decode()

    def post(self, path, fields, files=(), headers=None):
        body, content_type = multipart(fields, files)
        request = urllib.request.Request(
            self.base + path,
            data=body,
            headers={
                "Content-Type": content_type,
                "X-CSRFToken": self.csrf(),
                "Referer": self.base + path,
                **(headers or {}),
            },
        )
        with self.opener.open(request) as response:
            return response.geturl(), response.read().decode()


def multipart(fields, files=()):
    """(body, content type) of a multipart/form-data request; files as (field, name, data),
    a field's list as the field repeated."""
    boundary = uuid4().hex
    body = bytearray()
    for name, values in fields.items():
        for value in values if isinstance(values, list) else [values]:
            body += f"--{boundary}\r\nContent-Disposition: form-data; ".encode()
            body += f'name="{name}"\r\n\r\n{value}\r\n'.encode()
    for name, filename, data in files:
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        body += data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body), f"multipart/form-data; boundary={boundary}"


def sign_up_and_create_task(browser, title="Hymenoptera"):
    browser.get("/accounts/signup/")
    password = secrets.token_urlsafe(16)
    browser.username = f"bench-{uuid4().hex[:8]}"
    fields = {"username": browser.username, "password1": password, "password2": password}
    browser.post("/accounts/signup/", fields)
    url, _ = browser.post("/", {"name": title})
    return re.search(r"/tasks/([0-9a-f-]{36})/", url).group(1)


def ingest(base):
    browser = Browser(base)
    task = sign_up_and_create_task(browser)
    _, page = browser.get(f"/tasks/{task}/")
    counts = {"added": 0, "duplicate": 0, "rejected": 0}
    rejected = []
    files = sorted(DATASET.glob("*/*"))
    started = time.perf_counter()
    for folder in sorted({path.parent for path in files}):
        browser.post(f"/tasks/{task}/categories/new/", {"name": folder.name})
    _, page = browser.get(f"/tasks/{task}/")
    categories = {
        name: code
        for code, name in re.findall(
            r'data-drop-target="([0-9a-f-]{36})" data-name="([^"]+)"', page
        )
    }
    for folder in sorted({path.parent for path in files}):
        members = [path for path in files if path.parent == folder]
        for start in range(0, len(members), BATCH):
            batch = [("files", p.name, p.read_bytes()) for p in members[start : start + BATCH]]
            _, report = browser.post(
                f"/tasks/{task}/upload/",
                {"target": categories[folder.name]},
                batch,
                headers={"HX-Request": "true"},
            )
            for outcome in counts:
                counts[outcome] += report.count(f'<span class="badge">{outcome}</span>')
            rejected += REJECTED.findall(report)
    seconds = time.perf_counter() - started
    return len(files), seconds, counts, rejected


class Site:
    """A site started by start_site, driven over HTTP and read from its SQLite database."""

    def __init__(self, url, var):
        self.url, self.var = url, var

    def database(self):
        return sqlite3.connect(f"file:{self.var / 'db.sqlite3'}?mode=ro", uri=True)

    def row(self, query, *parameters):
        with self.database() as db:
            return db.execute(query, parameters).fetchone()

    def new_task(self, names, title="Hymenoptera"):
        """(browser, task code, {category name: code}) of a new user's new task."""
        browser = Browser(self.url)
        task = sign_up_and_create_task(browser, title)
        for name in names:
            browser.post(f"/tasks/{task}/categories/new/", {"name": name})
        _, page = browser.get(f"/tasks/{task}/")
        pairs = re.findall(r'data-drop-target="([0-9a-f-]{36})" data-name="([^"]+)"', page)
        return browser, task, {name: code for code, name in pairs}

    def upload(self, browser, task, categories, files):
        """Upload {category name: [path]} in batches of BATCH; the outcomes' counts."""
        counts = Counter()
        for name, paths in files.items():
            for start in range(0, len(paths), BATCH):
                batch = [("files", p.name, p.read_bytes()) for p in paths[start : start + BATCH]]
                _, report = browser.post(
                    f"/tasks/{task}/upload/",
                    {"target": categories[name]},
                    batch,
                    headers={"HX-Request": "true"},
                )
                for outcome in OUTCOMES:
                    counts[outcome] += report.count(f'<span class="badge">{outcome}</span>')
        return counts

    def train(self, browser, task, base_model, mode="fast", time_budget=300):
        """(seconds from the click to ready, run code); the times are the run's own."""
        fields = {"base_model": base_model, "mode": mode, "time_budget": time_budget}
        url, _ = browser.post(f"/tasks/{task}/train/", fields)
        run = re.search(r"/runs/([0-9a-f-]{36})/", url).group(1)
        while True:
            status, reason, created, finished = self.row(RUN_QUERY, run.replace("-", ""))
            if status == "ready":
                seconds = (
                    datetime.fromisoformat(finished) - datetime.fromisoformat(created)
                ).total_seconds()
                return seconds, run
            if status in ("failed", "cancelled"):
                sys.exit(f"run {run} {status}: {reason}")
            time.sleep(0.1)

    def images(self, task):
        return self.row(IMAGES_QUERY, task.replace("-", ""))[0]

    def embedded(self, task, base_model):
        return self.row(EMBEDDED_QUERY, task.replace("-", ""), base_model)[0]

    def metrics(self, run):
        """The metrics the run stored: its hold-out accuracy and interval, and more."""
        query = "SELECT metrics FROM tasks_trainingrun WHERE code = ?"
        return json.loads(self.row(query, run.replace("-", ""))[0])

    def wait_packaged(self, run):
        """Seconds until the ready run's model zip is packaged by the default worker (or
        failed to be), so that the packaging does not share the cores with what follows."""
        query = "SELECT export_ready, export_failure FROM tasks_trainingrun WHERE code = ?"
        started = time.perf_counter()
        while True:
            ready, failure = self.row(query, run.replace("-", ""))
            if ready or failure:
                return time.perf_counter() - started
            time.sleep(0.2)

    def accuracy(self, task, run, files):
        """Accuracy of the run's stored model on {category name: [path]}: its best
        category, whether or not it reaches the run's operating point (a photo below it
        is answered "needs review", which is not a wrong answer)."""
        from trainer import predict

        model = predict.load(self.var / "media" / "tasks" / task / "runs" / run)
        paths = [(name, path) for name, group in files.items() for path in group]
        predictions = model.predict([str(path) for _, path in paths])
        right = sum(p.scores[0][0] == name for (name, _), p in zip(paths, predictions, strict=True))
        return right / len(paths)


def start_site(port=8765, **settings):
    """A site on embedded defaults in a new temporary folder: (process, url, var)."""
    var = Path(tempfile.mkdtemp(prefix="vizeapp-bench-"))
    env = {**site_environment(var), **settings}
    for command in (["migrate", "--noinput"], ["collectstatic", "--noinput"], ["prepare_models"]):
        manage = [sys.executable, "manage.py", *command, "-v0"]
        subprocess.run(manage, cwd=ROOT, env=env, check=True)
    site = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/accounts/login/", timeout=1)
            return site, url, var
        except OSError:
            time.sleep(0.1)
    site.kill()
    sys.exit("the site did not start")


def site_environment(var):
    """The environment of a site on embedded defaults whose files live in var."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return {**env, "VIZE_VAR_DIR": str(var)}


def stop_site(site):
    os.killpg(site.pid, signal.SIGINT)
    site.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running site; by default one is started")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not DATASET.exists():
        sys.exit(f"no dataset at {DATASET}")
    site, base, _ = (None, args.url, None) if args.url else start_site()
    try:
        rates = []
        for run in range(args.repeat):
            count, seconds, counts, rejected = ingest(base)
            rates.append(count / seconds)
            rate = count / seconds
            print(f"run {run + 1}: {count} files in {seconds:.2f} s, {rate:.1f} images/s; {counts}")
        for name, reason in rejected:
            print(f"  rejected {name}: {reason}")
        print(f"median: {statistics.median(rates):.1f} images/s over {args.repeat} runs")
    finally:
        if site:
            stop_site(site)


if __name__ == "__main__":
    main()
