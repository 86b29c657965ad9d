"""The Watson Visual Recognition v3 API: the custom-classifier tutorial's curl sequence
through the test client, its rules and limits, and Watson's shapes."""

import base64

import django_rq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rq import SimpleWorker

from tasks.models import ApiKey, Task
from tests.images import encode, picture, png, zip_of

V3 = "/visual-recognition/api/v3"
VERSION = {"version": "2018-03-19"}


def examples_zip(kind, count=10, start=0):
    return zip_of(
        {f"{kind}-{i}.png": encode(picture(kind, i), "PNG") for i in range(start, start + count)}
    )


def zip_file(field_name, kind, count=10):
    return SimpleUploadedFile(f"{field_name}.zip", examples_zip(kind, count))


def basic(key):
    return "Basic " + base64.b64encode(f"apikey:{key}".encode()).decode()


@pytest.fixture
def watson(client, api_key):
    client.defaults["HTTP_AUTHORIZATION"] = basic(api_key)
    return client


@pytest.fixture
def work(training_queue, django_capture_on_commit_callbacks):
    def work():
        queues = [django_rq.get_queue("training")]
        with django_capture_on_commit_callbacks(execute=True):
            SimpleWorker(queues, connection=queues[0].connection).work(burst=True)

    return work


def create(watson, django_capture_on_commit_callbacks, **zips):
    with django_capture_on_commit_callbacks(execute=True):
        return watson.post(
            f"{V3}/classifiers?version=2018-03-19",
            {"name": "shapes", **{field: zip_file(field, kind) for field, kind in zips.items()}},
        )


@pytest.fixture
def discs_classifier(watson, training_queue, django_capture_on_commit_callbacks):
    """A classifier of one class and negative examples, training: its JSON."""
    return create(
        watson,
        django_capture_on_commit_callbacks,
        discs_positive_examples="discs",
        negative_examples="blank",
    ).json()


def test_the_tutorial_sequence_works(watson, work, django_capture_on_commit_callbacks):
    created = create(
        watson,
        django_capture_on_commit_callbacks,
        discs_positive_examples="discs",
        squares_positive_examples="squares",
        stripes_positive_examples="stripes",
        negative_examples="blank",
    )
    assert created.status_code == 200, created.content
    classifier = created.json()
    classifier_id = classifier["classifier_id"]
    assert classifier_id.startswith("shapes_")
    assert classifier["status"] == "training"
    assert sorted(c["class"] for c in classifier["classes"]) == ["discs", "squares", "stripes"]
    assert classifier["created"].endswith("Z")

    work()
    polled = watson.get(f"{V3}/classifiers/{classifier_id}", VERSION).json()
    assert polled["status"] == "ready"

    with django_capture_on_commit_callbacks(execute=True):
        retrained = watson.post(
            f"{V3}/classifiers/{classifier_id}?version=2018-03-19",
            {"triangles_positive_examples": zip_file("triangles", "triangles")},
        ).json()
    assert retrained["status"] == "retraining"
    assert len(retrained["classes"]) == 4
    work()
    assert watson.get(f"{V3}/classifiers/{classifier_id}", VERSION).json()["status"] == "ready"

    photo = SimpleUploadedFile("triangle.png", encode(picture("triangles", 500), "PNG"))
    answer = watson.post(
        f"{V3}/classify?version=2018-03-19",
        {"images_file": photo, "classifier_ids": f"{classifier_id},default", "threshold": "0.0"},
    ).json()
    assert answer["images_processed"] == 1
    assert answer["custom_classes"] == 4
    (image,) = answer["images"]
    assert image["image"] == "triangle.png"
    custom, general = image["classifiers"]
    assert (custom["classifier_id"], custom["name"]) == (classifier_id, "shapes")
    assert custom["classes"][0]["class"] == "triangles"
    assert {c["class"] for c in custom["classes"]} == {"discs", "squares", "stripes", "triangles"}
    assert general["classifier_id"] == "default"
    assert len(general["classes"]) == 10

    deleted = watson.delete(f"{V3}/classifiers/{classifier_id}?version=2018-03-19")
    assert (deleted.status_code, deleted.json()) == (200, {})
    assert watson.get(f"{V3}/classifiers/{classifier_id}", VERSION).status_code == 404


def test_a_classifier_is_a_task_in_the_browser(owner, discs_classifier):
    task = Task.objects.get(watson_id=discs_classifier["classifier_id"])
    assert task.owner == owner
    assert {(c.name, c.is_negative, c.images.count()) for c in task.categories.all()} == {
        ("discs", False, 10),
        ("negative examples", True, 10),
    }


def test_the_version_is_required(watson):
    response = watson.get(f"{V3}/classifiers")
    assert response.status_code == 400
    assert response.json()["code"] == 400
    assert "version" in response.json()["error"]


