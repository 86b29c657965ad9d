"""The training job, run by an RQ worker: one door between tasks/ and trainer/.

It takes the run's primary key, loads rows, calls trainer, and writes the results
back. PostgreSQL holds the truth about the run: every step is one of the run's state
changes (TrainingRun), which does nothing if the run was cancelled or settled meanwhile.
"""

import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError
from rq.timeouts import JobTimeoutException

import trainer
from tasks import datasets, runs, workspaces, zips
from tasks.local_copies import local_file, local_folder
from tasks.models import (
    SUGGESTION_FIELDS,
    Image,
    ImageEmbedding,
    Task,
    TrainingRun,
    delete_files,
    delete_folder,
)
from trainer import export, formats
from trainer.backbones import FEATURES_VERSION, base_model
from trainer.choices import LATE_MAPS_READ_BY

STAGES = {
    "embedding": TrainingRun.Status.EMBEDDING,
    "evaluating": TrainingRun.Status.EVALUATING,
    "fitting": TrainingRun.Status.FITTING,
}


class RunStopped(Exception):
    """The run was cancelled or settled while the job was working on it."""


class ProgressReport:
    """Writes stage, percent and ETA to the run, at most twice a second per stage,
    which doubles as the heartbeat the reconciler watches."""

    def __init__(self, run):
        self.run = run
        self.stage = None
        self.written = 0.0

    def __call__(self, stage, percent, eta):
        status = STAGES.get(stage)
        now = time.monotonic()
        if status is None or (status == self.stage and now - self.written < 0.5):
            return
        self.stage, self.written = status, now
        if not self.run.report(status, percent, None if eta is None else max(0, round(eta))):
            raise RunStopped


def train_run(run_id):
    run = TrainingRun.objects.select_related("task").filter(pk=run_id).first()
    if run is None or not run.claim():
        return
    budget_started = time.monotonic()
    # A press of Start may have added images between the load and the claim.
    run.refresh_from_db(fields=["samples", "negative_label"])
    workspace = workspaces.new(runs.workspace_prefix(run))
    try:
        images, samples = load_samples(run)
        result = trainer.train(
            trainer.TrainConfig(
                base_model=run.base_model,
                mode=run.mode,
                seed=run.seed,
                negative_label=run.negative_label or None,
                cache_dir=str(settings.VIZE_MODEL_CACHE),
                time_budget=run.time_budget,
                budget_started=budget_started,
                carried_choice=run.head_choice_to_carry(),
            ),
            samples,
            workspace / "model",
            on_progress=ProgressReport(run),
        )
        store_embeddings(
            run.base_model,
            [(images[i], *computed) for i, computed in result.new_embeddings.items()],
        )
        write_held_out(workspace / "model", images, result.held_out)
        folder = store_model(run, workspace / "model")
        finish(run, images, result, folder)
        runs.package_in_background(run)
        runs.suggest_in_background(run.task_id)  # with the head this run chose
    except RunStopped:
        return
    except Exception as error:
        if run.fail(described(error)):
            delete_folder(default_storage, run.storage_folder)
        raise
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def described(error):
    """Why a training job failed, in words for the run page."""
    if isinstance(error, JobTimeoutException):
        return runs.TIMED_OUT
    if zips.is_file_error(error):
        return f"Training failed: the server could not store the model ({error.strerror})."
    return f"Training failed: {error}"


def package_run(run_id):
    """Package the model zip of a ready run (trainer/export.py) at its operating point
    and with the model it serves, once, after building its other formats if that has
    not happened yet; then remove the zips it had before."""
    run = TrainingRun.objects.select_related("task").filter(pk=run_id).first()
    if run is None or run.status != TrainingRun.Status.READY or run.export_ready:
        return
    threshold, int8 = run.operating_threshold, run.serves_int8
    # A zip stored under the name is one packaged so before the run recorded it.
    if not default_storage.exists(run.export_file):
        store_model_zip(run, threshold)
    # Else the choices changed meanwhile: the change, or the next download, packages again.
    if run.packaged(threshold, int8):
        zips_now = [name for name in stored_names(run) if name.endswith(".zip")]
        older = [f"{run.model_folder}/{name}" for name in zips_now]
        delete_files(default_storage, [name for name in older if name != run.export_file])


def stored_names(run):
    _, names = default_storage.listdir(run.model_folder)
    return names


def model_files(run):
    """The names of the run's model files, not the zips of its earlier choices."""
    return [name for name in stored_names(run) if not name.endswith(".zip")]


def store_model_zip(run, threshold):
    def write(path):
        if not run.formats:
            store_formats(run)
        export.package(
            local_folder(run.model_folder, model_files(run)),
            path,
            title=run.task.name,
            threshold=threshold,
            served=run.served_file,
        )

    zips.store(runs.ModelZip(run), run.export_file, write, f"vizeapp-export-{run.code}-")


