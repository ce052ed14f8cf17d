import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunetv2.ensembling.ensemble import (
    average_probabilities,
    ensemble_crossvalidations,
    ensemble_folders,
    load_case_properties,
)
from nnunetv2.exceptions import NnUNetError
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

BIN = Path(sys.executable).parent
SHAPE = (2, 3, 4)
PLANS = {
    "dataset_name": "Dataset992_Ens",
    "plans_name": "nnUNetPlans",
    "original_median_spacing_after_transp": [1, 1, 1],
    "original_median_shape_after_transp": list(SHAPE),
    "image_reader_writer": "SimpleITKIO",
    "transpose_forward": [0, 1, 2],
    "transpose_backward": [0, 1, 2],
    "configurations": {},
    "experiment_planner_used": "ExperimentPlanner",
    "label_manager": "LabelManager",
    "foreground_intensity_properties_per_channel": {},
}
LABELS = {"background": 0, "a": 1, "b": 2}


def _properties(tmp_path: Path) -> dict:
    """Properties as the SimpleITK reader returns them for an image of SHAPE at spacing (2, 1, 0.5)."""
    image = sitk.GetImageFromArray(np.zeros(SHAPE, dtype=np.uint8))
    image.SetSpacing((0.5, 1.0, 2.0))
    image.SetOrigin((10.0, 20.0, 30.0))
    sitk.WriteImage(image, str(tmp_path / "geometry.nii.gz"))
    return SimpleITKIO().read_seg(tmp_path / "geometry.nii.gz")[1]


