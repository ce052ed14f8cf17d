"""Plans for the preprocessing tests: hand-written, with 2d, 3d_fullres, 3d_lowres and a cascade."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from nnunetv2.formats.plans import Plans


def _configuration(spacing, identifier, **overrides):
    configuration = {
        "data_identifier": identifier,
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2,
        "patch_size": [8] * len(spacing),
        "median_image_size_in_voxels": [8] * len(spacing),
        "spacing": spacing,
        "normalization_schemes": ["ZScoreNormalization"],
        "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
        "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
        "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None},
        "batch_dice": False,
        "architecture": {
            "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
            "arch_kwargs": {},
            "_kw_requires_import": [],
        },
    }
    configuration.update(overrides)
    return configuration


def _make_plans(transpose_forward=(0, 1, 2), fullres_spacing=(1.0, 1.0, 1.0)) -> Plans:
    """Plans with 2d, 3d_fullres, 3d_lowres and a cascade sharing the fullres data."""
    backward = [int(i) for i in np.argsort(transpose_forward)]
    return Plans.from_dict(
        {
            "dataset_name": "Dataset321_Tiny",
            "plans_name": "nnUNetPlans",
            "original_median_spacing_after_transp": list(fullres_spacing),
            "original_median_shape_after_transp": [8, 10, 12],
            "image_reader_writer": "SimpleITKIO",
            "transpose_forward": list(transpose_forward),
            "transpose_backward": backward,
            "configurations": {
                "2d": _configuration(list(fullres_spacing[1:]), "nnUNetPlans_2d"),
                "3d_fullres": _configuration(list(fullres_spacing), "nnUNetPlans_3d_fullres"),
                "3d_lowres": _configuration(
                    [fullres_spacing[0], 2 * fullres_spacing[1], 2 * fullres_spacing[2]],
                    "nnUNetPlans_3d_lowres",
                    next_stage="3d_cascade_fullres",
                ),
                "3d_cascade_fullres": {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"},
            },
            "experiment_planner_used": "ExperimentPlanner",
            "label_manager": "LabelManager",
            "foreground_intensity_properties_per_channel": {
                "0": {
                    "max": 9.0,
                    "mean": 4.0,
                    "median": 4.0,
                    "min": 1.0,
                    "percentile_00_5": 1.0,
                    "percentile_99_5": 8.0,
                    "std": 2.0,
                }
            },
        }
    )


@pytest.fixture
def make_plans() -> Callable[..., Plans]:
    """Factory: ``make_plans(transpose_forward=(0, 1, 2), fullres_spacing=(1, 1, 1))``."""
    return _make_plans
