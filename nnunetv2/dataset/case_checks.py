"""Cheap checks of one case's arrays, run wherever a case is read anyway (fingerprint, preprocessing, prediction).

Each returns one line describing the first problem, or None. They cost one pass over the voxels,
so fingerprinting and preprocessing run them always; ``--verify_dataset_integrity`` adds the
checks that need the whole dataset (see ``dataset.integrity``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.imageio.base_reader_writer import SPACING_OF_MISSING_AXIS, geometry_difference

# geometry is stored as float in the headers; differences below these are rounding
GEOMETRY_RTOL, GEOMETRY_ATOL = 1e-4, 1e-4


def nonfinite_problem(images: np.ndarray) -> str | None:
    """Describe the first channel of ``(c, ...)`` images holding NaN or inf, or return None."""
    if np.isfinite(images).all():
        return None
    bad = ~np.isfinite(images.reshape(len(images), -1))
    channel = int(np.flatnonzero(bad.any(1))[0])
    values = images[channel][~np.isfinite(images[channel])]
    kinds = " and ".join(
        k for k, present in (("NaN", np.isnan(values).any()), ("inf", np.isinf(values).any())) if present
    )
    return f"image channel {channel} contains {kinds} values ({int(bad[channel].sum())} voxel(s))"


def present_label_values(seg: np.ndarray) -> np.ndarray:
    """Return the sorted distinct values of a label map (linear time for non-negative integers)."""
    if np.issubdtype(seg.dtype, np.integer) and seg.size and seg.min() >= 0:
        return np.flatnonzero(np.bincount(seg.ravel()))
    return np.unique(seg)


def _shown(values: np.ndarray) -> list:
    return [int(v) if float(v).is_integer() else float(v) for v in values[:10]]


def label_value_problem(
    seg: np.ndarray, declared_values: Sequence[int], values: np.ndarray | None = None
) -> str | None:
    """Describe label values that are not whole numbers or not declared in dataset.json, or return None."""
    values = present_label_values(seg) if values is None else values
    fractional = values[values != np.round(values)] if not np.issubdtype(values.dtype, np.integer) else values[:0]
    if fractional.size:
        return f"contains label values that are not whole numbers: {_shown(fractional)}"
    undeclared = np.setdiff1d(values, declared_values)
    if undeclared.size:
        declared = ", ".join(str(v) for v in sorted(declared_values))
        return f"contains label values not declared in dataset.json: {_shown(undeclared)} (declared: {declared})"
    return None


def geometry_problem(image_properties: Mapping[str, Any], label_properties: Mapping[str, Any]) -> str | None:
    """Describe the first geometry entry (spacing, origin, direction, affine...) where label and images differ."""
    difference = geometry_difference(dict(label_properties), dict(image_properties), GEOMETRY_RTOL, GEOMETRY_ATOL)
    return f"label {difference} of the images" if difference else None


def is_2d(spacing: Sequence[float]) -> bool:
    """True when a reader marked the first axis as missing (a 2D image read as ``(c, 1, y, x)``)."""
    return float(spacing[0]) == SPACING_OF_MISSING_AXIS


def training_case_problem(
    images: np.ndarray,
    image_properties: Mapping[str, Any],
    seg: np.ndarray,
    label_properties: Mapping[str, Any],
    label_file: str | Path,
    num_channels: int,
    declared_values: Sequence[int],
) -> str | None:
    """Describe the first problem of a training case's arrays (channels, shape, geometry, intensities, labels)."""
    name = Path(label_file).name
    if images.shape[0] != num_channels:
        return f"images have {images.shape[0]} channel(s) but channel_names lists {num_channels}"
    if seg.shape[1:] != images.shape[1:]:
        return f"label shape {list(seg.shape[1:])} differs from image shape {list(images.shape[1:])} ({name})"
    difference = geometry_problem(image_properties, label_properties)
    if difference:
        return f"{difference} ({name})"
    problem = nonfinite_problem(images)
    if problem:
        return problem
    problem = label_value_problem(seg, declared_values)
    return f"{name} {problem}" if problem else None


def dimensionality_problem(spacings: Mapping[str, Sequence[float]]) -> str | None:
    """Describe the first case whose dimensionality (2D or 3D image) differs from most cases', or return None."""
    flat = {case: is_2d(spacing) for case, spacing in spacings.items()}
    num_2d = sum(flat.values())
    if num_2d in (0, len(flat)):
        return None
    dataset_is_2d = num_2d * 2 > len(flat)
    odd = [case for case, two_d in flat.items() if two_d != dataset_is_2d]
    kind, other = ("3D", "2D") if dataset_is_2d else ("2D", "3D")
    more = f" (and {len(odd) - 1} more)" if len(odd) > 1 else ""
    return (
        f"case '{odd[0]}' is a {kind} image but {len(flat) - len(odd)} of {len(flat)} cases are {other}{more}; "
        f"a dataset holds images of one dimensionality"
    )
