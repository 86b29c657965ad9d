"""Classify under load: steady users, the same while a model trains, an overload, and
how soon the site recovers from it.

    python bench/load.py [--seconds 60] [--overload-seconds 30]

Starts a site on embedded defaults (as `make run` does: granian with 2 workers and
the RQ worker), uploads ../shared/datasets/hymenoptera/train through the JSON API and
trains the default model (bench/predict.py's preparation). Each user is a thread with an
API key of its own and a keep-alive connection, sending single-image classify requests
of the val/ photos back to back. Phases:

1. 10 users for --seconds;
2. 10 users for --seconds while an accurate-mode run fine-tunes on the same machine;
3. 50 users for --overload-seconds (they ignore Retry-After, as a hostile crowd would);
4. 10 users again right after, to see when answers are back within the target.

Each phase prints requests per second (answered 200), p50/p95/p99 of the 200s, the
time of the other answers (429/503 must come fast), errors and time-outs, and the
memory of the web processes (granian's server and workers) before and after.
"""

import argparse
import itertools
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from ingest import site_environment, start_site, stop_site
from predict import DATASET, ROOT, Api, prepare

TARGET_P95 = 0.5  # seconds, at 10 users
CLIENT_TIMEOUT = 30


def make_keys(var, api, count):
    """More keys of the owner of api's key, made in one Django shell."""
    code = (
        "from tasks.models import ApiKey; "
        f"owner = ApiKey.find({api.key!r}).owner; "
        f"print(*(ApiKey.issue(owner, f'load {{i}}')[1] for i in range({count})))"
    )
    printed = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=site_environment(var),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [word for word in printed.split() if word.startswith("vize_")]


class Phase:
    """Users sending classify requests back to back until the phase ends."""

    def __init__(self, base, task, keys, photos, seconds):
        self.base, self.task, self.keys, self.seconds = base, task, keys, seconds
        self.photos = itertools.cycle(photos)
        self.lock = threading.Lock()
        self.answers = []  # (finished at, seconds, status)
        self.errors = Counter()

    def user(self, key, deadline):
        api = Api(self.base, key, timeout=CLIENT_TIMEOUT)
        while time.monotonic() < deadline:
            with self.lock:
                name, data = next(self.photos)
            started = time.monotonic()
            try:
                status, _ = api.call(
                    "POST", f"/tasks/{self.task}/classify", files=[("files", name, data)]
                )
            except OSError as error:
                with self.lock:
                    self.errors[type(error).__name__] += 1
                continue
            finished = time.monotonic()
            with self.lock:
                self.answers.append((finished, finished - started, status))

    def run(self):
        self.started = time.monotonic()
        deadline = self.started + self.seconds
        users = [threading.Thread(target=self.user, args=(k, deadline)) for k in self.keys]
        for user in users:
            user.start()
        for user in users:
            user.join()
        self.ended = time.monotonic()
        return self

    def report(self, title, memory_before, memory_after):
        answered = sorted(seconds for _, seconds, status in self.answers if status == 200)
        others = sorted(seconds for _, seconds, status in self.answers if status != 200)
        statuses = Counter(status for _, _, status in self.answers)
        duration = self.ended - self.started
        print(f"{title}: {len(self.answers)} answers in {duration:.0f} s")
        if answered:
            print(
                f"  200: {len(answered) / duration:.1f} requests/s; "
                f"p50 {ms(percentile(answered, 50))}, p95 {ms(percentile(answered, 95))}, "
                f"p99 {ms(percentile(answered, 99))}"
            )
        if others:
            print(
                f"  refused: {dict(sorted((s, n) for s, n in statuses.items() if s != 200))}, "
                f"answered in p50 {ms(percentile(others, 50))}, "
                f"p99 {ms(percentile(others, 99))}"
            )
        print(
            f"  errors: {sum(self.errors.values())} {dict(self.errors)}; web memory "
            f"{memory_before / 1e6:.0f} MB before, {memory_after / 1e6:.0f} MB after"
        )

    def recovery(self, since):
        """Seconds from `since` until the first whole second whose answers are all 200
        with p95 within the target."""
        seconds = {}
        for finished, latency, status in self.answers:
            seconds.setdefault(int(finished - since), []).append((latency, status))
        for second in sorted(seconds):
            answers = seconds[second]
            latencies = sorted(latency for latency, _ in answers)
            if all(status == 200 for _, status in answers) and (
                percentile(latencies, 95) <= TARGET_P95
            ):
                return second
        return None


def percentile(values, p):
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def ms(seconds):
    return f"{1000 * seconds:.0f} ms"


def web_memory(site):
    """Resident memory of the site's granian server and workers, in bytes. `serve`
    starts granian in a session of its own, which its workers share."""
    processes = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
            status = (stat.parent / "status").read_text()
        except OSError:
            continue
        rss = int(status.split("VmRSS:")[1].split()[0]) * 1024 if "VmRSS:" in status else 0
        processes[int(stat.parent.name)] = (int(fields[1]), int(fields[3]), cmdline, rss)
    masters = [
        pid
        for pid, (parent, _, cmdline, _) in processes.items()
        if parent == site.pid and b"granian" in cmdline
    ]
    return sum(rss for _, session, _, rss in processes.values() if session in masters)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--overload-seconds", type=int, default=30)
    args = parser.parse_args()
    photos = [(p.name, p.read_bytes()) for p in sorted((DATASET / "val").glob("*/*"))]
    site, base, var = start_site(port=8767)
    try:
        api, task = prepare(base, var)
        keys = make_keys(var, api, 50)
        Phase(base, task, keys[:10], photos, 5).run()  # each web worker loads the model

        def phase(title, users, seconds):
            before = web_memory(site)
            done = Phase(base, task, keys[:users], photos, seconds).run()
            done.report(title, before, web_memory(site))
            return done

        phase(f"10 users, {args.seconds} s", 10, args.seconds)

        run = api.json(
            "POST", f"/tasks/{task}/runs", payload={"mode": "accurate", "time_budget": 300}
        )["code"]
        while api.json("GET", f"/tasks/{task}/runs/{run}")["status"] == "queued":
            time.sleep(0.2)
        phase(f"10 users, {args.seconds} s, while a run fine-tunes", 10, args.seconds)
        state = api.json("GET", f"/tasks/{task}/runs/{run}")
        print(f"  the run was {state['status']} ({state['percent']} %) at the end; cancelled")
        api.call("POST", f"/tasks/{task}/runs/{run}/cancel")
        time.sleep(3)  # the job stops at its next progress report

        overload = phase(f"50 users, {args.overload_seconds} s", 50, args.overload_seconds)
        after = phase("10 users right after the overload, 20 s", 10, 20)
        recovered = after.recovery(overload.ended)
        print(
            "recovered (a whole second of 200s with p95 within "
            f"{ms(TARGET_P95)}): {'never' if recovered is None else f'{recovered} s'} "
            "after the overload ended"
        )
    finally:
        stop_site(site)


if __name__ == "__main__":
    main()
