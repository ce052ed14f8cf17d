"""Training and validation transform pipelines, built from batchgeneratorsv2 with nnU-Net v2's settings.

Segmentations are resampled by nearest neighbour everywhere (spatial transform and deep supervision
downsampling), so every target voxel carries a label value of the input: the ignore label is never
blended into or out of, and thin scribbles keep their value.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

# nnU-Net v2: a 3D patch whose largest edge is over 3x its first (coarse) edge gets 2D-style augmentation
ANISOTROPY_THRESHOLD = 3.0
# nnU-Net v2 sizes the initial patch with this scale range (the spatial transform itself scales 0.7-1.4)
INITIAL_PATCH_SCALE_RANGE = (0.85, 1.25)
SCALING_RANGE = (0.7, 1.4)

RotationRange = tuple[float, float]


def _symmetric_range_degrees(degrees: float) -> RotationRange:
    return (-math.radians(degrees), math.radians(degrees))


def _rotation_matrix(dim: int, axis: int, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    if dim == 2:
        return np.array([[c, -s], [s, c]])
    return [
        np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
        np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
        np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
    ][axis]


def _largest_angle(rotation: Any) -> float:
    angle = max(abs(a) for a in rotation) if isinstance(rotation, (tuple, list)) else abs(rotation)
    return min(angle, math.pi / 2)


def compute_initial_patch_size(
    patch_size: Sequence[int],
    rotation_for_da: Any,
    scale_range: Sequence[float] = INITIAL_PATCH_SCALE_RANGE,
) -> tuple[int, ...]:
    """Return nnU-Net v2's larger patch to sample so rotation and scaling leave (almost) no empty corners.

    ``rotation_for_da`` is one range for every axis, or one range (or angle) per rotation axis (x, y, z;
    2D uses the first). The patch's corner vector is rotated by each axis' largest angle (at most 90
    degrees) in turn; per axis the largest absolute extent is kept, then divided by the smallest scale
    and floored.
    """
    corner = np.asarray(patch_size, dtype=float)
    dim = len(corner)
    per_axis = len(rotation_for_da) == 3 and all(isinstance(r, (tuple, list)) for r in rotation_for_da)
    ranges = list(rotation_for_da) if per_axis else [rotation_for_da] * 3
    axes = range(1) if dim == 2 else range(3)
    extents = [corner] + [np.abs(corner @ _rotation_matrix(dim, a, _largest_angle(ranges[a]))) for a in axes]
    largest = np.max(np.stack(extents), axis=0) / min(scale_range)
    return tuple(int(v) for v in np.floor(largest))


def configure_rotation_dummy_da_mirroring_and_initial_patch_size(
    patch_size: Sequence[int],
) -> tuple[RotationRange, bool, tuple[int, ...], tuple[int, ...]]:
    """Return ``(rotation_for_da, do_dummy_2d_data_aug, initial_patch_size, mirror_axes)`` by nnU-Net v2's rules.

    2D: +-180 degrees, or +-15 when the patch's aspect ratio exceeds 1.5. 3D: +-30 degrees about each
    axis, or 2D-style (in-plane, +-180) when the largest edge is over 3x the first one.
    """
    patch_size = [int(p) for p in patch_size]
    dim = len(patch_size)
    if dim == 2:
        do_dummy_2d = False
        rotation = _symmetric_range_degrees(15 if max(patch_size) / min(patch_size) > 1.5 else 180)
        mirror_axes: tuple[int, ...] = (0, 1)
    elif dim == 3:
        do_dummy_2d = max(patch_size) / patch_size[0] > ANISOTROPY_THRESHOLD
        rotation = _symmetric_range_degrees(180 if do_dummy_2d else 30)
        mirror_axes = (0, 1, 2)
    else:
        raise ValueError(f"patch size must have 2 or 3 axes, got {patch_size}")
    initial = list(compute_initial_patch_size(patch_size, rotation))
    if do_dummy_2d:
        initial[0] = patch_size[0]  # 2D-style augmentation never moves voxels across slices
    logger.debug(
        "augmentation: rotation %s rad, dummy 2D %s, initial patch %s, mirror axes %s",
        rotation,
        do_dummy_2d,
        initial,
        mirror_axes,
    )
    return rotation, do_dummy_2d, tuple(initial), mirror_axes


def _region_targets(regions: Sequence[tuple[int, ...]], ignore_label: int | None) -> list:
    # the ignore label becomes one last region channel: the region losses read it as their mask
    targets = [list(r) if isinstance(r, (tuple, list)) else [int(r)] for r in regions]
    return targets + [[ignore_label]] if ignore_label is not None else targets


def _label_transforms(
    deep_supervision_scales: list[list[float]] | None,
    is_cascaded: bool,
    foreground_labels: Sequence[int] | None,
    regions: Sequence[tuple[int, ...]] | None,
    ignore_label: int | None,
    augment_previous_stage: bool,
) -> list:
    """Transforms shared by training and validation: -1 -> 0, cascade input, regions, deep supervision."""
    from batchgeneratorsv2.transforms.nnunet.random_binary_operator import ApplyRandomBinaryOperatorTransform
    from batchgeneratorsv2.transforms.nnunet.remove_connected_components import (
        RemoveRandomConnectedComponentFromOneHotEncodingTransform,
    )
    from batchgeneratorsv2.transforms.nnunet.seg_to_onehot import MoveSegAsOneHotToDataTransform
    from batchgeneratorsv2.transforms.utils.deep_supervision_downsampling import DownsampleSegForDSTransform
    from batchgeneratorsv2.transforms.utils.random import RandomTransform
    from batchgeneratorsv2.transforms.utils.remove_label import RemoveLabelTransform

    from nnunetv2.training.augmentation.region_targets import SegmentationToRegionsKeepingExtraChannels

    # -1 marks voxels outside the nonzero region (and padding): they are background
    transforms: list = [RemoveLabelTransform(-1, 0)]
    if is_cascaded:
        if not foreground_labels:
            raise ValueError("cascaded training needs the foreground labels")
        transforms.append(
            MoveSegAsOneHotToDataTransform(
                source_channel_idx=1, all_labels=list(foreground_labels), remove_channel_from_source=True
            )
        )
        if augment_previous_stage:
            onehot_channels = list(range(-len(foreground_labels), 0))
            transforms.append(
                RandomTransform(
                    ApplyRandomBinaryOperatorTransform(channel_idx=onehot_channels, strel_size=(1, 8), p_per_label=1),
                    apply_probability=0.4,
                )
            )
            transforms.append(
                RandomTransform(
                    RemoveRandomConnectedComponentFromOneHotEncodingTransform(
                        channel_idx=onehot_channels,
                        fill_with_other_class_p=0,
                        dont_do_if_covers_more_than_x_percent=0.15,
                        p_per_label=1,
                    ),
                    apply_probability=0.2,
                )
            )
    if regions is not None:
        # segmentation channels after the label (a confidence map) stay, after the regions
        transforms.append(SegmentationToRegionsKeepingExtraChannels(_region_targets(regions, ignore_label)))
    if deep_supervision_scales is not None:
        # nearest-exact: every downsampled voxel copies one input voxel, so label values stay exact
        transforms.append(DownsampleSegForDSTransform(ds_scales=[list(s) for s in deep_supervision_scales]))
    return transforms


def get_training_transforms(
    patch_size: Sequence[int],
    rotation_for_da: RotationRange | float,
    deep_supervision_scales: list[list[float]] | None,
    mirror_axes: Sequence[int] | None,
    do_dummy_2d_data_aug: bool,
    use_mask_for_norm: list[bool] | None = None,
    is_cascaded: bool = False,
    foreground_labels: Sequence[int] | None = None,
    regions: list[tuple[int, ...]] | None = None,
    ignore_label: int | None = None,
):
    """Return nnU-Net v2's training augmentation (without elastic deformation) as one composed transform.

    The input is a larger patch (see ``configure_rotation_dummy_da_mirroring_and_initial_patch_size``);
    the spatial transform rotates/scales about its centre and crops ``patch_size``.
    """
    from batchgeneratorsv2.transforms.intensity.brightness import MultiplicativeBrightnessTransform
    from batchgeneratorsv2.transforms.intensity.contrast import BGContrast, ContrastTransform
    from batchgeneratorsv2.transforms.intensity.gamma import GammaTransform
    from batchgeneratorsv2.transforms.intensity.gaussian_noise import GaussianNoiseTransform
    from batchgeneratorsv2.transforms.noise.gaussian_blur import GaussianBlurTransform
    from batchgeneratorsv2.transforms.spatial.low_resolution import SimulateLowResolutionTransform
    from batchgeneratorsv2.transforms.spatial.mirroring import MirrorTransform
    from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
    from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
    from batchgeneratorsv2.transforms.utils.nnunet_masking import MaskImageTransform
    from batchgeneratorsv2.transforms.utils.pseudo2d import Convert2DTo3DTransform, Convert3DTo2DTransform
    from batchgeneratorsv2.transforms.utils.random import RandomTransform

    patch_size = [int(p) for p in patch_size]
    transforms: list = []
    if do_dummy_2d_data_aug:
        # slices become channels, so rotation and scaling act in-plane only
        transforms.append(Convert3DTo2DTransform())
        spatial_patch, low_res_ignore_axes = patch_size[1:], (0,)
    else:
        spatial_patch, low_res_ignore_axes = patch_size, None
    transforms.append(
        SpatialTransform(
            spatial_patch,
            patch_center_dist_from_border=0,
            random_crop=False,
            p_elastic_deform=0,
            p_rotation=0.2,
            rotation=rotation_for_da,
            p_scaling=0.2,
            scaling=SCALING_RANGE,
            p_synchronize_scaling_across_axes=1,
            mode_seg="nearest",
        )
    )
    if do_dummy_2d_data_aug:
        transforms.append(Convert2DTo3DTransform())
    transforms += [
        RandomTransform(
            GaussianNoiseTransform(noise_variance=(0, 0.1), p_per_channel=1, synchronize_channels=True),
            apply_probability=0.1,
        ),
        # no fft/direct benchmark: it picks by timing, which would make seeded batches differ in the last bit;
        # for sigma <= 1 the kernels are tiny and direct convolution is the fast choice anyway
        RandomTransform(
            GaussianBlurTransform(
                blur_sigma=(0.5, 1.0),
                synchronize_channels=False,
                synchronize_axes=False,
                p_per_channel=0.5,
                benchmark=False,
            ),
            apply_probability=0.2,
        ),
        RandomTransform(
            MultiplicativeBrightnessTransform(
                multiplier_range=BGContrast((0.75, 1.25)), synchronize_channels=False, p_per_channel=1
            ),
            apply_probability=0.15,
        ),
        RandomTransform(
            ContrastTransform(
                contrast_range=BGContrast((0.75, 1.25)),
                preserve_range=True,
                synchronize_channels=False,
                p_per_channel=1,
            ),
            apply_probability=0.15,
        ),
        RandomTransform(
            SimulateLowResolutionTransform(
                scale=(0.5, 1),
                synchronize_channels=False,
                synchronize_axes=True,
                ignore_axes=low_res_ignore_axes,
                allowed_channels=None,
                p_per_channel=0.5,
            ),
            apply_probability=0.25,
        ),
        # gamma on the inverted image, then on the image; both keep each channel's mean and std
        RandomTransform(
            GammaTransform(
                gamma=BGContrast((0.7, 1.5)),
                p_invert_image=1,
                synchronize_channels=False,
                p_per_channel=1,
                p_retain_stats=1,
            ),
            apply_probability=0.1,
        ),
        RandomTransform(
            GammaTransform(
                gamma=BGContrast((0.7, 1.5)),
                p_invert_image=0,
                synchronize_channels=False,
                p_per_channel=1,
                p_retain_stats=1,
            ),
            apply_probability=0.3,
        ),
    ]
    if mirror_axes:
        transforms.append(MirrorTransform(allowed_axes=tuple(mirror_axes)))
    if use_mask_for_norm is not None and any(use_mask_for_norm):
        # channels normalised inside the nonzero mask stay 0 outside it, as after preprocessing
        transforms.append(
            MaskImageTransform(
                apply_to_channels=[i for i, m in enumerate(use_mask_for_norm) if m],
                channel_idx_in_seg=0,
                set_outside_to=0,
            )
        )
    transforms += _label_transforms(
        deep_supervision_scales, is_cascaded, foreground_labels, regions, ignore_label, augment_previous_stage=True
    )
    return ComposeTransforms(transforms)


def get_validation_transforms(
    deep_supervision_scales: list[list[float]] | None,
    is_cascaded: bool = False,
    foreground_labels: Sequence[int] | None = None,
    regions: list[tuple[int, ...]] | None = None,
    ignore_label: int | None = None,
):
    """Return the validation transforms: only the label conversions, no augmentation."""
    from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms

    return ComposeTransforms(
        _label_transforms(
            deep_supervision_scales, is_cascaded, foreground_labels, regions, ignore_label, augment_previous_stage=False
        )
    )
