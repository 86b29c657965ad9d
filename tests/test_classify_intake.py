"""One intake for images sent to be classified: the preview page, /api/v1 and Watson
read what was sent with the same reader, after taking an inference slot, and each only
words the same per-file verdicts its own way."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tasks import imports, predictions
from tasks.throttling import Throttled
from tests.helpers import V1
from tests.images import encode, picture, png, png_declaring, zip_of
from tests.test_watson import V3, basic

BUSY = "The server is busy classifying; try again in a moment."

# What every face must say of the hostile set, file by file, in the order sent.
VERDICTS = [
    ("photos.zip/disc.png", ""),
    ("photos.zip/square.png", ""),
    ("notes.jpg", "not an image in a supported format (JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC)"),
    ("flood.png", "1000x1000 pixels is more than the limit of 0.01 megapixels per image"),
    ("extra.png", "more than 4 images in one request"),
]


@pytest.fixture
def hostile_set(settings):
    """A zip of two photos, a text file named .jpg, a pixel flood and one file past the
    count of four per request."""
    settings.VIZE_MAX_IMAGE_PIXELS = 10_000
    settings.VIZE_PREVIEW_MAX_FILES = 4
    photos = {
        "disc.png": encode(picture("discs", 1), "PNG"),
        "square.png": encode(picture("squares", 2), "PNG"),
    }
    return [
        SimpleUploadedFile("photos.zip", zip_of(photos)),
        SimpleUploadedFile("notes.jpg", b"words, not pixels"),
        SimpleUploadedFile("flood.png", png_declaring(1000, 1000)),
        SimpleUploadedFile("extra.png", png()),
    ]


@pytest.fixture
def ready_run(task):
    """A ready, active run whose model was never written: enough for a request refused
    before anything is predicted."""
    run = task.runs.create(base_model="lite0", mode="fast", samples=[], status="ready")
    task.active_run = run
    task.save()
    return run


@pytest.fixture
def no_capacity(settings):
    settings.VIZE_INFERENCE_SLOTS = 0
    settings.VIZE_INFERENCE_QUEUE = 0


def test_the_preview_page_shows_a_row_for_each_file_of_the_hostile_set(
    owner_client, task, hostile_set
):
    response = owner_client.post(
        reverse("tasks:preview", args=[task.code]),
        {"files": hostile_set},
        headers={"HX-Request": "true"},
    )
    results = response.context["results"]
    assert [(result["name"], result["error"]) for result in results] == VERDICTS
    assert all(result["prediction"] for result in results[:2])
    for _, reason in VERDICTS[2:]:
        assert reason in response.content.decode()


def test_watson_answers_each_file_of_the_hostile_set_with_its_classes_or_an_error(
    client, api_key, hostile_set
):
    answer = client.post(
        f"{V3}/classify?version=2018-03-19",
        {"images_file": hostile_set},
        HTTP_AUTHORIZATION=basic(api_key),
    ).json()
    images = answer["images"]
    verdicts = [(image["image"], image.get("error", {}).get("description", "")) for image in images]
    assert verdicts == VERDICTS
    assert all(image["error"]["error_id"] == "input_error" for image in images[2:])
    assert [image["classifiers"][0]["classifier_id"] for image in images[:2]] == ["default"] * 2
    assert answer["images_processed"] == 2


@pytest.mark.parametrize("path", ["{V1}/tasks/{task}/classify", "{V1}/classify/general"])
def test_the_api_refuses_the_hostile_set_naming_its_first_refused_file(
    api, task, ready_run, hostile_set, path
):
    response = api.post(path.format(V1=V1, task=task.code), {"files": hostile_set})
    name, reason = next((name, reason) for name, reason in VERDICTS if reason)
    # 413 rather than 415: one of the files is one too many.
    assert (response.status_code, response.json()["detail"]) == (413, f"{name}: {reason}")


def test_files_past_the_count_are_refused_without_being_read():
    archive = zip_of({"1.png": png(), "2.jpg": b"not a picture, but never read"})
    sent = imports.images_to_classify(
        [SimpleUploadedFile("two.zip", archive)], imports.Limits.from_settings(), 1
    )
    assert [(file.name, file.reason) for file in sent] == [
        ("two.zip/1.png", ""),
        ("two.zip/2.jpg", "more than 1 images in one request"),
    ]


@pytest.mark.parametrize(
    "path, answer",
    [
        ("{V1}/tasks/{task}/classify", {"detail": BUSY}),
        ("{V1}/classify/general", {"detail": BUSY}),
        (f"{V3}/classify?version=2018-03-19", {"code": 503, "error": BUSY}),
    ],
)
def test_a_full_process_answers_each_classify_api_with_503_before_reading_it(
    client, task, no_capacity, path, answer
):
    # No key and no files field: the request is turned away before either is looked at.
    response = client.post(
        path.format(V1=V1, task=task.code), {"images": SimpleUploadedFile("a.png", png())}
    )
    assert (response.status_code, response["Retry-After"]) == (503, "1")
    assert response.json() == answer


def test_a_full_process_answers_the_preview_with_503_before_reading_the_photos(task, no_capacity):
    # Signed out and without a CSRF token: turned away before either is checked (the
    # CSRF check would read the whole upload).
    response = Client(enforce_csrf_checks=True).post(
        reverse("tasks:preview", args=[task.code]),
        {"files": [SimpleUploadedFile("notes.jpg", b"words, not pixels")]},
        headers={"HX-Request": "true"},
    )
    assert (response.status_code, response["Retry-After"]) == (503, "1")
    assert BUSY in response.content.decode()
    assert "notes.jpg" not in response.content.decode()


def test_the_preview_without_javascript_answers_the_whole_page_with_the_results(owner_client, task):
    response = owner_client.post(
        reverse("tasks:preview", args=[task.code]),
        {"files": [SimpleUploadedFile("notes.jpg", b"words, not pixels")]},
    )
    html = response.content.decode()
    assert html.startswith("<!doctype html>")
    assert 'id="sidebar"' in html
    assert "notes.jpg" in html and "not an image in a supported format" in html


def test_the_preview_with_htmx_answers_only_the_results(owner_client, task):
    response = owner_client.post(
        reverse("tasks:preview", args=[task.code]),
        {"files": [SimpleUploadedFile("notes.jpg", b"words, not pixels")]},
        headers={"HX-Request": "true"},
    )
    assert [template.name for template in response.templates] == ["tasks/_predictions.html"]


def test_a_preview_row_points_at_its_file_only_when_the_file_was_sent_whole(
    owner_client, task, hostile_set
):
    # The page shows, and can add to a category, its own copy of those files only:
    # it has none of a zip's members.
    response = owner_client.post(
        reverse("tasks:preview", args=[task.code]),
        {"files": hostile_set},
        headers={"HX-Request": "true"},
    )
    assert [result["index"] for result in response.context["results"]] == [None, None, 1, 2, 3]


def test_an_upload_tells_htmx_how_many_files_were_added_duplicate_or_rejected(owner_client, task):
    response = owner_client.post(
        reverse("tasks:upload", args=[task.code]),
        {"files": [SimpleUploadedFile("a.png", png()), SimpleUploadedFile("b.jpg", b"words")]},
        headers={"HX-Request": "true"},
    )
    assert response["HX-Trigger"] == ('{"uploaded": {"added": 1, "duplicate": 0, "rejected": 1}}')


def test_classify_takes_the_inference_slot_before_reading_any_file(no_capacity, monkeypatch):
    def read(*args):
        raise AssertionError("a file was read before the slot was taken")

    monkeypatch.setattr(imports, "images_to_classify", read)
    with pytest.raises(Throttled):
        predictions.classify_files([SimpleUploadedFile("a.png", png())], [None])


def test_a_full_process_answers_the_preview_without_javascript_with_a_page_of_its_own(
    task, no_capacity
):
    response = Client(enforce_csrf_checks=True).post(
        reverse("tasks:preview", args=[task.code]),
        {"files": [SimpleUploadedFile("a.png", png())]},
    )
    assert response.status_code == 503
    assert response.content.decode().startswith("<!doctype html>")
    assert BUSY in response.content.decode()
