import json
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunetv2.evaluation.evaluate_predictions import load_summary_json
from nnunetv2.exceptions import NnUNetError
from nnunetv2.postprocessing.determine import (
    apply_postprocessing_file_to_folder,
    apply_postprocessing_to_folder,
    determine_postprocessing,
    load_postprocessing,
)

BIN = Path(sys.executable).parent
PLANS = {
    "dataset_name": "Dataset991_PP",
    "plans_name": "nnUNetPlans",
    "original_median_spacing_after_transp": [1, 1, 1],
    "original_median_shape_after_transp": [4, 10, 10],
    "image_reader_writer": "SimpleITKIO",
    "transpose_forward": [0, 1, 2],
    "transpose_backward": [0, 1, 2],
    "configurations": {},
    "experiment_planner_used": "ExperimentPlanner",
    "label_manager": "LabelManager",
    "foreground_intensity_properties_per_channel": {},
}


def _write(seg: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(seg.astype(np.uint8))
    image.SetSpacing((0.5, 0.5, 2.0))
    sitk.WriteImage(image, str(path))


def _read(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def _folders(
    tmp_path: Path, references: list[np.ndarray], predictions: list[np.ndarray], labels: dict, regions_class_order=None
) -> tuple[Path, Path]:
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    for i, (ref, prd) in enumerate(zip(references, predictions)):
        _write(ref, gt / f"case_{i}.nii.gz")
        _write(prd, pred / f"case_{i}.nii.gz")
    dataset = {"channel_names": {"0": "MR"}, "labels": labels, "numTraining": len(references), "file_ending": ".nii.gz"}
    if regions_class_order:
        dataset["regions_class_order"] = regions_class_order
    (pred / "plans.json").write_text(json.dumps(PLANS))
    (pred / "dataset.json").write_text(json.dumps(dataset))
    return gt, pred


def _block(shape=(4, 10, 10)) -> np.ndarray:
    seg = np.zeros(shape, dtype=np.uint8)
    seg[1:3, 2:6, 2:6] = 1
    return seg


def test_removing_a_spurious_component_raises_dice_and_is_kept(tmp_path):
    references = [_block(), _block()]
    predictions = [_block(), _block()]
    predictions[0][3, 9, 9] = 1  # a stray voxel far from the organ
    predictions[1][0, 9, 0] = 1
    gt, pred = _folders(tmp_path, references, predictions, {"background": 0, "organ": 1})
    result = determine_postprocessing(pred, gt)
    assert result.operations == [[1]]
    assert result.dice_before == pytest.approx(2 * 32 / (2 * 32 + 1)) and result.dice_after == 1.0
    content = json.loads((pred / "postprocessing.json").read_text())
    assert content["postprocessing_fns"] == ["remove_all_but_largest_component_from_segmentation"]
    assert content["postprocessing_kwargs"] == [{"labels_or_regions": [1]}]
    assert content["input_folder"]["mean"]["1"]["Dice"] < content["postprocessed"]["mean"]["1"]["Dice"] == 1.0
    for i in range(2):
        assert np.array_equal(_read(pred / "postprocessed" / f"case_{i}.nii.gz"), references[i])
        assert not np.array_equal(_read(pred / f"case_{i}.nii.gz"), references[i])  # inputs untouched
    final_summary = load_summary_json(pred / "postprocessed" / "summary.json")
    assert final_summary["foreground_mean"]["Dice"] == 1.0
    assert {Path(c["prediction_file"]).parent for c in final_summary["metric_per_case"]} == {pred / "postprocessed"}
    assert not [p for p in pred.iterdir() if p.name.startswith(".")]  # no trial folders left behind

    # the stored decision applied to the folder gives the same result
    out = tmp_path / "applied"
    written = apply_postprocessing_file_to_folder(pred, out, pred / "postprocessing.json")
    assert sorted(p.name for p in written) == ["case_0.nii.gz", "case_1.nii.gz"]
    assert np.array_equal(_read(out / "case_0.nii.gz"), references[0])
    assert sitk.ReadImage(str(out / "case_0.nii.gz")).GetSpacing() == (0.5, 0.5, 2.0)


def test_postprocessing_that_would_delete_true_components_is_not_kept(tmp_path):
    reference = _block()
    reference[1:3, 8:10, 8:10] = 1  # the organ really has a second, smaller part
    gt, pred = _folders(tmp_path, [reference], [reference.copy()], {"background": 0, "organ": 1})
    result = determine_postprocessing(pred, gt, keep_postprocessed_files=False)
    assert result.operations == [] and result.dice_before == result.dice_after == 1.0
    content = json.loads((pred / "postprocessing.json").read_text())
    assert content["postprocessing_fns"] == [] and content["postprocessing_kwargs"] == []
    assert not (pred / "postprocessed").exists()


def test_per_label_steps_are_decided_separately(tmp_path):
    reference = _block()
    reference[1:3, 7:9, 2:9] = 2  # label 2 block, apart from label 1
    prediction = reference.copy()
    prediction[3, 0, 9] = 2  # stray label-2 voxel
    gt, pred = _folders(tmp_path, [reference], [prediction], {"background": 0, "a": 1, "b": 2})
    result = determine_postprocessing(pred, gt)
    # all foreground at once would delete the label-2 block (smaller than label 1): rejected
    assert result.operations == [[2]]
    assert json.loads((pred / "postprocessing.json").read_text())["postprocessing_kwargs"] == [{"labels_or_regions": 2}]
    assert np.array_equal(_read(pred / "postprocessed" / "case_0.nii.gz"), reference)


def test_regions_use_the_union_of_their_labels(tmp_path):
    reference = _block()
    reference[2, 3:5, 3:5] = 2  # core inside the whole
    prediction = reference.copy()
    prediction[0, 9, 9] = 1  # stray 'whole' voxel
    labels = {"background": 0, "whole": [1, 2], "core": 2}
    gt, pred = _folders(tmp_path, [reference], [prediction], labels, regions_class_order=[1, 2])
    result = determine_postprocessing(pred, gt)
    assert result.operations == [[1, 2]] and result.dice_after == 1.0
    assert load_postprocessing(pred / "postprocessing.json") == [[1, 2]]


def test_load_nnunet_v2_json_and_pickle(tmp_path, monkeypatch):
    v2_json = {
        "input_folder": {},
        "postprocessed": {},
        "postprocessing_fns": ["remove_all_but_largest_component_from_segmentation"] * 3,
        "postprocessing_kwargs": [
            {"labels_or_regions": [1, 2]},
            {"labels_or_regions": 3},
            {"labels_or_regions": [[1, 2], 3]},
        ],
    }
    (tmp_path / "pp.json").write_text(json.dumps(v2_json))
    assert load_postprocessing(tmp_path / "pp.json") == [[1, 2], [3], [(1, 2), 3]]

    # nnU-Net v2 pickles its function by reference; imitate that module to write such a file
    module = types.ModuleType("nnunetv2.postprocessing.remove_connected_components")

    def remove_all_but_largest_component_from_segmentation(segmentation, labels_or_regions, background_label=0):
        raise AssertionError("must never be called")

    function = remove_all_but_largest_component_from_segmentation
    function.__module__, function.__qualname__ = module.__name__, function.__name__
    module.remove_all_but_largest_component_from_segmentation = function
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with open(tmp_path / "postprocessing.pkl", "wb") as f:
        pickle.dump(([function, function], [{"labels_or_regions": [1, 2]}, {"labels_or_regions": np.int64(2)}]), f)
    monkeypatch.delitem(sys.modules, module.__name__)
    assert load_postprocessing(tmp_path / "postprocessing.pkl") == [[1, 2], [2]]


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_pickle_naming_other_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    with open(tmp_path / "postprocessing.pkl", "wb") as f:
        pickle.dump(([_Exploit(marker)], [{"labels_or_regions": 1}]), f)
    with pytest.raises(NnUNetError, match=r"postprocessing.pkl: holds the type posix\.mkdir, which is not plain data"):
        load_postprocessing(tmp_path / "postprocessing.pkl")
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (
            {"postprocessing_fns": ["binary_fill_holes"], "postprocessing_kwargs": [{}]},
            "unknown postprocessing function 'binary_fill_holes'",
        ),
        (
            {"postprocessing_fns": ["remove_all_but_largest_component_from_segmentation"], "postprocessing_kwargs": []},
            "do not pair up",
        ),
        (
            {
                "postprocessing_fns": ["remove_all_but_largest_component_from_segmentation"],
                "postprocessing_kwargs": [{"labels_or_regions": "liver"}],
            },
            "must hold integers",
        ),
        ({"operations": []}, "not a postprocessing file"),
    ],
)
def test_bad_postprocessing_files(tmp_path, content, message):
    (tmp_path / "pp.json").write_text(json.dumps(content))
    with pytest.raises(NnUNetError, match=message):
        load_postprocessing(tmp_path / "pp.json")


