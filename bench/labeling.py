"""A simulated labeller on trashnet, through the JSON API: does labelling the photos the
product points to reach a good model with fewer labels than labelling photos at random?

    python bench/labeling.py [--share 0.4] [--round 20] [--seed 0]

A site on embedded defaults gets trashnet's train split (bench/features.py fixed_split)
uploaded to Unsorted and embedded in the background. From 2 labelled photos per category,
the labeller labels --round photos per round (moves them to their true categories with
`images/move`) until --share of the photos are labelled, either (a) photos drawn at random
or (b) the first photos of the `unsure` review queue (`GET .../review/unsure`), read once
the refresh that follows each move has ended (topped up at random when the queue holds
fewer). After each round, the accuracy on the test split of the head the suggestions use
(trainer/suggestions.py, fixed settings) fitted on the photos labelled so far, from the
features bench/features.py caches. Printed: the curve of both, the accuracy with every
label, and how many labels each needs to reach 95 % of it (the bar: (b) within --share,
and before (a)).
"""

import argparse
import random
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from features import DATASETS, features_of, fixed_split
from ingest import (
    ROOT,
    Browser,
    Site,
    sign_up_and_create_task,
    site_environment,
    start_site,
    stop_site,
)
from predict import Api
from quality import wait_embedded
from suggestions import refreshed, wait_for

from trainer.suggestions import suggest

BATCH = 100


def grouped(pairs):
    """{category: [name]} of (name, category) pairs."""
    groups = defaultdict(list)
    for name, kind in pairs:
        groups[kind].append(name)
    return groups


def api_of(site, browser):
    """The JSON API with a new key of the browser's user."""
    key = subprocess.run(
        [sys.executable, "manage.py", "create_api_key", browser.username, "-v0"],
        cwd=ROOT,
        env=site_environment(site.var),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Api(site.url, key)


def unsorted_task(site, api, train):
    """A task with trashnet's categories and its train split in Unsorted, embedded:
    (task code, {file name: image code})."""
    task = api.json("POST", "/tasks", payload={"name": "trashnet labelling"})["code"]
    for kind in sorted({kind for _, kind in train}):
        api.json("POST", f"/tasks/{task}/categories", payload={"name": kind})
    paths = [Path(path) for path, _ in train]
    for start in range(0, len(paths), BATCH):
        files = [("files", path.name, path.read_bytes()) for path in paths[start : start + BATCH]]
        api.call("POST", f"/tasks/{task}/images", files=files)
    wait_embedded(site, task, site.images(task), time.perf_counter())
    codes, after = {}, None
    while True:
        query = f"limit=500&after={after}" if after else "limit=500"
        page = api.json("GET", f"/tasks/{task}/images?{query}")
        codes.update({image["name"]: image["code"] for image in page["images"]})
        if not (after := page["next"]):
            return task, codes


def move(api, task, names, truth, codes):
    """Label the photos (their true categories; None: Unsorted)."""
    for kind, group in grouped([(name, truth[name]) for name in names]).items():
        payload = {"images": [codes[name] for name in group], "category": kind}
        api.json("POST", f"/tasks/{task}/images/move", payload=payload)


def unsure_first(site, api, task, count, codes):
    wait_for(lambda: refreshed(site, task), timeout=300)
    items = api.json("GET", f"/tasks/{task}/review/unsure?limit={count}")["items"]
    names = {code: name for name, code in codes.items()}
    return [names[item["code"]] for item in items]


class Scorer:
    """Accuracy on the test split of the suggestions' head fitted on labelled photos."""

    def __init__(self, train, test, cache_dir):
        features, mirrored, _ = features_of("trashnet", train + test, "lite2", cache_dir)
        self.classes = sorted({kind for _, kind in train})
        self.row = {Path(path).name: i for i, (path, _) in enumerate(train)}
        self.features, self.mirrored = features[: len(train)], mirrored[: len(train)]
        self.test = features[len(train) :]
        self.test_labels = np.array([self.classes.index(kind) for _, kind in test])

    def __call__(self, names, truth):
        rows = [self.row[name] for name in names]
        labels = np.array([self.classes.index(truth[name]) for name in names])
        scores = suggest(self.features[rows], self.mirrored[rows], labels, self.test)
        return float((scores.argmax(axis=1) == self.test_labels).mean())


def label_rounds(strategy, site, api, task, truth, codes, scorer, args):
    """[(labels, accuracy)] after the first labels and after each round."""
    rng = random.Random(args.seed)
    by_kind = grouped(sorted(truth.items()))
    labelled = [name for names in by_kind.values() for name in rng.sample(names, 2)]
    move(api, task, labelled, truth, codes)
    curve = [(len(labelled), scorer(labelled, truth))]
    while len(labelled) < args.share * len(truth):
        chosen = unsure_first(site, api, task, args.round, codes) if strategy == "b" else []
        left = sorted(set(truth) - set(labelled) - set(chosen))
        chosen += rng.sample(left, args.round - len(chosen))
        move(api, task, chosen, truth, codes)
        labelled += chosen
        curve.append((len(labelled), scorer(labelled, truth)))
        print(f"  ({strategy}) {len(labelled)} labels: {curve[-1][1]:.3f}", flush=True)
    move(api, task, labelled, dict.fromkeys(labelled), codes)  # back to Unsorted
    return curve


def first_reaching(curve, target):
    return next((labels for labels, accuracy in curve if accuracy >= target), None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--share", type=float, default=0.4)
    parser.add_argument("--round", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=str(ROOT / "var" / "model-cache"))
    args = parser.parse_args()
    train, test = fixed_split(DATASETS / "trashnet")
    scorer = Scorer(train, test, args.cache_dir)
    process, url, var = start_site(port=8767)
    try:
        site = Site(url, var)
        browser = Browser(url)
        sign_up_and_create_task(browser, "labelling")
        api = api_of(site, browser)
        task, codes = unsorted_task(site, api, train)
        # An identical photo under two names is stored once, under the first.
        truth = {Path(path).name: kind for path, kind in train if Path(path).name in codes}
        every = scorer(sorted(truth), truth)
        print(f"trashnet: {len(truth)} photos; accuracy with every label {every:.3f}")
        curves = {s: label_rounds(s, site, api, task, truth, codes, scorer, args) for s in "ab"}
    finally:
        stop_site(process)
    target = 0.95 * every
    for strategy, title in (("a", "random photos"), ("b", "the unsure queue")):
        reached = first_reaching(curves[strategy], target)
        share = f"{reached / len(truth):.0%} of the labels" if reached else "not reached"
        print(
            f"({strategy}) {title}: 95 % of {every:.3f} ({target:.3f}) at {reached} labels, {share}"
        )


if __name__ == "__main__":
    main()
