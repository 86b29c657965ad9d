"""The model's other formats (trainer/formats.py): the network with its padding fixed,
Core ML read back (coremltools cannot run a model on Linux), int8 ONNX and its
agreement, the model card's table, Watson's core_ml_model, and a run that serves its
int8 model. One fast and one fine-tuned model of real ImageNet weights serve the file."""

import json
import shutil
import zipfile

import coremltools
import numpy as np
import onnx
import pytest
import torch
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from onnx import numpy_helper

import trainer
from tests.helpers import V1
from tests.images import encode, picture
from tests.test_watson import V3, VERSION, basic
from trainer import coreml, export, finetune, formats, networks, portable, predict
from trainer.backbones import BASE_MODELS, Preprocessing
from trainer.files import (
    COREML_FILE,
    DESCRIPTION_FILE,
    INT8_MODEL_FILE,
    MODEL_FILE,
    TORCHSCRIPT_FILE,
)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Twelve discs and twelve squares: enough for a hold-out of a fifth."""
    folder = tmp_path_factory.mktemp("photos")
    paths = {}
    for kind in ("discs", "squares"):
        paths[kind] = []
        for variant in range(12):
            path = folder / f"{kind}-{variant}.png"
            picture(kind, variant).save(path)
            paths[kind].append(str(path))
    return paths


def with_formats(model_dir, photos):
    """Build the formats of the model in model_dir as the packaging job does, measured on
    every fourth photo and calibrated on the others, and store them beside it."""
    every = photos["discs"] + photos["squares"]
    measured = every[::4]
    built = model_dir.parent / f"{model_dir.name}-formats"
    report = formats.build(model_dir, built, measured, [p for p in every if p not in measured])
    for path in built.iterdir():
        shutil.copy(path, model_dir / path.name)
    return report


@pytest.fixture(scope="module")
def fast_model(photos, model_cache, tmp_path_factory):
    """(folder, report): a fast-mode model of discs and squares, with its formats."""
    folder = tmp_path_factory.mktemp("fast") / "model"
    samples = [trainer.Sample(path, kind) for kind, paths in photos.items() for path in paths]
    trainer.train(trainer.TrainConfig(base_model="lite0", cache_dir=model_cache), samples, folder)
    return folder, with_formats(folder, photos)


@pytest.fixture(scope="module")
def fine_tuned_model(fast_model, photos, tmp_path_factory):
    """(folder, report): a fine-tuned network (its last stage and head changed from the
    fast model's), stored as accurate mode stores one, with its formats."""
    folder = tmp_path_factory.mktemp("fine-tuned") / "model"
    folder.mkdir()
    fast_dir, _ = fast_model
    description = json.loads((fast_dir / DESCRIPTION_FILE).read_text())
    classifier = networks.served_network(fast_dir, description)
    classifier.mirror = True
    description["mode"] = "accurate"
    description["metrics"]["fine_tuning"] = {"kept": "fine-tuned"}
    (folder / DESCRIPTION_FILE).write_text(json.dumps(description))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in classifier.features.top_parameters():
            parameter.add_(0.01 * torch.randn(parameter.shape, generator=generator))
        classifier.head.weight.mul_(1.5)
    finetune.FineTunedNetwork(classifier, "lite0").write(folder)
    return folder, with_formats(folder, photos)


def entry(report, file):
    return next(row for row in report["formats"] if row["file"] == file)


def onnx_head(model_dir):
    return {
        tensor.name: numpy_helper.to_array(tensor)
        for tensor in onnx.load(str(model_dir / MODEL_FILE)).graph.initializer
        if tensor.name in ("head_weight", "head_bias")
    }


def core_ml_head(spec):
    (layer,) = [
        layer for layer in spec.neuralNetworkClassifier.layers if layer.HasField("innerProduct")
    ]
    product = layer.innerProduct
    weight = np.array(product.weights.floatValue, np.float32)
    return weight.reshape(product.outputChannels, product.inputChannels), np.array(
        product.bias.floatValue, np.float32
    )


@pytest.mark.parametrize("name", sorted(BASE_MODELS))
def test_the_network_with_its_padding_fixed_answers_as_the_network_does(name):
    network = networks.imagenet_network(name)
    size = BASE_MODELS[name].preprocessing.size
    fixed = networks.with_fixed_padding(network, size)
    assert not any(type(layer).__name__ == "Conv2dSame" for layer in fixed.modules())
    pixels = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (fixed(pixels) - network(pixels)).abs().max() < 1e-5


def test_the_core_ml_model_takes_an_image_and_answers_the_categories_by_name(fast_model):
    folder, _ = fast_model
    spec = coremltools.utils.load_spec(str(folder / COREML_FILE))
    (image,) = spec.description.input
    assert image.name == "image"
    assert (image.type.imageType.width, image.type.imageType.height) == (224, 224)
    assert image.type.imageType.colorSpace == image.type.imageType.RGB
    assert {output.name for output in spec.description.output} == {"classLabel", "classLabelProbs"}
    assert spec.description.predictedProbabilitiesName == "classLabelProbs"
    assert list(spec.neuralNetworkClassifier.stringClassLabels.vector) == ["discs", "squares"]


def test_the_core_ml_image_input_scales_pixels_as_the_preprocessing_does(fast_model):
    folder, _ = fast_model
    spec = coremltools.utils.load_spec(str(folder / COREML_FILE))
    (preprocessing,) = spec.neuralNetworkClassifier.preprocessing
    scaler = preprocessing.scaler
    # EfficientNet-Lite: (pixel / 255 - 0.5) / 0.5 in every channel.
    assert scaler.channelScale == pytest.approx(2 / 255)
    assert (scaler.redBias, scaler.greenBias, scaler.blueBias) == (-1, -1, -1)


def test_the_core_ml_model_holds_the_trained_head(fast_model):
    folder, _ = fast_model
    weight, bias = core_ml_head(coremltools.utils.load_spec(str(folder / COREML_FILE)))
    trained = onnx_head(folder)
    np.testing.assert_array_equal(weight, trained["head_weight"])
    np.testing.assert_array_equal(bias, trained["head_bias"])


def test_a_std_per_channel_is_folded_into_the_first_convolution():
    preprocessing = Preprocessing(224, 256, "bicubic", (0.4, 0.5, 0.6), (0.2, 0.25, 0.5))
    scale, biases, gains = coreml.image_scaling(preprocessing)
    network = networks.with_fixed_padding(networks.imagenet_network("lite0"), 224)
    folded = coreml.fold_gains(network, gains)
    rgb = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 255
    # What Core ML's image input gives the model, and what the network was trained on.
    scaled = scale * rgb + torch.tensor(biases).view(1, 3, 1, 1)
    mean = torch.tensor(preprocessing.mean).view(1, 3, 1, 1)
    std = torch.tensor(preprocessing.std).view(1, 3, 1, 1)
    with torch.no_grad():
        difference = folded(scaled) - network((rgb / 255 - mean) / std)
    assert difference.abs().max() < 1e-4


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_a_fine_tuned_network_exports_its_own_weights_to_every_format(fine_tuned_model):
    folder, report = fine_tuned_model
    scripted = torch.jit.load(str(folder / TORCHSCRIPT_FILE)).state_dict()
    weight, bias = core_ml_head(coremltools.utils.load_spec(str(folder / COREML_FILE)))
    np.testing.assert_array_equal(weight, scripted["head.weight"].numpy())
    np.testing.assert_array_equal(bias, scripted["head.bias"].numpy())
    for file in (TORCHSCRIPT_FILE, COREML_FILE):
        assert entry(report, file)["agreement"] == 1.0
        assert entry(report, file)["max_score_difference"] < 1e-4


def test_a_linear_head_exports_a_torchscript_that_scores_as_model_onnx(fast_model):
    folder, report = fast_model
    assert (folder / TORCHSCRIPT_FILE).exists()
    assert entry(report, TORCHSCRIPT_FILE)["max_score_difference"] < 1e-4


def test_the_int8_model_that_keeps_its_answers_is_offered(fast_model):
    folder, report = fast_model
    int8 = entry(report, INT8_MODEL_FILE)
    assert int8["agreement"] >= formats.INT8_MIN_AGREEMENT
    assert int8["offered"] is True
    assert int8["ms_per_photo"] > 0
    assert (folder / INT8_MODEL_FILE).exists()
    assert report["photos"] == 6
    assert report["calibrated_apart"] is True


def test_an_int8_model_that_agrees_too_little_is_measured_and_left_out(
    fast_model, photos, tmp_path, monkeypatch
):
    monkeypatch.setattr(formats, "INT8_MIN_AGREEMENT", 1.01)  # nothing agrees that well
    folder = tmp_path / "model"
    shutil.copytree(fast_model[0], folder)
    (folder / INT8_MODEL_FILE).unlink()
    report = with_formats(folder, photos)
    assert entry(report, INT8_MODEL_FILE)["offered"] is False
    assert not (folder / INT8_MODEL_FILE).exists()
    with zipfile.ZipFile(export.package(folder, tmp_path / "m.zip", "Shapes", 0.5)) as archive:
        assert INT8_MODEL_FILE not in archive.namelist()
        card = archive.read("model_card.md").decode()
    assert f"`{INT8_MODEL_FILE}` (ONNX int8) is not included" in card


def test_the_model_card_lists_every_format_in_the_zip_with_its_agreement(fast_model, tmp_path):
    folder, report = fast_model
    with zipfile.ZipFile(export.package(folder, tmp_path / "m.zip", "Shapes", 0.5)) as archive:
        names = set(archive.namelist())
        card = archive.read("model_card.md").decode()
        assert json.loads(archive.read("formats.json")) == report
    assert {MODEL_FILE, INT8_MODEL_FILE, TORCHSCRIPT_FILE, COREML_FILE} <= names
    for row in report["formats"]:
        assert f"| `{row['file']}` | {row['format']} | {100 * row['agreement']:.1f}% |" in card
    assert "Core ML cannot run a model" in card


# The server: Watson's core_ml_model and a run that serves its int8 model.


@pytest.fixture
def ready(task, fast_model):
    """A ready run of the task, active, its model folder holding the fast model and its
    formats."""
    folder, report = fast_model
    run = task.runs.create(base_model="lite0", mode="fast", status="ready")
    run.model_folder = run.storage_folder
    for path in sorted(folder.iterdir()):
        with path.open("rb") as handle:
            default_storage.save(f"{run.model_folder}/{path.name}", File(handle))
    run.metrics = json.loads((folder / DESCRIPTION_FILE).read_text())["metrics"]
    run.formats = report
    run.save()
    task.watson_id = "shapes_1234567890"
    task.active_run = run
    task.save()
    return run


def test_watson_answers_the_core_ml_model_of_the_classifier(client, api_key, ready, fast_model):
    client.defaults["HTTP_AUTHORIZATION"] = basic(api_key)
    url = f"{V3}/classifiers/{ready.task.watson_id}"
    assert client.get(url, VERSION).json()["core_ml_enabled"] is True
    response = client.get(f"{url}/core_ml_model", VERSION)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert 'filename="shapes_1234567890.mlmodel"' in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == (fast_model[0] / COREML_FILE).read_bytes()


def test_watson_converts_the_core_ml_model_when_first_asked_for_it(
    client, api_key, ready, training_queue
):
    ready.formats = {}
    ready.save()
    client.defaults["HTTP_AUTHORIZATION"] = basic(api_key)
    url = f"{V3}/classifiers/{ready.task.watson_id}"
    assert client.get(url, VERSION).json()["core_ml_enabled"] is False
    response = client.get(f"{url}/core_ml_model", VERSION)
    assert (response.status_code, response["Retry-After"]) == (202, "5")


def served_model(api, run, int8):
    url = f"{V1}/tasks/{run.task.code}/runs/{run.code}/served-model"
    return api.put(url, {"int8": int8}, "application/json")


def test_a_run_chosen_to_serve_int8_answers_with_the_int8_model(
    api, ready, fast_model, training_queue
):
    chosen = served_model(api, ready, True)
    assert chosen.status_code == 200
    assert (chosen.json()["serves_int8"], chosen.json()["export_ready"]) == (True, False)
    shapes = [picture("discs", 500), picture("squares", 501)]
    files = [SimpleUploadedFile(f"{i}.png", encode(p, "PNG")) for i, p in enumerate(shapes)]
    answers = api.post(f"{V1}/tasks/{ready.task.code}/classify", {"files": files}).json()
    expected = predict.load(fast_model[0], model_file=INT8_MODEL_FILE).predict(shapes)
    float_model = predict.load(fast_model[0]).predict(shapes)
    for answer, int8, plain in zip(answers["images"], expected, float_model, strict=True):
        served = {score["category"]: score["score"] for score in answer["scores"]}
        assert served == pytest.approx(dict(int8.scores), abs=1e-6)
        assert served != pytest.approx(dict(plain.scores), abs=1e-6)


def test_int8_cannot_be_served_where_it_is_not_offered(api, ready, training_queue):
    ready.formats = {**ready.formats, "formats": ready.formats["formats"][:1]}
    ready.save()
    response = served_model(api, ready, True)
    assert response.status_code == 409
    assert "offers no int8 model" in response.json()["detail"]


def test_the_run_page_shows_the_formats_and_lets_a_person_serve_int8(
    owner_client, ready, training_queue
):
    page = owner_client.get(ready.get_absolute_url()).content.decode()
    assert 'id="formats"' in page
    for row in ready.formats["formats"]:
        assert f"<code>{row['file']}</code>" in page
    assert 'name="model" value="int8"' in page
    url = f"/tasks/{ready.task.code}/runs/{ready.code}/served-model/"
    response = owner_client.post(url, {"model": "int8"})
    assert response.status_code == 302
    ready.refresh_from_db()
    assert ready.serves_int8 is True
    assert ready.served_file == INT8_MODEL_FILE


def test_the_zip_of_a_run_serving_int8_runs_int8_in_its_predict_py(fast_model, tmp_path):
    package = export.package(
        fast_model[0], tmp_path / "m.zip", "Shapes", 0.5, served=INT8_MODEL_FILE
    )
    with zipfile.ZipFile(package) as archive:
        assert json.loads(archive.read("model.json"))["served"] == INT8_MODEL_FILE


def test_the_zip_says_how_far_a_large_jpeg_decodes_as_its_predict_py_does(fast_model, tmp_path):
    folder, _ = fast_model
    with zipfile.ZipFile(export.package(folder, tmp_path / "m.zip", "Shapes", 0.5)) as archive:
        preprocessing = json.loads(archive.read("preprocess.json"))
        card = archive.read("model_card.md").decode()
    assert preprocessing["decoded_shorter_side"] == portable.DECODED_SHORTER_SIDE
    assert "`decoded_shorter_side` pixels of its shorter side" in card


def test_every_file_of_the_zip_unpacks_readable_by_anyone(fast_model, tmp_path):
    folder, _ = fast_model
    (folder / MODEL_FILE).chmod(0o600)  # as a temporary file leaves it
    with zipfile.ZipFile(export.package(folder, tmp_path / "m.zip", "Shapes", 0.5)) as archive:
        modes = {member.filename: member.external_attr >> 16 for member in archive.infolist()}
    assert modes == dict.fromkeys(modes, 0o644)
