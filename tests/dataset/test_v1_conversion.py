"""nnUNetv2_convert_old_nnUNet_dataset: an nnU-Net v1 TaskXXX raw folder becomes a v2 DatasetXXX."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nnunetv2.dataset.v1_conversion import convert_v1_dataset
from nnunetv2.exceptions import DatasetError

BIN = Path(sys.executable).parent


def _v1_task(synthetic_dataset_3d: Path, folder: Path) -> Path:
    """A v1 task: the same image folders, v1's dataset.json (modality, labels by value, case lists)."""
    for name in ("imagesTr", "labelsTr"):
        shutil.copytree(synthetic_dataset_3d / name, folder / name)
    (folder / "imagesTs").mkdir()
    shutil.copy(synthetic_dataset_3d / "imagesTr" / "case_000_0000.nii.gz", folder / "imagesTs" / "test_0_0000.nii.gz")
    cases = sorted(p.name for p in (folder / "labelsTr").iterdir())
    v1 = {
        "name": "Synthetic",
        "description": "a v1 task",
        "tensorImageSize": "3D",
        "modality": {"0": "MRI"},
        "labels": {"0": "background", "1": "blob", "2": "tube"},
        "numTraining": len(cases),
        "numTest": 1,
        "training": [{"image": f"./imagesTr/{c}", "label": f"./labelsTr/{c}"} for c in cases],
        "test": ["./imagesTs/test_0.nii.gz"],
    }
    (folder / "dataset.json").write_text(json.dumps(v1))
    return folder


def test_a_v1_task_converts_to_a_valid_v2_dataset(synthetic_dataset_3d, nnunet_env, tmp_path):
    from nnunetv2.dataset.integrity import verify_dataset_integrity

    task = _v1_task(synthetic_dataset_3d, tmp_path / "Task077_Synthetic")
    env = {**os.environ, **{k: str(v) for k, v in nnunet_env.items()}}
    result = subprocess.run(
        [str(BIN / "nnUNetv2_convert_old_nnUNet_dataset"), str(task), "Dataset077_Synthetic"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    target = nnunet_env["nnUNet_raw"] / "Dataset077_Synthetic"
    dataset_json = json.loads((target / "dataset.json").read_text())
    assert dataset_json == {
        "channel_names": {"0": "MRI"},
        "labels": {"background": 0, "blob": 1, "tube": 2},
        "numTraining": 6,
        "file_ending": ".nii.gz",
        "name": "Synthetic",
        "description": "a v1 task",
    }
    for name in ("imagesTr", "labelsTr", "imagesTs"):
        assert sorted(p.name for p in (target / name).iterdir()) == sorted(p.name for p in (task / name).iterdir())
    assert (target / "imagesTr" / "case_000_0000.nii.gz").read_bytes() == (
        task / "imagesTr" / "case_000_0000.nii.gz"
    ).read_bytes()
    verify_dataset_integrity(target)  # raises on any problem


def test_conversion_refuses_existing_targets_bad_names_and_non_tasks(synthetic_dataset_3d, nnunet_env, tmp_path):
    task = _v1_task(synthetic_dataset_3d, tmp_path / "Task077_Synthetic")
    convert_v1_dataset(task, "Dataset077_Synthetic")
    with pytest.raises(DatasetError, match="already exists"):
        convert_v1_dataset(task, "Dataset077_Synthetic")
    with pytest.raises(DatasetError, match="already used by"):
        convert_v1_dataset(task, "Dataset077_Other")
    with pytest.raises(DatasetError):
        convert_v1_dataset(task, "Task078_Synthetic")
    with pytest.raises(DatasetError, match="folder not found"):
        convert_v1_dataset(tmp_path / "missing", "Dataset079_X")
    (task / "dataset.json").write_text(json.dumps({"labels": {"0": "background"}}))
    with pytest.raises(DatasetError, match="'modality' is missing"):
        convert_v1_dataset(task, "Dataset080_X")
    assert not (nnunet_env["nnUNet_raw"] / "Dataset080_X").exists()
