"""Suggestions while labelling, through the real site: how right they are with a few
labelled photos, and how soon they follow a move.

    python bench/suggestions.py [--seeds 3] [--size 1000]

Accuracy: hymenoptera's train/ is uploaded to Unsorted, then 5 (and, on a new task, 2)
photos per category are moved into their categories through the page, as a person
would; once the background job has suggested a category for every other photo, the
share of suggestions that name the photo's true category is printed, per seed and on
average. Latency: a task of --size trashnet photos, uploaded to Unsorted and embedded in
the background; the seconds from the last of the first moves (5 photos per category,
one move per category) until the refresh that reads them has stored its suggestions
(no refresh left waiting or running in Redis), then the same for 5 more photos per
category. Medians over the seeds.
"""

import argparse
import random
import statistics
import time

import redis
from features import DATASETS, fixed_split
from ingest import Site, start_site, stop_site
from quality import by_class, wait_embedded
from rq import Queue
from rq.registry import StartedJobRegistry

from trainer.backbones import DEFAULT_BASE_MODEL

SUGGESTIONS_QUERY = """
    SELECT i.code, i.original_name, s.name, i.suggestion_score FROM tasks_image i
    JOIN tasks_task t ON i.task_id = t.id LEFT JOIN tasks_category s ON i.suggestion_id = s.id
    WHERE t.code = ? AND i.category_id IS NULL
"""
CODES_QUERY = """
    SELECT i.original_name, i.code FROM tasks_image i JOIN tasks_task t ON i.task_id = t.id
    WHERE t.code = ?
"""


def unsorted_suggestions(site, task):
    """{original name: (suggested category or None, score)} of the task's Unsorted photos."""
    with site.database() as db:
        rows = db.execute(SUGGESTIONS_QUERY, (task.replace("-", ""),)).fetchall()
    return {name: (category, score) for _, name, category, score in rows}


def image_codes(site, task):
    with site.database() as db:
        rows = db.execute(CODES_QUERY, (task.replace("-", ""),)).fetchall()
    return {name: code for name, code in rows}


def uuid_text(code):
    return f"{code[:8]}-{code[8:12]}-{code[12:16]}-{code[16:20]}-{code[20:]}"


def unsorted_task(site, train, title):
    """A task whose categories are train's classes, with every photo of train uploaded
    to Unsorted and embedded: (browser, task, categories, {file name: class})."""
    browser, task, categories = site.new_task(sorted(train), title)
    site.upload(
        browser,
        task,
        {"unsorted": "unsorted"},
        {"unsorted": [path for paths in train.values() for path in paths]},
    )
    wait_embedded(site, task, site.images(task), time.perf_counter())
    stored = image_codes(site, task)  # a duplicate photo is stored once
    truth = {path.name: kind for kind, paths in train.items() for path in paths}
    return browser, task, categories, {name: truth[name] for name in stored}


def move(site, browser, task, categories, names_by_class):
    codes = image_codes(site, task)
    for kind, names in names_by_class.items():
        fields = {"images": [uuid_text(codes[name]) for name in names]}
        browser.post(f"/tasks/{task}/images/move/", {**fields, "category": categories[kind]})


def wait_for(condition, timeout=120):
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            return None
        time.sleep(0.05)
    return time.perf_counter() - started


def labelled_at_random(truth, per_class, rng, leave_out=()):
    by_kind = {}
    for name, kind in sorted(truth.items()):
        if name not in leave_out:
            by_kind.setdefault(kind, []).append(name)
    return {kind: rng.sample(names, per_class) for kind, names in by_kind.items()}


def all_suggested(site, task):
    suggestions = unsorted_suggestions(site, task)
    return bool(suggestions) and all(category for category, _ in suggestions.values())


def accuracy_with(site, train, per_class, seed):
    browser, task, categories, truth = unsorted_task(site, train, f"hymenoptera {per_class}")
    move(site, browser, task, categories, labelled_at_random(truth, per_class, random.Random(seed)))
    wait_for(lambda: all_suggested(site, task))
    suggestions = unsorted_suggestions(site, task)
    right = sum(category == truth[name] for name, (category, _) in suggestions.items())
    return right / len(suggestions)


def refreshed(site, task):
    """Whether no refresh of the suggestions waits or runs, and every Unsorted photo has
    one: the refresh queued by the last move has read it and stored its suggestions."""
    connection = redis.Redis(unix_socket_path=str(site.var / "redis.sock"))
    idle = (
        Queue("suggestions", connection=connection).count == 0
        and StartedJobRegistry("suggestions", connection=connection).count == 0
    )
    return idle and all_suggested(site, task)


def latency(site, folder, size, seed):
    """Seconds from the last of the moves (one per category) until the suggestions
    follow them: the first labels of a task, then 5 more photos per category."""
    pairs = fixed_split(folder)[0]
    chosen = by_class(random.Random(seed).sample(pairs, size))
    browser, task, categories, truth = unsorted_task(site, chosen, f"{folder.name} {size}")
    rng = random.Random(seed)
    seconds, moved = [], set()
    for _ in range(2):
        labelled = labelled_at_random(truth, 5, rng, leave_out=moved)
        move(site, browser, task, categories, labelled)
        last_move = time.perf_counter()
        done = wait_for(lambda: refreshed(site, task))
        seconds.append(None if done is None else time.perf_counter() - last_move)
        moved |= {name for names in labelled.values() for name in names}
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--size", type=int, default=1000)
    args = parser.parse_args()
    train = by_class(fixed_split(DATASETS / "hymenoptera")[0])
    process, url, var = start_site(port=8770)
    try:
        site = Site(url, var)
        for per_class in (5, 2):
            draws = [accuracy_with(site, train, per_class, seed) for seed in range(args.seeds)]
            print(
                f"hymenoptera, {per_class} labelled photos per category ({DEFAULT_BASE_MODEL}): "
                f"suggestions right on {statistics.mean(draws):.3f} of the other photos "
                f"(seeds: {', '.join(f'{d:.3f}' for d in draws)})",
                flush=True,
            )
        timings = [latency(site, DATASETS / "trashnet", args.size, s) for s in range(args.seeds)]
        for label, column in zip(
            ("the first labels", "5 more per category"), zip(*timings, strict=True), strict=True
        ):
            shown = ", ".join("gave up" if t is None else f"{t:.2f}" for t in column)
            known = [t for t in column if t is not None]
            print(
                f"trashnet, {args.size} photos, {label}: the suggestions followed "
                f"{statistics.median(known):.2f} s after the last move (median; runs {shown})",
                flush=True,
            )
    finally:
        stop_site(process)


if __name__ == "__main__":
    main()
