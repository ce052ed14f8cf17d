"""Grow sparse labels (scribbles) into confident dense pseudo labels before training.

Each slice along ``axis`` (or the whole volume with ``axis=None``) that holds annotated voxels of at
least two classes is grown on its own; the annotated voxels are the seeds and keep their class. Two
methods give every unannotated voxel a probability per seeded class:

- ``intensity`` (default): a nearest-neighbour pixel classifier. Each channel is z-scored and smoothed
  with a Gaussian of ``smoothing`` voxels (scaled by the spacing; more smoothing tames noise but blends
  a 1-3 voxel structure into its surroundings); a voxel's probability of class c is the share of c
  among the ``neighbours`` seed voxels closest to it in those intensities. It suits tissues told apart
  by their intensity wherever they lie (grey and white matter, fat, air).
- ``random_walker``: skimage's random walker on the standardised image (``beta``: how strongly image
  edges stop the walk): the probability that a walk from the voxel first reaches c's seeds. It suits
  objects told apart by their boundaries; with short strokes on noisy images most probabilities stay
  near chance, so little is grown.

A voxel takes its most probable class where that probability is at least ``min_probability`` and stays
``ignore`` otherwise. Slices with seeds of a single class are not grown: nothing says where it ends.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from nnunetv2.exceptions import DatasetError
from nnunetv2.utilities.parameters import check_number

METHODS = ("intensity", "random_walker")
DEFAULT_METHOD = "intensity"
DEFAULTS: dict[str, float] = {"min_probability": 0.9, "smoothing": 0.5, "neighbours": 15, "beta": 130.0}
_RULES = {"min_probability": "[0.5, 1]", "smoothing": ">= 0", "neighbours": "integer >= 1", "beta": "> 0"}
_QUERY_CHUNK = 500_000  # voxels per nearest-neighbour query, to bound the index arrays' memory


def check_expansion_options(method: str, axis: int | None, **options: float) -> None:
    """Raise DatasetError (one line) for an unknown method or an option outside its range."""
    where = "scribble expansion"
    if method not in METHODS:
        raise DatasetError(f"{where}: unknown method '{method}' (use {', '.join(METHODS)})")
    check_number("axis", axis, "integer", where=where, error=DatasetError, optional=True)
    for name, value in options.items():
        if name not in _RULES:
            raise DatasetError(f"{where}: unknown option '{name}' (use {', '.join(_RULES)})")
        check_number(name, value, _RULES[name], where=where, error=DatasetError)


def _standardised(image: np.ndarray) -> np.ndarray:
    """Each channel z-scored, so channels of different units weigh alike."""
    image = image.astype(np.float64)
    axes = tuple(range(1, image.ndim))
    std = image.std(axis=axes, keepdims=True)
    return (image - image.mean(axis=axes, keepdims=True)) / np.where(std > 0, std, 1.0)


def _intensity_probabilities(
    image: np.ndarray, seeds: np.ndarray, num_classes: int, sigma: Sequence[float], neighbours: int
) -> np.ndarray:
    """Share of each class among the nearest seed voxels in smoothed intensity, (classes, *spatial)."""
    from scipy.spatial import cKDTree

    features = np.stack([ndimage.gaussian_filter(channel, sigma) for channel in image], -1)
    features = features.reshape(-1, image.shape[0])
    seeded = seeds.ravel() > 0
    seed_class = seeds.ravel()[seeded] - 1
    k = min(neighbours, int(seeded.sum()))
    tree = cKDTree(features[seeded])
    counts = np.zeros((features.shape[0], num_classes), dtype=np.float32)
    for start in range(0, features.shape[0], _QUERY_CHUNK):
        _, nearest = tree.query(features[start : start + _QUERY_CHUNK], k=k)
        nearest_class = seed_class[nearest.reshape(len(nearest), k)]
        for c in range(num_classes):
            counts[start : start + _QUERY_CHUNK, c] = (nearest_class == c).mean(1)
    return np.moveaxis(counts, 1, 0).reshape(num_classes, *seeds.shape)


def _random_walker_probabilities(
    image: np.ndarray, seeds: np.ndarray, spacing: Sequence[float], beta: float
) -> np.ndarray:
    """Random-walker probability of each seeded class, (classes, *spatial)."""
    from skimage.segmentation import random_walker

    # skimage wants singleton axes gone (a 2D slice stored as (1, y, x)) and channels last
    keep = [i for i, n in enumerate(seeds.shape) if n > 1]
    squeezed = tuple(slice(None) if i in keep else 0 for i in range(seeds.ndim))
    with warnings.catch_warnings():
        # it warns when probabilities leave [0, 1] by rounding; argmax and the threshold do not mind
        warnings.simplefilter("ignore", UserWarning)
        probabilities = random_walker(
            np.moveaxis(image[(slice(None),) + squeezed], 0, -1),
            seeds[squeezed],
            beta=beta,
            mode="cg_j" if seeds.size > 20000 else "bf",
            return_full_prob=True,
            channel_axis=-1,
            spacing=tuple(float(spacing[i]) for i in keep),
        )
    return probabilities.reshape(len(probabilities), *seeds.shape)


def _grow_block(
    image: np.ndarray, sparse: np.ndarray, ignore_label: int, spacing: Sequence[float], method: str, options: dict
) -> np.ndarray:
    """Return one block's labels grown where confident (unchanged if it has seeds of fewer than two classes)."""
    classes = np.unique(sparse[sparse != ignore_label])
    if len(classes) < 2:
        return sparse
    seeds = np.zeros(sparse.shape, dtype=np.int32)  # 0: unannotated; seed k marks classes[k - 1]
    for k, c in enumerate(classes, start=1):
        seeds[sparse == c] = k
    if method == "intensity":
        finest = min(spacing)
        sigma = [0.0 if n == 1 else options["smoothing"] * finest / s for n, s in zip(sparse.shape, spacing)]
        probabilities = _intensity_probabilities(image, seeds, len(classes), sigma, int(options["neighbours"]))
    else:
        probabilities = _random_walker_probabilities(image, seeds, spacing, options["beta"])
    best = probabilities.argmax(0)
    confident = np.take_along_axis(probabilities, best[None], 0)[0] >= options["min_probability"]
    return np.where((sparse == ignore_label) & confident, classes[best], sparse).astype(sparse.dtype)


