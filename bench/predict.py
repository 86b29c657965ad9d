"""Classification over HTTP, and the same images through the exported predict.py.

    python bench/predict.py [--url URL --key KEY --task CODE] [--rounds 2]

Without --url, starts a site on embedded defaults, signs up, makes an API key, uploads
../shared/datasets/hymenoptera/train through the JSON API and trains the default base
model (fast mode). First the floor, in this process with the model zip's own code
(its predict.py is the server's pixel code and session): the median of decoding and
resizing a val/ photo plus the median of one onnxruntime run on one thread, as a web
process runs each inference. Then, on the val/ images, one image per request: latency
with one client (median and p95, and the median against the floor); the floor and the
latency of one 12-megapixel phone photo; throughput with 1, 4 and 8 concurrent clients
(against the floor's bound: one photo per floor per core); and the exported model zip
run with its own predict.py (time, and the largest score difference from the server's
answers). Last, the run's formats report (agreement
with model.onnx and time per photo of each format), and where the int8 model is offered
(at least 99 % agreement), the same figures with the int8 model served.
"""

import argparse
import http.client
import importlib.util
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import zipfile
from pathlib import Path

import numpy as np
from ingest import (
    Browser,
    multipart,
    sign_up_and_create_task,
    site_environment,
    start_site,
    stop_site,
)
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT.parent / "shared" / "datasets" / "hymenoptera"


class Api:
    """The JSON API over one keep-alive connection per thread, with TCP_NODELAY as curl
    and requests set it: without it, a body sent after its headers waits for the
    server's delayed ACK (about 40 ms)."""

    def __init__(self, base, key, timeout=600):
        self.address = urllib.parse.urlsplit(base)
        self.key = key
        self.timeout = timeout
        self.local = threading.local()

    def connection(self):
        if getattr(self.local, "connection", None) is None:
            connection = http.client.HTTPConnection(
                self.address.hostname, self.address.port, timeout=self.timeout
            )
            connection.connect()
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.local.connection = connection
        return self.local.connection

    def call(self, method, path, payload=None, fields=None, files=()):
        headers = {"Authorization": f"Bearer {self.key}"}
        body = None
        if files:
            body, headers["Content-Type"] = multipart(fields or {}, files)
        elif payload is not None:
            body, headers["Content-Type"] = json.dumps(payload).encode(), "application/json"
        for attempt in (1, 2):
            connection = self.connection()
            try:
                connection.request(method, f"/api/v1{path}", body, headers)
                response = connection.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                # The server may close a connection left idle; open a new one once.
                connection.close()
                self.local.connection = None
                if attempt == 2:
                    raise

    def json(self, method, path, **kwargs):
        status, body = self.call(method, path, **kwargs)
        if status >= 400:
            sys.exit(f"{method} {path}: {status} {body[:300]!r}")
        return json.loads(body)


