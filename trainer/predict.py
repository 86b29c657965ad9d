"""Loading a trained model (or the built-in ImageNet classifier) and predicting."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from trainer.backbones import DEFAULT_BASE_MODEL, Preprocessing, base_model
from trainer.files import DESCRIPTION_FILE, MODEL_FILE
from trainer.portable import load_rgb, operating_threshold, ranked, session, to_input, to_rgb
from trainer.runtime import cached_graph, providers


@dataclass
class Prediction:
    # None when the negative category ("none of these") wins, or when the photo needs review
    label: str | None
    scores: list[tuple[str, float]]  # every category, best first
    # The top score is below the model's operating point: a person should look.
    needs_review: bool


class Predictor:
    def __init__(
        self,
        model_path,
        classes,
        preprocessing,
        negative=None,
        softmax=False,
        threads=None,
        threshold=0.0,
    ):
        self.session = session(model_path, threads, providers())
        self.classes = classes
        self.preprocessing = preprocessing
        self.negative = negative
        self.softmax = softmax
        self.threshold = threshold

    def predict(self, images, top=None, threshold=None):
        """Predictions for images given as paths, file objects or PIL images, at the
        operating point threshold (the model's own by default), one image at a time
        (portable.session says why)."""
        threshold = self.threshold if threshold is None else threshold
        predictions = []
        for image in images:
            pixels = to_input(as_rgb(image), self.preprocessing)
            ((row,),) = self.session.run(None, {"pixels": pixels[np.newaxis]})
            if self.softmax:
                row = np.exp(row - row.max())
                row /= row.sum()
            predictions.append(self.prediction(row, top, threshold))
        return predictions

    def prediction(self, row, top, threshold):
        label, needs_review, scores = ranked(row, self.classes, self.negative, threshold)
        return Prediction(label, scores[:top] if top else scores, needs_review)


def as_rgb(image):
    return to_rgb(image) if isinstance(image, Image.Image) else load_rgb(image)


def load(model_dir, threads=None, model_file=MODEL_FILE):
    """The model a training run wrote into model_dir (model_file: its int8 form, say);
    threads per run (all cores by default: a server running several at once does
    better with one each)."""
    model_dir = Path(model_dir)
    description = json.loads((model_dir / DESCRIPTION_FILE).read_text())
    return Predictor(
        model_dir / model_file,
        description["classes"],
        Preprocessing.from_dict(description["preprocessing"]),
        negative=description["negative"],
        threads=threads,
        threshold=operating_threshold(description),
    )


def general(base_name=DEFAULT_BASE_MODEL, cache_dir=None, threads=None):
    """The built-in classifier: the base model's own ImageNet head, no training needed."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    classes = [info.index_to_description(i) for i in range(info.num_classes())]
    return Predictor(
        cached_graph(base_name, "imagenet", cache_dir),
        classes,
        base_model(base_name).preprocessing,
        softmax=True,
        threads=threads,
    )
