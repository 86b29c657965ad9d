"""Download dataset: the task's photos and labels as a zip built by a job on a real
worker, served by the page and by GET /api/v1/tasks/{task}/dataset, and dropped on a
new task to recreate it."""

import csv
import hashlib
import io
import tracemalloc
import zipfile
from datetime import timedelta

import django_rq
import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image as PillowImage

from tasks import datasets, imports
from tasks.models import DatasetZip, Task
from tasks.sweep import sweep
from tests.helpers import V1, add_images, shapes_zip
from tests.images import encode, jpeg, png, zip_of


def dataset_url(task, **query):
    code = task.code if isinstance(task, Task) else task
    return f"{V1}/tasks/{code}/dataset" + "".join(f"?{k}={v}" for k, v in query.items())


@pytest.fixture
def downloaded(api, run_queues, django_capture_on_commit_callbacks):
    """Ask for a task's dataset zip through the API, let the worker build it, and give
    the bytes that the API then answers."""

    def download(task, **query):
        with django_capture_on_commit_callbacks(execute=True):
            waiting = api.get(dataset_url(task, **query))
        assert waiting.status_code == 202, waiting.content
        run_queues("default")
        response = api.get(dataset_url(task, **query))
        assert response.status_code == 200, response.content
        return b"".join(response.streaming_content)

    return download


@pytest.fixture
def built(downloaded):
    """As downloaded, opened."""
    return lambda task, **query: zipfile.ZipFile(io.BytesIO(downloaded(task, **query)))


def labels(archive):
    return list(csv.DictReader(io.StringIO(archive.read("labels.csv").decode())))


@pytest.fixture
def labelled_task(task, ants, bees, ant_images, unsorted_images):
    """3 ants, 2 bees, a negative category of 2, and 2 Unsorted photos."""
    add_images(task, bees, 2, start=20)
    add_images(task, task.categories.create(name="none of these", is_negative=True), 2, start=30)
    return task


