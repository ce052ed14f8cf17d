"""Crop a case to the bounding box of its nonzero region (nnU-Net v2's first preprocessing step)."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_fill_holes

# seg value for voxels inside the crop box but outside the (hole-filled) nonzero region
OUTSIDE_NONZERO_LABEL = -1


def nonzero_mask(data: np.ndarray) -> np.ndarray:
    """Return the hole-filled mask ``(z, y, x)`` of voxels nonzero in any channel of ``(c, z, y, x)``."""
    mask = np.any(data != 0, axis=0)
    return binary_fill_holes(mask)


def bounding_box(mask: np.ndarray) -> list[list[int]]:
    """Return ``[[lo, hi), ...]`` per axis of the True voxels; the full extent if there are none."""
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        box.append([int(hits[0]), int(hits[-1]) + 1] if len(hits) else [0, mask.shape[axis]])
    return box


def crop_to_nonzero(
    data: np.ndarray, seg: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, list[list[int]], np.ndarray]:
    """Crop ``(c, z, y, x)`` data (and ``(1, z, y, x)`` seg) to the nonzero bounding box.

    Returns the cropped data, the cropped seg (background outside the nonzero region set to -1;
    a seg of zeros with that marking when ``seg`` is None), the box and the cropped nonzero mask
    ``(z, y, x)`` (labels outside it stay in the seg, so the seg alone cannot tell the region).
    """
    mask = nonzero_mask(data)
    box = bounding_box(mask)
    slicer = tuple(slice(lo, hi) for lo, hi in box)
    data = data[(slice(None),) + slicer]
    mask = mask[slicer]
    if seg is None:
        seg = np.zeros((1,) + mask.shape, dtype=np.int8)
    else:
        seg = seg[(slice(None),) + slicer].copy()
    seg[(seg == 0) & ~mask[None]] = OUTSIDE_NONZERO_LABEL
    return data, seg, box, mask
