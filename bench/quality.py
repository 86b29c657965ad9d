"""Both modes on every shared photo set, through the real product path: accuracy on the
test split, click to ready, peak work-horse memory, and the set's published reference.

    python bench/quality.py [hymenoptera trashnet corn_leaf | FOLDER ...]
                            [--modes fast,accurate] [--budget 300] [--base-model lite2]

With no argument, every set under ../shared/datasets/; a FOLDER holds one folder per
class, or train/ and val/ (or test/) with one folder per class in each. The splits are
those of ../shared/datasets/README.md (bench/features.py's fixed_split). One site on
embedded defaults serves all sets. Per set, a new task gets a category per class and the
train split uploaded over HTTP; the background embedding is awaited, so that click to
ready is the training alone; then Start training is pressed for each mode in turn, and
the next waits for the last one's model zip to be packaged. Last, with fast mode: ten
test photos are uploaded and Start training pressed right after, as a person adding a
few photos would (that model is scored on the rest of the test split). With accurate
mode, an accurate run is also cancelled during its fine-tuning, and the time from the
click until its work-horse is gone is printed.

Printed per set: the upload time and the time from the first upload until the
background job had embedded every photo, and the published reference (the README's
"Published reference(s)" text; none for other folders). Per set and mode: click to ready
(created -> finished of the run), the accuracy of the stored model on the test split,
the run's own hold-out accuracy with its 95 % interval, and the peak RSS of the training
worker's work-horse, sampled every 0.2 s while the run trains. Then a summary table.
"""

import argparse
import re
import signal
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import psutil
from features import DATASETS, fixed_split
from ingest import OUTCOMES, Site, start_site, stop_site

from trainer.backbones import DEFAULT_BASE_MODEL
from trainer.choices import DEFAULT_TIME_BUDGET, TIME_BUDGETS

README = DATASETS / "README.md"
# Seconds without one more photo embedded after which the background embedding is taken
# to have stopped (training then embeds the rest itself).
STALL = 180


class MemoryWatch:
    """Peak RSS, sampled every interval seconds in a thread, of the site's web processes
    (granian's server and workers, summed: "web") and of each RQ worker's work-horses
    (the children it forks for a job, summed: "training work-horse", "default
    work-horse"). RSS counts the pages a fork still shares with its parent."""

    def __init__(self, site_process, interval=0.2):
        self.serve = psutil.Process(site_process.pid)
        self.interval = interval
        self.peaks = Counter()  # since the start or the last take()
        self.overall = Counter()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stopping.set()
        self.thread.join()

    def take(self):
        """The peaks since the start or the last take; they start again from zero."""
        with self.lock:
            peaks, self.peaks = self.peaks, Counter()
        return peaks

    def watch(self):
        while True:
            sample = self.sample()
            with self.lock:
                for group, rss in sample.items():
                    self.peaks[group] = max(self.peaks[group], rss)
                    self.overall[group] = max(self.overall[group], rss)
            if self.stopping.wait(self.interval):
                return

    def sample(self):
        rss = Counter()
        for child in self.serve.children():
            try:
                command = child.cmdline()
                if "rqworker" in command:
                    group, members = f"{command[-1]} work-horse", child.children(recursive=True)
                elif "granian" in command:
                    group, members = "web", [child, *child.children(recursive=True)]
                else:
                    continue  # the embedded Redis
            except psutil.NoSuchProcess:
                continue
            rss[group] += sum(resident(process) for process in members)
        return rss


def resident(process):
    try:
        return process.memory_info().rss
    except psutil.NoSuchProcess:
        return 0


def outcomes(counts):
    """The upload's counts of added, duplicate and rejected files, zeros included."""
    return ", ".join(f"{counts[outcome]} {outcome}" for outcome in OUTCOMES)


def mib(size):
    return f"{size / 2**20:.0f} MiB" if size else "not seen"


def wait_embedded(site, task, total, started, every=None):
    """The count of task's images the background job has embedded for the default base
    model, once it reaches total or stops growing for STALL seconds; every so many seconds
    from started (perf_counter), a progress line."""
    count, changed, reported = -1, time.perf_counter(), started
    while True:
        now = site.embedded(task, DEFAULT_BASE_MODEL)
        if now >= total:
            return now
        if now != count:
            count, changed = now, time.perf_counter()
        elif time.perf_counter() - changed > STALL:
            print(f"  the background embedding stopped at {count} of {total} photos", flush=True)
            return count
        if every and time.perf_counter() - reported > every:
            reported = time.perf_counter()
            print(f"  {count} of {total} embedded, {reported - started:.0f} s", flush=True)
        time.sleep(0.5)


