"""Pooled backbone features of images and of their mirror images."""

import numpy as np

from trainer.backbones import base_model
from trainer.portable import load_rgb, to_input
from trainer.runtime import cached_graph, session

BATCH_SIZE = 16


def embed(paths, base_name, cache_dir=None, on_progress=None):
    """Features of each image and of its mirror image: two float32 arrays (n, dim).

    They depend only on the image and the base model, so callers store and reuse them.
    """
    preprocessing = base_model(base_name).preprocessing
    features_session = session(cached_graph(base_name, "features", cache_dir))
    features, mirrored = [], []
    for start in range(0, len(paths), BATCH_SIZE):
        batch = np.stack(
            [to_input(load_rgb(path), preprocessing) for path in paths[start : start + BATCH_SIZE]]
        )
        both = np.concatenate([batch, batch[..., ::-1]])
        (output,) = features_session.run(None, {"pixels": np.ascontiguousarray(both)})
        features.append(output[: len(batch)])
        mirrored.append(output[len(batch) :])
        if on_progress:
            on_progress(min(start + BATCH_SIZE, len(paths)) / len(paths))
    if not features:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    return np.concatenate(features), np.concatenate(mirrored)
