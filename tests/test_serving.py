"""What keeps a classify near the floor (one decoding, one resize, one onnxruntime run):
each model loaded once per process, and before the first request; a request reads only
what it needs of the run; each photo decoded once."""

import re

import PIL.Image
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tasks import imports, predictions
from tasks.models import TrainingRun
from tests.helpers import V1
from tests.images import encode, jpeg, picture
from trainer import predict


@pytest.fixture
def loads(monkeypatch):
    """The models loaded from now on, by path, in a process that has loaded none."""
    predictions._load.cache_clear()
    loaded = []

    def load(model_dir, *args, **kwargs):
        loaded.append(model_dir)
        return real_load(model_dir, *args, **kwargs)

    real_load = predict.load
    monkeypatch.setattr(predict, "load", load)
    yield loaded
    predictions._load.cache_clear()


def classify(api, task_code, photo=None):
    photo = photo or encode(picture("discs", 1), "PNG")
    response = api.post(
        f"{V1}/tasks/{task_code}/classify", {"files": [SimpleUploadedFile("a.png", photo)]}
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_the_model_is_loaded_once_per_process_for_many_requests(api, trained, loads):
    task, _ = trained
    for _ in range(5):
        classify(api, task)
    assert len(loads) == 1


def test_preloading_loads_the_active_models_before_the_first_request(api, trained, loads):
    task, _ = trained
    predictions.preload()
    assert len(loads) == 1
    classify(api, task)
    assert len(loads) == 1


def test_a_classify_reads_none_of_the_runs_growing_columns(api, trained):
    task, _ = trained
    classify(api, task)  # the model is loaded: what follows is any request's share
    with CaptureQueriesContext(connection) as queries:
        classify(api, task)
    read = " ".join(q["sql"] for q in queries.captured_queries if "tasks_trainingrun" in q["sql"])
    assert re.search(r"\boperating_threshold\b", read)
    assert "*" not in read
    for column in TrainingRun.GROWING_FIELDS:
        assert not re.search(rf"\b{column}\b", read)


def test_a_photo_sent_to_classify_is_decoded_once(api, trained, monkeypatch):
    task, _ = trained
    classify(api, task)
    opened = []
    real_open = PIL.Image.open

    def open_image(*args, **kwargs):
        opened.append(args[0])
        return real_open(*args, **kwargs)

    monkeypatch.setattr(PIL.Image, "open", open_image)
    classify(api, task, jpeg(size=(640, 480)))
    assert len(opened) == 1


def test_photos_past_one_largest_photos_pixels_are_decoded_again_when_predicted(settings):
    settings.VIZE_MAX_IMAGE_PIXELS = 5000  # 64 x 48 = 3072 pixels each
    uploads = [SimpleUploadedFile(f"{n}.jpg", jpeg()) for n in range(3)]
    sent = imports.images_to_classify(uploads, imports.Limits.from_settings(), 50)
    assert [file.photo is not None for file in sent] == [True, True, False]
    assert [file.to_predict for file in sent] == [sent[0].photo, sent[1].photo, sent[2].image]