def published_reference(name):
    """The "Published reference(s): ..." text of the set's section of the datasets'
    README, on one line; "none" without one."""
    text = README.read_text() if README.exists() else ""
    section = re.search(rf"^## {re.escape(name)}/\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    reference = section and re.search(
        r"^Published references?: (.*?)(?:\n\n|\Z)", section.group(1), re.M | re.S
    )
    return " ".join(reference.group(1).split()) if reference else "none"


def photo_set(argument):
    """(name, folder, published reference) of a set's name or a folder's path."""
    folder = Path(argument)
    if not folder.is_dir():
        folder = DATASETS / argument
    if not folder.is_dir():
        sys.exit(f"no folder {argument}, neither here nor in {DATASETS}")
    shared = folder.resolve().parent == DATASETS.resolve()
    return folder.name, folder, published_reference(folder.name) if shared else "none"


def by_class(pairs):
    grouped = defaultdict(list)
    for path, kind in pairs:
        grouped[kind].append(Path(path))
    return dict(grouped)


def measure_set(site, process, name, folder, reference, args):
    """Upload the set's train split, train each mode; a summary row per mode."""
    train, test = (by_class(part) for part in fixed_split(folder))
    count, test_count = sum(map(len, train.values())), sum(map(len, test.values()))
    browser, task, categories = site.new_task(sorted(train), name)
    started = time.perf_counter()
    counts = site.upload(browser, task, categories, train)
    uploaded = time.perf_counter() - started
    images = site.images(task)
    embedded = wait_embedded(site, task, images, started)
    embedding = time.perf_counter() - started
    print(
        f"{name}: {len(train)} classes, {count} train / {test_count} test photos; upload "
        f"{uploaded:.1f} s ({count / uploaded:.1f} photos/s; {outcomes(counts)}); {embedded} of "
        f"{images} embedded ({DEFAULT_BASE_MODEL}) {embedding:.1f} s after the first upload; "
        f"published reference: {reference}",
        flush=True,
    )
    rows = []
    for mode in args.modes.split(","):
        with MemoryWatch(process) as memory:
            seconds, run = site.train(browser, task, args.base_model, mode, args.budget)
        site.wait_packaged(run)
        metrics = site.metrics(run)
        accuracy = site.accuracy(task, run, test)
        horse = memory.peaks["training work-horse"]
        low, high = metrics["accuracy_low"], metrics["accuracy_high"]
        own = f"{metrics['accuracy']:.3f} ({low:.3f}-{high:.3f})"
        tuning = f"; fine-tuning {metrics['fine_tuning']}" if "fine_tuning" in metrics else ""
        budget = f", {args.budget} s budget" if mode == "accurate" else ""
        print(
            f"{name} {mode} ({args.base_model}{budget}): click to ready {seconds:.1f} s; test "
            f"accuracy {accuracy:.3f} on {test_count} photos; the run's own accuracy "
            f"{metrics['accuracy']:.3f}, 95 % interval {low:.3f}-{high:.3f}, on "
            f"{metrics['evaluated']} images ({metrics['method']}){tuning}; training "
            f"work-horse peak {mib(horse)}",
            flush=True,
        )
        rows.append((name, mode, count, test_count, seconds, accuracy, own, horse))
    if "accurate" in args.modes.split(","):
        cancel_while_fine_tuning(site, process, browser, task, name, args)
    if "fast" in args.modes.split(","):  # last: the ten photos come from the test split
        rows.append(retrain_after_ten(site, browser, task, categories, name, test, args))
    return rows


