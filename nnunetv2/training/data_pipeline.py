"""Training and validation batch streams: patch sampling + augmentation, in background workers."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.dataset.label_manager import LabelManager


@dataclass
class PreprocessedCases:
    """The cases of one split in a preprocessed data folder (what ``get_tr_and_val_datasets`` returns)."""

    folder: Path
    identifiers: list[str]
    folder_with_segs_from_previous_stage: Path | None = None


def derive_seed(seed: int | None, *parts: int) -> int | None:
    """Return an independent 32-bit seed for (seed, *parts), or None when ``seed`` is None."""
    if seed is None:
        return None
    return int(np.random.SeedSequence([seed, *parts]).generate_state(1)[0])


def build_batch_streams(
    train_cases: PreprocessedCases,
    val_cases: PreprocessedCases,
    initial_patch_size: Sequence[int],
    patch_size: Sequence[int],
    train_transforms: Any,
    val_transforms: Any,
    label_manager: LabelManager,
    batch_size: int,
    oversample_foreground_percent: float,
    num_workers: int,
    seed: int | None = None,
    pin_memory: bool = False,
    probabilistic_oversampling: bool = False,
    make_loader: Callable[..., Any] | None = None,
) -> tuple[Iterator[dict[str, Any]], Iterator[dict[str, Any]]]:
    """Return endless (training, validation) batch iterators over the given cases.

    The training loader cuts the larger ``initial_patch_size`` so that rotation and scaling leave no
    empty corners; validation cuts ``patch_size`` and uses half the workers, as nnU-Net v2 does. A
    cascade stage's cases name the folder of the previous stage's segmentations; they become one-hot
    input channels after the image channels. ``make_loader`` builds the loaders instead of
    NnUNetDataLoader (same arguments; e.g. a subclass).
    """
    from nnunetv2.training.dataloading.background_loader import make_background_loader
    from nnunetv2.training.dataloading.data_loader import NnUNetDataLoader

    make_loader = make_loader or NnUNetDataLoader
    loaders = [
        make_loader(
            cases.folder,
            list(cases.identifiers),
            batch_size,
            list(sampled),
            list(patch_size),
            label_manager,
            oversample_foreground_percent,
            transforms,
            seed=derive_seed(seed, i),
            previous_stage_folder=cases.folder_with_segs_from_previous_stage,
            probabilistic_oversampling=probabilistic_oversampling,
        )
        for i, (cases, sampled, transforms) in enumerate(
            [(train_cases, initial_patch_size, train_transforms), (val_cases, patch_size, val_transforms)]
        )
    ]
    val_workers = max(1, num_workers // 2) if num_workers > 0 else 0
    return (
        make_background_loader(loaders[0], num_workers, seed=derive_seed(seed, 2), pin_memory=pin_memory),
        make_background_loader(loaders[1], val_workers, seed=derive_seed(seed, 3), pin_memory=pin_memory),
    )