def test_missing_inputs(tmp_path):
    gt, pred = _folders(tmp_path, [_block()], [_block()], {"background": 0, "organ": 1})
    (pred / "plans.json").unlink()
    with pytest.raises(NnUNetError, match=r"pred/plans.json: not found; name a plans file explicitly"):
        apply_postprocessing_to_folder(pred, tmp_path / "out", [[1]])
    (tmp_path / "empty").mkdir()
    with pytest.raises(NnUNetError, match="empty: no predictions ending in .nii.gz"):
        determine_postprocessing(tmp_path / "empty", gt, plans=PLANS, dataset_json=pred / "dataset.json")
    with pytest.raises(NnUNetError, match="absent: folder not found"):
        determine_postprocessing(tmp_path / "absent", gt, plans=PLANS, dataset_json=pred / "dataset.json")
    with pytest.raises(NnUNetError, match="nothing.json: file not found"):
        load_postprocessing(tmp_path / "nothing.json")


def test_apply_postprocessing_command(tmp_path):
    reference = _block()
    prediction = reference.copy()
    prediction[0, 0, 0] = 1
    gt, pred = _folders(tmp_path, [reference], [prediction], {"background": 0, "organ": 1})
    pp_file = tmp_path / "postprocessing.json"
    pp_file.write_text(
        json.dumps(
            {
                "postprocessing_fns": ["remove_all_but_largest_component_from_segmentation"],
                "postprocessing_kwargs": [{"labels_or_regions": [1]}],
            }
        )
    )
    run = subprocess.run(
        [
            BIN / "nnUNetv2_apply_postprocessing",
            "-i",
            pred,
            "-o",
            tmp_path / "out",
            "-pp_pkl_file",
            pp_file,
            "-np",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert np.array_equal(_read(tmp_path / "out" / "case_0.nii.gz"), reference)
    run = subprocess.run(
        [
            BIN / "nnUNetv2_apply_postprocessing",
            "-i",
            pred,
            "-o",
            tmp_path / "out",
            "-pp_pkl_file",
            tmp_path / "missing.pkl",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert run.stderr.strip() == f"error: {tmp_path / 'missing.pkl'}: file not found"
