"""The operating point on the shared photo sets: does the precision a run predicts for
its answered photos hold on photos it never saw, and does the exported predict.py
abstain on exactly the photos the trainer's predictor abstains on?

    flock /tmp/vize-bench.lock python bench/operating_point.py [hymenoptera trashnet]

Fast mode is trained at the trainer's level on each set's fixed train split (features
from bench/features.py's cache, so nothing is embedded twice), and its suggested point
is taken from the run's metrics. The test split (hymenoptera val/, trashnet's 20 %) is
then classified by trainer.predict and by the model zip's predict.py, and the precision
and coverage of the answered photos compared with what the run predicted, at the
suggested point and at every threshold that answers at least MIN_ANSWERED test photos.
The run's curve comes from out-of-fold scores of all its photos (trainer/training.py
fit_fast); the same comparison for a curve from the run's hold-out alone (a fifth of
the photos, scored by the head fitted on the rest) shows why.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from features import DATASETS, ROOT, features_of, fixed_split

import trainer
from trainer import evaluation, export, heads, operating_points, predict

MIN_ANSWERED = 30  # a precision on fewer test photos is too coarse to compare


def test_curve(predictions, true, classes):
    """The test photos' curve, from the predictor's scores."""
    probabilities = np.array([[dict(p.scores)[name] for name in classes] for p in predictions])
    return operating_points.curve(true, probabilities, classes, "test split")


def hold_out_curve(features, mirrored, labels, classes, metrics, seed=0):
    """The curve from the run's hold-out alone, scored by the run's head choice (C,
    temperature, view) fitted on the other four fifths."""
    choice = heads.HeadChoice(
        metrics["regularisation_c"], metrics["temperature"], metrics["head_features"]
    )
    method, ((train, test),) = evaluation.splits(labels, seed)
    model = heads.fit(features, mirrored, labels, choice.c, seed, choice.view, rows=train)
    probabilities = heads.probabilities(model, features[test], choice)
    return operating_points.curve(labels[test], probabilities, classes, method)


def compared(name, predicted, actual, tested):
    """Lines comparing a predicted curve with the test photos' at its suggested point and
    at every threshold answering enough test photos; the largest precision gap."""
    at = predicted["thresholds"].index(predicted["suggested"])
    expected, found = predicted["precision"][at], actual["precision"][at]
    gap = "none answered" if found is None else f"gap {100 * abs(expected - found):.1f} points"
    lines = [
        f"  {name} ({predicted['method']}): suggested {predicted['suggested']:g}: predicted "
        f"precision {expected:.3f} at coverage {predicted['coverage'][at]:.3f}; "
        f"test {found or 0:.3f} at {actual['coverage'][at]:.3f} ({gap})"
    ]
    gaps = []
    for i, threshold in enumerate(predicted["thresholds"]):
        if actual["coverage"][i] * tested < MIN_ANSWERED or predicted["precision"][i] is None:
            continue
        gaps.append((abs(predicted["precision"][i] - actual["precision"][i]), threshold))
    reaching = next(
        (
            t
            for t, p in zip(predicted["thresholds"], predicted["precision"], strict=True)
            if p is not None and p >= predicted["target_precision"]
        ),
        None,
    )
    lines.append(f"    the lowest threshold merely reaching the target would be {reaching:g}")
    worst, where = max(gaps)
    mean = sum(gap for gap, _ in gaps) / len(gaps)
    lines.append(
        f"    over {len(gaps)} thresholds: mean precision gap {100 * mean:.1f} points, "
        f"largest {100 * worst:.1f} at {where:g}"
    )
    return lines


def exported_answers(model_dir, threshold, paths, workspace):
    """(labels, needs_review) of the model zip's predict.py for paths."""
    folder = Path(workspace) / "export"
    packaged = export.package(model_dir, Path(workspace) / "export.zip", "bench", threshold)
    with zipfile.ZipFile(packaged) as archive:
        archive.extractall(folder)
    printed = subprocess.run(
        [sys.executable, str(folder / "predict.py"), *paths],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    answers = [json.loads(line) for line in printed]
    return [a["label"] for a in answers], [a["needs_review"] for a in answers]


def measure(name, base_model, cache_dir):
    train, test = fixed_split(DATASETS / name)
    features, mirrored, _ = features_of(name, train + test, base_model, cache_dir)
    classes = sorted({kind for _, kind in train})
    labels = np.array([classes.index(kind) for _, kind in train])
    samples = [
        trainer.Sample(path, kind, features[i], mirrored[i]) for i, (path, kind) in enumerate(train)
    ]
    with tempfile.TemporaryDirectory(prefix="vizeapp-bench-op-") as workspace:
        started = time.perf_counter()
        config = trainer.TrainConfig(base_model=base_model, cache_dir=cache_dir)
        result = trainer.train(config, samples, Path(workspace) / "model")
        trained = time.perf_counter() - started
        run_curve = result.metrics["operating_points"]
        threshold = run_curve["suggested"]
        paths = [path for path, _ in test]
        true = np.array([classes.index(kind) for _, kind in test])
        predictions = predict.load(result.model_dir).predict(paths)
        actual = test_curve(predictions, true, classes)
        n = len(train)
        hold_out = hold_out_curve(features[:n], mirrored[:n], labels, classes, result.metrics)
        labels_zip, review_zip = exported_answers(result.model_dir, threshold, paths, workspace)
    review_server = [p.needs_review for p in predictions]
    labels_server = [p.label for p in predictions]
    print(
        f"{name}: {len(train)} train / {len(test)} test photos, "
        f"accuracy {result.metrics['accuracy']:.3f} by {result.metrics['method']} "
        f"(trained in {trained:.0f} s)",
        flush=True,
    )
    for line in compared("the run's curve", run_curve, actual, len(test)):
        print(line)
    for line in compared("the hold-out's alone", hold_out, actual, len(test)):
        print(line)
    same = review_zip == review_server and labels_zip == labels_server
    print(
        f"  predict.py abstains on {sum(review_zip)} photos, trainer.predict on "
        f"{sum(review_server)}: {'the same photos and labels' if same else 'DIFFERENT'}",
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", default=["hymenoptera", "trashnet"])
    parser.add_argument("--base-model", default="lite2")
    parser.add_argument("--cache-dir", default=str(ROOT / "var" / "model-cache"))
    args = parser.parse_args()
    for name in args.sets:
        measure(name, args.base_model, args.cache_dir)


if __name__ == "__main__":
    main()
