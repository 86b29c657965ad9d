"""trainer/ on its own: real ImageNet weights, tiny synthetic tasks, no Django."""

import io
import json
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError
from skimage import data as skimage_data

import trainer
from tests import images
from tests.images import picture
from trainer import evaluation, heads, portable, predict, runtime
from trainer.backbones import BASE_MODELS, FINAL_FEATURES, Preprocessing
from trainer.files import MODEL_FILE, TORCHSCRIPT_FILE


@pytest.fixture(scope="session")
def pictures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pictures")
    paths = {}
    for kind in ("discs", "squares", "stripes"):
        paths[kind] = []
        for variant in range(8):
            path = folder / f"{kind}-{variant}.png"
            picture(kind, variant).save(path)
            paths[kind].append(str(path))
    return paths


def samples(pictures, kinds=("discs", "squares")):
    return [trainer.Sample(path, kind) for kind in kinds for path in pictures[kind]]


def config(model_cache, **overrides):
    return trainer.TrainConfig(base_model="lite0", cache_dir=model_cache, **overrides)


@pytest.mark.parametrize("name", sorted(BASE_MODELS))
def test_the_shipped_imagenet_head_knows_a_tabby_cat(name, model_cache):
    general = predict.general(name, model_cache)
    cats = {general.classes[i] for i in range(281, 286)}  # tabby ... Egyptian cat
    (prediction,) = general.predict([Image.fromarray(skimage_data.chelsea())], top=3)
    assert prediction.label in cats, prediction.scores


def test_a_fast_run_learns_two_categories(pictures, model_cache, tmp_path):
    result = trainer.train(config(model_cache), samples(pictures), tmp_path)
    assert result.classes == ["discs", "squares"]
    assert result.metrics["accuracy"] == 1.0
    assert result.metrics["method"] == "5-fold cross-validation"
    assert result.misclassified == []
    new = [picture("discs", 100), picture("squares", 101)]
    labels = [p.label for p in predict.load(tmp_path).predict(new)]
    assert labels == ["discs", "squares"]


def test_choosing_the_head_reports_as_it_goes_with_a_rising_percent(
    pictures, model_cache, tmp_path
):
    reports = []
    trainer.train(
        config(model_cache),
        samples(pictures),
        tmp_path,
        on_progress=lambda stage, percent, eta: reports.append((stage, percent, eta)),
    )
    evaluating = [(percent, eta) for stage, percent, eta in reports if stage == "evaluating"]
    # 5 parts of cross-validation, each choosing the view and C by 5 folds
    assert len(evaluating) > 5 * len(heads.VIEWS) * len(heads.C_GRID)
    percents = [percent for percent, _ in evaluating]
    assert percents == sorted(percents) and percents[0] >= 80 and percents[-1] <= 90
    assert all(eta is not None and eta >= 0 for _, eta in evaluating[1:])


def test_the_model_describes_itself(pictures, model_cache, tmp_path):
    trainer.train(config(model_cache, seed=7), samples(pictures), tmp_path)
    description = json.loads((tmp_path / "model.json").read_text())
    assert description["base_model"] == "lite0"
    assert description["classes"] == ["discs", "squares"]
    assert description["preprocessing"]["size"] == 224
    assert description["seed"] == 7
    assert description["image_count"] == 16
    assert set(description["metrics"]) >= {"accuracy", "confusion", "categories"}


def test_the_model_stores_the_suggested_operating_point(pictures, model_cache, tmp_path):
    result = trainer.train(config(model_cache), samples(pictures), tmp_path)
    description = json.loads((tmp_path / "model.json").read_text())
    suggested = result.metrics["operating_points"]["suggested"]
    assert description["operating_point"] == {"threshold": suggested}
    assert predict.load(tmp_path).threshold == suggested


