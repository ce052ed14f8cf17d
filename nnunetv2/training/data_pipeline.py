"""Training and validation batch streams: patch sampling + augmentation, in background workers."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.formats.plans import ConfigurationPlans


@dataclass
class BatchStreams:
    """Endless training and validation batch iterators and the mirror axes augmentation used."""

    train: Iterator[dict[str, Any]]
    val: Iterator[dict[str, Any]]
    mirror_axes: tuple[int, ...] | None


def derive_seed(seed: int | None, *parts: int) -> int | None:
    """Return an independent 32-bit seed for (seed, *parts), or None when ``seed`` is None."""
    if seed is None:
        return None
    return int(np.random.SeedSequence([seed, *parts]).generate_state(1)[0])


def build_batch_streams(
    data_folder: str | Path,
    train_cases: Sequence[str],
    val_cases: Sequence[str],
    configuration: ConfigurationPlans,
    label_manager: LabelManager,
    batch_size: int,
    oversample_foreground_percent: float,
    deep_supervision_scales: list | None,
    num_workers: int,
    seed: int | None = None,
    pin_memory: bool = False,
    previous_stage_folder: str | Path | None = None,
    make_loader: Callable[..., Any] | None = None,
) -> BatchStreams:
    """Return training (augmented) and validation (not augmented) streams over the given cases.

    The training loader cuts a larger patch so that rotation and scaling leave no empty corners;
    validation uses half the workers, as nnU-Net v2 does. A cascade stage passes the folder of the
    previous stage's segmentations; they become one-hot input channels after the image channels.
    ``make_loader`` builds the loaders instead of NnUNetDataLoader (same arguments; e.g. a subclass).
    """
    from nnunetv2.training.augmentation import pipelines
    from nnunetv2.training.dataloading.background_loader import make_background_loader
    from nnunetv2.training.dataloading.data_loader import NnUNetDataLoader

    patch_size = list(configuration.patch_size)
    rotation, dummy_2d, initial_patch_size, mirror_axes = (
        pipelines.configure_rotation_dummy_da_mirroring_and_initial_patch_size(patch_size)
    )
    label_kwargs = dict(
        is_cascaded=previous_stage_folder is not None,
        foreground_labels=label_manager.foreground_labels,
        regions=label_manager.foreground_regions if label_manager.has_regions else None,
        ignore_label=label_manager.ignore_label,
    )
    train_transforms = pipelines.get_training_transforms(
        patch_size,
        rotation,
        deep_supervision_scales,
        mirror_axes,
        dummy_2d,
        use_mask_for_norm=configuration.use_mask_for_norm,
        **label_kwargs,
    )
    val_transforms = pipelines.get_validation_transforms(deep_supervision_scales, **label_kwargs)
    make_loader = make_loader or NnUNetDataLoader
    train_loader = make_loader(
        data_folder,
        list(train_cases),
        batch_size,
        initial_patch_size,
        patch_size,
        label_manager,
        oversample_foreground_percent,
        train_transforms,
        seed=derive_seed(seed, 0),
        previous_stage_folder=previous_stage_folder,
    )
    val_loader = make_loader(
        data_folder,
        list(val_cases),
        batch_size,
        patch_size,
        patch_size,
        label_manager,
        oversample_foreground_percent,
        val_transforms,
        seed=derive_seed(seed, 1),
        previous_stage_folder=previous_stage_folder,
    )
    val_workers = max(1, num_workers // 2) if num_workers > 0 else 0
    return BatchStreams(
        make_background_loader(train_loader, num_workers, seed=derive_seed(seed, 2), pin_memory=pin_memory),
        make_background_loader(val_loader, val_workers, seed=derive_seed(seed, 3), pin_memory=pin_memory),
        tuple(mirror_axes) if mirror_axes is not None else None,
    )