def _prediction_folder(
    folder: Path,
    probabilities: dict[str, np.ndarray],
    properties: dict,
    labels: dict = LABELS,
    regions_class_order=None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for case, p in probabilities.items():
        np.savez_compressed(folder / f"{case}.npz", probabilities=p.astype(np.float16))
        with open(folder / f"{case}.pkl", "wb") as f:
            pickle.dump(properties, f)
    dataset = {"channel_names": {"0": "CT"}, "labels": labels, "numTraining": 3, "file_ending": ".nii.gz"}
    if regions_class_order:
        dataset["regions_class_order"] = regions_class_order
    (folder / "dataset.json").write_text(json.dumps(dataset))
    (folder / "plans.json").write_text(json.dumps(PLANS))
    return folder


def _softmax_like(rng: np.random.Generator, channels: int = 3) -> np.ndarray:
    p = rng.random((channels, *SHAPE)).astype(np.float32)
    return p / p.sum(0, keepdims=True)


def _read(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def test_ensemble_is_the_argmax_of_the_mean_probabilities(tmp_path):
    properties = _properties(tmp_path)
    # hand-set voxels: the mean follows the more confident member at (0, 0, 0) and picks background, which
    # neither member chose, at (0, 0, 1); every other voxel is background
    p1 = np.zeros((3, *SHAPE), dtype=np.float32)
    p2 = np.zeros((3, *SHAPE), dtype=np.float32)
    p1[:, 0, 0, 0], p2[:, 0, 0, 0] = [0.0, 0.6, 0.4], [0.0, 0.1, 0.9]  # members: 1 and 2; mean: 2
    p1[:, 0, 0, 1], p2[:, 0, 0, 1] = [0.45, 0.55, 0.0], [0.45, 0.0, 0.55]  # members: 1 and 2; mean: 0
    p1[0, 0, 0, 2:], p2[0, 0, 0, 2:] = 1, 1
    p1[0, :, 1:], p2[0, :, 1:] = 1, 1
    p1[0, 1, 0], p2[0, 1, 0] = 1, 1
    rng = np.random.default_rng(0)
    q1, q2 = _softmax_like(rng), _softmax_like(rng)
    first = _prediction_folder(tmp_path / "m1", {"case_a": p1, "case_b": q1}, properties)
    second = _prediction_folder(tmp_path / "m2", {"case_a": p2, "case_b": q2}, properties)
    out = tmp_path / "ensemble"
    written = ensemble_folders([first, second], out, save_merged_probabilities=True)
    assert [p.name for p in written] == ["case_a.nii.gz", "case_b.nii.gz"]

    seg_a = _read(out / "case_a.nii.gz")
    assert seg_a[0, 0, 0] == 2 and seg_a[0, 0, 1] == 0 and seg_a.sum() == 2
    mean_b = (q1.astype(np.float16).astype(np.float32) + q2.astype(np.float16).astype(np.float32)) / 2
    assert np.array_equal(_read(out / "case_b.nii.gz"), mean_b.argmax(0))
    with np.load(out / "case_b.npz") as z:
        assert z["probabilities"].dtype == np.float32 and np.allclose(z["probabilities"], mean_b)
    assert load_case_properties(out / "case_b.pkl") == properties
    image = sitk.ReadImage(str(out / "case_a.nii.gz"))
    assert image.GetSpacing() == (0.5, 1.0, 2.0) and image.GetOrigin() == (10.0, 20.0, 30.0)
    assert json.loads((out / "plans.json").read_text()) == PLANS and (out / "dataset.json").is_file()


def test_regions_are_painted_in_regions_class_order(tmp_path):
    labels = {"background": 0, "whole": [1, 2], "core": 2}
    p1 = np.zeros((2, *SHAPE), dtype=np.float32)
    p2 = np.zeros((2, *SHAPE), dtype=np.float32)
    p1[0, 0], p2[0, 0] = 0.9, 0.3  # whole: mean 0.6 in slice 0
    p1[1, 0, 0], p2[1, 0, 0] = 0.2, 0.9  # core: mean 0.55 in the first row
    p1[1, 0, 1], p2[1, 0, 1] = 0.2, 0.7  # mean 0.45: not core
    properties = _properties(tmp_path)
    first = _prediction_folder(tmp_path / "m1", {"c": p1}, properties, labels, [1, 2])
    second = _prediction_folder(tmp_path / "m2", {"c": p2}, properties, labels, [1, 2])
    ensemble_folders([first, second], tmp_path / "out")
    expected = np.zeros(SHAPE, dtype=np.uint8)
    expected[0] = 1
    expected[0, 0] = 2
    assert np.array_equal(_read(tmp_path / "out" / "c.nii.gz"), expected)


def test_average_probabilities_keeps_float32_and_checks_shapes(tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez(a, probabilities=np.full((2, 2, 2), 0.25, dtype=np.float16))
    np.savez(b, probabilities=np.full((2, 2, 2), 0.75, dtype=np.float64))
    mean = average_probabilities([a, b])
    assert mean.dtype == np.float32 and np.allclose(mean, 0.5)
    np.savez(b, probabilities=np.zeros((2, 2, 3)))
    with pytest.raises(NnUNetError, match=r"b.npz: probabilities have shape \[2, 2, 3\] but .*a.npz has \[2, 2, 2\]"):
        average_probabilities([a, b])
    np.savez(b, logits=np.zeros((2, 2, 2)))
    with pytest.raises(NnUNetError, match=r"b.npz: has no 'probabilities' array \(holds: logits\)"):
        average_probabilities([a, b])
    b.write_bytes(b"not a zip")
    with pytest.raises(NnUNetError, match="b.npz: not a readable .npz file"):
        average_probabilities([a, b])


def test_cases_missing_from_a_folder_are_an_error(tmp_path):
    properties = _properties(tmp_path)
    rng = np.random.default_rng(1)
    first = _prediction_folder(tmp_path / "m1", {"x": _softmax_like(rng), "y": _softmax_like(rng)}, properties)
    second = _prediction_folder(tmp_path / "m2", {"x": _softmax_like(rng)}, properties)
    with pytest.raises(
        NnUNetError,
        match=r"m2: case 'y' has no probabilities here but does in .*m1 "
        r"\(1 case\(s\) missing\)",
    ):
        ensemble_folders([first, second], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "plain").mkdir()
    with pytest.raises(NnUNetError, match="plain: no .npz probability files; predict with --save_probabilities"):
        ensemble_folders([first, tmp_path / "plain"], tmp_path / "out")
    with pytest.raises(NnUNetError, match="at least two input folders"):
        ensemble_folders([first], tmp_path / "out")
    with pytest.raises(NnUNetError, match="must not be one of the input folders"):
        ensemble_folders([first, second], second)


def test_wrong_channel_count_and_missing_properties(tmp_path):
    properties = _properties(tmp_path)
    rng = np.random.default_rng(2)
    first = _prediction_folder(tmp_path / "m1", {"x": _softmax_like(rng, 4)}, properties)
    second = _prediction_folder(tmp_path / "m2", {"x": _softmax_like(rng, 4)}, properties)
    with pytest.raises(NnUNetError, match="x.npz: 4 probability channels, but the labels of dataset.json need 3"):
        ensemble_folders([first, second], tmp_path / "out")
    (first / "x.pkl").unlink()
    with pytest.raises(NnUNetError, match=r"m1/x.pkl: not found; it holds the geometry needed to write case 'x'"):
        ensemble_folders([first, second], tmp_path / "out")


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_properties_pickle_with_code_is_refused(tmp_path):
    properties = _properties(tmp_path)
    rng = np.random.default_rng(3)
    first = _prediction_folder(tmp_path / "m1", {"x": _softmax_like(rng)}, properties)
    second = _prediction_folder(tmp_path / "m2", {"x": _softmax_like(rng)}, properties)
    marker = tmp_path / "pwned"
    with open(first / "x.pkl", "wb") as f:
        pickle.dump({"spacing": [1, 1, 1], "evil": _Exploit(marker)}, f)
    with pytest.raises(NnUNetError, match=r"x.pkl: holds the type posix.mkdir, which is not plain data"):
        ensemble_folders([first, second], tmp_path / "out")
    assert not marker.exists() and not (tmp_path / "out" / "x.nii.gz").exists()


def test_numpy_properties_from_nnunet_v2_are_accepted(tmp_path):
    properties = {
        "spacing": np.array([2.0, 1.0, 0.5]),
        "shape_before_cropping": (2, 3, 4),
        "n": np.int64(3),
        "flags": {np.bool_(True), 1.5},
    }
    for protocol in (2, 4, 5):
        with open(tmp_path / "p.pkl", "wb") as f:
            pickle.dump(properties, f, protocol=protocol)
        loaded = load_case_properties(tmp_path / "p.pkl")
        assert np.array_equal(loaded["spacing"], properties["spacing"]) and loaded["n"] == 3
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(NnUNetError, match="expected the properties of a case"):
        load_case_properties(tmp_path / "list.pkl")


def _crossval_model(folder: Path, folds: dict[int, dict[str, np.ndarray]], properties: dict) -> Path:
    for fold, cases in folds.items():
        _prediction_folder(folder / f"fold_{fold}" / "validation", cases, properties)
    (folder / "plans.json").write_text(json.dumps(PLANS))
    (folder / "dataset.json").write_text((folder / "fold_0" / "validation" / "dataset.json").read_text())
    return folder


def test_crossvalidation_ensemble_collects_cases_across_folds(tmp_path):
    properties = _properties(tmp_path)
    rng = np.random.default_rng(4)
    probabilities = {c: (_softmax_like(rng), _softmax_like(rng)) for c in "abc"}
    # the two models used different splits: each case is found in whichever fold validated it
    first = _crossval_model(
        tmp_path / "A",
        {0: {"a": probabilities["a"][0], "b": probabilities["b"][0]}, 1: {"c": probabilities["c"][0]}},
        properties,
    )
    second = _crossval_model(
        tmp_path / "B",
        {0: {"a": probabilities["a"][1]}, 1: {"b": probabilities["b"][1], "c": probabilities["c"][1]}},
        properties,
    )
    out = tmp_path / "ens"
    written = ensemble_crossvalidations([first, second], out, folds=[0, 1], num_processes=2)
    assert [p.name for p in written] == ["a.nii.gz", "b.nii.gz", "c.nii.gz"]
    for case, (p, q) in probabilities.items():
        expected = (p.astype(np.float16).astype(np.float32) + q.astype(np.float16).astype(np.float32)).argmax(0)
        assert np.array_equal(_read(out / f"{case}.nii.gz"), expected)

    with pytest.raises(NnUNetError, match=r"fold_2/validation: not found; train fold 2 of this model first"):
        ensemble_crossvalidations([first, second], out, folds=[0, 1, 2])
    _prediction_folder(first / "fold_1" / "validation", {"a": probabilities["a"][0]}, properties)
    with pytest.raises(NnUNetError, match=r"A: case 'a' was predicted by more than one fold \(fold_0, fold_1\)"):
        ensemble_crossvalidations([first, second], out, folds=[0, 1])


def test_ensemble_command(tmp_path):
    properties = _properties(tmp_path)
    rng = np.random.default_rng(5)
    first = _prediction_folder(tmp_path / "m1", {"x": _softmax_like(rng)}, properties)
    second = _prediction_folder(tmp_path / "m2", {"x": _softmax_like(rng)}, properties)
    run = subprocess.run(
        [BIN / "nnUNetv2_ensemble", "-i", first, second, "-o", tmp_path / "out", "-np", "1", "--save_npz"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out" / "x.nii.gz").is_file() and (tmp_path / "out" / "x.npz").is_file()
    (second / "x.npz").unlink()
    run = subprocess.run(
        [BIN / "nnUNetv2_ensemble", "-i", first, second, "-o", tmp_path / "out2"], capture_output=True, text=True
    )
    assert run.returncode == 1 and run.stderr.count("\n") == 1
    assert run.stderr.startswith(f"error: {second}: no .npz probability files")


def test_ensemble_of_predictions_written_by_the_exporter(tmp_path):
    """The .npz/.pkl pair written by inference.export is what ensembling reads back."""
    import torch

    from nnunetv2.formats.dataset_json import DatasetJson
    from nnunetv2.formats.plans import Plans
    from nnunetv2.inference.export import export_prediction_from_logits

    properties = _properties(tmp_path)
    properties.update(
        {
            "shape_before_cropping": list(SHAPE),
            "bbox_used_for_cropping": [[0, s] for s in SHAPE],
            "shape_after_cropping_and_before_resampling": list(SHAPE),
        }
    )
    configuration = {
        "data_identifier": "x",
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2,
        "patch_size": list(SHAPE),
        "median_image_size_in_voxels": list(SHAPE),
        "spacing": [2.0, 1.0, 0.5],
        "normalization_schemes": ["ZScoreNormalization"],
        "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {},
        "resampling_fn_seg_kwargs": {},
        "resampling_fn_probabilities_kwargs": {},
        "batch_dice": False,
        "architecture": {"network_class_name": "x.Y", "arch_kwargs": {}, "_kw_requires_import": []},
    }
    plans = Plans.from_dict({**PLANS, "configurations": {"3d_fullres": configuration}})
    dataset_json = DatasetJson.from_dict(
        {"channel_names": {"0": "CT"}, "labels": LABELS, "numTraining": 1, "file_ending": ".nii.gz"}
    )
    rng = np.random.default_rng(6)
    logits = [torch.from_numpy(rng.normal(size=(3, *SHAPE)).astype(np.float32)) for _ in range(2)]
    folders = []
    for index, member_logits in enumerate(logits):
        folder = tmp_path / f"member{index}"
        folder.mkdir()
        export_prediction_from_logits(
            member_logits,
            properties,
            plans.configuration("3d_fullres"),
            plans,
            dataset_json,
            folder / "case",
            save_probabilities=True,
        )
        plans.save(folder / "plans.json")
        dataset_json.save(folder / "dataset.json")
        folders.append(folder)
    ensemble_folders(folders, tmp_path / "out")
    expected = (torch.softmax(logits[0], 0) + torch.softmax(logits[1], 0)).argmax(0).numpy()
    assert np.array_equal(_read(tmp_path / "out" / "case.nii.gz"), expected)
    assert sitk.ReadImage(str(tmp_path / "out" / "case.nii.gz")).GetSpacing() == (0.5, 1.0, 2.0)
