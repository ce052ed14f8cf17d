import json
import logging
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunetv2.exceptions import NnUNetError
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
from nnunetv2.model_selection.accumulate_cv_results import accumulate_crossval_results_for_model, accumulate_cv_results
from nnunetv2.model_selection.find_best_configuration import (
    TrainedModelSpec,
    find_best_configuration,
    inference_instructions,
    models_from_names,
)

BIN = Path(sys.executable).parent
DATASET = "Dataset990_Fake"
SHAPE = (4, 8, 8)
CASES = {0: ["c0", "c1"], 1: ["c2", "c3"]}
LABELS = {"background": 0, "a": 1, "b": 2}


def _configuration(spacing, **extra):
    configuration = {
        "data_identifier": "x",
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2,
        "patch_size": [4] * len(spacing),
        "median_image_size_in_voxels": [4] * len(spacing),
        "spacing": spacing,
        "normalization_schemes": ["ZScoreNormalization"],
        "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {},
        "resampling_fn_seg_kwargs": {},
        "resampling_fn_probabilities_kwargs": {},
        "batch_dice": False,
        "architecture": {
            "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
            "arch_kwargs": {},
            "_kw_requires_import": [],
        },
    }
    configuration.update(extra)
    return configuration


PLANS = {
    "dataset_name": DATASET,
    "plans_name": "nnUNetPlans",
    "original_median_spacing_after_transp": [1, 1, 1],
    "original_median_shape_after_transp": list(SHAPE),
    "image_reader_writer": "SimpleITKIO",
    "transpose_forward": [0, 1, 2],
    "transpose_backward": [0, 1, 2],
    "configurations": {
        "2d": _configuration([1, 1]),
        "3d_fullres": _configuration([1, 1, 1]),
        "3d_lowres": _configuration([1, 2, 2], next_stage="3d_cascade_fullres"),
        "3d_cascade_fullres": {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"},
    },
    "experiment_planner_used": "ExperimentPlanner",
    "label_manager": "LabelManager",
    "foreground_intensity_properties_per_channel": {},
}
DATASET_JSON = {"channel_names": {"0": "MR"}, "labels": LABELS, "numTraining": 4, "file_ending": ".nii.gz"}


def _reference() -> np.ndarray:
    seg = np.zeros(SHAPE, dtype=np.uint8)
    seg[1:3, 1:4, 1:4] = 1  # 18 voxels
    seg[1:3, 5:7, 5:7] = 2  # 8 voxels, apart from label 1
    return seg


def _probabilities(misses: list[tuple], spurious: tuple) -> np.ndarray:
    """Confident one-hot of the reference, except voxels the model gets wrong and one spurious label-1 voxel."""
    reference = _reference()
    p = np.full((3, *SHAPE), 0.05, dtype=np.float32)
    for label in range(3):
        p[label][reference == label] = 0.9
    for where in misses:  # true label drops to 0.4, background rises to 0.6
        label = reference[where].max()
        p[(slice(None),) + where] = 0
        p[(0,) + where], p[(label,) + where] = 0.6, 0.4
    p[(slice(None),) + spurious] = [0.2, 0.8, 0.0]
    return p


def _write(seg: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(seg.astype(np.uint8)), str(path))


def _model(results: Path, configuration: str, probabilities: np.ndarray, npz: bool = True) -> Path:
    folder = results / DATASET / f"nnUNetTrainer__nnUNetPlans__{configuration}"
    for fold, cases in CASES.items():
        validation = folder / f"fold_{fold}" / "validation"
        for case in cases:
            _write(probabilities.argmax(0), validation / f"{case}.nii.gz")
            if npz:
                np.savez_compressed(validation / f"{case}.npz", probabilities=probabilities)
                properties = SimpleITKIO().read_seg(validation / f"{case}.nii.gz")[1]
                with open(validation / f"{case}.pkl", "wb") as f:
                    pickle.dump(properties, f)
        (validation / "summary.json").write_text("{}")  # the trainer's per-fold summary: never read here
    (folder / "plans.json").write_text(json.dumps(PLANS))
    (folder / "dataset.json").write_text(json.dumps(DATASET_JSON))
    return folder


@pytest.fixture
def fake_dataset(nnunet_env):
    preprocessed = nnunet_env["nnUNet_preprocessed"] / DATASET
    for cases in CASES.values():
        for case in cases:
            _write(_reference(), preprocessed / "gt_segmentations" / f"{case}.nii.gz")
    # these plans have no cascade (as when 3d_lowres is not needed): asking for it skips it
    plans = {**PLANS, "configurations": {k: v for k, v in PLANS["configurations"].items() if "cascade" not in k}}
    (preprocessed / "nnUNetPlans.json").write_text(json.dumps(plans))
    results = nnunet_env["nnUNet_results"]
    # 3d_fullres misses 6 label-1 voxels; 2d misses 6 others and 2 label-2 voxels; both add one stray voxel
    fullres = _model(results, "3d_fullres", _probabilities([(slice(1, 3), 1, slice(1, 4))], (3, 7, 0)))
    twod = _model(results, "2d", _probabilities([(slice(1, 3), 3, slice(1, 4)), (slice(1, 3), 5, 5)], (3, 7, 0)))
    return {"results": results, "3d_fullres": fullres, "2d": twod, "gt": preprocessed / "gt_segmentations"}


MODELS = models_from_names(["nnUNetTrainer"], ["3d_fullres", "2d", "3d_cascade_fullres"], ["nnUNetPlans"])


def test_the_ensemble_wins_and_gets_its_postprocessing(fake_dataset):
    info = find_best_configuration(990, [m for m in MODELS if m.configuration != "3d_cascade_fullres"], folds=[0, 1])
    ensemble = "ensemble___nnUNetTrainer__nnUNetPlans__3d_fullres___nnUNetTrainer__nnUNetPlans__2d___0_1"
    results = info["all_results"]
    assert list(results) == ["nnUNetTrainer__nnUNetPlans__3d_fullres", "nnUNetTrainer__nnUNetPlans__2d", ensemble]
    label_1_single = 2 * 12 / (2 * 12 + 6 + 1)
    assert results["nnUNetTrainer__nnUNetPlans__3d_fullres"] == pytest.approx((label_1_single + 1) / 2)
    assert results["nnUNetTrainer__nnUNetPlans__2d"] == pytest.approx((label_1_single + 2 * 6 / (12 + 2)) / 2)
    assert results[ensemble] == pytest.approx((2 * 18 / 37 + 1) / 2)

    best = info["best_model_or_ensemble"]
    assert best["selected_model_or_models"] == [
        {"configuration": "3d_fullres", "trainer": "nnUNetTrainer", "plans_identifier": "nnUNetPlans"},
        {"configuration": "2d", "trainer": "nnUNetTrainer", "plans_identifier": "nnUNetPlans"},
    ]
    ensemble_folder = fake_dataset["results"] / DATASET / "ensembles" / ensemble
    assert best["postprocessing_file"] == str(ensemble_folder / "postprocessing.json")
    assert best["result_on_crossval_pre_pp"] == pytest.approx(results[ensemble])
    assert best["result_on_crossval_post_pp"] == 1.0
    # all foreground at once would drop the label-2 block; label 1 alone loses only the stray voxel
    assert json.loads((ensemble_folder / "postprocessing.json").read_text())["postprocessing_kwargs"] == [
        {"labels_or_regions": 1}
    ]
    assert sorted(p.name for p in ensemble_folder.glob("*.nii.gz")) == [f"c{i}.nii.gz" for i in range(4)]

    crossval = fake_dataset["3d_fullres"] / "crossval_results_folds_0_1"
    summary = json.loads((crossval / "summary.json").read_text())
    assert len(summary["metric_per_case"]) == 4 and (crossval / "plans.json").is_file()

    dataset_results = fake_dataset["results"] / DATASET
    stored = json.loads((dataset_results / "inference_information.json").read_text())
    assert stored == {k: v for k, v in info.items() if k not in ("information_file", "instructions_file")}
    text = (dataset_results / "inference_instructions.txt").read_text()
    assert (
        f"nnUNetv2_predict -d {DATASET} -i INPUT_FOLDER -o OUTPUT_FOLDER_MODEL_1 -f 0 1 -tr nnUNetTrainer "
        f"-c 3d_fullres -p nnUNetPlans --save_probabilities" in text
    )
    assert "-o OUTPUT_FOLDER_MODEL_2 -f 0 1 -tr nnUNetTrainer -c 2d -p nnUNetPlans --save_probabilities" in text
    assert "nnUNetv2_ensemble -i OUTPUT_FOLDER_MODEL_1 OUTPUT_FOLDER_MODEL_2 -o OUTPUT_FOLDER" in text
    assert (
        f"nnUNetv2_apply_postprocessing -i OUTPUT_FOLDER -o OUTPUT_FOLDER_PP -pp_pkl_file "
        f"{ensemble_folder / 'postprocessing.json'} -np 8 -plans_json {ensemble_folder / 'plans.json'}" in text
    )


def test_without_ensembling_the_best_single_model_wins(fake_dataset):
    info = find_best_configuration(DATASET, MODELS, allow_ensembling=False, folds=[0, 1])
    assert list(info["all_results"]) == ["nnUNetTrainer__nnUNetPlans__3d_fullres", "nnUNetTrainer__nnUNetPlans__2d"]
    assert [m["configuration"] for m in info["best_model_or_ensemble"]["selected_model_or_models"]] == ["3d_fullres"]
    text = inference_instructions(info)
    assert "nnUNetv2_ensemble" not in text and "--save_probabilities" not in text
    assert "-i INPUT_FOLDER -o OUTPUT_FOLDER -f 0 1 -tr nnUNetTrainer -c 3d_fullres -p nnUNetPlans\n" in text
    assert not (fake_dataset["results"] / DATASET / "ensembles").exists()

    # --no_overwrite reuses the merged folds instead of rebuilding them
    crossval = fake_dataset["3d_fullres"] / "crossval_results_folds_0_1"
    before = crossval.stat().st_ino
    as_in_nnunet_v2 = [{"trainer": "nnUNetTrainer", "plans": "nnUNetPlans", "configuration": "3d_fullres"}]
    info = find_best_configuration(DATASET, as_in_nnunet_v2, allow_ensembling=False, folds=[0, 1], overwrite=False)
    assert crossval.stat().st_ino == before and list(info["all_results"]) == ["nnUNetTrainer__nnUNetPlans__3d_fullres"]
    find_best_configuration(DATASET, MODELS[:1], allow_ensembling=False, folds=[0, 1])
    assert crossval.stat().st_ino != before


def test_models_without_probabilities_are_not_ensembled(fake_dataset, caplog):
    (fake_dataset["2d"] / "fold_1" / "validation" / "c3.npz").unlink()
    with caplog.at_level(logging.WARNING):
        info = find_best_configuration(DATASET, MODELS, folds=[0, 1])
    assert len(info["all_results"]) == 2
    assert "nnUNetTrainer__nnUNetPlans__2d has no validation probabilities (.npz)" in caplog.text


def test_a_configuration_of_the_plans_that_was_not_trained_is_an_error(fake_dataset):
    lowres = fake_dataset["results"] / DATASET / "nnUNetTrainer__nnUNetPlans__3d_lowres"
    with pytest.raises(NnUNetError, match=f"{lowres}: not found; train nnUNetTrainer__nnUNetPlans__3d_lowres"):
        find_best_configuration(
            DATASET, models_from_names(["nnUNetTrainer"], ["3d_fullres", "3d_lowres"], ["nnUNetPlans"]), folds=[0, 1]
        )
    with pytest.raises(NnUNetError, match="none of the requested models is trained for Dataset990_Fake"):
        find_best_configuration(DATASET, [TrainedModelSpec("nnUNetTrainer", "OtherPlans", "3d_fullres")])


def test_accumulate_errors(fake_dataset, tmp_path):
    model = fake_dataset["2d"]
    with pytest.raises(NnUNetError, match=r"fold_2/validation: not found; train fold 2 of this model"):
        accumulate_cv_results(model, tmp_path / "merged", folds=[0, 1, 2])
    (model / "fold_0" / "validation" / "c2.nii.gz").write_bytes(
        (model / "fold_1" / "validation" / "c2.nii.gz").read_bytes()
    )
    with pytest.raises(NnUNetError, match=r"case c2.nii.gz was predicted by more than one fold \(fold_0, fold_1\)"):
        accumulate_cv_results(model, tmp_path / "merged", folds=[0, 1])
    assert not (tmp_path / "merged").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(NnUNetError, match="full: exists and is not empty"):
        accumulate_crossval_results_for_model(DATASET, "2d", folds=[0, 1], output_folder=tmp_path / "full")
    with pytest.raises(NnUNetError, match="nnUNetTrainer__nnUNetPlans__3d_lowres: model folder not found"):
        accumulate_crossval_results_for_model(DATASET, "3d_lowres", folds=[0, 1])


def test_missing_reference_segmentations(fake_dataset):
    import shutil

    shutil.rmtree(fake_dataset["gt"])
    with pytest.raises(NnUNetError, match=r"no reference segmentations for Dataset990_Fake: neither .*gt_segm"):
        find_best_configuration(DATASET, MODELS, folds=[0, 1])


def test_cascade_instructions_predict_the_previous_stage_first(fake_dataset):
    (fake_dataset["results"] / DATASET / "nnUNetTrainer__nnUNetPlans__3d_cascade_fullres").mkdir()
    (fake_dataset["results"] / DATASET / "nnUNetTrainer__nnUNetPlans__3d_cascade_fullres" / "plans.json").write_text(
        json.dumps(PLANS)
    )
    info = {
        "dataset_name_or_id": DATASET,
        "folds": [0, 1, 2, 3, 4],
        "best_model_or_ensemble": {
            "postprocessing_file": "PP",
            "some_plans_file": "PLANS",
            "selected_model_or_models": [
                {"configuration": "3d_cascade_fullres", "trainer": "nnUNetTrainer", "plans_identifier": "nnUNetPlans"}
            ],
        },
    }
    lines = inference_instructions(info).splitlines()
    first = lines.index(
        f"nnUNetv2_predict -d {DATASET} -i INPUT_FOLDER -o OUTPUT_FOLDER_PREV_STAGE -f 0 1 2 3 4 "
        f"-tr nnUNetTrainer -c 3d_lowres -p nnUNetPlans"
    )
    assert lines[first + 1] == (
        f"nnUNetv2_predict -d {DATASET} -i INPUT_FOLDER -o OUTPUT_FOLDER -f 0 1 2 3 4 "
        f"-tr nnUNetTrainer -c 3d_cascade_fullres -p nnUNetPlans "
        f"-prev_stage_predictions OUTPUT_FOLDER_PREV_STAGE"
    )


def test_commands(fake_dataset):
    run = subprocess.run(
        [BIN / "nnUNetv2_accumulate_crossval_results", "990", "-c", "2d", "-f", "0", "1", "-np", "1"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert (fake_dataset["2d"] / "crossval_results_folds_0_1" / "summary.json").is_file()
    run = subprocess.run(
        [
            BIN / "nnUNetv2_find_best_configuration",
            "990",
            "-c",
            "3d_fullres",
            "2d",
            "-f",
            "0",
            "1",
            "-np",
            "1",
            "--disable_ensembling",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "inference_instructions.txt" in run.stdout
    assert "nnUNetv2_apply_postprocessing" in run.stderr  # the instructions are logged
    run = subprocess.run(
        [BIN / "nnUNetv2_find_best_configuration", "990", "-c", "3d_lowres", "-f", "0", "1"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1 and run.stderr.count("\n") == 1 and "3d_lowres: not found; train" in run.stderr
