"""Augmentation settings (nnU-Net v2's rules) and label handling of the training/validation pipelines."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform

from nnunetv2.training.augmentation.pipelines import (
    compute_initial_patch_size,
    configure_rotation_dummy_da_mirroring_and_initial_patch_size,
    get_training_transforms,
    get_validation_transforms,
)

IGNORE = 3


@pytest.mark.parametrize(
    "patch, degrees, dummy_2d, initial, mirror",
    [
        ((512, 512), 180, False, (602, 602), (0, 1)),  # square 2D: full rotation
        ((512, 256), 15, False, (659, 301), (0, 1)),  # aspect 2 > 1.5: +-15 degrees
        ((128, 128, 128), 30, False, (205, 205, 205), (0, 1, 2)),
        ((20, 192, 160), 180, True, (20, 225, 225), (0, 1, 2)),  # 192 / 20 > 3: in-plane only, slices kept
    ],
)
def test_rotation_dummy_2d_and_initial_patch_follow_nnunet_v2(patch, degrees, dummy_2d, initial, mirror):
    rotation, do_dummy_2d, initial_patch, mirror_axes = configure_rotation_dummy_da_mirroring_and_initial_patch_size(
        patch
    )
    assert rotation == pytest.approx((-math.radians(degrees), math.radians(degrees)))
    assert do_dummy_2d is dummy_2d and initial_patch == initial and mirror_axes == mirror


def test_initial_patch_without_rotation_only_covers_scaling():
    assert compute_initial_patch_size((85, 170), (0.0, 0.0)) == (100, 200)


def _sample(seg: np.ndarray, channels: int = 1) -> dict:
    image = torch.from_numpy(np.random.default_rng(0).normal(size=(channels, *seg.shape[1:])).astype(np.float32))
    return {"image": image, "segmentation": torch.from_numpy(seg.astype(np.int16))}


def _always_rotate_and_scale(transforms) -> None:
    spatial = [t for t in transforms.transforms if isinstance(t, SpatialTransform)]
    assert len(spatial) == 1
    spatial[0].p_rotation, spatial[0].p_scaling = 1.0, 1.0


def test_training_transforms_keep_the_ignore_value_exact_under_rotation_and_scaling():
    # ignore stripes next to label 1 and the outside-crop value -1: any blending would create 2 (between 1
    # and 3), or 1/2 between -1 and 3, or other values
    seg = np.zeros((1, 12, 40, 40), dtype=np.int16)
    seg[0, :, :, ::4] = IGNORE
    seg[0, :, 10:30, 12:20] = 1
    seg[0, :, :3] = -1
    patch = (8, 24, 24)
    rotation, dummy_2d, initial, mirror = configure_rotation_dummy_da_mirroring_and_initial_patch_size(patch)
    transforms = get_training_transforms(
        patch, rotation, [[1, 1, 1], [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]], mirror, dummy_2d, ignore_label=IGNORE
    )
    _always_rotate_and_scale(transforms)
    torch.manual_seed(0)
    np.random.seed(0)
    seen_ignore = 0
    for _ in range(8):
        out = transforms(**_sample(seg))
        for scale, expected_shape in zip(out["segmentation"], [(1, 8, 24, 24), (1, 4, 12, 12), (1, 2, 6, 6)]):
            assert tuple(scale.shape) == expected_shape
            assert set(torch.unique(scale).tolist()) <= {0, 1, IGNORE}
        seen_ignore += int((out["segmentation"][0] == IGNORE).sum())
    assert seen_ignore > 0


def test_dummy_2d_training_transforms_keep_slices_and_shape():
    seg = np.zeros((1, 4, 36, 36), dtype=np.int16)
    seg[0, 1, 10:20, 10:20] = 1
    transforms = get_training_transforms((4, 24, 24), (-math.pi, math.pi), None, (0, 1, 2), True)
    _always_rotate_and_scale(transforms)
    out = transforms(**_sample(seg, channels=2))
    assert tuple(out["image"].shape) == (2, 4, 24, 24) and tuple(out["segmentation"].shape) == (1, 4, 24, 24)


def test_minus_one_becomes_background_and_masked_channels_are_zeroed():
    seg = np.ones((1, 6, 16, 16), dtype=np.int16)
    seg[0, :, :4] = -1
    out = get_training_transforms((6, 16, 16), (0.0, 0.0), None, None, False, use_mask_for_norm=[True, False])(
        **_sample(seg, channels=2)
    )
    target = out["segmentation"]
    assert target.min() >= 0 and (target[0, :, :4] == 0).all() and (target[0, :, 4:] == 1).all()
    assert (out["image"][0, :, :4] == 0).all() and (out["image"][1, :, :4] != 0).any()
    validation = get_validation_transforms(None)(**_sample(seg))
    assert torch.equal(validation["segmentation"], target)


def test_validation_transforms_build_regions_with_ignore_channel_and_deep_supervision_targets():
    seg = np.zeros((1, 8, 8, 8), dtype=np.int16)
    seg[0, 2:6, 2:6, 2:6] = 1
    seg[0, 3:5, 3:5, 3:5] = 2
    seg[0, :, :, 7] = IGNORE
    seg[0, 0] = -1
    transforms = get_validation_transforms([[1, 1, 1], [0.5, 0.5, 0.5]], regions=[(1, 2), (2,)], ignore_label=IGNORE)
    full, half = transforms(**_sample(seg))["segmentation"]
    assert tuple(full.shape) == (3, 8, 8, 8) and tuple(half.shape) == (3, 4, 4, 4)
    source = torch.from_numpy(seg[0])
    assert torch.equal(full[0], (source == 1) | (source == 2))
    assert torch.equal(full[1], source == 2)
    assert torch.equal(full[2], source == IGNORE)  # the last channel is the ignore mask
    assert torch.equal(half, full[:, 1::2, 1::2, 1::2])  # nearest-exact: every coarse voxel copies a fine one
