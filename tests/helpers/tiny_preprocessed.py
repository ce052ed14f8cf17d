"""Test helpers: tiny hand-made preprocessed datasets (plans, cases, gt) for trainer runs.

Import as ``from tests.helpers.tiny_preprocessed import ...``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nnunetv2.dataset.preprocessed_case import sample_class_locations, save_preprocessed_case
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

NAME_3D, NAME_2D = "Dataset981_TinyTrain3D", "Dataset982_TinyTrain2D"


def tiny_architecture(dim: int, n_stages: int) -> dict:
    """A PlainConvUNet with 4, 8, 16... features and one conv per stage."""
    conv = "Conv3d" if dim == 3 else "Conv2d"
    return {
        "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
        "arch_kwargs": {
            "n_stages": n_stages,
            "features_per_stage": [4 * 2**i for i in range(n_stages)],
            "conv_op": f"torch.nn.modules.conv.{conv}",
            "kernel_sizes": [[3] * dim] * n_stages,
            "strides": [[1] * dim] + [[2] * dim] * (n_stages - 1),
            "n_conv_per_stage": [1] * n_stages,
            "n_conv_per_stage_decoder": [1] * (n_stages - 1),
            "conv_bias": True,
            "norm_op": f"torch.nn.modules.instancenorm.InstanceNorm{dim}d",
            "norm_op_kwargs": {"eps": 1e-05, "affine": True},
            "dropout_op": None,
            "dropout_op_kwargs": None,
            "nonlin": "torch.nn.LeakyReLU",
            "nonlin_kwargs": {"inplace": True},
        },
        "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
    }


def tiny_configuration(name: str, patch: list[int], n_stages: int) -> dict:
    """A configuration at spacing 1 (linear resampling, z-score) with a tiny network and batch size 2."""
    resampling = {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None}
    return {
        "data_identifier": f"nnUNetPlans_{name}",
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2,
        "patch_size": patch,
        "median_image_size_in_voxels": [20] * len(patch),
        "spacing": [1.0] * len(patch),
        "normalization_schemes": ["ZScoreNormalization"],
        "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": resampling,
        "resampling_fn_seg_kwargs": dict(resampling, is_seg=True),
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": resampling,
        "batch_dice": True,
        "architecture": tiny_architecture(len(patch), n_stages),
    }


def make_preprocessed_dataset(root: Path, dim: int, num_cases: int = 5, regions: bool = False) -> str:
    """Write a tiny preprocessed dataset: a bright blob (label 1) in noise; 2D marks a third of it 'ignore'.

    With ``regions`` (2D) the blob's brighter core is label 2 and the regions are whole (1, 2) and core (2).
    """
    name = NAME_3D if dim == 3 else NAME_2D
    folder = root / "nnUNet_preprocessed" / name
    configuration = "3d_fullres" if dim == 3 else "2d"
    shape = (20, 20, 20) if dim == 3 else (1, 24, 24)
    labels = {"background": 0, "blob": 1} if dim == 3 else {"background": 0, "blob": 1, "ignore": 2}
    if regions:
        labels = {"background": 0, "whole": [1, 2], "core": 2, "ignore": 3}
    plans = {
        "dataset_name": name,
        "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [1.0, 1.0, 1.0] if dim == 3 else [999.0, 1.0, 1.0],
        "original_median_shape_after_transp": list(shape),
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "configurations": {configuration: tiny_configuration(configuration, [16] * dim, 2 if dim == 3 else 3)},
        "experiment_planner_used": "hand-written",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": {"mean": 1.0, "std": 1.0}},
    }
    if dim == 3:  # a lowres stage on the fullres data (same spacing) feeding a cascade
        plans["configurations"]["3d_lowres"] = dict(
            plans["configurations"]["3d_fullres"], next_stage="3d_cascade_fullres"
        )
        plans["configurations"]["3d_cascade_fullres"] = {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"}
    dataset_json = {
        "channel_names": {"0": "MR"},
        "labels": labels,
        "numTraining": num_cases,
        "file_ending": ".nii.gz",
        **({"regions_class_order": [1, 2]} if regions else {}),
    }
    folder.mkdir(parents=True)
    (folder / "nnUNetPlans.json").write_text(json.dumps(plans))
    (folder / "dataset.json").write_text(json.dumps(dataset_json))
    (folder / "dataset_fingerprint.json").write_text(json.dumps({"spacings": [[1.0] * 3] * num_cases}))
    rng = np.random.default_rng(dim)
    grid = np.indices(shape)
    sitk_geometry = {"spacing": [1.0] * dim, "origin": [0.0] * dim, "direction": np.eye(dim).ravel().tolist()}
    for i in range(num_cases):
        centre = rng.uniform(6, np.maximum(np.array(shape) - 6, 6))  # 2D: slice 0
        radius = rng.uniform(4, 6)
        distance2 = ((grid - centre.reshape(-1, 1, 1, 1)) ** 2).sum(0)[None]
        seg = (distance2 <= radius**2).astype(np.int16) + (regions and distance2 <= (radius / 2) ** 2)
        data = (seg * 2.0 + rng.normal(0, 0.4, seg.shape)).astype(np.float32)
        stored_seg = seg.copy()
        if dim == 2:  # sparse annotation: the left third of every image is unlabelled
            stored_seg[..., :8] = labels["ignore"]
        properties = {
            "spacing": [1.0, 1.0, 1.0] if dim == 3 else [999.0, 1.0, 1.0],
            "shape_before_cropping": list(shape),
            "bbox_used_for_cropping": [[0, s] for s in shape],
            "shape_after_cropping_and_before_resampling": list(shape),
            "sitk_stuff": sitk_geometry,
        }
        keys = [1] if dim == 3 else [(1, 2), 2, 0] if regions else [1, 0]
        save_preprocessed_case(
            folder / f"nnUNetPlans_{configuration}",
            f"case_{i}",
            data,
            stored_seg,
            properties,
            sample_class_locations(stored_seg, keys),
        )
        (folder / "gt_segmentations").mkdir(exist_ok=True)
        SimpleITKIO().write_seg(stored_seg[0], str(folder / "gt_segmentations" / f"case_{i}.nii.gz"), properties)
    return name
