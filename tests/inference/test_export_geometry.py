import pickle

import numpy as np
import pytest
import torch

from nnunetv2.exceptions import InferenceError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.plans import Plans
from nnunetv2.imageio.base_reader_writer import BaseReaderWriter
from nnunetv2.inference.export import (
    convert_logits_to_segmentation_with_correct_shape,
    export_prediction_from_logits,
    spacings_for_export,
)


class NpyWriter(BaseReaderWriter):
    """Writes segmentations as .npy and remembers the properties it was given."""

    supported_file_endings = (".npy",)

    def read_images(self, image_files):
        raise NotImplementedError

    def read_seg(self, seg_file):
        raise NotImplementedError

    def write_seg(self, seg, output_file, properties):
        assert str(output_file).endswith(".npy")
        with open(output_file, "wb") as f:
            np.save(f, seg)


class FailingWriter(NpyWriter):
    def write_seg(self, seg, output_file, properties):
        with open(output_file, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")


def _configuration(spacing, patch):
    return {
        "data_identifier": "x",
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2,
        "patch_size": patch,
        "median_image_size_in_voxels": patch,
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
        "architecture": {"network_class_name": "x.Y", "arch_kwargs": {}, "_kw_requires_import": []},
    }


def _plans(transpose_forward, configurations):
    backward = [transpose_forward.index(i) for i in range(len(transpose_forward))]
    return Plans.from_dict(
        {
            "dataset_name": "Dataset001_X",
            "plans_name": "nnUNetPlans",
            "original_median_spacing_after_transp": [1, 1, 1],
            "original_median_shape_after_transp": [1, 1, 1],
            "image_reader_writer": "NpyWriter",
            "transpose_forward": transpose_forward,
            "transpose_backward": backward,
            "configurations": configurations,
            "experiment_planner_used": "x",
            "label_manager": "LabelManager",
            "foreground_intensity_properties_per_channel": {},
        }
    )


def _dataset_json(labels, regions_class_order=None):
    d = {"channel_names": {"0": "MR"}, "labels": labels, "numTraining": 1, "file_ending": ".npy"}
    if regions_class_order:
        d["regions_class_order"] = regions_class_order
    return DatasetJson.from_dict(d)


def _one_hot_logits(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    return torch.from_numpy(10.0 * (np.arange(num_classes)[:, None, None, None] == labels[None]).astype(np.float32))


def _case_with_crop_transpose_and_resampling():
    """Original (10, 12, 14) at spacing (1, 2, 3); x is moved first; the crop box keeps (10, 8, 12)."""
    plans = _plans([2, 0, 1], {"3d_fullres": _configuration([3.0, 0.5, 1.0], [8, 8, 8])})
    properties = {
        "spacing": [1.0, 2.0, 3.0],
        "shape_before_cropping": [14, 10, 12],
        "bbox_used_for_cropping": [[2, 12], [1, 9], [0, 12]],
        "shape_after_cropping_and_before_resampling": [10, 8, 12],
    }
    rng = np.random.default_rng(0)
    cropped_labels = rng.integers(0, 3, size=(10, 4, 6)).repeat(2, axis=1).repeat(2, axis=2)  # (10, 8, 12)
    # the network saw the crop at spacing (3, 0.5, 1): twice as many voxels in-plane
    network_labels = cropped_labels.repeat(2, axis=1).repeat(2, axis=2)
    full = np.zeros((14, 10, 12), dtype=np.uint8)
    full[2:12, 1:9, 0:12] = cropped_labels
    expected = full.transpose(plans.transpose_backward)
    return plans, properties, _one_hot_logits(network_labels, 3), expected


def test_export_restores_the_original_geometry(tmp_path):
    plans, properties, logits, expected = _case_with_crop_transpose_and_resampling()
    dataset_json = _dataset_json({"background": 0, "a": 1, "b": 2})
    assert expected.shape == (10, 12, 14)
    path = export_prediction_from_logits(
        logits,
        properties,
        plans.configuration("3d_fullres"),
        plans,
        dataset_json,
        str(tmp_path / "case_001"),
        save_probabilities=True,
        reader_writer=NpyWriter(),
    )
    assert path == str(tmp_path / "case_001.npy")
    np.testing.assert_array_equal(np.load(path), expected)
    probabilities = np.load(tmp_path / "case_001.npz")["probabilities"]
    assert probabilities.shape == (3, 10, 12, 14) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(0), 1, atol=1e-5)
    np.testing.assert_array_equal(probabilities.argmax(0), expected)
    # outside the crop box (original x < 2 after transposing back) background is certain
    assert np.all(probabilities[0, :, :, :2] == 1)
    with open(tmp_path / "case_001.pkl", "rb") as f:
        assert pickle.load(f) == properties
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case_001.npy", "case_001.npz", "case_001.pkl"]


def test_convert_returns_segmentation_only_unless_asked():
    plans, properties, logits, expected = _case_with_crop_transpose_and_resampling()
    dataset_json = _dataset_json({"background": 0, "a": 1, "b": 2})
    seg = convert_logits_to_segmentation_with_correct_shape(
        logits.numpy(), properties, plans.configuration("3d_fullres"), plans, dataset_json
    )
    assert isinstance(seg, np.ndarray) and seg.dtype == np.uint8
    np.testing.assert_array_equal(seg, expected)


def test_2d_configuration_keeps_the_slice_spacing():
    plans = _plans([2, 0, 1], {"2d": _configuration([0.5, 1.0], [8, 8])})
    properties = {"spacing": [1.0, 2.0, 3.0]}
    current, original = spacings_for_export(properties, plans.configuration("2d"), plans)
    assert original == [3.0, 1.0, 2.0] and current == [3.0, 0.5, 1.0]


def test_2d_image_with_2d_configuration():
    plans = _plans([0, 1, 2], {"2d": _configuration([1.0, 1.0], [8, 8])})
    properties = {
        "spacing": [999.0, 0.5, 0.5],
        "shape_before_cropping": [1, 20, 24],
        "bbox_used_for_cropping": [[0, 1], [0, 20], [0, 24]],
        "shape_after_cropping_and_before_resampling": [1, 20, 24],
    }
    labels = np.zeros((1, 10, 12), dtype=np.int64)
    labels[0, 2:6, 3:9] = 1
    seg = convert_logits_to_segmentation_with_correct_shape(
        _one_hot_logits(labels, 2),
        properties,
        plans.configuration("2d"),
        plans,
        _dataset_json({"background": 0, "fg": 1}),
    )
    assert seg.shape == (1, 20, 24)
    np.testing.assert_array_equal(seg, labels.repeat(2, axis=1).repeat(2, axis=2))


def test_regions_are_painted_in_order_and_zero_outside_the_crop(tmp_path):
    plans = _plans([0, 1, 2], {"3d_fullres": _configuration([1.0, 1.0, 1.0], [4, 4, 4])})
    properties = {
        "spacing": [1.0, 1.0, 1.0],
        "shape_before_cropping": [3, 6, 6],
        "bbox_used_for_cropping": [[0, 3], [1, 5], [1, 5]],
        "shape_after_cropping_and_before_resampling": [3, 4, 4],
    }
    whole = np.zeros((3, 4, 4), dtype=bool)
    whole[:, :3, :3] = True
    core = np.zeros((3, 4, 4), dtype=bool)
    core[:, 1:2, 1:2] = True
    logits = torch.from_numpy(np.stack([np.where(whole, 5.0, -5.0), np.where(core, 5.0, -5.0)]).astype(np.float32))
    dataset_json = _dataset_json({"background": 0, "whole": [1, 2], "core": 2}, regions_class_order=[1, 2])
    seg, probabilities = convert_logits_to_segmentation_with_correct_shape(
        logits, properties, plans.configuration("3d_fullres"), plans, dataset_json, return_probabilities=True
    )
    expected = np.zeros((3, 6, 6), dtype=np.uint8)
    expected[:, 1:4, 1:4] = 1
    expected[:, 2, 2] = 2
    np.testing.assert_array_equal(seg, expected)
    assert probabilities.shape == (2, 3, 6, 6) and np.all(probabilities[:, :, 0] == 0)


def test_failed_write_leaves_no_segmentation_file(tmp_path):
    plans, properties, logits, _ = _case_with_crop_transpose_and_resampling()
    with pytest.raises(OSError, match="disk full"):
        export_prediction_from_logits(
            logits,
            properties,
            plans.configuration("3d_fullres"),
            plans,
            _dataset_json({"background": 0, "a": 1, "b": 2}),
            str(tmp_path / "c"),
            reader_writer=FailingWriter(),
        )
    assert list(tmp_path.iterdir()) == []


def test_channel_count_mismatch_is_reported():
    plans, properties, logits, _ = _case_with_crop_transpose_and_resampling()
    with pytest.raises(InferenceError, match="the prediction has 3 channels but the dataset's labels need 2"):
        convert_logits_to_segmentation_with_correct_shape(
            logits, properties, plans.configuration("3d_fullres"), plans, _dataset_json({"background": 0, "a": 1})
        )