def test_a_photo_whose_top_score_is_below_the_operating_point_needs_review(
    pictures, model_cache, tmp_path
):
    trainer.train(config(model_cache), samples(pictures), tmp_path)
    model = predict.load(tmp_path)
    stripes = [picture("stripes", 55)]  # neither category: no sure score
    (answered,) = model.predict(stripes, threshold=0.0)
    top = answered.scores[0][1]
    (unsure,) = model.predict(stripes, threshold=np.nextafter(top, 1))
    assert (answered.label, answered.needs_review) == (answered.scores[0][0], False)
    assert (unsure.label, unsure.needs_review) == (None, True)
    assert unsure.scores == answered.scores


def test_scores_are_probabilities_sorted_best_first(pictures, model_cache, tmp_path):
    trainer.train(config(model_cache), samples(pictures), tmp_path)
    (prediction,) = predict.load(tmp_path).predict([picture("squares", 55)])
    scores = [score for _, score in prediction.scores]
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=1e-5)


def test_runs_are_reproducible_for_a_seed(pictures, model_cache, tmp_path):
    first = trainer.train(config(model_cache, seed=3), samples(pictures), tmp_path / "a")
    second = trainer.train(config(model_cache, seed=3), samples(pictures), tmp_path / "b")
    assert first.metrics == second.metrics
    probe = [picture("discs", 77)]
    a = predict.load(tmp_path / "a").predict(probe)[0].scores
    b = predict.load(tmp_path / "b").predict(probe)[0].scores
    assert a == b


def test_stored_embeddings_are_reused_and_only_new_images_embedded(pictures, model_cache, tmp_path):
    first = trainer.train(config(model_cache), samples(pictures), tmp_path / "a")
    known = samples(pictures)
    for i, sample in enumerate(known):
        sample.features, sample.mirrored, sample.late_maps = first.new_embeddings[i]
    Image.open(pictures["discs"][0]).transpose(Image.Transpose.ROTATE_90).save(
        tmp_path / "new-disc.png"
    )
    extra = trainer.Sample(str(tmp_path / "new-disc.png"), "discs")
    second = trainer.train(config(model_cache), [*known, extra], tmp_path / "b")
    assert list(second.new_embeddings) == [len(known)]


def test_a_negative_category_answers_none_of_these(pictures, model_cache, tmp_path):
    negative = [trainer.Sample(path, "__negative__") for path in pictures["stripes"]]
    result = trainer.train(
        config(model_cache, negative_label="__negative__"),
        samples(pictures) + negative,
        tmp_path,
    )
    assert result.classes[-1] == "__negative__"
    model = predict.load(tmp_path)
    stripes, disc = model.predict([picture("stripes", 90), picture("discs", 91)])
    assert stripes.label is None
    assert disc.label == "discs"
    assert [name for name, _ in disc.scores] == ["discs", "squares"]


def test_training_needs_two_categories(pictures, model_cache, tmp_path):
    with pytest.raises(ValueError, match="at least two categories"):
        trainer.train(config(model_cache), samples(pictures, ("discs",)), tmp_path)


def imported_by_trainer(module):
    code = f"import sys, trainer, trainer.predict; print({module!r} in sys.modules)"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return output.stdout.strip() == "True"


def test_the_trainer_never_imports_django():
    assert not imported_by_trainer("django")


def test_training_and_prediction_run_without_importing_torch():
    # torch and timm take seconds to import; they are needed only to export a graph once.
    assert not imported_by_trainer("torch")


@pytest.mark.parametrize("module", ["numpy", "sklearn", "onnxruntime", "torch"])
def test_the_choices_import_without_the_machine_learning_libraries(module):
    # Pages, forms and schemas read trainer.choices and trainer.files in the web process.
    code = f"import sys, trainer, trainer.choices, trainer.files; print({module!r} in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert output.stdout.strip() == "False", output.stderr


@pytest.fixture(scope="module")
def twelve_of_each(tmp_path_factory):
    """24 discs and squares: enough for accurate mode's hold-out."""
    folder = tmp_path_factory.mktemp("twelve")
    chosen = []
    for kind in ("discs", "squares"):
        for variant in range(12):
            path = folder / f"{kind}-{variant}.png"
            picture(kind, variant).save(path)
            chosen.append(str(path))
    return {"discs": chosen[:12], "squares": chosen[12:]}