def test_a_wrong_key_gets_watsons_401(client, db):
    response = client.get(f"{V3}/classifiers", VERSION, HTTP_AUTHORIZATION=basic("vize_nope"))
    assert (response.status_code, response.json()["code"]) == (401, 401)


def test_the_api_v1_bearer_key_is_not_watsons_basic(client, api_key):
    response = client.get(f"{V3}/classifiers", VERSION, HTTP_AUTHORIZATION=f"Bearer {api_key}")
    assert response.status_code == 401


def test_one_zip_is_not_enough(watson, django_capture_on_commit_callbacks):
    response = create(watson, django_capture_on_commit_callbacks, discs_positive_examples="discs")
    assert response.status_code == 400
    assert "at least two" in response.json()["error"]
    assert not Task.objects.exists()


def test_a_zip_needs_ten_images(watson):
    response = watson.post(
        f"{V3}/classifiers?version=2018-03-19",
        {
            "name": "few",
            "discs_positive_examples": SimpleUploadedFile("d.zip", examples_zip("discs", 9)),
            "squares_positive_examples": zip_file("squares", "squares"),
        },
    )
    assert response.status_code == 400
    assert "at least 10" in response.json()["error"]
    assert not Task.objects.exists()


@pytest.mark.parametrize("name", ["golden-retriever", "a/b", "c*d", "quote'd"])
def test_forbidden_characters_in_class_names_are_refused(watson, name):
    response = watson.post(
        f"{V3}/classifiers?version=2018-03-19",
        {
            "name": "dogs",
            f"{name}_positive_examples": zip_file("x", "discs"),
            "negative_examples": zip_file("y", "blank"),
        },
    )
    assert response.status_code == 400
    assert "class name" in response.json()["error"]


def test_a_file_that_is_not_a_zip_is_refused(watson):
    response = watson.post(
        f"{V3}/classifiers?version=2018-03-19",
        {
            "name": "dogs",
            "beagle_positive_examples": SimpleUploadedFile("beagle.png", png()),
            "negative_examples": zip_file("cats", "blank"),
        },
    )
    assert response.status_code == 400
    assert "must be a zip" in response.json()["error"]


def test_classify_answers_bad_images_with_an_error_and_the_rest_normally(watson):
    archive = zip_of(
        {"good.png": encode(picture("discs", 1), "PNG"), "bad.jpg": b"not a picture at all"}
    )
    answer = watson.post(
        f"{V3}/classify?version=2018-03-19",
        {"images_file": SimpleUploadedFile("mixed.zip", archive)},
    ).json()
    assert answer["images_processed"] == 1
    by_name = {image["image"]: image for image in answer["images"]}
    assert by_name["mixed.zip/bad.jpg"]["error"]["error_id"] == "input_error"
    assert by_name["mixed.zip/good.png"]["classifiers"][0]["classifier_id"] == "default"


def test_classify_takes_at_most_20_images_in_a_zip(watson):
    archive = zip_of({f"{i}.png": png((i, i, i)) for i in range(21)})
    response = watson.post(
        f"{V3}/classify?version=2018-03-19",
        {"images_file": SimpleUploadedFile("many.zip", archive)},
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/cat.jpg",
        "http://localhost:8000/cat.jpg",
        "http://10.0.0.5/cat.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/cat.jpg",
        "file:///etc/passwd",
    ],
)
def test_classify_refuses_urls_inside_the_network(watson, url):
    answer = watson.post(f"{V3}/classify?version=2018-03-19", {"url": url}).json()
    (image,) = answer["images"]
    assert image["source_url"] == url
    assert image["error"]["code"] == 400
    assert answer["images_processed"] == 0


def test_an_invalid_threshold_is_400(watson):
    response = watson.post(
        f"{V3}/classify?version=2018-03-19",
        {"images_file": SimpleUploadedFile("a.png", png()), "threshold": "2"},
    )
    assert response.status_code == 400


def test_an_outsider_cannot_see_or_delete_a_classifier(watson, outsider, discs_classifier):
    outsider_key = ApiKey.issue(outsider, "theirs")[1]
    url = f"{V3}/classifiers/{discs_classifier['classifier_id']}?version=2018-03-19"
    for method in ("get", "post", "delete"):
        response = getattr(watson, method)(url, HTTP_AUTHORIZATION=basic(outsider_key))
        assert response.status_code == 404
    assert Task.objects.filter(watson_id=discs_classifier["classifier_id"]).exists()


def test_core_ml_of_a_classifier_still_training_is_not_found(watson, discs_classifier):
    classifier_id = discs_classifier["classifier_id"]
    response = watson.get(f"{V3}/classifiers/{classifier_id}/core_ml_model", VERSION)
    assert response.status_code == 404
    assert "no trained model yet" in response.json()["error"]


def test_the_task_page_shows_the_classifier_id(owner_client, task):
    task.watson_id = "dogs_1941945966"
    task.save()
    assert (
        "<code>dogs_1941945966</code>" in owner_client.get(task.get_absolute_url()).content.decode()
    )
