"""From code, end to end: create a task, upload a zip, train on a real worker, poll,
classify, download the model zip, and get the same answers from its predict.py."""

import io
import json
import subprocess
import sys
import zipfile

import django_rq
import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from rq import SimpleWorker

from tests.helpers import V1, shapes_zip
from tests.images import picture


def new_pictures(tmp_path, kinds=("discs", "squares", "discs")):
    paths = []
    for variant, kind in enumerate(kinds, start=900):
        path = tmp_path / f"new-{kind}-{variant}.png"
        picture(kind, variant).save(path)
        paths.append(path)
    return paths


def sure_and_unsure_pictures(tmp_path):
    """Shapes the model knows, and others that it cannot be sure of."""
    return new_pictures(tmp_path, ("discs", "squares", "blank", "stripes", "triangles"))


def classify(api, task_code, paths, **fields):
    files = [SimpleUploadedFile(path.name, path.read_bytes()) for path in paths]
    response = api.post(f"{V1}/tasks/{task_code}/classify", {"files": files, **fields})
    assert response.status_code == 200, response.content
    return response.json()["images"]


def choose_operating_point(api, task_code, run_code, threshold):
    return api.put(
        f"{V1}/tasks/{task_code}/runs/{run_code}/operating-point",
        {"threshold": threshold},
        "application/json",
    )


def between_top_scores(answers):
    """A threshold that some of the answers' top scores reach and some do not."""
    tops = sorted(answer["scores"][0]["score"] for answer in answers)
    assert tops[0] < tops[-1], tops
    return (tops[0] + tops[-1]) / 2


def exported(api, task_code, tmp_path):
    response = api.get(f"{V1}/tasks/{task_code}/export")
    assert response.status_code == 200
    folder = tmp_path / "export"
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        archive.extractall(folder)
    return folder


def test_a_task_goes_from_zip_to_model_through_the_api(
    api, run_queues, tmp_path, django_capture_on_commit_callbacks
):
    created = api.post(f"{V1}/tasks", {"name": "Discs or squares"}, "application/json")
    task = created.json()["code"]
    report = api.post(
        f"{V1}/tasks/{task}/images",
        {
            "files": [SimpleUploadedFile("shapes.zip", shapes_zip())],
            "folders_as_categories": "true",
        },
    ).json()
    assert (len(report["added"]), report["rejected"]) == (12, [])

    with django_capture_on_commit_callbacks(execute=True):
        started = api.post(f"{V1}/tasks/{task}/runs", {"base_model": "lite0"}, "application/json")
    assert started.status_code == 201
    run = started.json()["code"]
    assert api.get(f"{V1}/tasks/{task}/runs/{run}").json()["status"] == "queued"

    with django_capture_on_commit_callbacks():  # the packaging job waits, for now
        SimpleWorker([django_rq.get_queue("training")]).work(burst=True)
    polled = api.get(f"{V1}/tasks/{task}/runs/{run}").json()
    assert (polled["status"], polled["percent"], polled["active"]) == ("ready", 100, True)
    assert polled["metrics"]["accuracy"] == 1.0

    answers = classify(api, task, new_pictures(tmp_path))
    assert [a["label"] for a in answers] == ["discs", "squares", "discs"]
    assert {a["run"] for a in answers} == {run}
    assert [s["category"] for s in answers[1]["scores"]] == ["squares", "discs"]

    with django_capture_on_commit_callbacks(execute=True):
        waiting = api.get(f"{V1}/tasks/{task}/export")
    assert (waiting.status_code, waiting["Retry-After"]) == (202, "5")
    run_queues("default")
    assert api.get(f"{V1}/tasks/{task}/runs/{run}").json()["export_ready"] is True
    folder = exported(api, task, tmp_path)
    assert sorted(path.name for path in folder.iterdir()) == [
        "formats.json",
        "labels.json",
        "model.int8.onnx",
        "model.json",
        "model.mlmodel",
        "model.onnx",
        "model.torchscript.pt",
        "model_card.md",
        "predict.py",
        "preprocess.json",
    ]