def cancel_while_fine_tuning(site, process, browser, task, name, args):
    """Start an accurate run, press Cancel a few seconds into its fine-tuning, and print
    how long the training work-horse took to be gone after the click."""
    fields = {"base_model": args.base_model, "mode": "accurate", "time_budget": args.budget}
    url, _ = browser.post(f"/tasks/{task}/train/", fields)
    run = re.search(r"/runs/([0-9a-f-]{36})/", url).group(1)
    query = "SELECT status, percent FROM tasks_trainingrun WHERE code = ?"
    while (state := site.row(query, run.replace("-", "")))[0] != "fitting" or state[1] < 83:
        time.sleep(0.2)
    time.sleep(3)
    horses = training_horses(process)
    clicked = time.perf_counter()
    browser.post(f"/tasks/{task}/runs/{run}/cancel/", {})
    while any(horse.is_running() for horse in horses):
        time.sleep(0.05)
    gone = time.perf_counter() - clicked
    status = site.row(query, run.replace("-", ""))[0]
    print(
        f"{name} accurate, Cancel pressed {state[1]} % into the run (fine-tuning): the "
        f"work-horse was gone {gone:.2f} s after the click; the run is {status}",
        flush=True,
    )


def training_horses(site_process):
    """The work-horses of the site's training worker, running now."""
    workers = psutil.Process(site_process.pid).children()
    return [
        horse
        for worker in workers
        if worker.cmdline()[-1:] == ["training"] and "rqworker" in worker.cmdline()
        for horse in worker.children()
    ]


def retrain_after_ten(site, browser, task, categories, name, test, args):
    """Ten test photos uploaded and Start training pressed at once, as a person adding a
    few photos would; that model is scored on the rest of the test split. A summary row."""
    added = dict(zip(sorted(test), spread(10, len(test)), strict=True))
    extra = {kind: paths[: added[kind]] for kind, paths in test.items()}
    rest = {kind: paths[added[kind] :] for kind, paths in test.items()}
    site.upload(browser, task, categories, extra)
    seconds, run = site.train(browser, task, args.base_model)
    site.wait_packaged(run)
    metrics = site.metrics(run)
    accuracy = site.accuracy(task, run, rest)
    rest_count = sum(map(len, rest.values()))
    carried = "carried" if metrics.get("regularisation_carried") else "chosen again"
    print(
        f"{name} fast retrain after adding 10 test photos, clicked right after their upload: "
        f"click to ready {seconds:.1f} s (head choice {carried}); test accuracy {accuracy:.3f} "
        f"on the other {rest_count} photos",
        flush=True,
    )
    low, high = metrics["accuracy_low"], metrics["accuracy_high"]
    own = f"{metrics['accuracy']:.3f} ({low:.3f}-{high:.3f})"
    return (name, "+10 fast", site.images(task), rest_count, seconds, accuracy, own, 0)


def spread(total, parts):
    """total split into parts as evenly as it goes."""
    return [total // parts + (i < total % parts) for i in range(parts)]


def start_bench_site(args):
    """start_site for a benchmark of args.base_model on args.port: (process, url, var).
    A SIGTERM (timeout, kill) stops the site too: the site leads a session of its own."""
    if args.base_model != DEFAULT_BASE_MODEL:
        print(
            f"note: the background job embeds for {DEFAULT_BASE_MODEL} only, so "
            f"{args.base_model}'s click to ready includes embedding the photos",
            flush=True,
        )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))
    return start_site(port=args.port)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", help="set names or folders; all shared sets if none")
    parser.add_argument("--modes", default="fast,accurate")
    parser.add_argument(
        "--budget", type=int, default=DEFAULT_TIME_BUDGET, choices=sorted(TIME_BUDGETS)
    )
    parser.add_argument("--base-model", default=DEFAULT_BASE_MODEL)
    parser.add_argument("--port", type=int, default=8768)
    args = parser.parse_args()
    arguments = args.sets or sorted(p.name for p in DATASETS.iterdir() if p.is_dir())
    sets = [photo_set(argument) for argument in arguments]
    process, url, var = start_bench_site(args)
    rows = []
    try:
        site = Site(url, var)
        for name, folder, reference in sets:
            rows += measure_set(site, process, name, folder, reference, args)
    finally:
        stop_site(process)

    print(f"\nsummary ({args.base_model}; accurate: {args.budget} s budget)")
    header = ("set", "mode", "train", "test", "ready s", "test acc", "run's own (95 %)", "horse")
    line = "{:<14} {:<9} {:>6} {:>5} {:>8} {:>8}  {:<20} {:>9}"
    print(line.format(*header))
    for name, mode, count, test_count, seconds, accuracy, own, horse in rows:
        cells = (name, mode, count, test_count, f"{seconds:.1f}", f"{accuracy:.3f}", own)
        print(line.format(*cells, mib(horse)))
    for name, _, reference in sets:
        print(f"{name} published: {reference}")


if __name__ == "__main__":
    main()
