"""Photos and models on S3-compatible storage through django-storages, against moto's
S3 server on loopback: upload, train on a real worker, classify, download, package and
delete, with nothing written to the local media folder."""

import io
import uuid
import zipfile
from datetime import timedelta

import boto3
import pytest
from django.core.files.storage import default_storage
from moto.server import ThreadedMotoServer

from tasks.sweep import sweep
from tests.helpers import V1
from tests.test_api_training import classify, new_pictures
from tests.test_settings import settings_of

REGION = "us-east-1"


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(settings, s3_endpoint, monkeypatch, tmp_path):
    """A new bucket that is the site's default storage."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "vizeapp-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "vizeapp-test")
    name = f"vizeapp-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION).create_bucket(Bucket=name)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": name,
                "endpoint_url": s3_endpoint,
                "region_name": REGION,
                "file_overwrite": False,
            },
        },
    }
    settings.VIZE_STORAGE_CACHE = tmp_path / "storage-cache"
    return boto3.resource("s3", endpoint_url=s3_endpoint, region_name=REGION).Bucket(name)


def keys(bucket):
    return sorted(item.key for item in bucket.objects.all())


@pytest.fixture
def trained_on_s3(bucket, packaged):
    """(task, run) of a task trained through the API with the bucket as its storage."""
    return packaged


def test_photos_and_the_model_are_stored_in_the_bucket(api, bucket, trained_on_s3, media_root):
    task, run = trained_on_s3
    stored = keys(bucket)
    assert sum(key.startswith(f"tasks/{task}/images/") for key in stored) == 12
    assert sum(key.startswith(f"tasks/{task}/thumbnails/") for key in stored) == 12
    threshold = api.get(f"{V1}/tasks/{task}/runs/{run}").json()["operating_point"]["threshold"]
    for name in ("model.onnx", "model.json", f"export-{threshold!r}-float.zip"):
        assert f"tasks/{task}/runs/{run}/{name}" in stored
    assert not media_root.exists() or not any(media_root.rglob("*.*"))


def test_a_model_in_the_bucket_classifies(api, trained_on_s3, tmp_path):
    task, _ = trained_on_s3
    answers = classify(api, task, new_pictures(tmp_path))
    assert [a["label"] for a in answers] == ["discs", "squares", "discs"]


def test_a_photo_and_the_model_zip_download_from_the_bucket(api, trained_on_s3):
    task, _ = trained_on_s3
    image = api.get(f"{V1}/tasks/{task}/images").json()["images"][0]
    photo = api.get(f"{V1}/tasks/{task}/images/{image['code']}/file")
    assert photo["Content-Type"] == "image/png"
    assert b"".join(photo.streaming_content).startswith(b"\x89PNG")
    export = api.get(f"{V1}/tasks/{task}/export")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(export.streaming_content)))
    assert "model.onnx" in archive.namelist()


def test_deleting_a_task_empties_its_folder_in_the_bucket(
    api, bucket, trained_on_s3, django_capture_on_commit_callbacks
):
    task, _ = trained_on_s3
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"{V1}/tasks/{task}").status_code == 204
    assert [key for key in keys(bucket) if key.startswith(f"tasks/{task}/")] == []


def test_naming_a_bucket_in_the_environment_stores_media_there(tmp_path):
    storages = settings_of(
        tmp_path,
        "STORAGES['default']",
        VIZE_S3_BUCKET="photos",
        VIZE_S3_ENDPOINT_URL="http://127.0.0.1:9000",
    )
    assert storages["BACKEND"] == "storages.backends.s3.S3Storage"
    assert storages["OPTIONS"]["bucket_name"] == "photos"
    assert storages["OPTIONS"]["endpoint_url"] == "http://127.0.0.1:9000"


def test_the_sweep_removes_stray_objects_and_keeps_the_rest(bucket, trained_on_s3):
    task, _ = trained_on_s3
    bucket.put_object(Key=f"tasks/{task}/images/stray.jpg", Body=b"left by a killed upload")
    kept = [key for key in keys(bucket) if not key.endswith("stray.jpg")]
    report = sweep(default_storage, grace=timedelta(0))
    assert report.orphans == [f"tasks/{task}/images/stray.jpg"]
    assert (keys(bucket), report.missing) == (kept, [])


def test_the_sweep_removes_local_copies_of_a_deleted_task(
    api, trained_on_s3, tmp_path, settings, django_capture_on_commit_callbacks
):
    task, _ = trained_on_s3
    classify(api, task, new_pictures(tmp_path))  # the model is copied to the cache
    cache = settings.VIZE_STORAGE_CACHE / "tasks" / task
    assert any(cache.rglob("model.onnx"))
    with django_capture_on_commit_callbacks(execute=True):
        api.delete(f"{V1}/tasks/{task}")
    report = sweep(default_storage, grace=timedelta(0))
    assert report.stale_copies > 0
    assert not any(path.is_file() for path in cache.rglob("*"))
