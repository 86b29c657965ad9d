"""The JSON API under /api/v1/, request by request: tasks, categories, images and
runs, with the same rules as the pages and JSON errors that name the field or file."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from tasks.api_schemas import Classification
from tasks.models import Image, Task
from tests import images
from tests.helpers import V1, add_images


def upload(client, task, *files, **fields):
    return client.post(f"{V1}/tasks/{task.code}/images", {"files": list(files), **fields})


def photo(name="photo.png", color=(200, 30, 30)):
    return SimpleUploadedFile(name, images.png(color))


def test_it_creates_a_task_with_categories(api, owner):
    response = api.post(
        f"{V1}/tasks", {"name": "Ants or bees", "categories": ["ants", "bees"]}, "application/json"
    )
    assert response.status_code == 201
    task = Task.objects.get(code=response.json()["code"])
    assert task.owner == owner
    assert sorted(task.categories.values_list("name", flat=True)) == ["ants", "bees"]
    assert response.json()["category_count"] == 2


def test_it_refuses_a_task_without_a_name_naming_the_field(api):
    response = api.post(f"{V1}/tasks", {"name": ""}, "application/json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("payload.name")


def test_it_refuses_malformed_json(api):
    response = api.post(f"{V1}/tasks", "{not json", "application/json")
    assert response.status_code == 400


def test_it_lists_only_the_keys_owners_tasks(api, task, outsider):
    Task.objects.create(owner=outsider, name="Not mine")
    assert [t["name"] for t in api.get(f"{V1}/tasks").json()] == ["Ants or bees"]


def test_it_renames_a_task(api, task):
    response = api.patch(f"{V1}/tasks/{task.code}", {"name": "Insects"}, "application/json")
    assert response.json()["name"] == "Insects"
    task.refresh_from_db()
    assert task.name == "Insects"


def test_it_deletes_a_task_and_its_files(
    api, task, ant_images, media_root, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(f"{V1}/tasks/{task.code}")
    assert response.status_code == 204
    assert not Task.objects.filter(pk=task.pk).exists()
    assert not (media_root / task.storage_prefix).exists()


def test_it_creates_renames_and_deletes_a_category(api, task, ant_images):
    created = api.post(f"{V1}/tasks/{task.code}/categories", {"name": "wasps"}, "application/json")
    assert created.status_code == 201
    code = created.json()["code"]
    renamed = api.patch(
        f"{V1}/tasks/{task.code}/categories/{code}", {"name": "hornets"}, "application/json"
    )
    assert renamed.json()["name"] == "hornets"
    assert api.delete(f"{V1}/tasks/{task.code}/categories/{code}").status_code == 204
    listed = api.get(f"{V1}/tasks/{task.code}/categories").json()
    assert [(c["name"], c["image_count"]) for c in listed] == [("ants", 3)]


def test_it_refuses_a_second_category_of_the_same_name(api, task, ants):
    response = api.post(f"{V1}/tasks/{task.code}/categories", {"name": "ANTS"}, "application/json")
    assert response.status_code == 400
    assert "already has a category" in response.json()["detail"]


def test_deleting_a_category_keeps_its_images_in_unsorted(api, task, ants, ant_images):
    api.delete(f"{V1}/tasks/{task.code}/categories/{ants.code}")
    assert task.images.filter(category=None).count() == 3


def test_an_upload_reports_each_file(api, task):
    first = upload(api, task, photo("a.png"), category="ants")
    assert first.status_code == 201
    second = upload(
        api,
        task,
        photo("again.png"),
        SimpleUploadedFile("notes.txt", b"not a picture"),
        category="ants",
    )
    assert second.status_code == 200
    report = second.json()
    assert report["added"] == []
    assert report["duplicates"][0]["name"] == "again.png"
    assert "already in this task" in report["duplicates"][0]["reason"]
    assert report["rejected"] == [
        {
            "name": "notes.txt",
            "reason": "not an image in a supported format (JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC)",
        }
    ]
    assert first.json()["added"][0]["image"]["category"] == "ants"


def test_an_upload_without_a_category_goes_to_unsorted(api, task):
    report = upload(api, task, photo()).json()
    assert report["added"][0]["image"]["category"] is None


def test_a_zip_upload_can_make_categories_of_its_folders(api, task):
    archive = images.zip_of(
        {"ants/1.png": images.png((10, 10, 10)), "bees/1.png": images.png((250, 250, 0))}
    )
    report = upload(
        api, task, SimpleUploadedFile("set.zip", archive), folders_as_categories="true"
    ).json()
    assert sorted(a["image"]["category"] for a in report["added"]) == ["ants", "bees"]


def test_an_upload_needs_files(api, task):
    response = api.post(f"{V1}/tasks/{task.code}/images", {"category": "ants"})
    assert response.status_code == 400
    assert "files" in response.json()["detail"]


def test_images_list_by_category_a_page_at_a_time(api, task, ants, ant_images, unsorted_images):
    page = api.get(f"{V1}/tasks/{task.code}/images", {"category": "ants", "limit": 2}).json()
    assert page["count"] == 3
    assert len(page["images"]) == 2
    rest = api.get(
        f"{V1}/tasks/{task.code}/images", {"category": "ants", "limit": 2, "after": page["next"]}
    ).json()
    assert rest["next"] is None
    codes = {i["code"] for i in page["images"] + rest["images"]}
    assert codes == {str(image.code) for image in ant_images}
    unsorted = api.get(f"{V1}/tasks/{task.code}/images", {"unsorted": "true"}).json()
    assert unsorted["count"] == 2


def test_a_forged_cursor_is_refused(api, task):
    response = api.get(f"{V1}/tasks/{task.code}/images", {"after": "12"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("after")


def test_images_move_to_a_category_and_back_to_unsorted(api, task, ants, unsorted_images):
    codes = [str(image.code) for image in unsorted_images]
    moved = api.post(
        f"{V1}/tasks/{task.code}/images/move",
        {"images": codes, "category": "ants"},
        "application/json",
    ).json()
    assert moved == {"moved": 2, "not_found": []}
    assert ants.images.count() == 2
    api.post(
        f"{V1}/tasks/{task.code}/images/move",
        {"images": codes, "category": None},
        "application/json",
    )
    assert ants.images.count() == 0


def test_moving_to_an_unknown_category_is_404_naming_it(api, task, unsorted_images):
    response = api.post(
        f"{V1}/tasks/{task.code}/images/move",
        {"images": [str(unsorted_images[0].code)], "category": "wasps"},
        "application/json",
    )
    assert response.status_code == 404
    assert "wasps" in response.json()["detail"]


def test_images_delete_reports_codes_it_did_not_find(api, task, unsorted_images, outsider):
    foreign = Task.objects.create(owner=outsider, name="Theirs")
    theirs = add_images(foreign, None, 1, start=30)[0]
    response = api.post(
        f"{V1}/tasks/{task.code}/images/delete",
        {"images": [str(unsorted_images[0].code), str(theirs.code)]},
        "application/json",
    ).json()
    assert response == {"deleted": 1, "not_found": [str(theirs.code)]}
    assert Image.objects.filter(pk=theirs.pk).exists()


def test_the_original_file_downloads_as_uploaded(api, task, ant_images):
    image = ant_images[0]
    response = api.get(f"{V1}/tasks/{task.code}/images/{image.code}/file")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == image.file.open("rb").read()


def test_the_original_file_downloads_under_its_uploaded_name_never_sniffed(api, task, ant_images):
    response = api.get(f"{V1}/tasks/{task.code}/images/{ant_images[0].code}/file")
    assert response["Content-Disposition"] == 'attachment; filename="photo-0.png"'
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_page_that_ends_the_list_has_no_next_cursor(api, task, ants, ant_images):
    page = api.get(f"{V1}/tasks/{task.code}/images", {"limit": 3}).json()
    assert len(page["images"]) == 3
    assert page["next"] is None


def test_training_is_refused_with_the_reason_when_not_ready(api, task, ant_images):
    response = api.post(f"{V1}/tasks/{task.code}/runs", {}, "application/json")
    assert response.status_code == 400
    assert "at least two categories" in response.json()["detail"]


def test_a_second_run_while_one_is_training_is_409(api, task, ant_images):
    # Was "while one is active": a queued run now takes the new images in, on every face
    # (the next test); only a run that is already training refuses a second.
    current = task.runs.create(base_model="lite0", mode="fast", samples=[], status="embedding")
    response = api.post(f"{V1}/tasks/{task.code}/runs", {}, "application/json")
    assert response.status_code == 409
    assert str(current.code) in response.json()["detail"]


def test_a_second_run_while_one_is_queued_joins_it_with_the_new_images(api, task, ant_images):
    queued = task.runs.create(base_model="lite0", mode="fast", samples=[])
    response = api.post(f"{V1}/tasks/{task.code}/runs", {}, "application/json")
    assert (response.status_code, response.json()["code"]) == (200, str(queued.code))
    queued.refresh_from_db()
    assert len(queued.samples) == len(ant_images)


def test_an_unknown_base_model_is_400_naming_the_field(api, task):
    response = api.post(
        f"{V1}/tasks/{task.code}/runs", {"base_model": "resnet"}, "application/json"
    )
    assert response.status_code == 400
    assert "base_model" in response.json()["detail"]


def test_a_queued_run_can_be_cancelled_once(api, task):
    run = task.runs.create(base_model="lite0", mode="fast", samples=[])
    url = f"{V1}/tasks/{task.code}/runs/{run.code}/cancel"
    assert api.post(url).json()["status"] == "cancelled"
    assert api.post(url).status_code == 409


def test_only_a_ready_run_can_be_activated(api, task):
    run = task.runs.create(base_model="lite0", mode="fast", samples=[], status="failed")
    response = api.post(f"{V1}/tasks/{task.code}/runs/{run.code}/activate")
    assert response.status_code == 409


def test_classify_without_a_model_is_409(api, task):
    response = api.post(f"{V1}/tasks/{task.code}/classify", {"files": [photo()]})
    assert response.status_code == 409
    assert "no trained model" in response.json()["detail"]


@pytest.fixture
def ready_run(task):
    """A ready run whose model was never written: enough for the checks made before
    classifying."""
    run = task.runs.create(base_model="lite0", mode="fast", samples=[], status="ready")
    task.active_run = run
    task.save()
    return run


def test_classify_refuses_a_file_that_is_not_an_image_with_415(api, task, ready_run):
    response = api.post(
        f"{V1}/tasks/{task.code}/classify",
        {"files": [SimpleUploadedFile("report.pdf", b"%PDF-1.4 not an image")]},
    )
    assert response.status_code == 415
    assert response.json()["detail"].startswith("report.pdf: not an image")


def test_classify_refuses_a_file_over_the_limit_with_413(api, task, ready_run, settings):
    settings.VIZE_MAX_IMAGE_BYTES = 100
    response = api.post(f"{V1}/tasks/{task.code}/classify", {"files": [photo("big.png")]})
    assert response.status_code == 413
    assert response.json()["detail"].startswith("big.png: the file is")


def test_classify_refuses_too_many_images_with_413(api, task, ready_run, settings):
    settings.VIZE_PREVIEW_MAX_FILES = 1
    files = [photo("a.png"), photo("b.png", (0, 0, 200))]
    response = api.post(f"{V1}/tasks/{task.code}/classify", {"files": files})
    assert response.status_code == 413
    assert "more than 1 images" in response.json()["detail"]


def test_classify_with_a_run_that_is_not_ready_is_409(api, task, ready_run):
    queued = task.runs.create(base_model="lite0", mode="fast", samples=[])
    response = api.post(
        f"{V1}/tasks/{task.code}/classify", {"files": [photo()], "run": str(queued.code)}
    )
    assert response.status_code == 409


def test_export_without_a_model_is_409(api, task):
    assert api.get(f"{V1}/tasks/{task.code}/export").status_code == 409


def test_the_general_classifier_names_imagenet_classes(api):
    picture = io.BytesIO()
    PILImage.new("RGB", (224, 224), (20, 120, 30)).save(picture, "PNG")
    response = api.post(
        f"{V1}/classify/general",
        {"files": [SimpleUploadedFile("green.png", picture.getvalue())], "top": "3"},
    )
    assert response.status_code == 200
    (answer,) = response.json()["images"]
    assert answer["name"] == "green.png"
    assert answer["run"] is None
    assert len(answer["scores"]) == 3
    assert answer["label"] == answer["scores"][0]["category"]
    assert answer["scores"][0]["score"] >= answer["scores"][1]["score"]


def test_the_general_classifiers_answer_is_what_its_schema_documents(api):
    picture = io.BytesIO()
    PILImage.new("RGB", (224, 224), (20, 120, 30)).save(picture, "PNG")
    response = api.post(
        f"{V1}/classify/general", {"files": [SimpleUploadedFile("green.png", picture.getvalue())]}
    )

    documented = Classification.model_validate(response.json()).model_dump(mode="json")
    assert documented == response.json()


def test_an_unknown_task_is_404_in_json(api):
    response = api.get(f"{V1}/tasks/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert "no task" in response.json()["detail"]


def test_the_schema_is_openapi_3_and_lists_every_endpoint(client):
    schema = client.get(f"{V1}/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    paths = set(schema["paths"])
    for path in (
        "/api/v1/tasks",
        "/api/v1/tasks/{task}",
        "/api/v1/tasks/{task}/categories",
        "/api/v1/tasks/{task}/categories/{category}",
        "/api/v1/tasks/{task}/images",
        "/api/v1/tasks/{task}/images/move",
        "/api/v1/tasks/{task}/images/delete",
        "/api/v1/tasks/{task}/images/{image}/file",
        "/api/v1/tasks/{task}/runs",
        "/api/v1/tasks/{task}/runs/{run}",
        "/api/v1/tasks/{task}/runs/{run}/cancel",
        "/api/v1/tasks/{task}/runs/{run}/activate",
        "/api/v1/tasks/{task}/classify",
        "/api/v1/classify/general",
        "/api/v1/tasks/{task}/export",
    ):
        assert path in paths
    assert {"BearerKey", "BasicKey"} <= set(schema["components"]["securitySchemes"])


def test_the_docs_page_serves_its_own_scripts(client):
    page = client.get(f"{V1}/docs").content.decode()
    assert "swagger" in page.lower()
    assert "cdn" not in page


def test_a_name_with_a_control_character_is_400_not_a_database_error(api):
    response = api.post(f"{V1}/tasks", {"name": "ants\x00"}, "application/json")
    assert response.status_code == 400
    assert "control characters" in response.json()["detail"]


def test_a_category_lookup_with_a_nul_is_400(api, task):
    response = api.get(f"{V1}/tasks/{task.code}/images", {"category": "a\x00b"})
    assert response.status_code == 400