def test_the_api_answers_202_with_retry_after_until_the_job_has_built_it(
    api, labelled_task, run_queues, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        waiting = api.get(dataset_url(labelled_task))
    assert (waiting.status_code, waiting["Retry-After"]) == (202, "5")
    assert waiting.json()["detail"] == "The dataset zip is being built; try again in a few seconds."

    run_queues("default")
    response = api.get(dataset_url(labelled_task))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="ants-or-bees-dataset.zip"'


def test_each_category_is_a_folder_and_the_unsorted_photos_lie_beside_them(labelled_task, built):
    assert sorted(built(labelled_task).namelist()) == [
        "ants/photo-0.png",
        "ants/photo-1.png",
        "ants/photo-2.png",
        "bees/photo-20.png",
        "bees/photo-21.png",
        "labels.csv",
        "none of these/photo-30.png",
        "none of these/photo-31.png",
        "photo-10.png",
        "photo-11.png",
    ]


def test_torchvision_s_image_folder_reads_the_categories_and_leaves_unsorted_out(
    labelled_task, built, tmp_path
):
    from torchvision.datasets import ImageFolder

    built(labelled_task).extractall(tmp_path / "dataset")
    folder = ImageFolder(tmp_path / "dataset")
    assert folder.classes == ["ants", "bees", "none of these"]
    assert sorted(folder.classes[label] for _, label in folder.samples) == [
        *["ants"] * 3,
        *["bees"] * 2,
        *["none of these"] * 2,
    ]


def test_the_photos_are_their_original_bytes_stored_not_deflated(labelled_task, built):
    archive = built(labelled_task)
    photos = [info for info in archive.infolist() if info.filename != "labels.csv"]
    assert {info.compress_type for info in photos} == {zipfile.ZIP_STORED}
    assert sorted(hashlib.sha256(archive.read(info)).hexdigest() for info in photos) == sorted(
        labelled_task.images.values_list("sha256", flat=True)
    )


def test_names_that_clash_in_a_folder_are_made_unique_ignoring_case(task, ants, built):
    imports.import_files(
        task,
        [
            SimpleUploadedFile("cat.png", png((1, 2, 3))),
            SimpleUploadedFile("CAT.png", png((4, 5, 6))),
            SimpleUploadedFile("cat.png", png((7, 8, 9))),
        ],
        category=ants,
    )
    assert sorted(built(task).namelist()) == [
        "ants/CAT (2).png",
        "ants/cat (3).png",
        "ants/cat.png",
        "labels.csv",
    ]


def test_a_name_gets_its_format_s_extension_and_no_leading_dot(task, ants, built):
    imports.import_files(
        task,
        [
            SimpleUploadedFile("scan", jpeg((1, 2, 3))),
            SimpleUploadedFile("looks-like.png", jpeg((4, 5, 6))),
            SimpleUploadedFile(".hidden.JPEG", jpeg((7, 8, 9))),
        ],
        category=ants,
    )
    assert sorted(built(task).namelist()) == [
        "ants/_hidden.JPEG",
        "ants/looks-like.png.jpg",
        "ants/scan.jpg",
        "labels.csv",
    ]


def test_a_category_name_that_is_no_safe_folder_name_is_made_one(task, built):
    add_images(task, task.categories.create(name="cats/dogs: .both"), 1)
    assert "cats_dogs_ .both/photo-0.png" in built(task).namelist()


def test_labels_csv_gives_each_photo_s_file_sha256_category_and_whether_it_is_negative(
    labelled_task, built
):
    rows = {row["file"]: row for row in labels(built(labelled_task))}
    negative = labelled_task.images.get(original_name="photo-30.png")
    assert rows["none of these/photo-30.png"] == {
        "file": "none of these/photo-30.png",
        "sha256": negative.sha256,
        "category": "none of these",
        "negative": "true",
        "split": "",
        "prediction": "",
        "score": "",
    }
    assert (rows["ants/photo-0.png"]["category"], rows["ants/photo-0.png"]["negative"]) == (
        "ants",
        "false",
    )
    assert (rows["photo-10.png"]["category"], rows["photo-10.png"]["negative"]) == ("", "false")


@pytest.fixture
def trained_task(api, run_queues, django_capture_on_commit_callbacks):
    """A task of discs and squares trained on a real worker, with count photos of each."""

    def train(count):
        task = api.post(f"{V1}/tasks", {"name": "Shapes"}, "application/json").json()["code"]
        api.post(
            f"{V1}/tasks/{task}/images",
            {
                "files": [SimpleUploadedFile("shapes.zip", shapes_zip(count))],
                "folders_as_categories": "true",
            },
        )
        with django_capture_on_commit_callbacks(execute=True):
            run = api.post(f"{V1}/tasks/{task}/runs", {"base_model": "lite0"}, "application/json")
        run_queues("training")
        return Task.objects.get(code=task), run.json()["code"]

    return train


def test_labels_csv_gives_each_fold_s_held_out_answers_of_the_active_run(trained_task, built):
    task, run = trained_task(6)  # 6 of each: 5-fold cross-validation, every photo held out
    rows = labels(built(task))
    assert sorted({row["split"] for row in rows}) == [f"fold {n}" for n in range(1, 6)]
    wrong = [row for row in rows if row["prediction"] != row["category"]]
    assert len(wrong) == len(task.runs.get(code=run).misclassified)
    assert all(0.5 < float(row["score"]) <= 1 for row in rows)


def test_a_hold_out_run_s_training_photos_are_train_and_its_held_out_ones_test(trained_task, built):
    task, run = trained_task(12)  # 12 of each: a hold-out of a fifth
    finished = task.runs.get(code=run)
    rows = labels(built(task))
    held_out = [row for row in rows if row["split"] == "test"]
    trained = [row for row in rows if row["split"] == "train"]
    assert (len(held_out), len(trained)) == (
        finished.metrics["evaluated"],
        24 - finished.metrics["evaluated"],
    )
    wrong = [row for row in held_out if row["prediction"] != row["category"]]
    assert len(wrong) == len(finished.misclassified)
    assert {(row["prediction"], row["score"]) for row in trained} == {("", "")}


def test_a_photo_added_after_the_run_has_no_split(trained_task, built):
    task, _ = trained_task(6)
    add_images(task, task.categories.get(name="discs"), 1, start=50)
    rows = {row["file"]: row for row in labels(built(task))}
    assert (rows["discs/photo-50.png"]["split"], rows["discs/photo-50.png"]["score"]) == ("", "")


def test_a_run_that_is_not_ready_answers_409(api, labelled_task):
    failed = labelled_task.runs.create(base_model="lite0", mode="fast", status="failed")
    response = api.get(dataset_url(labelled_task, run=failed.code))
    assert response.status_code == 409
    assert response.json()["detail"].endswith("only a ready run has a model.")


def test_another_users_key_gets_404_and_no_zip(outsider_api, labelled_task):
    assert outsider_api.get(dataset_url(labelled_task)).status_code == 404
    assert outsider_api.post(dataset_url(labelled_task)).status_code == 404
    assert not DatasetZip.objects.exists()


def test_another_user_gets_404_on_the_page(outsider_client, labelled_task):
    page = outsider_client.get(reverse("tasks:dataset", args=[labelled_task.code]))
    assert page.status_code == 404
    assert not DatasetZip.objects.exists()


def test_the_task_page_links_to_the_dataset_download(owner_client, labelled_task):
    page = owner_client.get(labelled_task.get_absolute_url()).content.decode()
    assert f'href="{reverse("tasks:dataset", args=[labelled_task.code])}"' in page


def test_the_page_waits_and_refreshes_itself_then_downloads_the_zip(
    owner_client, labelled_task, run_queues, django_capture_on_commit_callbacks
):
    url = reverse("tasks:dataset", args=[labelled_task.code])
    with django_capture_on_commit_callbacks(execute=True):
        waiting = owner_client.get(url)
    assert waiting.status_code == 200
    assert '<meta http-equiv="refresh" content="2">' in waiting.content.decode()
    assert "9 photos" in waiting.content.decode()

    run_queues("default")
    download = owner_client.get(url)
    assert download["Content-Disposition"] == 'attachment; filename="ants-or-bees-dataset.zip"'
    assert len(zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content))).namelist()) == 10


