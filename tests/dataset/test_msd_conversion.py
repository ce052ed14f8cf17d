import json
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from nnunetv2.cli.dataset_conversion import convert_msd_entry
from nnunetv2.dataset import msd_conversion
from nnunetv2.dataset.integrity import verify_dataset_integrity
from nnunetv2.dataset.msd_conversion import convert_msd_dataset
from nnunetv2.exceptions import DatasetError
from nnunetv2.formats.dataset_json import DatasetJson

_SPACING_4D = (0.9, 0.8, 2.5, 1.0)
_ORIGIN_4D = (-10.0, 20.0, 5.0, 0.0)
# a 3D rotation (x <-> y swap, z flipped) embedded in the 4x4 direction
_DIRECTION_4D = (0, 1, 0, 0, 1, 0, 0, 0, 0, 0, -1, 0, 0, 0, 0, 1)


def _write_4d(path, array_czyx):
    image = sitk.JoinSeries([sitk.GetImageFromArray(channel) for channel in array_czyx])
    image.SetSpacing(_SPACING_4D)
    image.SetOrigin(_ORIGIN_4D)
    image.SetDirection([float(d) for d in _DIRECTION_4D])
    sitk.WriteImage(image, str(path))


def _write_label(path, array_zyx):
    image = sitk.GetImageFromArray(array_zyx)
    image.SetSpacing(_SPACING_4D[:3])
    image.SetOrigin(_ORIGIN_4D[:3])
    image.SetDirection((0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0))
    sitk.WriteImage(image, str(path))


@pytest.fixture
def msd_task(tmp_path):
    """A fake Task05_Prostate: two training cases with 4D two-channel images, one test image."""
    task = tmp_path / "Task05_Prostate"
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (task / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for case in ("prostate_00", "prostate_04"):
        images = rng.normal(100, 10, (2, 6, 7, 8)).astype(np.float32)
        label = rng.integers(0, 3, (6, 7, 8)).astype(np.uint8)
        _write_4d(task / "imagesTr" / f"{case}.nii.gz", images)
        _write_label(task / "labelsTr" / f"{case}.nii.gz", label)
        # macOS resource forks shipped in the MSD archives
        (task / "imagesTr" / f"._{case}.nii.gz").write_bytes(b"\x00junk")
        (task / "labelsTr" / f"._{case}.nii.gz").write_bytes(b"\x00junk")
        arrays[case] = (images, label)
    _write_4d(task / "imagesTs" / "prostate_03.nii.gz", rng.normal(0, 1, (2, 6, 7, 8)).astype(np.float32))
    msd_json = {
        "name": "PROSTATE",
        "description": "Prostate transitional zone and peripheral zone segmentation",
        "tensorImageSize": "4D",
        "modality": {"0": "T2", "1": "ADC"},
        "labels": {"0": "background", "1": "PZ", "2": "TZ"},
        "numTraining": 2,
        "numTest": 1,
        "training": [{"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"} for c in arrays],
        "test": ["./imagesTs/prostate_03.nii.gz"],
    }
    (task / "dataset.json").write_text(json.dumps(msd_json))
    return task, arrays


def test_converts_4d_task_keeping_geometry(nnunet_env, msd_task):
    task, arrays = msd_task
    out = convert_msd_dataset(task)
    assert out == nnunet_env["nnUNet_raw"] / "Dataset005_Prostate"
    dataset_json = DatasetJson.load(out / "dataset.json")
    assert dataset_json.channel_names == {"0": "T2", "1": "ADC"}
    assert dataset_json.labels == {"background": 0, "PZ": 1, "TZ": 2}
    assert dataset_json.num_training == 2 and dataset_json.file_ending == ".nii.gz"
    assert dataset_json.extra["name"] == "PROSTATE"
    assert sorted(p.name for p in (out / "imagesTr").iterdir()) == [
        "prostate_00_0000.nii.gz",
        "prostate_00_0001.nii.gz",
        "prostate_04_0000.nii.gz",
        "prostate_04_0001.nii.gz",
    ]
    assert sorted(p.name for p in (out / "imagesTs").iterdir()) == [
        "prostate_03_0000.nii.gz",
        "prostate_03_0001.nii.gz",
    ]
    assert sorted(p.name for p in (out / "labelsTr").iterdir()) == ["prostate_00.nii.gz", "prostate_04.nii.gz"]
    for case, (images, _label) in arrays.items():
        for c in range(2):
            channel = sitk.ReadImage(str(out / "imagesTr" / f"{case}_{c:04d}.nii.gz"))
            assert channel.GetDimension() == 3
            np.testing.assert_array_equal(sitk.GetArrayFromImage(channel), images[c])
            np.testing.assert_allclose(channel.GetSpacing(), _SPACING_4D[:3], rtol=1e-6)
            np.testing.assert_allclose(channel.GetOrigin(), _ORIGIN_4D[:3])
            np.testing.assert_allclose(channel.GetDirection(), (0, 1, 0, 1, 0, 0, 0, 0, -1))
        label_name = f"labelsTr/{case}.nii.gz"
        assert (out / label_name).read_bytes() == (task / label_name).read_bytes()
    verify_dataset_integrity(out)
    assert [p.name for p in nnunet_env["nnUNet_raw"].iterdir()] == ["Dataset005_Prostate"]


def test_pool_gives_the_same_files(nnunet_env, msd_task, monkeypatch):
    task, arrays = msd_task
    monkeypatch.setattr(msd_conversion, "_MIN_FILES_FOR_POOL", 1)
    out = convert_msd_dataset(task, num_processes=2)
    assert len(list((out / "imagesTr").iterdir())) == 4 and len(list((out / "imagesTs").iterdir())) == 2
    channel = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "imagesTr" / "prostate_04_0001.nii.gz")))
    np.testing.assert_array_equal(channel, arrays["prostate_04"][0][1])


