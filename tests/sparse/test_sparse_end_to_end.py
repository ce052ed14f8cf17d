"""Sparse labels end to end on tiny generated 2D datasets.

The recommended protocol: dense dataset -> scribble copy -> plan + preprocess -> train fold 0 on
scribbles (its validation and the accumulated cross-validation count annotated voxels only) -> predict
the dense test images -> evaluate against the dense test labels. And region-based training with an
ignore label, from generation to the exported label maps.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from nnunetv2.dataset.synthetic import generate_synthetic_dataset_in_raw
from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder_with_plans
from nnunetv2.experiment_planning.pipeline import plan_and_preprocess
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
from nnunetv2.inference.predictor import predict_from_dataset_id
from nnunetv2.model_selection.accumulate_cv_results import accumulate_crossval_results_for_model
from nnunetv2.sparse.sparse_dataset import simulate_sparse_dataset_by_id
from nnunetv2.training.run_training import TrainingRequest, run_training

DENSE_ID, SPARSE_ID, REGIONS_ID = 921, 922, 923
IGNORE = 3  # background 0, blob 1, tube 2 -> the simulator adds ignore = 3
# a quarter of nnU-Net's default features: the protocol is under test, not the network's capacity
TINY_FEATURES = 8


def shrink_network(plans_file: Path, base_features: int) -> None:
    """Make every configuration's U-Net narrower (features base, 2 base, ...); preprocessing is unaffected."""
    plans = json.loads(plans_file.read_text())
    for configuration in plans["configurations"].values():
        kwargs = configuration.get("architecture", {}).get("arch_kwargs")
        if kwargs:
            kwargs["features_per_stage"] = [base_features * 2**i for i in range(kwargs["n_stages"])]
    plans_file.write_text(json.dumps(plans, indent=2))


def _point_nnunet_folders_at(root: Path, mp: pytest.MonkeyPatch) -> None:
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (root / var).mkdir()
        mp.setenv(var, str(root / var))
    mp.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)


def _plan_preprocess_and_train(dataset_id: int, root: Path, **training: int) -> tuple[Path, Path]:
    """Plan and preprocess 2d, narrow the network, train fold 0; return (preprocessed folder, fold folder)."""
    plan_and_preprocess(
        [dataset_id], configurations=["2d"], num_processes=1, num_processes_fingerprint=1, show_progress=False
    )
    preprocessed = next((root / "nnUNet_preprocessed").glob(f"Dataset{dataset_id}_*"))
    shrink_network(preprocessed / "nnUNetPlans.json", TINY_FEATURES)
    fold = run_training(
        TrainingRequest(
            dataset_id, "2d", 0, num_val_iterations_per_epoch=2, num_data_workers=0, seed=0, device="cpu", **training
        )
    )
    return preprocessed, fold


def _predict_test_images(dataset_id: int, raw: Path, output: Path) -> None:
    predict_from_dataset_id(
        raw / "imagesTs",
        output,
        dataset_id,
        "2d",
        folds=[0],
        device="cpu",
        num_processes_preprocessing=1,
        num_processes_segmentation_export=1,
        show_progress=False,
    )


@pytest.fixture(scope="module")
def scribble_run(tmp_path_factory) -> dict[str, Path]:
    """Run the protocol once; the tests below check its outputs."""
    root = tmp_path_factory.mktemp("sparse_e2e")
    with pytest.MonkeyPatch.context() as mp:
        _point_nnunet_folders_at(root, mp)
        dense = generate_synthetic_dataset_in_raw(
            DENSE_ID, "Blobs", num_cases=6, shape=(48, 48), num_test_cases=2, seed=0
        )
        sparse, fractions = simulate_sparse_dataset_by_id(DENSE_ID, SPARSE_ID, "scribble", seed=0)
        preprocessed, fold = _plan_preprocess_and_train(SPARSE_ID, root, num_epochs=4, num_iterations_per_epoch=25)
        predictions = root / "test_predictions"
        _predict_test_images(SPARSE_ID, sparse, predictions)
        crossval = accumulate_crossval_results_for_model(SPARSE_ID, "2d", folds=[0])
    return {
        "dense": dense,
        "sparse": sparse,
        "preprocessed": preprocessed,
        "fold": fold,
        "predictions": predictions,
        "crossval": crossval,
        "fractions": fractions,
    }


def test_scribbles_annotate_a_small_fraction(scribble_run):
    fractions = scribble_run["fractions"]
    assert 0 < fractions["all voxels"] < 0.2
    assert set(fractions) == {"background", "blob", "tube", "all voxels"}


