"""Upload ../shared/datasets/hymenoptera/train through HTTP, as the browser does, and
print images per second and the added / duplicate / rejected counts.

    python bench/ingest.py [--url http://127.0.0.1:8000] [--repeat 3]

Against a running site (`make run`) it signs up a fresh user per repeat; without --url
it starts its own site on embedded defaults in a temporary folder.
"""

import argparse
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from uuid import uuid4

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT.parent / "shared" / "datasets" / "hymenoptera" / "train"
BATCH = 100
REJECTED = re.compile(
    r'<span class="badge">rejected</span> <span class="file-name">([^<]+)</span>: ([^<]+)'
)


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
    """(body, content type) of a multipart/form-data request; files as (field, name, data)."""
    boundary = uuid4().hex
    body = bytearray()
    for name, value in fields.items():
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


def sign_up_and_create_task(browser):
    browser.get("/accounts/signup/")
    password = secrets.token_urlsafe(16)
    browser.username = f"bench-{uuid4().hex[:8]}"
    fields = {"username": browser.username, "password1": password, "password2": password}
    browser.post("/accounts/signup/", fields)
    url, _ = browser.post("/", {"name": "Hymenoptera"})
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