def store_formats(run):
    """Build the other formats of the run's model (trainer/formats.py), measured on the
    photos its evaluation held out, and store them beside it: once per run, as they
    depend on the model alone. None where every photo of the run was deleted since:
    the zip then holds model.onnx alone."""
    measured, calibration = formats_photos(run)
    if not measured:
        return
    with tempfile.TemporaryDirectory(prefix=f"vizeapp-formats-{run.code}-") as workspace:
        report = formats.build(
            local_folder(run.model_folder, model_files(run)), workspace, measured, calibration
        )
        for path in sorted(Path(workspace).iterdir()):
            name = f"{run.model_folder}/{path.name}"
            default_storage.delete(name)  # stored by an attempt that failed after it
            with path.open("rb") as handle:
                default_storage.save(name, File(handle))
    run.formats_built(report)


def formats_photos(run):
    """(measured, calibration): the paths of the run's held-out photos that still exist,
    and of its other photos, as many as trainer/formats.py reads (copied from object
    storage: not every photo of a run of thousands). A run that held none apart (k-fold
    cross-validation) is measured on all its photos, and calibrated on them too."""
    codes = [code for code, _ in run.samples]
    stored = {str(image.code): image for image in run.task.images.filter(code__in=codes)}
    held_out = set(run.held_out)
    measured = [stored[code] for code in codes if code in stored and code in held_out]
    others = [stored[code] for code in codes if code in stored and code not in held_out]
    if not (measured and others):
        measured = others = measured or others
    measured = formats.spread(measured, formats.MEASURED_PHOTOS)
    calibration = formats.spread(others, formats.CALIBRATION_PHOTOS)
    return [str(local_file(image.file.name)) for image in measured], [
        str(local_file(image.file.name)) for image in calibration
    ]


EMBEDDING_CHUNK = 64
# One job embeds for about this long, then queues the rest as a new job: 20,000 photos
# take half an hour, past the default queue's timeout, and a model zip queued meanwhile
# should not wait for all of them.
EMBEDDING_SLICE_SECONDS = 240


def embed_new_images(task_id, base_model=trainer.DEFAULT_BASE_MODEL):
    """Embed, while the person is still sorting, the images that have no features yet
    for the default base model, so that pressing Start training only fits the head."""
    started = time.monotonic()
    embedded = ImageEmbedding.objects.filter(base_model=base_model, version=FEATURES_VERSION)
    pending = Image.objects.filter(task_id=task_id).exclude(pk__in=embedded.values("image"))
    while chunk := list(pending.order_by("id")[:EMBEDDING_CHUNK]):
        computed = trainer.embed(
            [str(local_file(image.file.name)) for image in chunk],
            base_model,
            str(settings.VIZE_MODEL_CACHE),
        )
        store_embeddings(
            base_model,
            [(image, *(part[row] for part in computed)) for row, image in enumerate(chunk)],
        )
        if time.monotonic() - started > EMBEDDING_SLICE_SECONDS and pending.exists():
            runs.embed_in_background(chunk[0].task, continued=True)
            return
    runs.suggest_in_background(task_id)


def suggest_categories(task_id):
    """What the labelled photos of the task say of each embedded photo, from their stored
    features (trainer/suggestions.py), once two categories hold an embedded photo: a
    suggested category for each Unsorted photo, a doubt about each label that heads which
    never saw the photo would not give, and how far each photo lies from every category.
    The suggestions are stored first, as the person waits for them; photos not embedded
    yet wait for the refresh the background embedding asks for when it ends."""
    task = Task.objects.select_related("active_run").filter(pk=task_id).first()
    if task is None:
        return
    base = trainer.DEFAULT_BASE_MODEL
    rows = (
        ImageEmbedding.objects.filter(
            image__in=task.images.all(), base_model=base, version=FEATURES_VERSION
        )
        .order_by("image_id")
        .values_list("image_id", "image__category_id", "features", "mirrored")
    )
    labelled, unsorted = [], []
    for image, category, features, mirrored in rows:
        embedding = (image, category, vector(features, np.float32), vector(mirrored, np.float32))
        (labelled if category else unsorted).append(embedding)
    categories = sorted({category for _, category, _, _ in labelled})
    if len(categories) < 2:
        task.images.update(**dict.fromkeys(SUGGESTION_FIELDS))
        return
    active = task.active_run
    choice = active.recorded_head_choice() if active and active.base_model == base else None
    features, mirrored, unsorted_features = (
        np.stack([row[column] for row in part]) if part else np.empty((0, 0), np.float32)
        for part, column in ((labelled, 2), (labelled, 3), (unsorted, 2))
    )
    labels = np.array([categories.index(category) for _, category, _, _ in labelled])
    try:
        suggestions = []
        if unsorted:
            probabilities = trainer.suggest(features, mirrored, labels, unsorted_features, choice)
            suggestions = unsorted_suggestions(unsorted, probabilities, categories)
            Image.objects.suggest(suggestions)  # first: the person waits for these
        found = trainer.review(features, mirrored, labels, unsorted_features, choice)
        far_unsorted = zip(suggestions, found.far_unsorted, strict=True)
        Image.objects.suggest(
            labelled_suggestions(labelled, labels, found, categories)
            + [(*row[:-1], finite(far)) for row, far in far_unsorted]
        )
    except IntegrityError:  # a category was deleted meanwhile: suggest again without it
        runs.suggest_in_background(task_id)


