import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from nnunetv2.cli.synthetic import generate_synthetic_dataset_entry
from nnunetv2.dataset import synthetic
from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.dataset.synthetic import generate_synthetic_dataset
from nnunetv2.exceptions import DatasetError, ImageIOError
from nnunetv2.formats.dataset_json import DatasetJson


def _read(path):
    image = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(image), image


def test_default_3d_dataset_files_values_and_geometry(tmp_path):
    folder = tmp_path / "Dataset001_Synth"
    dataset_json = generate_synthetic_dataset(folder, num_cases=3, shape=(12, 20, 24), spacing=(3.0, 1.0, 0.8))
    assert DatasetJson.load(folder / "dataset.json").to_dict() == dataset_json.to_dict()
    assert dataset_json.labels == {"background": 0, "blob": 1, "tube": 2}
    assert dataset_json.num_training == 3 and dataset_json.channel_names == {"0": "T1"}
    assert sorted(p.name for p in (folder / "imagesTr").iterdir()) == [f"case_{i:03d}_0000.nii.gz" for i in range(3)]
    assert sorted(p.name for p in (folder / "labelsTr").iterdir()) == [f"case_{i:03d}.nii.gz" for i in range(3)]
    assert not (folder / "imagesTs").exists()
    origins = set()
    for i in range(3):
        image, image_itk = _read(folder / "imagesTr" / f"case_{i:03d}_0000.nii.gz")
        seg, seg_itk = _read(folder / "labelsTr" / f"case_{i:03d}.nii.gz")
        assert image.shape == seg.shape == (12, 20, 24)
        assert image.dtype == np.float32
        assert set(np.unique(seg)) == {0, 1, 2}
        np.testing.assert_allclose(image_itk.GetSpacing(), (0.8, 1.0, 3.0))
        for getter in ("GetSpacing", "GetOrigin", "GetDirection"):
            np.testing.assert_allclose(getattr(seg_itk, getter)(), getattr(image_itk, getter)(), atol=1e-5)
        origins.add(image_itk.GetOrigin())
        # MR-like: zero outside a body that does not touch the border, so cropping matters
        nonzero = image != 0
        assert np.all(seg[~nonzero] == 0)
        assert not nonzero[0].any() and not nonzero[-1].any() and not nonzero[:, :, 0].any()
        assert image[nonzero].min() > 0
        # each class has its own intensity: blob brighter than the surrounding tissue, tube darker
        tissue = nonzero & (seg == 0)
        assert image[seg == 1].mean() > image[tissue].mean() > image[seg == 2].mean()
    assert len(origins) == 3


def test_same_seed_same_data_other_seed_other_data(tmp_path):
    kwargs = dict(num_cases=1, shape=(8, 16, 16))
    generate_synthetic_dataset(tmp_path / "a", seed=3, **kwargs)
    generate_synthetic_dataset(tmp_path / "b", seed=3, **kwargs)
    generate_synthetic_dataset(tmp_path / "c", seed=4, **kwargs)
    read = [_read(tmp_path / x / "imagesTr" / "case_000_0000.nii.gz")[0] for x in "abc"]
    np.testing.assert_array_equal(read[0], read[1])
    assert not np.array_equal(read[0], read[2])


def test_ct_multichannel(tmp_path):
    folder = tmp_path / "Dataset002_CT"
    dataset_json = generate_synthetic_dataset(
        folder, num_cases=1, shape=(10, 24, 24), num_channels=2, intensity="ct", num_foreground_classes=3
    )
    assert dataset_json.channel_names == {"0": "CT", "1": "CT"}
    assert dataset_json.labels == {"background": 0, "blob": 1, "tube": 2, "spot_3": 3}
    ch0, _ = _read(folder / "imagesTr" / "case_000_0000.nii.gz")
    ch1, _ = _read(folder / "imagesTr" / "case_000_0001.nii.gz")
    seg, _ = _read(folder / "labelsTr" / "case_000.nii.gz")
    assert set(np.unique(seg)) == {0, 1, 2, 3}
    # air outside the body (corners), soft tissue around 40 HU, blob around 100 HU
    assert abs(ch0[0, 0, 0] + 1000) < 150 and abs(np.median(ch0[seg == 1]) - 100) < 15
    assert np.median(ch1[seg == 1]) > np.median(ch0[seg == 1]) + 30  # contrast phase enhances


def test_regions_and_ignore_label(tmp_path):
    folder = tmp_path / "Dataset003_Regions"
    dataset_json = generate_synthetic_dataset(folder, num_cases=2, shape=(8, 16, 16), regions=True, ignore_label=True)
    assert dataset_json.labels == {"background": 0, "whole": [1, 2], "core": [2], "ignore": 3}
    assert dataset_json.regions_class_order == [1, 2]
    manager = LabelManager.from_dataset_json(DatasetJson.load(folder / "dataset.json"))
    assert manager.has_regions and manager.ignore_label == 3
    for case in ("case_000", "case_001"):
        seg, _ = _read(folder / "labelsTr" / f"{case}.nii.gz")
        ignored_slices = np.flatnonzero((seg == 3).all(axis=(1, 2)))
        assert len(ignored_slices) == 2 and np.ptp(ignored_slices) == 1  # one slab of 8 // 4 slices
        assert (seg == 3).sum() == 2 * 16 * 16
        assert {0, 1}.issubset(set(np.unique(seg)))


