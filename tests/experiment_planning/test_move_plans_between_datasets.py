"""nnUNetv2_move_plans_between_datasets, and the pretrain-then-fine-tune run it is for (documentation/training.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nnunetv2.dataset.synthetic import generate_synthetic_dataset_in_raw
from nnunetv2.exceptions import PlansError
from nnunetv2.experiment_planning.plans_for_pretraining.move_plans_between_datasets import move_plans_between_datasets

BIN = Path(sys.executable).parent
SOURCE, TARGET = "Dataset801_Source", "Dataset802_Target"
TINY = ["-num_epochs", "1", "-num_iterations_per_epoch", "2", "-num_val_iterations_per_epoch", "1", "-device", "cpu"]


def _run(env: dict, *command: str) -> subprocess.CompletedProcess:
    result = subprocess.run([str(BIN / command[0]), *command[1:]], env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{command}: {result.stderr}"
    return result


@pytest.fixture
def two_datasets(nnunet_env):
    generate_synthetic_dataset_in_raw(801, "Source", num_cases=5, shape=(16, 32, 32))
    # the target has another class count: the output layers do not fit and are skipped when fine-tuning
    generate_synthetic_dataset_in_raw(802, "Target", num_cases=5, shape=(16, 32, 32), num_foreground_classes=1, seed=1)
    env = {**os.environ, **{k: str(v) for k, v in nnunet_env.items()}, "OMP_NUM_THREADS": "1", "nnUNet_n_proc_DA": "0"}
    return nnunet_env, env


def test_pretrain_on_one_dataset_and_fine_tune_on_another(two_datasets):
    folders, env = two_datasets
    _run(env, "nnUNetv2_plan_and_preprocess", "-d", "801", "-c", "3d_fullres", "-np", "1", "-npfp", "1", "--no_pbar")
    _run(env, "nnUNetv2_train", "801", "3d_fullres", "0", *TINY)
    _run(env, "nnUNetv2_extract_fingerprint", "-d", "802", "-np", "1", "--no_pbar")
    _run(
        env,
        "nnUNetv2_move_plans_between_datasets",
        "-s",
        "801",
        "-t",
        "802",
        "-sp",
        "nnUNetPlans",
        "-tp",
        "nnUNetPlansFrom801",
    )
    _run(env, "nnUNetv2_preprocess", "-d", "802", "-plans_name", "nnUNetPlansFrom801", "-c", "3d_fullres", "-np", "1")
    pretrained = (
        folders["nnUNet_results"] / SOURCE / "nnUNetTrainer__nnUNetPlans__3d_fullres/fold_0/checkpoint_final.pth"
    )
    result = _run(
        env,
        "nnUNetv2_train",
        "802",
        "3d_fullres",
        "0",
        "-p",
        "nnUNetPlansFrom801",
        "-pretrained_weights",
        str(pretrained),
        *TINY,
    )

    source_plans = json.loads((folders["nnUNet_preprocessed"] / SOURCE / "nnUNetPlans.json").read_text())
    moved = json.loads((folders["nnUNet_preprocessed"] / TARGET / "nnUNetPlansFrom801.json").read_text())
    assert moved["dataset_name"] == TARGET and moved["plans_name"] == "nnUNetPlansFrom801"
    assert moved["configurations"]["3d_fullres"]["data_identifier"] == "nnUNetPlansFrom801_3d_fullres"
    for key in ("patch_size", "spacing", "architecture", "normalization_schemes"):
        assert moved["configurations"]["3d_fullres"][key] == source_plans["configurations"]["3d_fullres"][key]
    assert (folders["nnUNet_preprocessed"] / TARGET / "nnUNetPlansFrom801_3d_fullres").is_dir()
    fold = folders["nnUNet_results"] / TARGET / "nnUNetTrainer__nnUNetPlansFrom801__3d_fullres" / "fold_0"
    assert (fold / "checkpoint_final.pth").is_file()
    assert "pretrained weights from" in result.stderr and "skipped" in result.stderr


def test_moving_needs_the_source_plans_and_the_target_raw_dataset(two_datasets):
    folders, _ = two_datasets
    with pytest.raises(PlansError, match="source plans not found"):
        move_plans_between_datasets(801, 802, "nnUNetPlans")
    (folders["nnUNet_preprocessed"] / SOURCE).mkdir()
    from tests.helpers.tiny_models import tiny_plans

    (folders["nnUNet_preprocessed"] / SOURCE / "nnUNetPlans.json").write_text(json.dumps(tiny_plans()))
    path = move_plans_between_datasets(SOURCE, TARGET, "nnUNetPlans")  # no target identifier: the source's
    moved = json.loads(path.read_text())
    assert path.name == "nnUNetPlans.json" and moved["dataset_name"] == TARGET
    assert moved["configurations"]["3d_fullres"]["data_identifier"] == "nnUNetPlans_3d_fullres"
    assert moved["image_reader_writer"] == "SimpleITKIO"
    (folders["nnUNet_raw"] / TARGET / "dataset.json").unlink()
    with pytest.raises(PlansError, match="raw dataset of the target not found"):
        move_plans_between_datasets(SOURCE, TARGET, "nnUNetPlans", "Other")