def test_the_exported_predict_py_answers_what_the_server_answers(
    api, packaged, tmp_path, run_queues, django_capture_on_commit_callbacks
):
    task, run = packaged
    paths = sure_and_unsure_pictures(tmp_path)
    threshold = between_top_scores(classify(api, task, paths))
    with django_capture_on_commit_callbacks(execute=True):
        assert choose_operating_point(api, task, run, threshold).status_code == 200
    run_queues("default")  # the model zip, packaged again at the new point
    server = classify(api, task, paths)
    assert {answer["run"] for answer in server} == {run}
    assert {answer["needs_review"] for answer in server} == {True, False}
    folder = exported(api, task, tmp_path)
    printed = subprocess.run(
        [sys.executable, str(folder / "predict.py"), *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.splitlines()
    local = [json.loads(line) for line in printed]
    assert [line["label"] for line in local] == [answer["label"] for answer in server]
    assert [line["needs_review"] for line in local] == [a["needs_review"] for a in server]
    for line, answer in zip(local, server, strict=True):
        assert line["name"].endswith(answer["name"])
        for score in answer["scores"]:
            assert line["scores"][score["category"]] == pytest.approx(score["score"], abs=1e-4)


def test_predict_py_names_a_file_that_is_not_a_photo_and_goes_on(api, packaged, tmp_path):
    folder = exported(api, packaged[0], tmp_path)
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_text("a shopping list")
    (photo,) = new_pictures(tmp_path, kinds=("discs",))
    without_pillow_heif = (
        "import runpy, sys; sys.modules['pillow_heif'] = None; "
        "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    printed = subprocess.run(
        [sys.executable, "-c", without_pillow_heif, str(folder / "predict.py"), not_a_photo, photo],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    refused, answered = (json.loads(line) for line in printed.stdout.splitlines())
    assert printed.returncode == 1
    assert refused["name"].endswith("notes.jpg")
    assert refused["error"].startswith("not a readable image")
    assert answered["label"] == "discs"


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_the_torchscript_model_scores_like_the_onnx_model(api, packaged, tmp_path):
    import onnxruntime
    import torch

    from trainer.portable import load_rgb, to_input

    folder = exported(api, packaged[0], tmp_path)
    preprocessing = json.loads((folder / "preprocess.json").read_text())

    class Settings:
        pass

    settings = Settings()
    settings.__dict__.update(preprocessing)
    pixels = np.stack([to_input(load_rgb(path), settings) for path in new_pictures(tmp_path)])
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"))
    (onnx_scores,) = session.run(None, {"pixels": pixels})
    scripted = torch.jit.load(str(folder / "model.torchscript.pt"))
    with torch.no_grad():
        torch_scores = scripted(torch.from_numpy(pixels)).numpy()
    np.testing.assert_allclose(torch_scores, onnx_scores, atol=1e-4)


def test_the_model_card_tells_how_it_was_made_and_how_to_use_it(api, packaged, tmp_path):
    card = (exported(api, packaged[0], tmp_path) / "model_card.md").read_text()
    assert card.startswith("# Discs or squares")
    assert "EfficientNet-Lite0" in card
    assert "| discs | 6 | 100.0% | 100.0% |" in card
    assert "python predict.py" in card


def test_a_threshold_leaves_out_low_scores(api, trained, tmp_path):
    task, _ = trained
    (answer,) = classify(api, task, new_pictures(tmp_path)[:1], threshold="0.5")
    assert [s["category"] for s in answer["scores"]] == ["discs"]
    assert answer["label"] == "discs"


def test_a_run_answers_at_its_suggested_operating_point(api, trained):
    task, run = trained
    found = api.get(f"{V1}/tasks/{task}/runs/{run}").json()
    suggested = found["metrics"]["operating_points"]["suggested"]
    assert found["operating_point"]["threshold"] == suggested
    assert found["operating_point"]["suggested"] == suggested


def test_below_the_operating_point_classify_answers_needs_review_and_no_label(
    api, packaged, tmp_path
):
    task, run = packaged
    paths = sure_and_unsure_pictures(tmp_path)
    answered = classify(api, task, paths)
    threshold = between_top_scores(answered)
    assert choose_operating_point(api, task, run, threshold).status_code == 200
    for before, after in zip(answered, classify(api, task, paths), strict=True):
        unsure = before["scores"][0]["score"] < threshold
        assert (after["needs_review"], after["label"]) == (
            (True, None) if unsure else (False, before["label"])
        )
        assert after["scores"] == before["scores"]


def test_a_changed_operating_point_packages_the_model_zip_again(
    api, packaged, tmp_path, run_queues, django_capture_on_commit_callbacks
):
    task, run = packaged
    with django_capture_on_commit_callbacks(execute=True):
        assert choose_operating_point(api, task, run, 0.75).json()["export_ready"] is False
    assert api.get(f"{V1}/tasks/{task}/export").status_code == 202
    run_queues("default")
    folder = exported(api, task, tmp_path)
    description = json.loads((folder / "model.json").read_text())
    assert description["operating_point"] == {"threshold": 0.75}
    assert "below 0.75 (the operating point)" in (folder / "model_card.md").read_text()
    _, stored = default_storage.listdir(f"tasks/{task}/runs/{run}")
    assert [name for name in stored if name.endswith(".zip")] == ["export-0.75-float.zip"]


def test_the_page_download_serves_the_same_zip(owner_client, api, packaged):
    task, run = packaged
    page = owner_client.get(f"/tasks/{task}/runs/{run}/export/")
    assert page["Content-Disposition"].startswith('attachment; filename="discs-or-squares-')
    through_api = api.get(f"{V1}/tasks/{task}/export")
    assert b"".join(page.streaming_content) == b"".join(through_api.streaming_content)
