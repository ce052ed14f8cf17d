"""Patch sampling for pseudo-labeled cases: the confidence rides along as a last segmentation channel.

Each sample's segmentation patch becomes ``(label, confidence)``, float32. The confidence is cut from
``{case}_confidence.b2nd`` with the label's box (confidence 1 for a case without one) and is 0 in
the padding outside the image. Because it is a segmentation channel, every spatial transform
(rotation, scaling, mirroring, 2D-style handling, deep-supervision downsampling) moves it exactly
with the label, by nearest neighbour; intensity transforms never touch it. For a region-based
dataset the region conversion puts it after the region (and ignore) channels. The trainer's loss
reads the last channel as the per-voxel weight.

Sampling near scribbles: a sample that is not a foreground-oversampled one, drawn from a case with
stored scribble locations (``{case}_scribbles.npz``), is centred on a random scribbled voxel with
probability ``scribble_sample_probability``; the corrected regions are where the preliminary network
was wrong, so they are worth seeing often.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnunetv2.dataset.preprocessed_confidence import load_scribble_locations, open_case_confidence
from nnunetv2.exceptions import PreprocessingError, TrainingError
from nnunetv2.training.dataloading.data_loader import NnUNetDataLoader


class ConfidenceDataLoader(NnUNetDataLoader):
    """NnUNetDataLoader whose segmentation patches carry the stored confidence as their last channel."""

    def __init__(self, *args: Any, scribble_sample_probability: float = 0.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not 0.0 <= scribble_sample_probability <= 1.0:
            raise TrainingError(f"scribble_sample_probability must lie in [0, 1], got {scribble_sample_probability}")
        self.scribble_sample_probability = float(scribble_sample_probability)
        self._scribbles: dict[str, np.ndarray] = {}
        self._centre_on_scribble = False
        self._last_box: tuple[np.ndarray, np.ndarray] | None = None  # (start, case shape) of the last patch

    def __getstate__(self) -> dict[str, Any]:
        # worker processes read the scribble locations themselves
        state = super().__getstate__()
        state["_scribbles"] = {}
        return state

    def scribble_locations(self, case_id: str) -> np.ndarray:
        """Return the case's ``(n, 3)`` scribbled voxels (cached; empty for a case without scribbles)."""
        if case_id not in self._scribbles:
            self._scribbles[case_id] = load_scribble_locations(self.data_folder, case_id).astype(np.int64)
        return self._scribbles[case_id]

    def sample_patch(self, case_id: str, force_foreground: bool) -> tuple[np.ndarray, np.ndarray]:
        """Return one ``(data, seg)`` patch; ``seg`` is float32 ``(label, confidence)``."""
        # the random draw only happens when it can matter, so probability 0 samples exactly like the base class
        self._centre_on_scribble = (
            not force_foreground
            and self.scribble_sample_probability > 0
            and len(self.scribble_locations(case_id)) > 0
            and self.rng.random() < self.scribble_sample_probability
        )
        data_patch, seg_patch = super().sample_patch(case_id, force_foreground)
        confidence = self._confidence_patch(case_id)
        seg_patch = np.concatenate([seg_patch.astype(np.float32), confidence])
        return data_patch, np.ascontiguousarray(seg_patch)

    def _choose_start(self, case_id: str, shape: np.ndarray, force_foreground: bool) -> np.ndarray:
        if self._centre_on_scribble:
            voxels = self.scribble_locations(case_id)
            voxel = voxels[self.rng.integers(len(voxels))]
            # as foreground oversampling places its patches: centred, not beyond the lowest allowed start
            need_to_pad = np.maximum(self.need_to_pad, self.patch_size - shape)
            start = np.maximum(-(need_to_pad // 2), voxel - self.patch_size // 2)
        else:
            start = super()._choose_start(case_id, shape, force_foreground)
        self._last_box = (np.asarray(start), np.asarray(shape))
        return start

    def _confidence_patch(self, case_id: str) -> np.ndarray:
        """The confidence in the last patch's box, ``(1, *patch)`` float32 (2D: ``(1, y, x)``), 0 outside the image."""
        from acvl_utils.cropping_and_padding.bounding_boxes import crop_and_pad_nd

        assert self._last_box is not None, "a patch is sampled before its confidence"
        start, shape = self._last_box
        confidence = open_case_confidence(self.data_folder, case_id)
        if confidence is None:
            patch = np.zeros((1, *self.patch_size), dtype=np.float32)
            inside = tuple(slice(max(0, -s), max(0, min(p, n - s))) for s, p, n in zip(start, self.patch_size, shape))
            patch[(slice(None),) + inside] = 1.0
        else:
            if tuple(confidence.shape) != (1, *map(int, shape)):
                raise PreprocessingError(
                    f"{self.data_folder / case_id}: confidence map of shape "
                    f"{tuple(confidence.shape)} does not match the case shape {tuple(shape)}"
                )
            bbox = [[int(s), int(s + p)] for s, p in zip(start, self.patch_size)]
            patch = crop_and_pad_nd(confidence, bbox, 0).astype(np.float32, copy=False)
        return patch[:, 0] if self.is_2d else patch