def unsorted_suggestions(unsorted, probabilities, categories):
    """(image, suggested category, its probability, its lead over the runner-up, no
    outlier score yet) for each Unsorted photo."""
    runner_up, best = np.sort(probabilities, axis=1)[:, -2:].T
    return [
        (image, categories[choice], float(top), float(top - second), None)
        for (image, *_), choice, top, second in zip(
            unsorted, probabilities.argmax(axis=1), best, runner_up, strict=True
        )
    ]


def labelled_suggestions(labelled, labels, found, categories):
    """(image, the category a head that never saw it prefers to its own and that head's
    probability or None and None, no margin, outlier score) for each labelled photo."""
    rows = []
    for (image, *_), label, scores, far in zip(
        labelled, labels, found.doubts, found.far_labelled, strict=True
    ):
        preferred = int(scores.argmax()) if np.isfinite(scores).all() else label
        doubted = preferred != label
        rows.append(
            (
                image,
                categories[preferred] if doubted else None,
                float(scores[preferred]) if doubted else None,
                None,
                finite(far),
            )
        )
    return rows


def finite(value):
    return float(value) if np.isfinite(value) else None


def load_samples(run):
    """The run's frozen images that still exist, with the embeddings already stored,
    copied row by row into one array per kind that the trainer takes as it is: at 20,000
    photos the features are 0.3 GB and the late maps 1.35 GB, each held once. The late
    maps only for a mode that reads them."""
    codes = [code for code, _ in run.samples]
    by_code = {
        str(image.code): image for image in Image.objects.filter(task=run.task, code__in=codes)
    }
    found = [(by_code[code], label) for code, label in run.samples if code in by_code]
    row_of = {image.pk: row for row, (image, _) in enumerate(found)}
    stored = ImageEmbedding.objects.filter(
        image__in=row_of, base_model=run.base_model, version=FEATURES_VERSION
    )
    kinds = {"features": np.float32, "mirrored": np.float32}
    if run.mode in LATE_MAPS_READ_BY:
        kinds["late_maps"] = np.float16
    else:
        stored = stored.defer("late_maps")
    arrays, filled = {}, set()
    for embedding in stored.iterator(chunk_size=200):
        row = row_of[embedding.image_id]
        for kind, dtype in kinds.items():
            values = vector(getattr(embedding, kind), dtype)
            if kind not in arrays:
                shape = (2, *base_model(run.base_model).late_maps) if kind == "late_maps" else (-1,)
                arrays[kind] = np.empty((len(found), *values.reshape(shape).shape), dtype)
            arrays[kind][row] = values.reshape(arrays[kind].shape[1:])
        filled.add(row)
    samples = [
        trainer.Sample(
            str(local_file(image.file.name)),
            label,
            *(arrays[kind][row] for kind in kinds if row in filled),
            group=image.duplicate_group,
        )
        for row, (image, label) in enumerate(found)
    ]
    return [image for image, _ in found], samples


def vector(data, dtype):
    return np.frombuffer(data, dtype=dtype)


def store_embeddings(base_model, embedded):
    """Keep (image, features, mirrored, late maps) for every later run; a concurrent job
    may have stored some already."""
    ImageEmbedding.objects.bulk_create(
        [
            ImageEmbedding(
                image=image,
                base_model=base_model,
                features=features.astype(np.float32).tobytes(),
                mirrored=mirrored.astype(np.float32).tobytes(),
                late_maps=late_maps.astype(np.float16).tobytes(),
            )
            for image, features, mirrored, late_maps in embedded
        ],
        ignore_conflicts=True,
    )


def write_held_out(model_dir, images, held_out):
    """Beside the model, what the run's evaluation answered for each image it held out,
    by image code: a dataset zip's labels.csv tells it (tasks/datasets.py)."""
    answers = [
        {
            "image": str(images[answer["index"]].code),
            "split": answer["split"],
            "predicted": answer["predicted"],
            "score": answer["score"],
        }
        for answer in held_out
    ]
    (model_dir / datasets.HELD_OUT_FILE).write_text(json.dumps(answers))


def store_model(run, model_dir):
    folder = run.storage_folder
    for path in sorted(model_dir.iterdir()):
        with path.open("rb") as handle:
            default_storage.save(f"{folder}/{path.name}", File(handle))
    return folder


def finish(run, images, result, folder):
    """Ready at the suggested operating point and active, unless the run was stopped
    meanwhile."""
    misclassified = [
        {
            "image": str(images[mistake["index"]].code),
            "true": mistake["true"],
            "predicted": mistake["predicted"],
            "scores": mistake["scores"],
        }
        for mistake in result.misclassified
    ]
    held_out = [str(images[answer["index"]].code) for answer in result.held_out]
    suggested = result.metrics["operating_points"]["suggested"]
    if not run.finish(result.metrics, misclassified, held_out, folder, suggested):
        delete_folder(default_storage, folder)
        raise RunStopped
