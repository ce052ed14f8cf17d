"""Export works slab by slab and in place: same results as on whole arrays, the caller's logits untouched."""

import numpy as np
import pytest
import torch

import nnunetv2.inference.export as export
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.plans import Plans
from nnunetv2.preprocessing.resampling import resample_data_or_seg_to_shape

TRANSPOSE_FORWARD = [2, 0, 1]
TRANSPOSE_BACKWARD = [1, 2, 0]


def _plans() -> Plans:
    configuration = {
        "data_identifier": "x",
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2,
        "patch_size": [8, 8, 8],
        "median_image_size_in_voxels": [8, 8, 8],
        "spacing": [3.0, 0.5, 1.0],
        "normalization_schemes": ["ZScoreNormalization"],
        "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
        "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
        "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None},
        "batch_dice": False,
        "architecture": {"network_class_name": "x.Y", "arch_kwargs": {}, "_kw_requires_import": []},
    }
    return Plans.from_dict(
        {
            "dataset_name": "Dataset001_X",
            "plans_name": "nnUNetPlans",
            "original_median_spacing_after_transp": [1, 1, 1],
            "original_median_shape_after_transp": [1, 1, 1],
            "image_reader_writer": "SimpleITKIO",
            "transpose_forward": TRANSPOSE_FORWARD,
            "transpose_backward": TRANSPOSE_BACKWARD,
            "configurations": {"3d_fullres": configuration},
            "experiment_planner_used": "x",
            "label_manager": "LabelManager",
            "foreground_intensity_properties_per_channel": {},
        }
    )


def _dataset_json(regions: bool) -> DatasetJson:
    labels = {"background": 0, "whole": [1, 2], "core": 2} if regions else {"background": 0, "a": 1, "b": 2}
    d = {"channel_names": {"0": "MR"}, "labels": labels, "numTraining": 1, "file_ending": ".nii.gz"}
    if regions:
        d["regions_class_order"] = [1, 2]
    return DatasetJson.from_dict(d)


def _case(resample: bool, regions: bool):
    """Random logits of a cropped, transposed case; with ``resample`` the network's grid is finer."""
    properties = {
        "spacing": [1.0, 2.0, 3.0],
        "shape_before_cropping": [14, 10, 12],
        "bbox_used_for_cropping": [[2, 12], [1, 9], [0, 12]],
        "shape_after_cropping_and_before_resampling": [10, 8, 12],
    }
    network_shape = (10, 16, 24) if resample else (10, 8, 12)
    channels = 2 if regions else 3
    logits = np.random.default_rng(0).normal(0, 3, size=(channels, *network_shape)).astype(np.float32)
    return properties, logits


def _reference(logits: np.ndarray, properties: dict, regions: bool) -> tuple[np.ndarray, np.ndarray]:
    """Whole-array computation: resample, softmax/sigmoid, labels, uncrop, transpose back."""
    target = properties["shape_after_cropping_and_before_resampling"]
    if list(logits.shape[1:]) != target:
        logits = resample_data_or_seg_to_shape(logits, target, [3.0, 0.5, 1.0], [3.0, 1.0, 2.0], order=1)
    if regions:
        probabilities = torch.sigmoid(torch.from_numpy(logits)).numpy()
        cropped = np.zeros(target, dtype=np.uint8)
        cropped[probabilities[0] > 0.5] = 1
        cropped[probabilities[1] > 0.5] = 2
    else:
        probabilities = torch.softmax(torch.from_numpy(logits), 0).numpy()
        cropped = probabilities.argmax(0).astype(np.uint8)
    box = tuple(slice(a, b) for a, b in properties["bbox_used_for_cropping"])
    segmentation = np.zeros(properties["shape_before_cropping"], dtype=np.uint8)
    segmentation[box] = cropped
    full = np.zeros((probabilities.shape[0], *properties["shape_before_cropping"]), dtype=np.float32)
    if not regions:
        full[0] = 1
    full[(slice(None),) + box] = probabilities
    return segmentation.transpose(TRANSPOSE_BACKWARD), full.transpose([0] + [a + 1 for a in TRANSPOSE_BACKWARD])


@pytest.mark.parametrize("regions", [False, True])
@pytest.mark.parametrize("resample", [False, True])
@pytest.mark.parametrize("slab_voxels", [7, 2**22])  # 7: many slabs of one slice each, the last one partial
def test_slab_wise_export_equals_the_whole_array_computation(monkeypatch, regions, resample, slab_voxels):
    monkeypatch.setattr(export, "_SLAB_VOXELS", slab_voxels)
    properties, logits = _case(resample, regions)
    original = logits.copy()
    plans = _plans()
    expected_segmentation, expected_probabilities = _reference(logits, properties, regions)
    segmentation, probabilities = export.convert_logits_to_segmentation_with_correct_shape(
        logits, properties, plans.configuration("3d_fullres"), plans, _dataset_json(regions), return_probabilities=True
    )
    np.testing.assert_array_equal(logits, original)  # the caller's logits are not overwritten
    np.testing.assert_array_equal(segmentation, expected_segmentation)
    assert probabilities.dtype == np.float32 and probabilities.shape == expected_probabilities.shape
    np.testing.assert_allclose(probabilities, expected_probabilities, atol=1e-6)
    segmentation_only = export.convert_logits_to_segmentation_with_correct_shape(
        logits, properties, plans.configuration("3d_fullres"), plans, _dataset_json(regions)
    )
    np.testing.assert_array_equal(segmentation_only, expected_segmentation)
    np.testing.assert_array_equal(logits, original)


def test_probabilities_view_is_saved_like_a_contiguous_array(tmp_path):
    properties, logits = _case(resample=True, regions=False)
    plans = _plans()
    _, probabilities = export.convert_logits_to_segmentation_with_correct_shape(
        logits, properties, plans.configuration("3d_fullres"), plans, _dataset_json(False), return_probabilities=True
    )
    np.savez_compressed(tmp_path / "p.npz", probabilities=probabilities)
    np.testing.assert_array_equal(np.load(tmp_path / "p.npz")["probabilities"], probabilities)


def test_ties_go_to_the_first_label_as_with_argmax():
    properties, logits = _case(resample=True, regions=False)
    logits[:] = 0.0
    logits[2, :, :4] = 1.0  # a clear winner in part of the image, ties everywhere else
    plans = _plans()
    segmentation = export.convert_logits_to_segmentation_with_correct_shape(
        logits, properties, plans.configuration("3d_fullres"), plans, _dataset_json(False)
    )
    expected, _ = _reference(logits, properties, regions=False)
    np.testing.assert_array_equal(segmentation, expected)
    assert set(np.unique(segmentation)) == {0, 2}
