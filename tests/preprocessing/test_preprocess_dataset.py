"""preprocess_dataset end to end on a tiny NIfTI dataset: files, shapes, locations, gt copies, reruns, errors."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from nnunetv2.dataset.preprocessed_case import list_preprocessed_cases, load_preprocessed_case
from nnunetv2.exceptions import DatasetError, PlansError, PreprocessingError
from nnunetv2.preprocessing.preprocessor import preprocess_dataset

DATASET = "Dataset321_Tiny"
CONFIG_FOLDERS = ("nnUNetPlans_2d", "nnUNetPlans_3d_fullres", "nnUNetPlans_3d_lowres")


def _write_nifti(array: np.ndarray, path: Path) -> None:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.0, 1.0, 3.0))  # (x, y, z): array spacing [3, 1, 1]
    sitk.WriteImage(image, str(path))


def _write_raw_dataset(raw_root: Path, num_cases: int) -> Path:
    """Cases (8, 10, 12) with a nonzero box that shrinks by one voxel in x per case; labels 1 and 2 inside."""
    folder = raw_root / DATASET
    (folder / "imagesTr").mkdir(parents=True)
    (folder / "labelsTr").mkdir()
    rng = np.random.default_rng(0)
    for i in range(num_cases):
        image = np.zeros((8, 10, 12), dtype=np.float32)
        image[1:7, 2:9, 1 : 11 - i % 3] = rng.uniform(1, 9, size=(6, 7, 10 - i % 3))
        seg = np.zeros((8, 10, 12), dtype=np.uint8)
        seg[2:5, 3:6, 2:6] = 1
        seg[4:6, 6:8, 6:9] = 2
        _write_nifti(image, folder / "imagesTr" / f"case{i:02d}_0000.nii.gz")
        _write_nifti(seg, folder / "labelsTr" / f"case{i:02d}.nii.gz")
    (folder / "dataset.json").write_text(
        json.dumps(
            {
                "channel_names": {"0": "MR"},
                "labels": {"background": 0, "a": 1, "b": 2},
                "numTraining": num_cases,
                "file_ending": ".nii.gz",
            }
        )
    )
    return folder


@pytest.fixture
def tiny_dataset(nnunet_env, make_plans):
    raw = _write_raw_dataset(nnunet_env["nnUNet_raw"], num_cases=6)
    preprocessed = nnunet_env["nnUNet_preprocessed"] / DATASET
    preprocessed.mkdir()
    make_plans(fullres_spacing=(3.0, 1.0, 1.0)).save(preprocessed / "nnUNetPlans.json")
    return raw, preprocessed


def _outputs(preprocessed: Path) -> dict:
    return {
        (folder, case): load_preprocessed_case(preprocessed / folder, case)
        for folder in CONFIG_FOLDERS
        for case in list_preprocessed_cases(preprocessed / folder)
    }


def test_writes_every_configuration_and_the_reference_labels(tiny_dataset):
    raw, preprocessed = tiny_dataset
    preprocess_dataset(321, num_processes=1, show_progress=False)
    cases = [f"case{i:02d}" for i in range(6)]
    for folder in CONFIG_FOLDERS:
        assert list_preprocessed_cases(preprocessed / folder) == cases
    data, seg, props = load_preprocessed_case(preprocessed / "nnUNetPlans_3d_fullres", "case01")
    # box z 1:7, y 2:9, x 1:10 at the target spacing already
    assert props["bbox_used_for_cropping"] == [[1, 7], [2, 9], [1, 10]]
    assert props["shape_before_cropping"] == [8, 10, 12]
    assert props["shape_after_cropping_and_before_resampling"] == [6, 7, 9]
    assert data.shape == seg.shape == (1, 6, 7, 9) and data.dtype == np.float32
    assert np.allclose(props["spacing"], [3, 1, 1])
    assert sorted(props["class_locations"]) == [1, 2]
    for label, coords in props["class_locations"].items():
        assert len(coords) == (seg == label).sum() and (seg[tuple(coords.T)] == label).all()
    low, low_seg, _ = load_preprocessed_case(preprocessed / "nnUNetPlans_3d_lowres", "case01")
    assert low.shape == low_seg.shape == (1, 6, 4, 4)  # in-plane 2x coarser: round(7/2), round(9/2)
    flat, _, _ = load_preprocessed_case(preprocessed / "nnUNetPlans_2d", "case01")
    assert np.array_equal(flat, data)  # 2d keeps the 3 mm slices: same arrays
    for case in cases:
        gt = preprocessed / "gt_segmentations" / f"{case}.nii.gz"
        assert gt.read_bytes() == (raw / "labelsTr" / f"{case}.nii.gz").read_bytes()
    assert json.loads((preprocessed / "dataset.json").read_text())["labels"] == {"background": 0, "a": 1, "b": 2}


def test_worker_pool_gives_the_same_result_and_reruns_drop_removed_cases(tiny_dataset):
    raw, preprocessed = tiny_dataset
    preprocess_dataset(DATASET, num_processes=1, show_progress=False)
    serial = _outputs(preprocessed)
    for path in (raw / "imagesTr" / "case05_0000.nii.gz", raw / "labelsTr" / "case05.nii.gz"):
        path.unlink()
    (raw / "labelsTr" / "case06.nii.gz").write_bytes((raw / "labelsTr" / "case04.nii.gz").read_bytes())
    shutil.copy(raw / "imagesTr" / "case04_0000.nii.gz", raw / "imagesTr" / "case06_0000.nii.gz")
    preprocess_dataset(DATASET, num_processes=2, show_progress=False)  # 6 cases: uses worker processes
    pooled = _outputs(preprocessed)
    assert set(pooled) == {k for k in serial if k[1] != "case05"} | {(f, "case06") for f in CONFIG_FOLDERS}
    for key, (data, seg, _props) in pooled.items():
        reference = serial[(key[0], "case04")] if key[1] == "case06" else serial[key]
        assert np.array_equal(data, reference[0]) and np.array_equal(seg, reference[1])
    assert not (preprocessed / "gt_segmentations" / "case05.nii.gz").exists()
    assert (preprocessed / "gt_segmentations" / "case06.nii.gz").is_file()
    assert not list(preprocessed.rglob(".*.tmp"))


def test_configuration_choice(tiny_dataset, make_plans, caplog):
    _, preprocessed = tiny_dataset
    plans = make_plans(fullres_spacing=(3.0, 1.0, 1.0))
    del plans.configurations["3d_lowres"], plans.configurations["3d_cascade_fullres"]
    plans.save(preprocessed / "nnUNetPlans.json")
    with caplog.at_level(logging.INFO, logger="nnunetv2.preprocessing.preprocessor"):
        preprocess_dataset(
            DATASET, configurations=["2d", "3d_fullres", "3d_lowres"], num_processes=1, show_progress=False
        )
    assert "configuration 3d_lowres is not in plans nnUNetPlans; skipped" in caplog.text
    assert not (preprocessed / "nnUNetPlans_3d_lowres").exists()
    with pytest.raises(PlansError, match="configuration '3d_lowres' is not in plans 'nnUNetPlans'"):
        preprocess_dataset(DATASET, configurations=["3d_lowres"], show_progress=False)


def test_cascade_sharing_the_fullres_data_is_preprocessed_once(tiny_dataset, caplog):
    _, preprocessed = tiny_dataset
    with caplog.at_level(logging.INFO, logger="nnunetv2.preprocessing.preprocessor"):
        preprocess_dataset(
            DATASET, configurations=["3d_fullres", "3d_cascade_fullres"], num_processes=[1, 1], show_progress=False
        )
    assert "configuration 3d_cascade_fullres shares its data with 3d_fullres; preprocessed once" in caplog.text
    assert sorted(p.name for p in preprocessed.iterdir() if p.is_dir()) == [
        "gt_segmentations",
        "nnUNetPlans_3d_fullres",
    ]


def test_user_errors_are_one_line(tiny_dataset):
    raw, preprocessed = tiny_dataset
    with pytest.raises(PlansError, match=r"nnUNetPlansXL.json: plans not found \(run nnUNetv2_plan_experiment"):
        preprocess_dataset(DATASET, plans_identifier="nnUNetPlansXL", show_progress=False)
    with pytest.raises(PreprocessingError, match="got 2 process counts for 3 configurations"):
        preprocess_dataset(DATASET, num_processes=[4, 4], show_progress=False)
    (raw / "labelsTr" / "case02.nii.gz").unlink()
    with pytest.raises(DatasetError, match="case02.nii.gz: label file of case 'case02' is missing"):
        preprocess_dataset(DATASET, show_progress=False)
    _write_nifti(np.zeros((8, 10, 11), dtype=np.uint8), raw / "labelsTr" / "case02.nii.gz")
    with pytest.raises(
        DatasetError,
        match=r"case 'case02': .*case02.nii.gz: segmentation shape \(8, 10, 11\) "
        r"differs from the image shape \(8, 10, 12\)",
    ):
        preprocess_dataset(DATASET, num_processes=1, show_progress=False)
