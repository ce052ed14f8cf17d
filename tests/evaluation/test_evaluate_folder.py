import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunetv2.evaluation.evaluate_predictions import (
    compute_metrics_on_folder,
    compute_metrics_on_folder_simple,
    compute_metrics_on_folder_with_plans,
    key_to_label_or_region,
    label_or_region_to_key,
    load_summary_json,
)
from nnunetv2.exceptions import EvaluationError
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

BIN = Path(sys.executable).parent


def _write(seg: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(seg.astype(np.uint8)), str(path))


def _cases(tmp_path: Path, num_cases: int = 2) -> tuple[Path, Path]:
    """Case a: labels 1 and 2 with known overlaps; case b: label 2 absent from both (Dice NaN)."""
    ref, pred = tmp_path / "gt", tmp_path / "pred"
    a_ref = np.zeros((2, 3, 4), dtype=np.uint8)
    a_ref[0, :, :2] = 1  # 6 voxels of label 1
    a_ref[1, 0, :] = 2  # 4 voxels of label 2
    a_ref[1, 2, 3] = 3  # ignore
    a_pred = np.zeros_like(a_ref)
    a_pred[0, :, :1] = 1  # 3 of the 6
    a_pred[1, 0, :2] = 2  # 2 of the 4
    a_pred[1, 2, 3] = 1  # under the ignore label: not counted
    _write(a_ref, ref / "a.nii.gz")
    _write(a_pred, pred / "a.nii.gz")
    b_ref = np.zeros((2, 3, 4), dtype=np.uint8)
    b_ref[0, 0, 0] = 1
    _write(b_ref, ref / "b.nii.gz")
    _write(b_ref, pred / "b.nii.gz")
    for i in range(2, num_cases):
        _write(a_ref, ref / f"c{i}.nii.gz")
        _write(a_pred, pred / f"c{i}.nii.gz")
    return ref, pred


def _plans_and_dataset_json(tmp_path: Path, labels: dict, regions_class_order=None) -> tuple[Path, Path]:
    plans = {
        "dataset_name": "Dataset001_X",
        "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [1, 1, 1],
        "original_median_shape_after_transp": [2, 3, 4],
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "configurations": {},
        "experiment_planner_used": "ExperimentPlanner",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {},
    }
    dataset = {"channel_names": {"0": "MR"}, "labels": labels, "numTraining": 2, "file_ending": ".nii.gz"}
    if regions_class_order:
        dataset["regions_class_order"] = regions_class_order
    (tmp_path / "plans.json").write_text(json.dumps(plans))
    (tmp_path / "dataset.json").write_text(json.dumps(dataset))
    return tmp_path / "dataset.json", tmp_path / "plans.json"


def test_summary_json_structure_and_nan_rule(tmp_path):
    ref, pred = _cases(tmp_path)
    out = tmp_path / "summary.json"
    results = compute_metrics_on_folder(ref, pred, out, SimpleITKIO, ".nii.gz", [1, 2], ignore_label=3)
    summary = json.loads(out.read_text())
    assert list(summary) == ["foreground_mean", "mean", "metric_per_case"]
    assert [c["prediction_file"] for c in summary["metric_per_case"]] == [
        str(pred / "a.nii.gz"),
        str(pred / "b.nii.gz"),
    ]
    assert summary["metric_per_case"][0]["reference_file"] == str(ref / "a.nii.gz")
    a = summary["metric_per_case"][0]["metrics"]
    assert set(a) == {"1", "2"}
    assert sorted(a["1"]) == sorted(["Dice", "IoU", "FP", "TP", "FN", "TN", "n_pred", "n_ref"])
    assert (a["1"]["TP"], a["1"]["FP"], a["1"]["FN"], a["1"]["TN"]) == (3, 0, 3, 17)
    assert a["1"]["Dice"] == pytest.approx(2 / 3) and a["2"]["Dice"] == pytest.approx(4 / 6)
    b = summary["metric_per_case"][1]["metrics"]
    assert b["1"]["Dice"] == 1.0 and math.isnan(b["2"]["Dice"])
    # the NaN of case b is skipped: label 2's mean is case a's Dice alone
    assert summary["mean"]["2"]["Dice"] == pytest.approx(2 / 3)
    assert summary["mean"]["1"]["Dice"] == pytest.approx((2 / 3 + 1) / 2)
    assert summary["mean"]["1"]["TP"] == pytest.approx(2.0)
    assert summary["foreground_mean"]["Dice"] == pytest.approx(((2 / 3 + 1) / 2 + 2 / 3) / 2)
    assert results["mean"][2]["Dice"] == pytest.approx(2 / 3)
    assert load_summary_json(out)["mean"].keys() == {1, 2}


