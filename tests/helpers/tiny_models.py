"""Test helpers: a tiny 3D model folder in nnU-Net v2's layout and raw 2-channel cases with a known geometry.

Import as ``from tests.helpers.tiny_models import ...`` (pyproject's pytest ``pythonpath`` puts the
repository root on sys.path).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from nnunetv2.architectures.network_builder import build_network
from nnunetv2.formats.plans import ArchitectureSpec

SPACING_XYZ = (1.0, 1.0, 2.0)  # SimpleITK order; the array spacing is (2, 1, 1)
ORIGIN = (5.0, -3.0, 12.0)
DIRECTION = (0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
IMAGE_SHAPE = (10, 20, 22)  # array order (z, y, x)

ARCHITECTURE = {
    "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
    "arch_kwargs": {
        "n_stages": 2,
        "features_per_stage": [4, 8],
        "conv_op": "torch.nn.modules.conv.Conv3d",
        "kernel_sizes": [[3, 3, 3], [3, 3, 3]],
        "strides": [[1, 1, 1], [2, 2, 2]],
        "n_conv_per_stage": [1, 1],
        "n_conv_per_stage_decoder": [1],
        "conv_bias": True,
        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
        "norm_op_kwargs": {"eps": 1e-5, "affine": True},
        "dropout_op": None,
        "dropout_op_kwargs": None,
        "nonlin": "torch.nn.LeakyReLU",
        "nonlin_kwargs": {"inplace": True},
    },
    "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
}

DATASET_JSON = {
    "channel_names": {"0": "T1", "1": "T2"},
    "labels": {"background": 0, "a": 1, "b": 2},
    "numTraining": 2,
    "file_ending": ".nii.gz",
}


def tiny_plans(previous_stage: str | None = None) -> dict:
    """Plans with one 3d_fullres configuration (patch 8x16x16, spacing 2) of a 2-stage PlainConvUNet."""
    configuration = {
        "data_identifier": "nnUNetPlans_3d_fullres",
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2,
        "patch_size": [8, 16, 16],
        "median_image_size_in_voxels": [10, 10, 11],
        "spacing": [2.0, 2.0, 2.0],
        "normalization_schemes": ["ZScoreNormalization", "ZScoreNormalization"],
        "use_mask_for_norm": [False, False],
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
        "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
        "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None},
        "batch_dice": False,
        "architecture": ARCHITECTURE,
    }
    if previous_stage:
        configuration["previous_stage"] = previous_stage
    return {
        "dataset_name": "Dataset990_Tiny",
        "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [2.0, 1.0, 1.0],
        "original_median_shape_after_transp": [10, 20, 22],
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "configurations": {"3d_fullres": configuration},
        "experiment_planner_used": "ExperimentPlanner",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {},
    }


def make_model_folder(
    folder: Path,
    num_folds: int = 2,
    previous_stage: str | None = None,
    checkpoint_names: Sequence[str] = ("checkpoint_final.pth",),
) -> Path:
    """Write plans.json, dataset.json and randomly initialised checkpoints (nnU-Net v2 format) per fold.

    The k-th checkpoint name of fold f gets the weights of seed f + 1000 k, so every checkpoint differs.
    """
    folder.mkdir(parents=True)
    (folder / "plans.json").write_text(json.dumps(tiny_plans(previous_stage)))
    (folder / "dataset.json").write_text(json.dumps(DATASET_JSON))
    for fold in range(num_folds):
        (folder / f"fold_{fold}").mkdir()
        for k, name in enumerate(checkpoint_names):
            torch.manual_seed(fold + 1000 * k)
            num_inputs = 2 + (2 if previous_stage else 0)  # a cascade also sees the previous stage's labels 1 and 2
            network = build_network(ArchitectureSpec.from_dict(ARCHITECTURE), num_inputs, 3, deep_supervision=True)
            checkpoint = {
                "network_weights": network.state_dict(),
                "optimizer_state": {},
                "grad_scaler_state": None,
                "logging": {},
                "_best_ema": 0.0,
                "current_epoch": 1,
                "init_args": {
                    "plans": tiny_plans(),
                    "configuration": "3d_fullres",
                    "fold": fold,
                    "dataset_json": DATASET_JSON,
                    "device": torch.device("cpu"),
                },
                "trainer_name": "nnUNetTrainer",
                "inference_allowed_mirroring_axes": (0, 1, 2),
            }
            torch.save(checkpoint, folder / f"fold_{fold}" / name)
    return folder


def write_image(array: np.ndarray, path: Path, spacing=SPACING_XYZ) -> None:
    """Write ``array`` (z, y, x) with the helpers' origin and direction."""
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(ORIGIN)
    image.SetDirection(DIRECTION)
    sitk.WriteImage(image, str(path))


def write_case(folder: Path, case_id: str, seed: int, num_channels: int = 2, spacing_of_channel_1=SPACING_XYZ) -> None:
    """Write CASE_000c.nii.gz channel files: noise inside a box, a zero margin that cropping removes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for c in range(num_channels):
        array = np.zeros(IMAGE_SHAPE, dtype=np.float32)
        array[1:9, 3:18, 2:20] = rng.normal(100 + 20 * c, 10, size=(8, 15, 18))  # zero margin: cropped away
        write_image(array, folder / f"{case_id}_{c:04d}.nii.gz", spacing_of_channel_1 if c == 1 else SPACING_XYZ)
