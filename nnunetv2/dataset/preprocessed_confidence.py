"""Per-case extras of pseudo-labeled cases, stored next to the case in a preprocessed data folder.

``{case}_confidence.b2nd``: float32 ``(1, z, y, x)`` confidence in [0, 1], voxel for voxel aligned with
``{case}.b2nd`` (a case without it counts as confidence 1 everywhere, i.e. fully labeled).
``{case}_scribbles.npz``: ``coordinates`` ``(n, 3)`` int32, the preprocessed voxels a person scribbled
(patch sampling centres part of the patches there).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nnunetv2.dataset.preprocessed_case import save_blosc2_array
from nnunetv2.utilities.file_io import atomic_path

CONFIDENCE_SUFFIX = "_confidence.b2nd"
SCRIBBLES_SUFFIX = "_scribbles.npz"


def save_case_confidence(folder: str | os.PathLike, case_id: str, confidence: np.ndarray) -> None:
    """Write a case's ``(1, z, y, x)`` confidence map (float32, clipped to [0, 1]) atomically."""
    confidence = np.clip(np.asarray(confidence, dtype=np.float32), 0.0, 1.0)
    assert confidence.ndim == 4 and confidence.shape[0] == 1, f"confidence must be (1, z, y, x), got {confidence.shape}"
    save_blosc2_array(confidence, Path(folder) / f"{case_id}{CONFIDENCE_SUFFIX}")


def open_case_confidence(folder: str | os.PathLike, case_id: str):
    """Return the case's confidence as a lazily decompressed blosc2 array, or None when it has none."""
    import blosc2

    path = Path(folder) / f"{case_id}{CONFIDENCE_SUFFIX}"
    if not path.is_file():
        return None
    return blosc2.open(str(path), mode="r", mmap_mode="r")


def save_scribble_locations(folder: str | os.PathLike, case_id: str, coordinates: np.ndarray) -> None:
    """Write the ``(n, 3)`` scribbled voxel coordinates of a case atomically."""
    coordinates = np.asarray(coordinates, dtype=np.int32).reshape(-1, 3)
    with atomic_path(Path(folder) / f"{case_id}{SCRIBBLES_SUFFIX}") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, coordinates=coordinates)


def load_scribble_locations(folder: str | os.PathLike, case_id: str) -> np.ndarray:
    """Return the case's ``(n, 3)`` scribbled voxel coordinates; ``(0, 3)`` when it has none."""
    path = Path(folder) / f"{case_id}{SCRIBBLES_SUFFIX}"
    if not path.is_file():
        return np.zeros((0, 3), dtype=np.int32)
    with np.load(path) as content:
        return content["coordinates"]