def test_overwrite_id_and_taken_id(nnunet_env, msd_task):
    task, _ = msd_task
    assert convert_msd_dataset(task, overwrite_id=123).name == "Dataset123_Prostate"
    (nnunet_env["nnUNet_raw"] / "Dataset005_Other").mkdir()
    with pytest.raises(DatasetError, match="dataset id 005 is already used by .*Dataset005_Other"):
        convert_msd_dataset(task)


def test_bad_tasks(nnunet_env, msd_task, tmp_path):
    task, _ = msd_task
    with pytest.raises(DatasetError, match="must be named TaskXX_Name"):
        convert_msd_dataset(task.rename(tmp_path / "Prostate"))
    task = (tmp_path / "Prostate").rename(task)
    (task / "labelsTr" / "prostate_04.nii.gz").unlink()
    with pytest.raises(DatasetError, match="prostate_04.nii.gz: label of training image .* not found"):
        convert_msd_dataset(task)
    assert list(nnunet_env["nnUNet_raw"].iterdir()) == []


def test_channel_count_mismatch_leaves_nothing(nnunet_env, msd_task):
    task, _ = msd_task
    content = json.loads((task / "dataset.json").read_text())
    content["modality"] = {"0": "T2", "1": "ADC", "2": "DWI"}
    (task / "dataset.json").write_text(json.dumps(content))
    with pytest.raises(DatasetError, match="has 2 channel\\(s\\) in 4D but dataset.json 'modality' lists 3"):
        convert_msd_dataset(task)
    assert list(nnunet_env["nnUNet_raw"].iterdir()) == []


def test_cli(nnunet_env, msd_task, monkeypatch, capsys):
    task, _ = msd_task
    monkeypatch.setattr(sys, "argv", ["nnUNetv2_convert_MSD_dataset", "-i", str(task), "-overwrite_id", "7"])
    convert_msd_entry()
    assert "Dataset007_Prostate" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["nnUNetv2_convert_MSD_dataset", "-i", str(task.parent / "Task99_None")])
    with pytest.raises(SystemExit) as info:
        convert_msd_entry()
    assert info.value.code == 1
    assert capsys.readouterr().err.strip().endswith("Task99_None: folder not found")
