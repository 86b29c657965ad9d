"""The model zip's other formats on hymenoptera: what building them adds to the
packaging, and how each (int8 above all) agrees with model.onnx and how fast it runs.

    flock /tmp/vize-bench.lock .venv/bin/python bench/formats.py [--repeat 3] [--accurate]

Trains EfficientNet-Lite2 at the trainer's level on the train/ split (fast mode; with
--accurate, accurate mode with a 120 s budget as well), then, --repeat times, builds its
other formats (trainer/formats.py) measured on val/ (153 photos the model never saw)
and calibrated on train/ photos, and packages the zip (trainer/export.py) with and
without them. Prints the median of each time and the report of the last build.
"""

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from features import DATASETS, fixed_split

import trainer
from trainer import export, formats
from trainer.files import FORMATS_FILE


def timed(action, *arguments):
    started = time.perf_counter()
    action(*arguments)
    return time.perf_counter() - started


def measure(mode, train, test, workspace, repeat):
    model = workspace / f"{mode}-model"
    config = trainer.TrainConfig(base_model="lite2", mode=mode, time_budget=120)
    result = trainer.train(config, [trainer.Sample(path, kind) for path, kind in train], model)
    kept = result.metrics.get("fine_tuning", {}).get("kept", "fast")
    print(f"\n{mode} mode ({kept} model kept), hold-out accuracy {result.metrics['accuracy']:.3f}")
    bare = model.parent / f"{mode}-bare"
    shutil.copytree(model, bare)
    calibration = [path for path, _ in train]
    measured = [path for path, _ in test]
    builds, zips, bare_zips = [], [], []
    for attempt in range(repeat):
        built = workspace / f"{mode}-formats-{attempt}"
        builds.append(timed(formats.build, model, built, measured, calibration))
        bare_zips.append(timed(export.package, bare, workspace / "bare.zip", "B", 0.5))
        for path in built.iterdir():
            shutil.copy(path, model / path.name)
        zips.append(timed(export.package, model, workspace / "all.zip", "B", 0.5))
    print(
        f"  building the formats: median {statistics.median(builds):.1f} s of {repeat} "
        f"({', '.join(f'{s:.1f}' for s in builds)})"
    )
    print(
        f"  the zip without them: {statistics.median(bare_zips):.2f} s, with them: "
        f"{statistics.median(zips):.2f} s ({(workspace / 'all.zip').stat().st_size / 1e6:.1f} MB)"
    )
    report = json.loads((model / FORMATS_FILE).read_text())
    print(f"  measured on {report['photos']} val/ photos, int8 calibrated on "
          f"{report['calibration_photos']} train/ photos")  # fmt: skip
    for row in report["formats"]:
        size = (model / row["file"]).stat().st_size / 1e6 if (model / row["file"]).exists() else 0
        print(
            f"  {row['file']:22} {row['format'][:34]:34} agreement {100 * row['agreement']:5.1f}% "
            f"max diff {row['max_score_difference']:.4f}  {row['ms_per_photo']:6.1f} ms/photo "
            f"{size:5.1f} MB{'' if row.get('offered', True) else '  (not offered)'}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--accurate", action="store_true", help="accurate mode too")
    args = parser.parse_args()
    folder = DATASETS / "hymenoptera"
    if not folder.exists():
        sys.exit(f"no dataset at {folder}")
    train, test = fixed_split(folder)
    with tempfile.TemporaryDirectory(prefix="vizeapp-formats-bench-") as workspace:
        for mode in ["fast", "accurate"] if args.accurate else ["fast"]:
            measure(mode, train, test, Path(workspace), args.repeat)


if __name__ == "__main__":
    main()
