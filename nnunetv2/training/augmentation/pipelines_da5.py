"""nnU-Net v2's stronger "DA5" training augmentation (nnUNetTrainerDA5), built from batchgeneratorsv2.

Compared with the default pipeline: rotation (per axis with p 0.5) and scaling 0.7-1.43 with
independent axes, 90-degree rotations and axis transposes among equally sized axes, median filter or
blur, additive brightness, either kind of contrast, stronger low-resolution simulation, blank
rectangles, additive brightness gradients, local gamma and sharpening. Segmentations are resampled by
nearest neighbour (as everywhere here); ``nearest_image`` resamples the image by nearest neighbour too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nnunetv2.training.augmentation.pipelines import RotationRange, _label_transforms


def _local_scale(image_shape: Sequence[int], axis: int) -> float:
    return float(np.exp(np.random.uniform(np.log(image_shape[axis] // 6), np.log(image_shape[axis]))))


def _gradient_strength(_image, _channel) -> float:
    return float(np.random.uniform(-5, -1) if np.random.uniform() < 0.5 else np.random.uniform(1, 5))


def _local_gamma() -> float:
    return float(np.random.uniform(0.01, 0.8) if np.random.uniform() < 0.5 else np.random.uniform(1.5, 4))


def get_da5_training_transforms(
    patch_size: Sequence[int],
    rotation_for_da: RotationRange | float,
    deep_supervision_scales: list[list[float]] | None,
    mirror_axes: Sequence[int] | None,
    do_dummy_2d_data_aug: bool,
    use_mask_for_norm: list[bool] | None = None,
    is_cascaded: bool = False,
    foreground_labels: Sequence[int] | None = None,
    regions: list | None = None,
    ignore_label: int | None = None,
    nearest_image: bool = False,
):
    """Return the DA5 training augmentation as one composed transform (arguments as ``get_training_transforms``)."""
    import torch
    from batchgeneratorsv2.transforms.intensity.brightness import BrightnessAdditiveTransform
    from batchgeneratorsv2.transforms.intensity.contrast import BGContrast, ContrastTransform
    from batchgeneratorsv2.transforms.intensity.gamma import GammaTransform
    from batchgeneratorsv2.transforms.intensity.gaussian_noise import GaussianNoiseTransform
    from batchgeneratorsv2.transforms.local.brightness_gradient import BrightnessGradientAdditiveTransform
    from batchgeneratorsv2.transforms.local.local_gamma import LocalGammaTransform
    from batchgeneratorsv2.transforms.noise.blank_rectangle import BlankRectangleTransform
    from batchgeneratorsv2.transforms.noise.gaussian_blur import GaussianBlurTransform
    from batchgeneratorsv2.transforms.noise.median_filter import MedianFilterTransform
    from batchgeneratorsv2.transforms.noise.sharpen import SharpeningTransform
    from batchgeneratorsv2.transforms.spatial.low_resolution import SimulateLowResolutionTransform
    from batchgeneratorsv2.transforms.spatial.mirroring import MirrorTransform
    from batchgeneratorsv2.transforms.spatial.rot90 import Rot90Transform
    from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
    from batchgeneratorsv2.transforms.spatial.transpose import TransposeAxesTransform
    from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
    from batchgeneratorsv2.transforms.utils.nnunet_masking import MaskImageTransform
    from batchgeneratorsv2.transforms.utils.pseudo2d import Convert2DTo3DTransform, Convert3DTo2DTransform
    from batchgeneratorsv2.transforms.utils.random import OneOfTransform, RandomTransform

    patch_size = [int(p) for p in patch_size]
    transforms: list = []
    if do_dummy_2d_data_aug:
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
            p_rotation=0.4,
            rotation=rotation_for_da,
            p_rot_per_axis=0.5,
            p_scaling=0.2,
            scaling=(0.7, 1.43),
            p_synchronize_scaling_across_axes=0,
            mode_seg="nearest",
            mode_image="nearest" if nearest_image else "bilinear",
        )
    )
    if do_dummy_2d_data_aug:
        transforms.append(Convert2DTo3DTransform())
    # 90-degree rotations and transposes only among the axes sharing the most common edge length
    same_length = np.array([sum(p == q for q in patch_size) for p in patch_size])
    if np.any(same_length > 1):
        axes = set(np.flatnonzero(same_length == same_length.max()).tolist())
        transforms.append(
            RandomTransform(
                Rot90Transform(num_axis_combinations=1, num_rot_per_combination=(0, 1, 2, 3), allowed_axes=axes),
                apply_probability=0.5,
            )
        )
        transforms.append(RandomTransform(TransposeAxesTransform(allowed_axes=axes), apply_probability=0.5))

    def contrast(preserve_range: bool):
        return RandomTransform(
            ContrastTransform(
                contrast_range=BGContrast((0.5, 2)),
                preserve_range=preserve_range,
                synchronize_channels=False,
                p_per_channel=0.5,
            ),
            apply_probability=0.2,
        )

    inverted_gamma = GammaTransform(
        gamma=BGContrast((0.7, 1.5)), p_invert_image=1, synchronize_channels=False, p_per_channel=1, p_retain_stats=1
    )
    transforms += [
        OneOfTransform(
            [
                RandomTransform(
                    MedianFilterTransform((2, 8), p_same_for_each_channel=0, p_per_channel=0.5), apply_probability=0.2
                ),
                RandomTransform(
                    GaussianBlurTransform(
                        (0.3, 1.5), synchronize_channels=False, synchronize_axes=True, p_per_channel=0.5
                    ),
                    apply_probability=0.2,
                ),
            ]
        ),
        RandomTransform(
            GaussianNoiseTransform(noise_variance=(0, 0.1), p_per_channel=1, synchronize_channels=True),
            apply_probability=0.1,
        ),
        RandomTransform(
            BrightnessAdditiveTransform(mu=0, sigma=0.5, synchronize_channels=False, p_per_channel=0.5),
            apply_probability=0.1,
        ),
        OneOfTransform([contrast(True), contrast(False)]),
        RandomTransform(
            SimulateLowResolutionTransform(
                scale=(0.25, 1),
                synchronize_channels=False,
                synchronize_axes=True,
                ignore_axes=low_res_ignore_axes,
                p_per_channel=0.5,
            ),
            apply_probability=0.15,
        ),
        # nnU-Net v2's DA5 applies the inverted-image gamma twice
        RandomTransform(inverted_gamma, apply_probability=0.1),
        RandomTransform(inverted_gamma, apply_probability=0.1),
    ]
    if mirror_axes:
        transforms.append(MirrorTransform(allowed_axes=tuple(mirror_axes)))
    transforms += [
        RandomTransform(
            BlankRectangleTransform(
                rectangle_size=[[max(1, p // 10), p // 3] for p in patch_size],
                rectangle_value=torch.mean,
                num_rectangles=(1, 5),
                force_square=False,
                p_per_channel=0.5,
            ),
            apply_probability=0.4,
        ),
        RandomTransform(
            BrightnessGradientAdditiveTransform(
                scale=_local_scale,
                loc=(-0.5, 1.5),
                max_strength=_gradient_strength,
                mean_centered=False,
                same_for_all_channels=False,
                p_per_channel=0.5,
            ),
            apply_probability=0.3,
        ),
        RandomTransform(
            LocalGammaTransform(
                scale=_local_scale, loc=(-0.5, 1.5), gamma=_local_gamma, same_for_all_channels=False, p_per_channel=0.5
            ),
            apply_probability=0.3,
        ),
        RandomTransform(
            SharpeningTransform(strength=(0.1, 1), p_same_for_each_channel=0, p_per_channel=0.5),
            apply_probability=0.2,
        ),
    ]
    if use_mask_for_norm is not None and any(use_mask_for_norm):
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
