"""Telling a near-copy of a photo (resized, re-encoded, slightly cropped, mirrored) from
another photo, with numpy alone.

Each stored photo keeps a fingerprint: its upright picture as 32x32 grey levels. Two
steps compare them, measured by bench/duplicates.py on hymenoptera and trashnet:

1. A 64-bit DCT hash (pHash) of the fingerprint, compared by XOR and popcount with the
   hashes of all the task's photos, finds the candidates: at most CANDIDATE_DISTANCE
   bits apart (or from the mirror image's hash). Alone it cannot decide: a 5 % crop
   moves a hash as far as many a different photo of a small object on a plain
   background sits from another (trashnet: a quarter of its photos would pair up).
2. The likeness of two fingerprints decides: the best correlation of their edges
   (grey-level differences) when one is laid over the other whole, or over a part of
   the other cut at up to 10 % smaller, shifted anywhere inside, or mirrored. A copy
   scores near 1; photos of different objects alike in outline stay below LIKENESS.
"""

from functools import cache

import numpy as np

FINGERPRINT_SIZE = 32
# Below this spread of grey levels a picture is too plain to tell copies by (a solid
# colour): it gets no fingerprint and is never called a copy.
PLAIN_BELOW = 3.0
CANDIDATE_DISTANCE = 16
LIKENESS = 0.93
# The size the fingerprints, or parts of them, are resampled to before they are compared.
VIEW_SIZE = 24
HASH_FREQUENCIES = 8
# How far each view sample reaches, in view samples: wider tolerates the shift of a crop.
BLUR = 1.5


def fingerprint(picture):
    """The fingerprint of a decoded, upright PIL picture (bytes), or None for a picture
    too plain to compare."""
    from PIL import Image

    grey = picture.convert("L").resize((FINGERPRINT_SIZE,) * 2, Image.Resampling.BOX)
    levels = np.asarray(grey, dtype=np.uint8)
    return levels.tobytes() if levels.std() >= PLAIN_BELOW else None


def levels(fingerprint):
    shape = (FINGERPRINT_SIZE, FINGERPRINT_SIZE)
    return np.frombuffer(fingerprint, dtype=np.uint8).reshape(shape).astype(np.float32)


@cache
def dct_matrix(size=FINGERPRINT_SIZE):
    k = np.arange(size)
    matrix = np.sqrt(2 / size) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * size))
    matrix[0] /= np.sqrt(2)
    return matrix


def perceptual_hash(fingerprint, mirrored=False):
    """The 64-bit pHash of a fingerprint (of its mirror image if mirrored), as the
    signed integer a BigIntegerField holds: the lowest DCT frequencies, each one bit,
    set when above their median."""
    grey = levels(fingerprint)
    if mirrored:
        grey = grey[:, ::-1]
    matrix = dct_matrix()
    low = (matrix @ grey @ matrix.T)[:HASH_FREQUENCIES, :HASH_FREQUENCIES].ravel()
    bits = np.packbits(low > np.median(low))
    return int(bits.view(">i8")[0])


def hash_distances(hashes, of):
    """Bits differing between each of hashes (an int64 array) and the hash of."""
    return np.bitwise_count(hashes ^ np.int64(of))


@cache
def boxes():
    """(left, top, side) of the parts compared, as fractions of the picture: the whole,
    then squares 2.5 to 10 % smaller at 9 places inside."""
    parts = [(0.0, 0.0, 1.0)]
    for side in (0.975, 0.95, 0.925, 0.9):
        for left in np.linspace(0, 1 - side, 3):
            parts += [(left, top, side) for top in np.linspace(0, 1 - side, 3)]
    return parts


@cache
def axis_matrix(start, side):
    """Resampling of FINGERPRINT_SIZE samples, from start over side (fractions), to
    VIEW_SIZE samples, each the mean of its neighbours weighted by a triangle of the
    width of one view sample (as Pillow's bilinear resize): point samples would alias
    and lose the likeness of a copy shifted by a fraction of a sample."""
    step = side * FINGERPRINT_SIZE / VIEW_SIZE
    centres = (start + (np.arange(VIEW_SIZE) + 0.5) / VIEW_SIZE * side) * FINGERPRINT_SIZE
    reach = max(1.0, step) * BLUR
    samples = np.arange(FINGERPRINT_SIZE) + 0.5
    weights = np.maximum(0, 1 - np.abs(samples - centres[:, None]) / reach)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


@cache
def box_matrices():
    """(rows, columns): for each box, the matrices that resample it, stacked."""
    rows = np.stack([axis_matrix(top, side) for _, top, side in boxes()])
    columns = np.stack([axis_matrix(left, side) for left, _, side in boxes()])
    return rows, columns


def edges(views):
    """Unit vectors of the grey-level differences of views (..., VIEW_SIZE, VIEW_SIZE),
    centred: what the correlation compares."""
    across = np.diff(views, axis=-1)
    down = np.diff(views, axis=-2)
    flat = np.concatenate(
        [across.reshape(*views.shape[:-2], -1), down.reshape(*views.shape[:-2], -1)], axis=-1
    )
    flat = flat - flat.mean(axis=-1, keepdims=True)
    return flat / np.maximum(np.linalg.norm(flat, axis=-1, keepdims=True), 1e-6)


def box_views(greys):
    """Every box of each of greys (n, size, size), resampled: (n, boxes, view, view)."""
    rows, columns = box_matrices()
    return rows @ greys[:, None] @ columns.transpose(0, 2, 1)


def likeness(fingerprint, others):
    """How alike fingerprint is to each of others (fingerprints), each from -1 to 1."""
    if not others:
        return np.zeros(0, np.float32)
    grey = levels(fingerprint)
    own = edges(box_views(np.stack([grey, grey[:, ::-1]])))  # as sent and mirrored
    own_parts = own.reshape(-1, own.shape[-1])
    own_whole = own[:, 0]
    theirs = box_views(np.stack([levels(other) for other in others]))
    their_parts = edges(theirs)  # (n, boxes, features)
    their_whole = their_parts[:, 0]
    # A part of this photo over another whole, or a part of another over this one whole.
    inside_this = (their_whole @ own_parts.T).max(axis=1)
    inside_theirs = np.einsum("nbf,mf->nbm", their_parts, own_whole).max(axis=(1, 2))
    return np.maximum(inside_this, inside_theirs)


# At most this many of the nearest hashes are compared closely: the likeness of one
# candidate costs about a millisecond.
MOST_CANDIDATES = 16


def candidates(fingerprint, hashes):
    """Indices into hashes (int64 array) of the photos fingerprint may copy, nearest first."""
    distance = np.minimum(
        hash_distances(hashes, perceptual_hash(fingerprint)),
        hash_distances(hashes, perceptual_hash(fingerprint, mirrored=True)),
    )
    nearest = np.argsort(distance, kind="stable")[:MOST_CANDIDATES]
    return nearest[distance[nearest] <= CANDIDATE_DISTANCE]


def likest_copy(fingerprint, others):
    """The index of the one of others (fingerprints) that fingerprint is a near-copy of,
    the likest, or None."""
    scores = likeness(fingerprint, others)
    if not len(scores) or scores.max() < LIKENESS:
        return None
    return int(scores.argmax())