def expand_scribbles(
    image: np.ndarray,
    sparse: np.ndarray,
    ignore_label: int,
    spacing: Sequence[float] | None = None,
    axis: int | None = 0,
    method: str = DEFAULT_METHOD,
    **options: float,
) -> np.ndarray:
    """Return ``sparse`` (a label map, ``ignore_label`` where unannotated) grown over confident voxels.

    ``image`` is (channels, *spatial) with the label map's spatial shape; ``spacing`` per spatial axis;
    ``options``: min_probability, smoothing, neighbours (intensity), beta (random_walker).
    """
    check_expansion_options(method, axis, **options)
    if image.shape[1:] != sparse.shape:
        raise DatasetError(f"scribble expansion: image shape {image.shape[1:]} differs from label shape {sparse.shape}")
    if axis is not None and not -sparse.ndim <= axis < sparse.ndim:
        raise DatasetError(f"scribble expansion: axis {axis} does not exist in a label map of shape {sparse.shape}")
    settings = {**DEFAULTS, **options}
    spacing = [1.0] * sparse.ndim if spacing is None else [float(s) for s in spacing]
    image = _standardised(image)
    if axis is None:
        return _grow_block(image, sparse, ignore_label, spacing, method, settings)
    expanded = sparse.copy()
    axis %= sparse.ndim
    for index in range(sparse.shape[axis]):
        block = tuple(slice(index, index + 1) if i == axis else slice(None) for i in range(sparse.ndim))
        expanded[block] = _grow_block(
            image[(slice(None),) + block], sparse[block], ignore_label, spacing, method, settings
        )
    return expanded