def test_a_fast_run_measured_on_a_hold_out_costs_its_operating_points_on_every_image(
    twelve_of_each, model_cache, tmp_path
):
    result = trainer.train(config(model_cache), samples(twelve_of_each), tmp_path)
    assert result.metrics["evaluated"] == 5
    curve = result.metrics["operating_points"]
    assert curve["method"] == "5-fold out-of-fold scores of all 24 images"
    assert curve["evaluated"] == 24


def test_accurate_mode_keeps_the_fast_model_when_fine_tuning_does_not_score_better(
    twelve_of_each, model_cache, tmp_path
):
    result = trainer.train(
        config(model_cache, mode="accurate", time_budget=30), samples(twelve_of_each), tmp_path
    )
    tuning = result.metrics["fine_tuning"]
    assert tuning["fast_holdout_accuracy"] == 1.0  # nothing left to beat
    assert tuning["selection_epochs"] > 0
    assert (tuning["kept"], tuning["final_epochs"]) == ("fast", 0)
    assert result.metrics["method"] == "hold-out of 20% of the images"
    assert not (tmp_path / TORCHSCRIPT_FILE).exists()  # a linear head: no network of its own
    labels = [p.label for p in predict.load(tmp_path).predict([picture("discs", 300)])]
    assert labels == ["discs"]


def test_accurate_mode_keeps_a_fine_tuned_network_that_beats_the_fast_model_on_the_hold_out(
    twelve_of_each, model_cache, tmp_path
):
    from trainer import finetune
    from trainer.training import LinearHead, Progress, embedded

    settings = config(model_cache, mode="accurate")
    data = embedded(samples(twelve_of_each), settings, Progress(None))
    train, test = np.arange(0, 24, 2), np.arange(1, 24, 2)
    blank = LinearHead("lite0", model_cache, np.zeros((2, data.features.shape[1])), np.zeros(2))
    tuning = finetune.fine_tune(
        settings,
        data,
        train,
        test,
        blank,
        blank.probabilities(data.features[test]),  # a coin that always says discs
        time.monotonic() + 60,
        report=lambda done, left: None,
    )
    assert tuning.report["fast_holdout_accuracy"] == 0.5
    assert tuning.report["tuned_holdout_accuracy"] == 1.0
    assert tuning.report["kept"] == "fine-tuned"
    assert tuning.report["final_epochs"] == tuning.report["selection_epochs"] == finetune.EPOCHS
    tuning.network.write(tmp_path)
    exported = predict.Predictor(
        tmp_path / MODEL_FILE, ["discs", "squares"], BASE_MODELS["lite0"].preprocessing
    )
    answers = exported.predict([picture("discs", 300), picture("squares", 300)])
    assert [answer.label for answer in answers] == ["discs", "squares"]


def test_accurate_mode_without_the_time_to_fine_tune_keeps_the_fast_model_and_says_so(
    twelve_of_each, model_cache, tmp_path
):
    result = trainer.train(
        config(model_cache, mode="accurate", time_budget=1), samples(twelve_of_each), tmp_path
    )
    tuning = result.metrics["fine_tuning"]
    assert (tuning["kept"], tuning["note"]) == ("fast", "too little time to fine-tune")
    assert result.metrics["accuracy"] == tuning["fast_holdout_accuracy"]


def test_accurate_mode_counts_its_budget_from_when_the_job_began(
    twelve_of_each, model_cache, tmp_path
):
    spent = trainer.TrainConfig(
        base_model="lite0",
        cache_dir=model_cache,
        mode="accurate",
        time_budget=60,
        budget_started=time.monotonic() - 60,  # the job began a budget ago
    )
    result = trainer.train(spent, samples(twelve_of_each), tmp_path)
    tuning = result.metrics["fine_tuning"]
    assert (tuning["kept"], tuning["note"]) == ("fast", "too little time to fine-tune")


def test_an_accurate_run_records_its_head_choice_for_the_next_run_to_carry(
    twelve_of_each, model_cache, tmp_path
):
    result = trainer.train(
        config(model_cache, mode="accurate", time_budget=1, carried_choice=(0.3, 1.5, "all")),
        samples(twelve_of_each),
        tmp_path,
    )
    chosen = [result.metrics[key] for key in ("regularisation_c", "temperature", "head_features")]
    assert chosen == [0.3, 1.5, "all"]
    assert result.metrics["regularisation_carried"]


