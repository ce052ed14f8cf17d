"""Bad training data is refused with one line naming the case: always during fingerprinting and preprocessing,
and with --verify_dataset_integrity also for faults that need the whole dataset."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from nnunetv2.dataset.integrity import verify_dataset_integrity
from nnunetv2.exceptions import DatasetError
from nnunetv2.experiment_planning.fingerprint import extract_fingerprint
from tests.reliability.conftest import RAW_NAME, make_raw_dataset, rewrite


def _set(value, dtype=None):
    def change(array):
        array = array.astype(dtype or array.dtype)
        array[2, 5, 5] = value
        return array

    return change


@pytest.fixture
def dataset(tmp_path):
    return make_raw_dataset(tmp_path / RAW_NAME)


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        (
            "imagesTr/case_001_0000.nrrd",
            _set(np.inf),
            "case 'case_001': image channel 0 contains inf values (1 voxel(s))",
        ),
        ("imagesTr/case_001_0000.nrrd", _set(np.nan), "case 'case_001': image channel 0 contains NaN values"),
        (
            "labelsTr/case_002.nrrd",
            _set(0.5, np.float32),
            "case 'case_002': case_002.nrrd contains label values that are not whole numbers: [0.5]",
        ),
        (
            "labelsTr/case_002.nrrd",
            _set(-1, np.int16),
            "case 'case_002': case_002.nrrd contains label values not declared in dataset.json: [-1] "
            "(declared: 0, 1, 2)",
        ),
        ("labelsTr/case_003.nrrd", _set(5), "case_003.nrrd contains label values not declared in dataset.json: [5]"),
    ],
)
def test_fingerprinting_refuses_bad_values_without_a_flag(dataset, file, change, message):
    rewrite(dataset / file, change)
    with pytest.raises(DatasetError) as info:
        extract_fingerprint(dataset, show_progress=False)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(DatasetError, match="case_00"):  # the full check agrees
        verify_dataset_integrity(dataset)


def test_fingerprinting_refuses_label_geometry_that_differs_from_the_image(dataset):
    rewrite(dataset / "labelsTr/case_004.nrrd", spacing=(1.0, 1.0, 2.5))
    with pytest.raises(
        DatasetError,
        match=r"case 'case_004': label spacing \(x, y, z\) \[1.0, 1.0, 2.5\] differs from \[1.0, 1.0, 3.0\] of the "
        r"images \(case_004.nrrd\)",
    ):
        extract_fingerprint(dataset, show_progress=False)


def _make_case_2d(dataset, case="case_000"):
    for path in (dataset / f"imagesTr/{case}_0000.nrrd", dataset / f"labelsTr/{case}.nrrd"):
        rewrite(path, lambda a: np.ascontiguousarray(a[3]))  # one slice, written as a 2D image


def test_a_2d_image_in_a_3d_dataset_is_refused_by_fingerprinting_and_verification(dataset):
    _make_case_2d(dataset)
    message = "case 'case_000' is a 2D image but 4 of 5 cases are 3D"
    with pytest.raises(DatasetError, match=message):
        extract_fingerprint(dataset, show_progress=False)
    with pytest.raises(DatasetError, match=message):
        verify_dataset_integrity(dataset)


def test_verification_names_duplicate_label_values(dataset):
    dataset_json = json.loads((dataset / "dataset.json").read_text())
    dataset_json["labels"] = {"background": 0, "blob": 1, "tube": 1}
    (dataset / "dataset.json").write_text(json.dumps(dataset_json))
    with pytest.raises(DatasetError, match="labels 'blob' and 'tube' both have the value 1"):
        verify_dataset_integrity(dataset)


def test_verification_refuses_a_class_an_ignore_label_dataset_never_annotates(tmp_path):
    dataset = make_raw_dataset(tmp_path / RAW_NAME, ignore_label=True)
    for label in sorted((dataset / "labelsTr").iterdir()):
        rewrite(label, lambda a: np.where(a == 2, 1, a).astype(a.dtype))  # 'tube' (2) is annotated nowhere
    with pytest.raises(DatasetError, match=r"class\(es\) 'tube' \(2\) are never annotated in any training case"):
        verify_dataset_integrity(dataset)


def test_a_dense_dataset_missing_a_class_gets_a_warning(dataset, caplog):
    for label in sorted((dataset / "labelsTr").iterdir()):
        rewrite(label, lambda a: np.where(a == 2, 1, a).astype(a.dtype))
    verify_dataset_integrity(dataset)
    assert "'tube' (2) appear in no training case" in caplog.text


def test_preprocessing_alone_refuses_labels_changed_after_planning(nnunet_env):
    from nnunetv2.experiment_planning.pipeline import plan_and_preprocess
    from nnunetv2.preprocessing.preprocessor import preprocess_dataset

    raw = make_raw_dataset(nnunet_env["nnUNet_raw"] / RAW_NAME)
    plan_and_preprocess([RAW_NAME], configurations=["3d_fullres"], num_processes=1, show_progress=False)
    rewrite(raw / "labelsTr/case_001.nrrd", _set(7))
    with pytest.raises(DatasetError, match=r"case 'case_001': .*case_001.nrrd: contains label values not declared"):
        preprocess_dataset(RAW_NAME, configurations=["3d_fullres"], num_processes=1, show_progress=False)


def test_clean_dataset_still_passes(dataset):
    verify_dataset_integrity(dataset)
    fingerprint = extract_fingerprint(dataset, show_progress=False)
    assert len(fingerprint["spacings"]) == 5


def test_channel_file_of_2d_case_is_read_as_2d(tmp_path):
    # guards the fixture: a 2D NRRD is read with the missing-axis spacing
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    dataset = make_raw_dataset(tmp_path / RAW_NAME)
    _make_case_2d(dataset)
    assert sitk.ReadImage(str(dataset / "imagesTr/case_000_0000.nrrd")).GetDimension() == 2
    _, properties = SimpleITKIO().read_images([dataset / "imagesTr/case_000_0000.nrrd"])
    assert properties["spacing"][0] == 999
    shutil.rmtree(dataset)