def test_region_keys_follow_nnunet(tmp_path):
    ref, pred = _cases(tmp_path)
    dataset_json, plans = _plans_and_dataset_json(
        tmp_path, {"background": 0, "whole": [1, 2], "core": 2, "ignore": 3}, regions_class_order=[1, 2]
    )
    compute_metrics_on_folder_with_plans(ref, pred, dataset_json, plans)
    summary = json.loads((pred / "summary.json").read_text())
    # nnU-Net v2's keys: an int label of a region dataset stays "2"; a one-element list would be "(2,)"
    assert set(summary["mean"]) == {"(1, 2)", "2"}
    whole = summary["metric_per_case"][0]["metrics"]["(1, 2)"]
    assert (whole["TP"], whole["FP"], whole["FN"]) == (5, 0, 5)
    assert label_or_region_to_key((1, 2)) == "(1, 2)" and key_to_label_or_region("(1, 2)") == (1, 2)
    assert key_to_label_or_region("(2,)") == (2,) and key_to_label_or_region("3") == 3


def test_missing_and_extra_predictions(tmp_path):
    ref, pred = _cases(tmp_path)
    (pred / "b.nii.gz").unlink()
    with pytest.raises(EvaluationError, match="1 of 2 cases in .*gt have no prediction .* \\(first: b.nii.gz\\)"):
        compute_metrics_on_folder(ref, pred, None, SimpleITKIO, ".nii.gz", [1])
    results = compute_metrics_on_folder(ref, pred, None, SimpleITKIO, ".nii.gz", [1], chill=True)
    assert len(results["metric_per_case"]) == 1
    _write(np.zeros((2, 3, 4)), pred / "zzz.nii.gz")
    with pytest.raises(EvaluationError, match="zzz.nii.gz: prediction has no reference file"):
        compute_metrics_on_folder(ref, pred, None, SimpleITKIO, ".nii.gz", [1], chill=True)


def test_geometry_mismatch_names_the_case(tmp_path):
    ref, pred = _cases(tmp_path)
    _write(np.zeros((2, 3, 5)), pred / "b.nii.gz")
    with pytest.raises(EvaluationError, match="b.nii.gz: reference shape .* differs from prediction shape"):
        compute_metrics_on_folder(ref, pred, None, SimpleITKIO, ".nii.gz", [1])


def test_worker_processes_give_the_same_summary(tmp_path):
    ref, pred = _cases(tmp_path, num_cases=8)
    serial = compute_metrics_on_folder(ref, pred, None, SimpleITKIO, ".nii.gz", [1, 2], 3, num_processes=1)
    parallel = compute_metrics_on_folder(ref, pred, None, SimpleITKIO, ".nii.gz", [1, 2], 3, num_processes=2)
    assert json.dumps(serial, sort_keys=True, default=str) == json.dumps(parallel, sort_keys=True, default=str)


def test_simple_picks_the_reader_by_ending(tmp_path):
    ref, pred = _cases(tmp_path)
    results = compute_metrics_on_folder_simple(ref, pred, [1, 2], ignore_label=3)
    assert (pred / "summary.json").is_file()
    assert results["metric_per_case"][0]["metrics"][1]["TP"] == 3


def _run(*args):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)


def test_evaluate_simple_cli_exit_codes(tmp_path):
    ref, pred = _cases(tmp_path)
    done = _run(BIN / "nnUNetv2_evaluate_simple", ref, pred, "-l", 1, 2, "-il", 3, "-o", tmp_path / "s.json", "-np", 1)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("label 1: Dice ")  # no dataset.json: no names
    assert json.loads((tmp_path / "s.json").read_text())["metric_per_case"][0]["metrics"]["1"]["TP"] == 3
    (pred / "b.nii.gz").unlink()
    failed = _run(BIN / "nnUNetv2_evaluate_simple", ref, pred, "-l", 1)
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: 1 of 2 cases in") and len(failed.stderr.strip().splitlines()) == 1
    assert _run(BIN / "nnUNetv2_evaluate_simple", ref, pred, "-l", 1, "--chill").returncode == 0


def test_evaluate_folder_cli(tmp_path):
    ref, pred = _cases(tmp_path)
    dataset_json, plans = _plans_and_dataset_json(tmp_path, {"background": 0, "a": 1, "b": 2, "ignore": 3})
    done = _run(BIN / "nnUNetv2_evaluate_folder", ref, pred, "-djfile", dataset_json, "-pfile", plans)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("1 (a): Dice ") and "2 (b): Dice" in done.stdout  # named labels
    summary = json.loads((pred / "summary.json").read_text())
    assert summary["metric_per_case"][0]["metrics"]["1"]["TN"] == 17  # the ignore voxel is not counted
    missing = _run(BIN / "nnUNetv2_evaluate_folder", ref, pred, "-djfile", tmp_path / "nope.json", "-pfile", plans)
    assert missing.returncode == 1 and "nope.json: file not found" in missing.stderr