def test_every_mode_has_a_fitter():
    from trainer.training import FITTERS

    assert FITTERS.keys() == trainer.MODES.keys()


def test_accurate_mode_needs_a_hold_out(pictures, model_cache, tmp_path):
    with pytest.raises(ValueError, match="at least 10 images in each category"):
        trainer.train(config(model_cache, mode="accurate"), samples(pictures), tmp_path)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_a_fine_tuned_network_exports_to_onnx_and_torchscript_that_answer_as_torch_does(
    tmp_path,
):
    import torch

    from trainer import finetune
    from trainer.networks import Classifier, Features, imagenet_network

    rng = np.random.default_rng(0)
    network = imagenet_network("lite0")
    with torch.inference_mode():
        features, _ = Features(network)(torch.zeros(1, 3, 224, 224))
    dims = features.shape[1]
    weight, bias = rng.normal(size=(2, dims)), rng.normal(size=2)
    classifier = Classifier(network, weight, bias).eval()
    finetune.FineTunedNetwork(classifier, "lite0").write(tmp_path)
    pixels = rng.normal(size=(3, 3, 224, 224)).astype(np.float32)
    (onnx_scores,) = runtime.session(tmp_path / MODEL_FILE).run(None, {"pixels": pixels})
    with torch.inference_mode():
        torch_scores = classifier(torch.from_numpy(pixels)).numpy()
        scripted = torch.jit.load(tmp_path / TORCHSCRIPT_FILE)
        scripted_scores = scripted(torch.from_numpy(pixels)).numpy()
    assert np.abs(onnx_scores - torch_scores).max() < 1e-4
    assert np.abs(scripted_scores - torch_scores).max() < 1e-5


def test_the_network_input_is_the_centre_crop_normalised_channel_by_channel():
    # Columns 0-9 are black and 10-19 white; the centre crop of 4 keeps 8-11.
    image = Image.new("RGB", (20, 10), (255, 255, 255))
    image.paste((0, 0, 0), (0, 0, 10, 10))
    preprocessing = Preprocessing(
        size=4, resize_to=10, interpolation="bilinear", mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 2.0)
    )
    pixels = portable.to_input(image, preprocessing)
    assert pixels.dtype == np.float32 and pixels.shape == (3, 4, 4)
    assert pixels.flags.c_contiguous  # onnxruntime takes it without a copy
    np.testing.assert_allclose(pixels[:, :, 0], [[-1.0] * 4, [-1.0] * 4, [0.0] * 4])
    np.testing.assert_allclose(pixels[:, :, 3], [[1.0] * 4, [3.0] * 4, [0.5] * 4])


def test_images_are_read_only_in_the_photo_formats(tmp_path):
    path = tmp_path / "picture.pcx"
    Image.new("RGB", (8, 8), "red").save(path, "PCX")
    with pytest.raises(UnidentifiedImageError):
        portable.load_rgb(path)


def large_photo(format, **options):
    return io.BytesIO(images.encode(images.photo(0, size=(2600, 1900)), format, **options))


@pytest.mark.parametrize(
    ("format", "decoded"),
    # A half keeps 950 pixels of the shorter side; a quarter would keep 475, too few.
    [("JPEG", (1300, 950)), ("PNG", (2600, 1900))],  # only a JPEG decodes at a fraction
)
def test_a_large_jpeg_decodes_at_the_smallest_fraction_that_keeps_what_the_models_need(
    format, decoded
):
    assert portable.load_rgb(large_photo(format)).size == decoded


def test_a_large_jpeg_decoded_at_a_fraction_stands_upright_by_its_exif():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to show
    assert portable.load_rgb(large_photo("JPEG", exif=exif.tobytes())).size == (950, 1300)


