"""Pooled backbone features and late maps of images and of their mirror images."""

from typing import NamedTuple

import numpy as np

from trainer.backbones import base_model
from trainer.portable import load_rgb, to_input
from trainer.runtime import cached_graph, session

BATCH_SIZE = 16


class Embeddings(NamedTuple):
    """features and mirrored: float32 (n, dim); late_maps: float16 (n, 2, channels,
    height, width), the input of the fine-tuned stage for the image and its mirror
    image (float16 halves what is stored and loses nothing measurable)."""

    features: np.ndarray
    mirrored: np.ndarray
    late_maps: np.ndarray


def embed(paths, base_name, cache_dir=None, on_progress=None):
    """The Embeddings of the images at paths. They depend only on the image and the base
    model, so callers store and reuse them."""
    preprocessing = base_model(base_name).preprocessing
    features_session = session(cached_graph(base_name, "features", cache_dir))
    features, mirrored, late_maps = [], [], []
    for start in range(0, len(paths), BATCH_SIZE):
        batch = np.stack(
            [to_input(load_rgb(path), preprocessing) for path in paths[start : start + BATCH_SIZE]]
        )
        both = np.concatenate([batch, batch[..., ::-1]])
        pooled, maps = features_session.run(None, {"pixels": np.ascontiguousarray(both)})
        features.append(pooled[: len(batch)])
        mirrored.append(pooled[len(batch) :])
        views = np.stack([maps[: len(batch)], maps[len(batch) :]], axis=1)
        late_maps.append(views.astype(np.float16))
        if on_progress:
            on_progress(min(start + BATCH_SIZE, len(paths)) / len(paths))
    if not features:
        empty = np.zeros((0, 0), np.float32)
        return Embeddings(empty, empty, np.zeros((0, 2, 0, 0, 0), np.float16))
    return Embeddings(np.concatenate(features), np.concatenate(mirrored), np.concatenate(late_maps))
