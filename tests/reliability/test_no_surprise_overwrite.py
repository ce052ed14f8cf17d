"""Work is never replaced or silently wrong: a finished fold, refused sparse options, undeclared labels."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from nnunetv2.cli.evaluate import evaluate_folder_entry
from nnunetv2.cli.sparse import simulate_sparse_annotation_entry
from nnunetv2.cli.train import train_entry
from tests.helpers.tiny_models import tiny_plans
from tests.helpers.tiny_preprocessed import NAME_3D, make_preprocessed_dataset
from tests.reliability.conftest import RAW_NAME, assert_one_error_line, make_raw_dataset, rewrite, run_entry


@pytest.fixture
def finished_fold(nnunet_env):
    make_preprocessed_dataset(nnunet_env["nnUNet_preprocessed"].parent, dim=3)
    fold = nnunet_env["nnUNet_results"] / NAME_3D / "nnUNetTrainer__nnUNetPlans__3d_fullres" / "fold_0"
    fold.mkdir(parents=True)
    (fold / "checkpoint_final.pth").write_bytes(b"the finished model")
    return fold


def test_training_a_finished_fold_again_needs_overwrite(finished_fold, monkeypatch, capsys):
    code, stderr = run_entry(monkeypatch, capsys, train_entry, NAME_3D, "3d_fullres", "0")
    assert_one_error_line(code, stderr, "fold_0: this fold has finished training", "--c", "--overwrite")
    assert (finished_fold / "checkpoint_final.pth").read_bytes() == b"the finished model"
    assert sorted(p.name for p in finished_fold.iterdir()) == ["checkpoint_final.pth"]

    code, stderr = run_entry(monkeypatch, capsys, train_entry, NAME_3D, "3d_fullres", "0", "--c", "--overwrite")
    assert_one_error_line(code, stderr, "give one of them")


def test_a_patch_size_off_the_network_stride_is_refused_before_training(nnunet_env, monkeypatch, capsys):
    make_preprocessed_dataset(nnunet_env["nnUNet_preprocessed"].parent, dim=3)
    plans_file = nnunet_env["nnUNet_preprocessed"] / NAME_3D / "nnUNetPlans.json"
    plans = json.loads(plans_file.read_text())
    plans["configurations"]["3d_fullres"]["patch_size"] = [7, 16, 16]  # a hand edit; total stride 2 on every axis
    plans_file.write_text(json.dumps(plans))
    code, stderr = run_entry(monkeypatch, capsys, train_entry, NAME_3D, "3d_fullres", "0", "-device", "cpu")
    assert_one_error_line(
        code, stderr, "patch_size [7, 16, 16] is not a multiple of the network's total stride [2, 2, 2]"
    )
    fold = nnunet_env["nnUNet_results"] / NAME_3D / "nnUNetTrainer__nnUNetPlans__3d_fullres" / "fold_0"
    assert not list(fold.glob("checkpoint_*.pth"))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["-num_epochs", "0"], "-num_epochs must be an integer >= 1, got 0"),
        (["-seed", "-1"], "-seed must be an integer >= 0, got -1"),
        (["-num_gpus", "0"], "-num_gpus must be an integer >= 1, got 0"),
        (["-save_every", "-5"], "-save_every must be an integer >= 1, got -5"),
    ],
)
def test_bad_training_numbers_write_nothing(finished_fold, monkeypatch, capsys, flags, message):
    code, stderr = run_entry(monkeypatch, capsys, train_entry, NAME_3D, "3d_fullres", "0", *flags)
    assert_one_error_line(code, stderr, message)
    assert sorted(p.name for p in finished_fold.iterdir()) == ["checkpoint_final.pth"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--mode", "slices", "--fraction", "1.5"], "fraction must be a number in (0, 1], got 1.5"),
        (["--mode", "slices", "--fraction", "-0.5"], "fraction must be a number in (0, 1], got -0.5"),
        (["--mode", "scribble", "--thickness", "0"], "thickness must be an integer >= 1, got 0"),
        (["--mode", "scribble", "--slice_fraction", "0"], "slice_fraction must be a number in (0, 1], got 0.0"),
        (["--mode", "patches", "--patch_size", "0"], "patch_size must be an integer >= 1, got 0"),
        (["--mode", "patches", "--num_patches", "0"], "num_patches must be an integer >= 1, got 0"),
        (["--mode", "patches", "--seed", "-3"], "seed must be an integer >= 0, got -3"),
    ],
)
def test_refused_sparse_options_keep_the_dataset_they_would_replace(nnunet_env, monkeypatch, capsys, flags, message):
    raw = nnunet_env["nnUNet_raw"]
    make_raw_dataset(raw / RAW_NAME, num_cases=2)
    existing = make_raw_dataset(raw / "Dataset702_Earlier", num_cases=1)
    code, stderr = run_entry(
        monkeypatch, capsys, simulate_sparse_annotation_entry, "-d", "701", "-o", "702", "--overwrite", *flags
    )
    assert_one_error_line(code, stderr, message)
    assert sorted(p.name for p in raw.iterdir()) == ["Dataset701_Reliability", "Dataset702_Earlier"]
    assert (existing / "dataset.json").is_file()


def test_evaluation_refuses_labels_the_dataset_does_not_declare(tmp_path, monkeypatch, capsys):
    dataset = make_raw_dataset(tmp_path / RAW_NAME, num_cases=2)
    predictions = tmp_path / "predictions"
    shutil.copytree(dataset / "labelsTr", predictions)
    rewrite(predictions / "case_001.nrrd", lambda a: np.where(a == 2, 9, a).astype(a.dtype))
    plans = tmp_path / "plans.json"
    plans.write_text(json.dumps(tiny_plans()))
    code, stderr = run_entry(
        monkeypatch, capsys, evaluate_folder_entry, str(dataset / "labelsTr"), str(predictions), "-djfile",
        str(dataset / "dataset.json"), "-pfile", str(plans),
    )  # fmt: skip
    assert_one_error_line(code, stderr, "case_001.nrrd: contains label values not declared in dataset.json: [9]")
    assert not (predictions / "summary.json").exists()
