"""Connected-component postprocessing: keep only the largest component of labels or regions.

An operation is the list of labels and regions (tuples of labels) whose union is reduced to its
largest connected component; every voxel of the union outside that component becomes background.
Operations run in order, each on the result of the previous one, as in nnU-Net v2.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LabelOrRegion = int | tuple[int, ...]
Operation = list[LabelOrRegion]


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Return the largest connected component of a 2D or 3D boolean mask (full connectivity)."""
    import cc3d

    mask = np.asarray(mask, dtype=bool)
    if mask.ndim not in (2, 3):
        raise ValueError(f"largest_component needs a 2D or 3D mask, got shape {mask.shape}")
    if not mask.any():
        return mask
    # full connectivity on (1, y, x) (a 2D image stored as 3D) is 8-connectivity within the slice
    connectivity = 26 if mask.ndim == 3 else 8
    return cc3d.largest_k(mask, k=1, connectivity=connectivity, binary_image=True) > 0  # type: ignore[call-overload]


def label_or_region_mask(seg: np.ndarray, label_or_region: LabelOrRegion) -> np.ndarray:
    """Boolean mask of the voxels belonging to a label or to any label of a region."""
    if isinstance(label_or_region, (tuple, list)):
        return np.isin(seg, label_or_region)
    return seg == label_or_region


def remove_all_but_largest_component(
    seg: np.ndarray, labels_or_regions: Sequence[LabelOrRegion], background: int = 0
) -> np.ndarray:
    """Return a copy of ``seg`` where the union of ``labels_or_regions`` outside its largest component
    is set to ``background``."""
    mask = np.zeros(seg.shape, dtype=bool)
    for entry in labels_or_regions:
        mask |= label_or_region_mask(seg, entry)
    out = seg.copy()
    out[mask & ~largest_component(mask)] = background
    return out


def apply_postprocessing(seg: np.ndarray, operations: Sequence[Sequence[LabelOrRegion]]) -> np.ndarray:
    """Apply each keep-largest-component operation to ``seg`` in order; returns the result."""
    for labels_or_regions in operations:
        seg = remove_all_but_largest_component(seg, labels_or_regions)
    return seg
