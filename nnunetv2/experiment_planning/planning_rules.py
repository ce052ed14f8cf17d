"""nnU-Net v2's fixed planning rules as pure functions of numbers (spacing, shapes, channel names)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# channel name (case-insensitive) -> nnU-Net v2's normalization class name; anything else: z-score
NORMALIZATION_BY_CHANNEL_NAME = {
    "ct": "CTNormalization",
    "nonorm": "NoNormalization",
    "zscore": "ZScoreNormalization",
    "rescale_to_0_1": "RescaleTo01Normalization",
    "rgb_to_0_1": "RGBTo01Normalization",
}
DEFAULT_NORMALIZATION = "ZScoreNormalization"
# only schemes that leave voxels outside the nonzero mask at 0 can use that mask for normalization
SCHEMES_THAT_CAN_USE_MASK = frozenset({"ZScoreNormalization"})
USE_MASK_BELOW_RELATIVE_SIZE = 3 / 4


def fullres_target_spacing(
    spacings: Sequence[Sequence[float]] | np.ndarray,
    shapes_after_crop: Sequence[Sequence[int]] | np.ndarray,
    anisotropy_threshold: float = 3.0,
    anisotropic_axis_percentile: float = 10,
) -> np.ndarray:
    """Return the 3d_fullres target spacing: the per-axis median, finer along a strongly coarse axis.

    When the coarsest axis is more than ``anisotropy_threshold`` times coarser than every other
    axis and also has ``anisotropy_threshold`` times fewer voxels, its target becomes the
    ``anisotropic_axis_percentile``-th percentile of its spacings (never finer than the other axes).
    """
    spacing_array = np.asarray(spacings, dtype=np.float64)
    target = np.percentile(spacing_array, 50, axis=0)
    median_size = np.percentile(np.asarray(shapes_after_crop, dtype=np.float64), 50, axis=0)
    coarse_axis = int(np.argmax(target))
    others = [a for a in range(len(target)) if a != coarse_axis]
    finest_other_max = max(target[a] for a in others)
    anisotropic_spacing = target[coarse_axis] > anisotropy_threshold * finest_other_max
    anisotropic_voxels = median_size[coarse_axis] * anisotropy_threshold < min(median_size[a] for a in others)
    if anisotropic_spacing and anisotropic_voxels:
        spacing_of_axis = np.percentile(spacing_array[:, coarse_axis], anisotropic_axis_percentile)
        if spacing_of_axis < finest_other_max:
            # the coarse axis must stay the coarse one so that the transpose stays meaningful
            spacing_of_axis = max(finest_other_max, spacing_of_axis) + 1e-5
        target[coarse_axis] = spacing_of_axis
    return target


def transpose_for_spacing(target_spacing: Sequence[float] | np.ndarray) -> tuple[list[int], list[int]]:
    """Return (forward, backward) axis orders that move the coarsest axis to the front."""
    coarse_axis = int(np.argmax(target_spacing))
    forward = [coarse_axis] + [a for a in range(len(target_spacing)) if a != coarse_axis]
    backward = [forward.index(a) for a in range(len(forward))]
    return forward, backward


def initial_patch_size(
    spacing: Sequence[float] | np.ndarray, median_shape: Sequence[float] | np.ndarray, volume: float
) -> list[float]:
    """Return a patch with aspect ratio 1/spacing and ``volume`` voxels, clipped to the median shape.

    Clipping keeps a fractional median size as is; the topology rounds it up when padding.
    """
    inverse = 1 / np.asarray(spacing, dtype=np.float64)
    scaled = inverse * (volume / np.prod(inverse)) ** (1 / len(inverse))
    return [min(round(p), m) for p, m in zip(scaled, median_shape)]


def normalization_schemes(
    channel_names: Sequence[str], median_relative_size_after_cropping: float, force_mask_for_norm: bool = False
) -> tuple[list[str], list[bool]]:
    """Return the normalization scheme per channel and whether it normalizes within the nonzero mask.

    The mask is used (by the schemes that can) when cropping to the nonzero region removed more
    than a quarter of the typical image, or when dataset.json asks for it.
    """
    schemes = [NORMALIZATION_BY_CHANNEL_NAME.get(name.casefold(), DEFAULT_NORMALIZATION) for name in channel_names]
    use_mask = force_mask_for_norm or median_relative_size_after_cropping < USE_MASK_BELOW_RELATIVE_SIZE
    return schemes, [use_mask and s in SCHEMES_THAT_CAN_USE_MASK for s in schemes]