def test_asking_again_serves_the_built_zip_without_building_it_again(api, labelled_task, built):
    built(labelled_task)
    assert api.get(dataset_url(labelled_task)).status_code == 200
    assert django_rq.get_queue("default").count == 0
    assert DatasetZip.objects.count() == 1


def test_a_moved_photo_builds_a_new_zip_and_the_stale_one_goes(
    api, labelled_task, ant_images, built, django_capture_on_commit_callbacks
):
    built(labelled_task)
    stale = DatasetZip.objects.get()
    api.post(
        f"{V1}/tasks/{labelled_task.code}/images/move",
        {"images": [str(ant_images[0].code)], "category": "bees"},
        "application/json",
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert api.get(dataset_url(labelled_task)).status_code == 202

    assert "bees/photo-0.png" in built(labelled_task).namelist()
    assert list(DatasetZip.objects.exclude(ready=True)) == []
    assert not DatasetZip.objects.filter(pk=stale.pk).exists()
    assert not default_storage.exists(stale.file_name)


def test_a_zip_asked_for_before_a_change_is_never_built_with_it(
    api, labelled_task, ant_images, run_queues, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        api.get(dataset_url(labelled_task))
    asked = DatasetZip.objects.get()
    ant_images[0].delete()  # before the job runs

    run_queues("default")
    assert not DatasetZip.objects.filter(pk=asked.pk).exists()
    assert not default_storage.exists(asked.file_name)


def test_a_renamed_category_builds_a_new_zip(api, labelled_task, ants, built):
    built(labelled_task)
    api.patch(
        f"{V1}/tasks/{labelled_task.code}/categories/{ants.code}",
        {"name": "formicidae"},
        "application/json",
    )
    assert "formicidae/photo-0.png" in built(labelled_task).namelist()


def test_a_failed_build_says_why_and_is_tried_again_only_on_request(
    api, labelled_task, ant_images, run_queues, django_capture_on_commit_callbacks
):
    photo = ant_images[0].file.name
    original = default_storage.open(photo).read()
    default_storage.delete(photo)
    with django_capture_on_commit_callbacks(execute=True):
        api.get(dataset_url(labelled_task))
    run_queues("default")
    failed = api.get(dataset_url(labelled_task))
    assert failed.status_code == 503
    assert failed.json()["detail"] == (
        "The dataset zip could not be built: No such file or directory. "
        "POST to this URL to try again."
    )
    assert django_rq.get_queue("default").count == 0  # looking again does not rebuild it

    default_storage.save(photo, ContentFile(original))
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(dataset_url(labelled_task)).status_code == 202
    run_queues("default")
    assert api.get(dataset_url(labelled_task)).status_code == 200


def test_a_killed_build_job_says_why_and_removes_its_temporary_files(labelled_task, work_dir):
    dataset = datasets.current(labelled_task, None).dataset
    begun = work_dir / f"{datasets.workspace_prefix(dataset)}x1y2"
    begun.mkdir(parents=True)
    (begun / "built.zip").write_bytes(b"half a zip")

    datasets.job_died(f"{datasets.JOB_PREFIX}{dataset.code}", "Work-horse terminated (SIGKILL)\n")

    dataset.refresh_from_db()
    assert dataset.failure == (
        "The dataset zip could not be built: the job died (Work-horse terminated (SIGKILL))."
    )
    assert not begun.exists()


def test_the_storage_sweep_keeps_a_built_dataset_zip(labelled_task, built):
    built(labelled_task)
    report = sweep(default_storage, remove=False, grace=timedelta(0))
    assert report.orphans == []


def noise_png(seed, size=(1800, 1700)):
    """About 9 MB that no compression shrinks."""
    pixels = np.random.default_rng(seed).integers(0, 256, (*size[::-1], 3), dtype=np.uint8)
    return encode(PillowImage.fromarray(pixels), "PNG", compress_level=1)


def test_the_zip_is_copied_from_storage_in_chunks_never_held_in_memory_whole(task, ants):
    files = [SimpleUploadedFile(f"noise-{i}.png", noise_png(i)) for i in range(2)]
    imports.import_files(task, files, category=ants)
    smallest = min(task.images.values_list("size", flat=True))
    dataset = datasets.current(task, None).dataset

    tracemalloc.start()
    datasets.build(dataset.pk)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert smallest > 8_000_000
    assert peak < smallest / 3  # not even one photo whole
    assert zipfile.ZipFile(default_storage.open(dataset.file_name)).testzip() is None


def test_a_dataset_past_zip_s_4_gib_limit_is_written_and_read_as_zip64(
    labelled_task, owner, monkeypatch
):
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 100)  # what 4 GiB is to a real dataset
    dataset = datasets.current(labelled_task, None).dataset
    datasets.build(dataset.pk)
    data = default_storage.open(dataset.file_name).read()
    assert b"PK\x06\x06" in data  # the zip64 end of central directory record

    again = Task.objects.create(owner=owner, name="Again")
    report = imports.import_files(
        again, [SimpleUploadedFile("dataset.zip", data)], folders_as_categories=True
    )
    assert (len(report.added), report.rejected) == (9, [])


def task_contents(task):
    """{sha256: (category, negative)} of every photo, and the categories with counts."""
    photos = {
        image.sha256: (
            image.category_id and image.category.name,
            image.category_id and image.category.is_negative,
        )
        for image in task.images.select_related("category")
    }
    categories = sorted(
        (c.name, c.is_negative, c.image_count) for c in task.categories_with_counts()
    )
    return photos, categories, task.unsorted_count()


def test_dropping_the_zip_on_a_new_task_recreates_its_photos_and_categories(
    api, labelled_task, downloaded
):
    add_images(labelled_task, labelled_task.categories.create(name="a/b: c"), 2, start=40)
    data = downloaded(labelled_task)
    new = api.post(f"{V1}/tasks", {"name": "Again"}, "application/json").json()["code"]

    report = api.post(
        f"{V1}/tasks/{new}/images",
        {
            "files": [SimpleUploadedFile("dataset.zip", data)],
            "folders_as_categories": "true",
        },
    ).json()

    assert (len(report["added"]), report["duplicates"], report["rejected"]) == (11, [], [])
    assert task_contents(Task.objects.get(code=new)) == task_contents(labelled_task)


def test_a_dataset_zip_never_makes_a_second_negative_category(task):
    task.categories.create(name="background", is_negative=True)
    rows = "file,sha256,category,negative\nnone/a.png,,none,true\nants/b.png,,ants,false\n"
    members = {
        "labels.csv": rows.encode(),
        "none/a.png": png((1, 2, 3)),
        "ants/b.png": png((4, 5, 6)),
    }
    report = imports.import_files(
        task, [SimpleUploadedFile("d.zip", zip_of(members))], folders_as_categories=True
    )
    assert (len(report.added), report.rejected) == (2, [])
    assert sorted(task.categories.values_list("name", "is_negative")) == [
        ("ants", False),
        ("background", True),
        ("none", False),
    ]