def test_a_jpeg_decoded_at_a_fraction_gives_the_network_nearly_the_whole_photos_input():
    whole = portable.to_rgb(Image.open(large_photo("JPEG", quality=90)))
    preprocessing = BASE_MODELS["lite2"].preprocessing
    drafted = portable.to_input(portable.load_rgb(large_photo("JPEG", quality=90)), preprocessing)
    difference = np.abs(drafted - portable.to_input(whole, preprocessing))
    assert difference.mean() < 0.005  # in standard deviations: a grey level is 0.016
    assert difference.max() < 0.1


def test_every_base_model_resizes_photos_decoded_with_at_least_twice_its_pixels():
    assert all(
        2 * base.preprocessing.resize_to <= portable.DECODED_SHORTER_SIDE
        for base in BASE_MODELS.values()
    )


def test_a_carried_head_choice_is_used_without_choosing_again(pictures, model_cache, tmp_path):
    stages = []
    result = trainer.train(
        config(model_cache, carried_choice=(0.3, 1.5, "final")),
        samples(pictures),
        tmp_path,
        on_progress=lambda stage, percent, eta: stages.append(stage),
    )
    chosen = [result.metrics[key] for key in ("regularisation_c", "temperature", "head_features")]
    assert chosen == [0.3, 1.5, "final"]
    assert result.metrics["regularisation_carried"] is True
    assert stages.count("evaluating") == 1  # no head was chosen, so no fits to report


@pytest.mark.parametrize("view", heads.VIEWS)
def test_the_exported_head_scores_as_the_fitted_head_of_either_view(view):
    generator = np.random.default_rng(0)
    parts = [generator.normal(size=(40, dims)) for dims in (16, 24, 32, FINAL_FEATURES)]
    features = np.concatenate([heads.normalise(part) for part in parts], axis=1)
    labels = np.arange(40) % 3
    model = heads.fit(features, features, labels, 1.0, 0, view)
    weight, bias = heads.graph_weights(model, view, features.shape[1])
    # what the ONNX graph computes: the whole vector normalised, then the linear head
    exported = heads.normalise(features) @ weight.T + bias
    assert np.allclose(exported, heads.logits(model, features, view), atol=1e-6)


def sides_of_groups(parts, groups):
    """For each group of more than one image, the sets of sides its images fell on."""
    sides = []
    for train, test in parts:
        side = {int(i): "train" for i in train} | {int(i): "test" for i in test}
        for group in set(groups.tolist()):
            members = np.flatnonzero(groups == group)
            if len(members) > 1:
                sides.append({side[int(i)] for i in members})
    return sides


def grouped(count, size):
    """count images numbered in groups of size, after that many images of no group."""
    return np.array([i // size if i < count else -1 - i for i in range(2 * count)])


def test_a_hold_out_keeps_each_group_of_near_copies_on_one_side():
    labels = np.array([0, 1] * 30)
    groups = grouped(30, 3)
    method, parts = evaluation.splits(labels, seed=0, groups=groups)
    assert method.startswith("hold-out") and len(parts) == 1
    assert all(len(sides) == 1 for sides in sides_of_groups(parts, groups))
    assert 0.15 <= len(parts[0][1]) / len(labels) <= 0.25


def test_cross_validation_keeps_each_group_of_near_copies_in_one_fold():
    labels = np.array([0, 1] * 8)
    groups = grouped(8, 2)
    method, parts = evaluation.splits(labels, seed=0, groups=groups)
    assert method.endswith("cross-validation")
    assert all(len(sides) == 1 for sides in sides_of_groups(parts, groups))


def test_photos_of_no_group_split_as_before():
    labels = np.array([0, 1] * 30)
    alone = np.arange(-1, -61, -1)
    _, before = evaluation.splits(labels, seed=0)
    _, now = evaluation.splits(labels, seed=0, groups=alone)
    assert [test.tolist() for _, test in now] == [test.tolist() for _, test in before]


def test_a_run_records_how_many_groups_it_kept_together(pictures, model_cache, tmp_path):
    training = samples(pictures)
    for sample in training[:2] + training[-2:]:
        sample.group = 1 if sample.label == "discs" else 2
    result = trainer.train(config(model_cache), training, tmp_path)
    assert result.metrics["groups_kept_together"] == 2
