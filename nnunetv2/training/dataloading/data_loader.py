"""Patch sampling from blosc2-stored preprocessed cases, with nnU-Net v2's foreground oversampling.

Cases are drawn uniformly with replacement. In every batch the last ``round(batch_size *
oversample_foreground_percent)`` samples (with ``probabilistic_oversampling``: each sample with probability
``oversample_foreground_percent``) are centred on a random stored voxel of a random class present
in the case; the others are placed uniformly at random, allowed to reach half the extra border of the
larger sampling patch beyond the image so the final (centre) patch also covers image borders. Padding
is 0 for data and -1 for the segmentation.

For a cascade stage, ``previous_stage_folder`` holds the previous stage's segmentation of every
case (see ``nnunetv2.dataset.previous_stage``); the same box of it becomes a second segmentation
channel, which the cascade transforms turn into one-hot input channels.

With an ignore label, oversampling also draws background (label 0 is stored as a class), and no
sample is left without an annotated voxel in its final patch if the case has one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.dataset.preprocessed_case import ClassKey, load_case_properties, open_preprocessed_case
from nnunetv2.dataset.previous_stage import (
    missing_cases_message,
    missing_previous_stage_cases,
    open_previous_stage_segmentation,
)
from nnunetv2.exceptions import PreprocessingError, TrainingError

logger = logging.getLogger(__name__)

PAD_MODES = ("constant", "edge", "reflect")
# random placements tried on an ignore-label case before falling back to a class-centred patch
ANNOTATION_ATTEMPTS = 10


@contextlib.contextmanager
def seeded_global_rngs(seed: int) -> Iterator[None]:
    """Seed numpy's and torch's global RNGs inside the block and restore their previous states after it.

    batchgeneratorsv2 draws from both global RNGs; this makes a batch depend only on the loader's seed
    without disturbing random numbers the caller (e.g. the trainer) draws outside.
    """
    numpy_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        np.random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            np.random.set_state(numpy_state)


def _compact_locations(locations: np.ndarray) -> np.ndarray:
    """(n, 4) (channel, z, y, x) -> (n, 3) spatial coordinates in the smallest dtype that holds them."""
    spatial = np.asarray(locations).reshape(-1, 4)[:, 1:]
    dtype = np.uint16 if spatial.size == 0 or spatial.max() < np.iinfo(np.uint16).max else np.int32
    return np.ascontiguousarray(spatial, dtype=dtype)


class NnUNetDataLoader:
    """Endless iterator of batches ``{'data', 'target', 'keys'}`` cut from preprocessed cases.

    ``patch_size`` is the (larger) patch cut from a case, ``final_patch_size`` what the transforms return.
    2D configurations (two patch axes) read one slice of the ``(c, z, y, x)`` case per sample. With
    ``previous_stage_folder`` (a cascade stage) the segmentation gets the previous stage's as channel 1.
    """

    def __init__(
        self,
        data_folder: str | Path,
        case_ids: list[str],
        batch_size: int,
        patch_size: Sequence[int],
        final_patch_size: Sequence[int],
        label_manager: LabelManager,
        oversample_foreground_percent: float = 0.33,
        transforms=None,
        seed: int | None = None,
        pad_mode: str = "constant",
        previous_stage_folder: str | Path | None = None,
        probabilistic_oversampling: bool = False,
    ):
        self.data_folder = Path(data_folder)
        self.previous_stage_folder = Path(previous_stage_folder) if previous_stage_folder is not None else None
        self.case_ids = list(case_ids)
        self.batch_size = int(batch_size)
        self.label_manager = label_manager
        self.oversample_foreground_percent = float(oversample_foreground_percent)
        self.probabilistic_oversampling = bool(probabilistic_oversampling)
        self.transforms = transforms
        self.pad_mode = pad_mode
        self._validate(patch_size, final_patch_size)
        self.is_2d = len(patch_size) == 2
        # a 2D patch is a 3D box one slice deep, so 2D and 3D share all sampling code
        self.patch_size = np.array(([1] if self.is_2d else []) + [int(p) for p in patch_size])
        self.final_patch_size = np.array(([1] if self.is_2d else []) + [int(p) for p in final_patch_size])
        self.need_to_pad = self.patch_size - self.final_patch_size
        self.has_ignore_label = label_manager.has_ignore_label
        self._locations: dict[str, dict[ClassKey, np.ndarray]] = {}
        self._warned_cases: set[str] = set()
        self.set_seed(seed)

    def _validate(self, patch_size: Sequence[int], final_patch_size: Sequence[int]) -> None:
        if not self.case_ids:
            raise TrainingError(f"{self.data_folder}: no cases to sample training patches from")
        if self.batch_size < 1:
            raise TrainingError(f"batch size must be at least 1, got {self.batch_size}")
        if not 0 <= self.oversample_foreground_percent <= 1:
            raise TrainingError(
                f"oversample_foreground_percent must lie in [0, 1], got {self.oversample_foreground_percent}"
            )
        if self.pad_mode not in PAD_MODES:
            raise TrainingError(f"unknown pad mode '{self.pad_mode}' (known: {', '.join(PAD_MODES)})")
        if (
            len(patch_size) not in (2, 3)
            or len(final_patch_size) != len(patch_size)
            or any(int(f) > int(p) or int(f) < 1 for p, f in zip(patch_size, final_patch_size))
        ):
            raise TrainingError(
                f"patch size {list(patch_size)} must have 2 or 3 axes and contain the final "
                f"patch size {list(final_patch_size)}"
            )
        missing = [c for c in self.case_ids if not (self.data_folder / f"{c}.b2nd").is_file()]
        if missing:
            raise PreprocessingError(
                f"{self.data_folder}: preprocessed case '{missing[0]}' not found "
                f"({len(missing)} missing; run nnUNetv2_preprocess)"
            )
        if self.previous_stage_folder is not None:
            missing = missing_previous_stage_cases(self.previous_stage_folder, self.case_ids)
            if missing:
                raise TrainingError(missing_cases_message(self.previous_stage_folder, missing, len(self.case_ids)))

    def set_seed(self, seed: int | None) -> None:
        """Restart the random stream (case choice, placement and augmentation) from ``seed``."""
        self.rng = np.random.default_rng(seed)

    def __getstate__(self) -> dict[str, Any]:
        # worker processes rebuild the location cache themselves instead of receiving a copy
        state = dict(self.__dict__)
        state["_locations"] = {}
        return state

    def __iter__(self) -> NnUNetDataLoader:
        return self

    def __next__(self) -> dict[str, Any]:
        keys = [self.case_ids[i] for i in self.rng.integers(len(self.case_ids), size=self.batch_size)]
        patches = [self.sample_patch(case_id, force) for case_id, force in zip(keys, self._forced_foreground())]
        transform_seed = int(self.rng.integers(2**32))
        if self.transforms is None:
            samples = [self._centre_crop(data, seg) for data, seg in patches]
        else:
            with seeded_global_rngs(transform_seed), torch.no_grad():
                samples = [self._transform(data, seg) for data, seg in patches]
        data = torch.stack([image for image, _ in samples])
        targets = [target for _, target in samples]
        if isinstance(targets[0], (list, tuple)):
            target: torch.Tensor | list[torch.Tensor] = [torch.stack(scale) for scale in zip(*targets)]
        else:
            target = torch.stack(targets)
        return {"data": data, "target": target, "keys": keys}

    def _forced_foreground(self) -> list[bool]:
        """Which samples of the next batch are centred on a class: the last ``round(batch * percent)``, or (with
        ``probabilistic_oversampling``) each with probability ``oversample_foreground_percent``."""
        if self.probabilistic_oversampling:
            return (self.rng.random(self.batch_size) < self.oversample_foreground_percent).tolist()
        first_forced = round(self.batch_size * (1 - self.oversample_foreground_percent))
        return [j >= first_forced for j in range(self.batch_size)]

    def _transform(self, data: np.ndarray, seg: np.ndarray) -> tuple[torch.Tensor, Any]:
        out = self.transforms(image=torch.from_numpy(data), segmentation=torch.from_numpy(seg))
        return out["image"].float(), out["segmentation"]

    def _centre_crop(self, data: np.ndarray, seg: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        final = self.final_patch_size[1:] if self.is_2d else self.final_patch_size
        start = (np.array(data.shape[1:]) - final) // 2
        box = (slice(None),) + tuple(slice(s, s + f) for s, f in zip(start, final))
        return torch.from_numpy(np.ascontiguousarray(data[box])), torch.from_numpy(np.ascontiguousarray(seg[box]))

    def sample_patch(self, case_id: str, force_foreground: bool) -> tuple[np.ndarray, np.ndarray]:
        """Return one ``(data, seg)`` patch of ``patch_size`` as float32 / int16 numpy arrays (no augmentation)."""
        from acvl_utils.cropping_and_padding.bounding_boxes import crop_and_pad_nd

        data, seg = open_preprocessed_case(self.data_folder, case_id)
        if len(data.shape) != 4 or tuple(seg.shape[1:]) != tuple(data.shape[1:]):
            raise PreprocessingError(
                f"{self.data_folder / case_id}: preprocessed data must be (c, z, y, x) with a "
                f"matching (1, z, y, x) segmentation, got {data.shape} and {seg.shape}"
            )
        start = self._choose_start(case_id, np.array(data.shape[1:]), force_foreground)
        bbox = [[int(s), int(s + p)] for s, p in zip(start, self.patch_size)]
        data_patch = crop_and_pad_nd(data, bbox, 0, pad_mode=self.pad_mode).astype(np.float32, copy=False)
        seg_patch = crop_and_pad_nd(seg, bbox, -1).astype(np.int16, copy=False)
        if self.previous_stage_folder is not None:
            seg_patch = np.concatenate([seg_patch, self._previous_stage_patch(case_id, data.shape[1:], bbox)])
        if self.is_2d:
            data_patch, seg_patch = data_patch[:, 0], seg_patch[:, 0]
        return np.ascontiguousarray(data_patch), np.ascontiguousarray(seg_patch)

    def _previous_stage_patch(self, case_id: str, shape: Sequence[int], bbox: list[list[int]]) -> np.ndarray:
        """The previous stage's segmentation in ``bbox`` as a (1, ...) int16 array, -1 outside the case."""
        from acvl_utils.cropping_and_padding.bounding_boxes import crop_and_pad_nd

        assert self.previous_stage_folder is not None, "only cascade stages read previous-stage patches"
        previous = open_previous_stage_segmentation(self.previous_stage_folder, case_id)
        if tuple(previous.shape) != tuple(shape):
            raise TrainingError(
                f"{self.previous_stage_folder / case_id}: previous-stage segmentation has shape "
                f"{tuple(previous.shape)}, the preprocessed case {tuple(shape)}; run the previous "
                f"stage's final validation again (--val) after preprocessing"
            )
        # stored as uint8: cast before padding, or -1 would wrap around to 255
        return crop_and_pad_nd(previous, bbox, -1, cast_cropped_to=np.int16)[None]

    def _class_locations(self, case_id: str) -> dict[ClassKey, np.ndarray]:
        if case_id not in self._locations:
            try:
                stored = load_case_properties(self.data_folder, case_id)["class_locations"]
            except FileNotFoundError as e:
                raise PreprocessingError(
                    f"{self.data_folder / case_id}: properties or class locations missing "
                    f"({Path(e.filename).name}); run nnUNetv2_preprocess again"
                ) from None
            self._locations[case_id] = {k: _compact_locations(v) for k, v in stored.items()}
        return self._locations[case_id]

    def _choose_start(self, case_id: str, shape: np.ndarray, force_foreground: bool) -> np.ndarray:
        """Return the patch's first voxel (may be negative: the patch then reaches into the padding)."""
        # the patch may reach half of the extra border beyond the image; more if the image is smaller
        need_to_pad = np.maximum(self.need_to_pad, self.patch_size - shape)
        lower = -(need_to_pad // 2)
        upper = shape + need_to_pad // 2 + need_to_pad % 2 - self.patch_size
        if not force_foreground and not self.has_ignore_label:
            return self._random_start(lower, upper)
        locations = self._class_locations(case_id)
        if force_foreground:
            centred = self._class_centred_start(case_id, locations, lower)
            return centred if centred is not None else self._random_start(lower, upper)
        return self._annotated_random_start(case_id, locations, lower, upper)

    def _random_start(self, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        return self.rng.integers(lower, upper + 1)

    def _class_centred_start(
        self, case_id: str, locations: dict[ClassKey, np.ndarray], lower: np.ndarray
    ) -> np.ndarray | None:
        # each present class equally likely; with an ignore label annotated background (0) counts as a class
        eligible = [k for k, v in locations.items() if len(v) and (self.has_ignore_label or k != 0)]
        if not eligible:
            self._note_once(case_id, logging.DEBUG, "has no foreground voxels; sampling at random")
            return None
        voxels = locations[eligible[self.rng.integers(len(eligible))]]
        voxel = voxels[self.rng.integers(len(voxels))].astype(np.int64)
        return np.maximum(lower, voxel - self.patch_size // 2)

    def _annotated_random_start(
        self, case_id: str, locations: dict[ClassKey, np.ndarray], lower: np.ndarray, upper: np.ndarray
    ) -> np.ndarray:
        """Random placement whose final patch holds a stored annotated voxel; class-centred after a few misses."""
        for _ in range(ANNOTATION_ATTEMPTS):
            start = self._random_start(lower, upper)
            final_low = start + self.need_to_pad // 2
            final_high = final_low + self.final_patch_size
            if any(len(v) and np.any(np.all((v >= final_low) & (v < final_high), axis=1)) for v in locations.values()):
                return start
        centred = self._class_centred_start(case_id, locations, lower)
        if centred is not None:
            return centred
        self._note_once(case_id, logging.WARNING, "has no annotated voxels (only the ignore label)")
        return self._random_start(lower, upper)

    def _note_once(self, case_id: str, level: int, message: str) -> None:
        if case_id not in self._warned_cases:
            self._warned_cases.add(case_id)
            logger.log(level, "case %s %s", case_id, message)