def test_dense_test_predictions_reach_a_useful_dice(scribble_run):
    sparse, predictions = scribble_run["sparse"], scribble_run["predictions"]
    written = sorted(p.name for p in predictions.glob("*.nii.gz"))
    assert written == sorted(p.name for p in (sparse / "labelsTs").glob("*.nii.gz"))
    for name in written:
        predicted, _ = SimpleITKIO().read_seg(predictions / name)
        assert set(np.unique(predicted)) <= {0, 1, 2}  # dense: never the ignore value
    # the sparse dataset's dataset.json evaluates the dense labels (they hold no ignore voxel)
    summary = compute_metrics_on_folder_with_plans(
        sparse / "labelsTs", predictions, sparse / "dataset.json", scribble_run["preprocessed"] / "nnUNetPlans.json"
    )
    assert summary["mean"][1]["Dice"] > 0.7, summary["mean"]
    for case in summary["metric_per_case"]:
        counts = case["metrics"][1]
        assert counts["TP"] + counts["FP"] + counts["FN"] + counts["TN"] == 48 * 48  # every test voxel counts


def _annotated_voxels(reference_file: str) -> int:
    reference, _ = SimpleITKIO().read_seg(reference_file)
    return int((reference != IGNORE).sum())


@pytest.mark.parametrize("folder_key", ["fold", "crossval"])
def test_validation_on_scribbles_counts_annotated_voxels_only(scribble_run, folder_key):
    folder = scribble_run[folder_key]
    summary_file = folder / ("validation/summary.json" if folder_key == "fold" else "summary.json")
    summary = json.loads(summary_file.read_text())
    assert len(summary["metric_per_case"]) == 2  # fold 0 of 6 cases validates 2
    for case in summary["metric_per_case"]:
        assert os.path.dirname(case["reference_file"]).endswith("gt_segmentations")
        annotated = _annotated_voxels(case["reference_file"])
        assert annotated < 0.3 * 48 * 48  # scribbles: the reference is mostly ignore
        for label in ("1", "2"):
            counts = case["metrics"][label]
            assert counts["TP"] + counts["FP"] + counts["FN"] + counts["TN"] == annotated
    assert summary["mean"]["1"]["Dice"] > 0.5


@pytest.fixture(scope="module", params=[True, False], ids=["with_ignore", "without_ignore"])
def region_run(tmp_path_factory, request) -> dict:
    """A BraTS-style region dataset; with_ignore hides a band of rows of every label map (test ones too)."""
    with_ignore = request.param
    root = tmp_path_factory.mktemp("sparse_regions_e2e")
    with pytest.MonkeyPatch.context() as mp:
        _point_nnunet_folders_at(root, mp)
        raw = generate_synthetic_dataset_in_raw(
            REGIONS_ID,
            "Regions",
            num_cases=6,
            shape=(48, 48),
            regions=True,
            ignore_label=with_ignore,
            num_test_cases=2,
            seed=1,
        )
        preprocessed, fold = _plan_preprocess_and_train(REGIONS_ID, root, num_epochs=2, num_iterations_per_epoch=20)
        predictions = root / "test_predictions"
        _predict_test_images(REGIONS_ID, raw, predictions)
    return {
        "raw": raw,
        "preprocessed": preprocessed,
        "fold": fold,
        "predictions": predictions,
        "with_ignore": with_ignore,
    }


def test_region_training_exports_plain_label_maps(region_run):
    raw, predictions, with_ignore = region_run["raw"], region_run["predictions"], region_run["with_ignore"]
    dataset_json = json.loads((raw / "dataset.json").read_text())
    assert dataset_json["labels"] == {
        "background": 0,
        "whole": [1, 2],
        "core": [2],
        **({"ignore": IGNORE} if with_ignore else {}),
    }
    assert dataset_json["regions_class_order"] == [1, 2]
    written = sorted(predictions.glob("*.nii.gz"))
    assert len(written) == 2
    for file in written:
        predicted, _ = SimpleITKIO().read_seg(file)
        assert set(np.unique(predicted)) <= {0, 1, 2}  # painted in regions_class_order, never 'ignore'
        reference, _ = SimpleITKIO().read_seg(raw / "labelsTs" / file.name)
        assert predicted.shape == reference.shape and (reference == IGNORE).any() == with_ignore
    summary = compute_metrics_on_folder_with_plans(
        raw / "labelsTs", predictions, raw / "dataset.json", region_run["preprocessed"] / "nnUNetPlans.json"
    )
    assert set(summary["mean"]) == {(1, 2), (2,)}
    for case in summary["metric_per_case"]:
        counts = case["metrics"][(1, 2)]
        assert counts["TP"] + counts["FP"] + counts["FN"] + counts["TN"] == _annotated_voxels(case["reference_file"])
    assert summary["mean"][(1, 2)]["Dice"] > 0.5, summary["mean"]


def test_region_training_validation_is_per_region_on_annotated_voxels(region_run):
    fold = region_run["fold"]
    summary = json.loads((fold / "validation" / "summary.json").read_text())
    assert set(summary["mean"]) == {"(1, 2)", "(2,)"}
    for case in summary["metric_per_case"]:
        counts = case["metrics"]["(2,)"]
        annotated = _annotated_voxels(case["reference_file"])
        assert counts["TP"] + counts["FP"] + counts["FN"] + counts["TN"] == annotated
        assert (annotated < 48 * 48) == region_run["with_ignore"]
    log = next(fold.glob("training_log_*.txt")).read_text()
    assert "epoch 2/2" in log and "pseudo Dice [" in log