def prepare(base, var):
    """Sign up, make a key, upload train/ and train: (api, task code)."""
    browser = Browser(base)
    sign_up_and_create_task(browser)
    key = subprocess.run(
        [sys.executable, "manage.py", "create_api_key", browser.username, "-v0"],
        cwd=ROOT,
        env=site_environment(var),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    api = Api(base, key)
    task = api.json("POST", "/tasks", payload={"name": "Hymenoptera"})["code"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted((DATASET / "train").glob("*/*")):
            zipped.write(path, path.relative_to(DATASET / "train"))
    api.json(
        "POST",
        f"/tasks/{task}/images",
        fields={"folders_as_categories": "true"},
        files=[("files", "train.zip", archive.getvalue())],
    )
    run = api.json("POST", f"/tasks/{task}/runs", payload={})["code"]
    while (state := api.json("GET", f"/tasks/{task}/runs/{run}"))["status"] not in (
        "ready",
        "failed",
    ):
        time.sleep(0.5)
    if state["status"] != "ready":
        sys.exit(f"training failed: {state['reason']}")
    # The worker's packaging of the model zip (torch, about 10 s of CPU) would share the
    # two cores with the figures: wait for it, and for the embedding of the uploads.
    while not api.json("GET", f"/tasks/{task}/runs/{run}")["export_ready"]:
        time.sleep(0.5)
    time.sleep(5)
    return api, task


def classify(api, task, path):
    started = time.perf_counter()
    status, body = api.call(
        "POST", f"/tasks/{task}/classify", files=[("files", path.name, path.read_bytes())]
    )
    if status != 200:
        sys.exit(f"classify {path.name}: {status} {body[:300]!r}")
    return time.perf_counter() - started, json.loads(body)["images"][0]


def throughput(api, task, paths, clients):
    pending = list(paths)
    lock = threading.Lock()
    failures = []

    def client():
        while True:
            with lock:
                if not pending or failures:
                    return
                path = pending.pop()
            try:
                classify(api, task, path)
            except SystemExit as failure:
                failures.append(failure)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return len(paths) / (time.perf_counter() - started)


def model_zip(api, task):
    """(size in bytes, the folder it is unpacked in)."""
    for _ in range(120):
        status, body = api.call("GET", f"/tasks/{task}/export")
        if status == 200:
            break
        time.sleep(1)
    else:
        sys.exit("the model zip was not packaged within two minutes")
    folder = Path(tempfile.mkdtemp(prefix="vizeapp-export-"))
    zipfile.ZipFile(io.BytesIO(body)).extractall(folder)
    return len(body), folder


class Floor:
    """One photo's floor in this process: decoding, resizing and one onnxruntime run on
    one thread (as a web process runs each inference), with the model zip's predict.py
    (the server's own pixel code and session) on the model it serves, or on served."""

    def __init__(self, folder, served=None):
        spec = importlib.util.spec_from_file_location("exported_predict", folder / "predict.py")
        self.portable = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.portable)
        self.preprocessing = argparse.Namespace(
            **json.loads((folder / "preprocess.json").read_text())
        )
        description = json.loads((folder / "model.json").read_text())
        self.model = self.portable.session(
            folder / (served or description.get("served", "model.onnx")), threads=1
        )
        self.times = []  # (decode, resize, run) in seconds, one per photo

    def measure(self, path):
        data = path.read_bytes()
        started = time.perf_counter()
        image = self.portable.load_rgb(io.BytesIO(data))
        decoded = time.perf_counter()
        pixels = self.portable.to_input(image, self.preprocessing)[None]
        resized = time.perf_counter()
        self.model.run(None, {"pixels": pixels})
        self.times.append((decoded - started, resized - decoded, time.perf_counter() - resized))

    def medians(self):
        """(decode ms, resize ms, run ms, their sum)."""
        parts = [1000 * statistics.median(times) for times in zip(*self.times, strict=True)]
        return (*parts, sum(parts))


def latency(api, task, paths, rounds, floor):
    """Each photo's floor and its answer over HTTP, in turn, so that both see the
    same load on a shared machine: (sorted latencies in seconds, answers by name)."""
    for path in paths[:10]:  # warm up the floor, and each web worker's threads
        floor.measure(path)
        classify(api, task, path)
    floor.times.clear()
    latencies, answers = [], {}
    for _ in range(rounds):
        for path in paths:
            floor.measure(path)
            seconds, answers[path.name] = classify(api, task, path)
            latencies.append(seconds)
    return sorted(latencies), answers


def phone_photo(path, folder):
    """A 12-megapixel JPEG as a phone takes it (4000 x 3000, quality 90), made from the
    val/ photo at path, with a little noise for a sensor's fine detail."""
    with Image.open(path) as image:
        image = image.convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    noise = np.random.default_rng(0).normal(0, 4, (3000, 4000, 3))
    pixels = (np.asarray(image) + noise).clip(0, 255).astype(np.uint8)
    phone = folder / "phone-12mp.jpg"
    Image.fromarray(pixels).save(phone, quality=90)
    return phone


def phone_latency(api, task, folder, paths, rounds):
    """The floor and the single-image classify of one phone photo, in turn, 10 times a
    round."""
    phone = phone_photo(paths[0], folder)
    floor = Floor(folder)
    latencies, _ = latency(api, task, [phone], 10 * rounds, floor)
    decode, resize, run, lowest = floor.medians()
    print(
        f"a 12-megapixel phone photo ({phone.stat().st_size / 1e6:.1f} MB): floor {lowest:.1f} "
        f"ms (decode {decode:.1f} + resize {resize:.1f} + onnxruntime {run:.1f}), classify "
        f"median {1000 * statistics.median(latencies):.1f} ms"
    )


def exported_run(folder, paths):
    started = time.perf_counter()
    printed = subprocess.run(
        [sys.executable, str(folder / "predict.py"), *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    seconds = time.perf_counter() - started
    answers = map(json.loads, printed.splitlines())
    return seconds, {Path(answer["name"]).name: answer for answer in answers}


def int8(api, task, folder, paths, answers, rounds):
    """The run's int8 model: its formats report, then served (the run page's choice):
    its floor, latency, throughput with 8 clients, and agreement with model.onnx's
    answers on val/."""
    run = api.json("GET", f"/tasks/{task}")["active_run"]
    report = api.json("GET", f"/tasks/{task}/runs/{run}")["formats"]
    for row in report.get("formats", []):
        # A format measured through another (Core ML, as the torch network it was
        # converted from) has that one's time, not its own.
        measured_as = row.get("measured_as")
        speed = (
            f"measured as {measured_as}" if measured_as else f"{row['ms_per_photo']} ms per photo"
        )
        print(
            f"formats report, {row['file']} on the held-out photos: agreement "
            f"{row['agreement']:.3f}, {speed}, offered {row.get('offered', True)}"
        )
    status, body = api.call("PUT", f"/tasks/{task}/runs/{run}/served-model", payload={"int8": True})
    if status != 200:
        print(f"int8 not served: {status} {body[:200]!r}")
        return
    try:
        floor = Floor(folder, served="model.int8.onnx")
        latencies, served = latency(api, task, paths, rounds, floor)
        *_, lowest = floor.medians()
        median = 1000 * statistics.median(latencies)
        same = sum(served[name]["label"] == answer["label"] for name, answer in answers.items())
        rate = statistics.median(throughput(api, task, paths, 8) for _ in range(rounds))
        print(
            f"int8 served: floor {lowest:.1f} ms, 1 client median {median:.1f} ms "
            f"({median / lowest:.3f} x its floor, {median - lowest:.1f} ms above it), "
            f"8 clients {rate:.1f} images/s; same label as model.onnx for "
            f"{same}/{len(answers)} val/ photos"
        )
    finally:
        api.call("PUT", f"/tasks/{task}/runs/{run}/served-model", payload={"int8": False})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running site; by default one is started")
    parser.add_argument("--key", help="an API key of that site")
    parser.add_argument("--task", help="a trained task of that key's owner")
    parser.add_argument("--rounds", type=int, default=2, help="passes over val/ per figure")
    parser.add_argument("--port", type=int, default=8766, help="of the site started")
    args = parser.parse_args()
    paths = sorted((DATASET / "val").glob("*/*"))
    site = None
    if args.url:
        api, task = Api(args.url, args.key), args.task
    else:
        # One key sends every request here: lift its classify rate limit.
        site, base, var = start_site(port=args.port, VIZE_CLASSIFY_LIMIT="1000000")
    try:
        if site:
            api, task = prepare(base, var)
        size, folder = model_zip(api, task)
        floor = Floor(folder)
        latencies, answers = latency(api, task, paths, args.rounds, floor)
        decode, resize, run, lowest = floor.medians()
        median = 1000 * statistics.median(latencies)
        print(
            f"floor, one photo in this process on 1 thread: decode {decode:.1f} ms + resize "
            f"{resize:.1f} ms + onnxruntime {run:.1f} ms = {lowest:.2f} ms"
        )
        print(
            f"single-image classify, 1 client, {len(latencies)} requests: "
            f"median {median:.2f} ms ({median / lowest:.3f} x the floor, "
            f"{median - lowest:.2f} ms above it), "
            f"p95 {1000 * latencies[int(0.95 * len(latencies))]:.1f} ms"
        )
        phone_latency(api, task, folder, paths, args.rounds)
        for clients in (1, 4, 8):
            rates = [throughput(api, task, paths, clients) for _ in range(args.rounds)]
            print(f"{clients} concurrent clients: {statistics.median(rates):.1f} images/s")
        cores = os.cpu_count() or 1
        print(f"(the floor's bound on {cores} cores: {cores * 1000 / lowest:.1f} images/s)")
        seconds, local = exported_run(folder, paths)
        difference = max(
            abs(local[name]["scores"][score["category"]] - score["score"])
            for name, answer in answers.items()
            for score in answer["scores"]
        )
        same_labels = sum(
            local[name]["label"] == answer["label"] for name, answer in answers.items()
        )
        print(
            f"exported predict.py ({size / 1e6:.1f} MB zip): {len(paths)} images in "
            f"{seconds:.1f} s with start-up ({len(paths) / seconds:.1f} images/s); same label for "
            f"{same_labels}/{len(answers)}, largest score difference {difference:.2e}"
        )
        int8(api, task, folder, paths, answers, args.rounds)
    finally:
        if site:
            stop_site(site)


if __name__ == "__main__":
    main()
