"""The cascade's input from the previous stage: where 3d_lowres leaves its segmentations, how they are read.

As in nnU-Net v2, the final validation of each 3d_lowres fold writes its validation cases'
segmentations, resampled to the next stage's preprocessed shape, into
``<lowres model folder>/predicted_next_stage/<next stage>/<case>.b2nd`` (blosc2, ``(z, y, x)``
uint8). Every case is validated by exactly one fold, so after all folds the folder covers the
dataset and each cascade fold trains on predictions of models that never saw those cases. Older
nnU-Net v2 versions wrote ``<case>.npz`` (key ``seg``); it is read too. The network sees the
segmentation as one one-hot channel per foreground label after the image channels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nnunetv2.exceptions import TrainingError

NEXT_STAGE_FOLDER_NAME = "predicted_next_stage"
_ENDINGS = (".b2nd", ".npz")  # nnU-Net v2's blosc2 datasets first, then its older numpy ones


def next_stage_folder(previous_model_folder: str | os.PathLike, next_stage: str) -> Path:
    """Return the folder in the previous stage's model folder that holds the inputs of ``next_stage``."""
    return Path(previous_model_folder) / NEXT_STAGE_FOLDER_NAME / next_stage


def save_next_stage_segmentation(segmentation: np.ndarray, folder: str | os.PathLike, case_id: str) -> None:
    """Write one case's ``(z, y, x)`` segmentation as ``<folder>/<case>.b2nd`` (atomically)."""
    from nnunetv2.dataset.preprocessed_case import save_blosc2_array

    save_blosc2_array(segmentation, Path(folder) / f"{case_id}.b2nd")


def previous_stage_file(folder: str | os.PathLike, case_id: str) -> Path | None:
    """Return the file holding ``case_id``'s previous-stage segmentation, or None when there is none."""
    for ending in _ENDINGS:
        path = Path(folder) / f"{case_id}{ending}"
        if path.is_file():
            return path
    return None


def missing_previous_stage_cases(folder: str | os.PathLike, case_ids: Sequence[str]) -> list[str]:
    """Return the cases of ``case_ids`` without a previous-stage segmentation in ``folder``."""
    return [c for c in case_ids if previous_stage_file(folder, c) is None]


def missing_cases_message(folder: str | os.PathLike, missing: Sequence[str], total: int) -> str:
    """Return the one-line error for cases lacking the previous stage's segmentation."""
    return (
        f"{Path(folder) / (missing[0] + '.b2nd')}: previous-stage segmentation of case '{missing[0]}' not found "
        f"({len(missing)} of {total} case(s) missing); train every fold of the previous stage with the same "
        f"trainer and plans first: its final validation writes them"
    )


def open_previous_stage_segmentation(folder: str | os.PathLike, case_id: str):
    """Return ``case_id``'s ``(z, y, x)`` segmentation: a lazily read blosc2 array, or numpy for an .npz."""
    path = previous_stage_file(folder, case_id)
    if path is None:
        raise TrainingError(missing_cases_message(folder, [case_id], 1))
    if path.suffix == ".npz":
        with np.load(path) as z:
            return z["seg"]
    import blosc2

    return blosc2.open(str(path), mode="r", mmap_mode="r")


def append_previous_stage_channels(
    data: np.ndarray, segmentation: np.ndarray | None, foreground_labels: Sequence[int]
) -> np.ndarray:
    """Return ``data`` (c, ...) followed by one one-hot channel per foreground label of ``segmentation``.

    ``segmentation`` has the data's spatial shape (a leading axis of 1 is allowed); None returns
    ``data`` unchanged. Values that are no foreground label (background, -1 outside the crop) give 0.
    """
    if segmentation is None:
        return data
    labels = np.asarray(foreground_labels).reshape(-1, *([1] * (data.ndim - 1)))
    spatial = np.asarray(segmentation).reshape(data.shape[1:])
    return np.concatenate([data, (spatial[None] == labels).astype(data.dtype)])
