"""nnU-Net v2's ``get_patch_size``: a thin alias of ``nnunetv2.training.augmentation.pipelines``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nnunetv2.training.augmentation.pipelines import compute_initial_patch_size


def get_patch_size(
    final_patch_size: Sequence[int],
    rot_x: float | Sequence[float],
    rot_y: float | Sequence[float],
    rot_z: float | Sequence[float],
    scale_range: Sequence[float],
) -> np.ndarray:
    """Return the sampling patch (an int array) that leaves no empty corners after rotation and scaling."""

    def as_range(r: Any) -> tuple[float, float]:
        return (min(r), max(r)) if isinstance(r, (tuple, list, np.ndarray)) else (-float(r), float(r))

    ranges = [as_range(rot_x), as_range(rot_y), as_range(rot_z)]
    return np.array(compute_initial_patch_size(final_patch_size, ranges, tuple(scale_range)), dtype=int)