def test_2d_png_with_test_cases(tmp_path):
    folder = tmp_path / "Dataset004_Png"
    dataset_json = generate_synthetic_dataset(
        folder, num_cases=2, shape=(32, 40), file_ending=".png", num_test_cases=1, num_channels=2
    )
    assert dataset_json.file_ending == ".png" and dataset_json.num_training == 2
    image = np.asarray(Image.open(folder / "imagesTr" / "case_001_0001.png"))
    seg = np.asarray(Image.open(folder / "labelsTr" / "case_001.png"))
    assert image.shape == seg.shape == (32, 40) and image.dtype == np.uint8
    assert set(np.unique(seg)) == {0, 1, 2}
    assert (folder / "imagesTs" / "case_002_0000.png").is_file()
    assert (folder / "imagesTs" / "case_002_0001.png").is_file()
    assert (folder / "labelsTs" / "case_002.png").is_file()


def test_2d_nifti_is_written_as_2d(tmp_path):
    folder = tmp_path / "Dataset005_Nii2D"
    generate_synthetic_dataset(folder, num_cases=1, shape=(20, 24), spacing=(0.5, 0.7))
    image, image_itk = _read(folder / "imagesTr" / "case_000_0000.nii.gz")
    seg, seg_itk = _read(folder / "labelsTr" / "case_000.nii.gz")
    assert image_itk.GetDimension() == 2 and image.shape == seg.shape == (20, 24)
    np.testing.assert_allclose(seg_itk.GetSpacing(), (0.7, 0.5))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(shape=(8, 16, 16), file_ending=".png"), "files are 2D"),
        (dict(shape=(16, 16), file_ending=".png", intensity="ct"), "8-bit natural images"),
        (dict(shape=(8, 16, 16), spacing=(1.0, 1.0)), "one value per axis"),
        (dict(regions=True, num_foreground_classes=1), "regions need at least 2"),
        (dict(num_cases=0), "must be integers >= 1"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(DatasetError, match=message):
        generate_synthetic_dataset(tmp_path / "Dataset001_X", **kwargs)
    assert not (tmp_path / "Dataset001_X").exists()


def test_unknown_file_ending_is_an_image_io_error(tmp_path):
    with pytest.raises(ImageIOError, match="'.xyz'"):
        generate_synthetic_dataset(tmp_path / "Dataset001_X", file_ending=".xyz")


def test_existing_folder_is_refused_and_failure_leaves_nothing(tmp_path, monkeypatch):
    folder = tmp_path / "Dataset001_X"
    generate_synthetic_dataset(folder, num_cases=1, shape=(8, 16, 16))
    with pytest.raises(DatasetError, match="already exists and is not empty"):
        generate_synthetic_dataset(folder, num_cases=1, shape=(8, 16, 16))

    calls = []

    def failing_write(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_write(*args, **kwargs)

    real_write = synthetic.write_image
    monkeypatch.setattr(synthetic, "write_image", failing_write)
    with pytest.raises(OSError, match="disk full"):
        generate_synthetic_dataset(folder, num_cases=2, shape=(8, 16, 16), overwrite=True)
    # the old dataset is untouched and no staging folder is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dataset001_X"]
    assert len(list((folder / "imagesTr").iterdir())) == 1


def _run_cli(monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["nnUNetv2_generate_synthetic_dataset", *args])
    try:
        generate_synthetic_dataset_entry()
    except SystemExit as e:
        return e.code
    return 0


def test_cli_writes_refuses_and_overwrites(nnunet_env, monkeypatch, capsys):
    raw = nnunet_env["nnUNet_raw"]
    assert _run_cli(monkeypatch, "-d", "5", "-n", "First", "--num_cases", "2", "--shape", "8", "16", "16") == 0
    assert (raw / "Dataset005_First" / "labelsTr" / "case_001.nii.gz").is_file()
    # test cases by default, so the documented chains can predict imagesTs
    assert len(list((raw / "Dataset005_First" / "imagesTs").iterdir())) == 4
    assert "Dataset005_First" in capsys.readouterr().out

    assert _run_cli(monkeypatch, "-d", "5", "-n", "Second", "--num_cases", "1") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: dataset id 005 is already used by") and "--overwrite" in err
    assert "\n" not in err and not (raw / "Dataset005_Second").exists()

    assert (
        _run_cli(
            monkeypatch,
            "-d",
            "5",
            "-n",
            "Second",
            "--num_cases",
            "1",
            "--dim",
            "2",
            "--file_ending",
            ".png",
            "--ignore",
            "--overwrite",
        )
        == 0
    )
    assert sorted(p.name for p in raw.iterdir()) == ["Dataset005_Second"]
    dataset_json = DatasetJson.load(raw / "Dataset005_Second" / "dataset.json")
    assert dataset_json.file_ending == ".png" and dataset_json.labels["ignore"] == 3


def test_cli_argument_errors(nnunet_env, monkeypatch, capsys):
    assert _run_cli(monkeypatch, "-d", "6", "-n", "X", "--dim", "2", "--shape", "8", "8", "8") == 2
    assert "--shape has 3 values but --dim is 2" in capsys.readouterr().err
    assert _run_cli(monkeypatch, "-d", "6", "-n", "X", "--classes", "1", "--regions") == 1
    assert "regions need at least 2 foreground classes" in capsys.readouterr().err
    assert _run_cli(monkeypatch, "-d", "6", "-n", "bad/name") == 1
    assert "may only contain" in capsys.readouterr().err
    assert list(nnunet_env["nnUNet_raw"].iterdir()) == []


def test_console_script_is_installed():
    script = shutil.which("nnUNetv2_generate_synthetic_dataset", path=str(Path(sys.executable).parent))
    assert script is not None
    result = subprocess.run([script, "-h"], capture_output=True, text=True)
    assert result.returncode == 0 and "--intensity" in result.stdout
    assert "(default 4; 0 writes none)" in " ".join(result.stdout.split())
