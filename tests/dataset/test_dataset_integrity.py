import json
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from nnunetv2.dataset.integrity import verify_dataset_integrity
from nnunetv2.dataset.synthetic import generate_synthetic_dataset
from nnunetv2.exceptions import DatasetError, DatasetNotFoundError
from nnunetv2.utilities.dataset_name import resolve_dataset_name


@pytest.fixture
def dataset(tmp_path, synthetic_dataset_3d):
    """A private copy of the shared 3D dataset (6 cases) that a test may corrupt."""
    return shutil.copytree(synthetic_dataset_3d, tmp_path / synthetic_dataset_3d.name)


def _edit_json(folder, **changes):
    path = folder / "dataset.json"
    content = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            content.pop(key, None)
        else:
            content[key] = value
    path.write_text(json.dumps(content))


def _rewrite(path, change_array=None, **geometry):
    """Rewrite a NIfTI file with a changed array and/or changed spacing/origin/direction."""
    image = sitk.ReadImage(str(path))
    array = sitk.GetArrayFromImage(image)
    new = sitk.GetImageFromArray(change_array(array) if change_array else array)
    for name in ("Spacing", "Origin", "Direction"):
        value = geometry.get(name.lower(), getattr(image, f"Get{name}")())
        getattr(new, f"Set{name}")(value)
    sitk.WriteImage(new, str(path))


def _label(folder, case="case_002"):
    return folder / "labelsTr" / f"{case}.nii.gz"


def _image(folder, case="case_002", channel=0):
    return folder / "imagesTr" / f"{case}_{channel:04d}.nii.gz"


def _expect(folder, message):
    with pytest.raises(DatasetError) as info:
        verify_dataset_integrity(folder)
    text = str(info.value)
    assert message in text, text
    assert "\n" not in text
    return text


def test_sound_datasets_pass_and_nothing_is_written(dataset, synthetic_dataset_2d):
    before = {p: p.stat().st_mtime_ns for p in dataset.rglob("*")}
    verify_dataset_integrity(dataset)
    assert {p: p.stat().st_mtime_ns for p in dataset.rglob("*")} == before
    verify_dataset_integrity(synthetic_dataset_2d)


def test_regions_ignore_and_multichannel_dataset_passes(tmp_path):
    folder = tmp_path / "Dataset010_R"
    generate_synthetic_dataset(
        folder, num_cases=2, shape=(8, 16, 16), num_channels=2, regions=True, ignore_label=True, intensity="ct"
    )
    verify_dataset_integrity(folder)


def test_dataset_json_missing_or_malformed(dataset):
    (dataset / "dataset.json").write_text("{not json")
    _expect(dataset, "not valid JSON")
    (dataset / "dataset.json").unlink()
    _expect(dataset, "dataset.json: file not found")


def test_dataset_json_missing_key(dataset):
    _edit_json(dataset, labels=None)
    _expect(dataset, "required key 'labels' is missing")


def test_missing_channel_and_missing_label(tmp_path):
    folder = tmp_path / "Dataset011_C"
    generate_synthetic_dataset(folder, num_cases=3, shape=(8, 16, 16), num_channels=2)
    _label(folder, "case_002").unlink()
    _expect(folder, "label of case 'case_002' not found")
    _image(folder, "case_001", 1).unlink()
    _expect(folder, "channel 1 of case 'case_001' is missing")


def test_label_without_images(dataset):
    shutil.copyfile(_label(dataset), dataset / "labelsTr" / "extra.nii.gz")
    _expect(dataset, "extra.nii.gz: label has no images in imagesTr")


def test_shape_mismatch(dataset):
    _rewrite(_label(dataset), lambda a: a[:, :-2])
    _expect(dataset, "case 'case_002': label shape [16, 30, 32] differs from image shape [16, 32, 32]")


@pytest.mark.parametrize(
    "geometry, word",
    [
        (dict(spacing=(1.0, 1.0, 2.5)), "spacing"),
        (dict(origin=(7.0, 8.0, 9.0)), "origin"),
        (dict(direction=(0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)), "direction"),
    ],
)
def test_label_geometry_mismatch(dataset, geometry, word):
    _rewrite(_label(dataset), **geometry)
    text = _expect(dataset, f"label {word}")
    assert text.startswith("case 'case_002':") and "case_002.nii.gz" in text


def test_channel_geometry_mismatch(tmp_path):
    folder = tmp_path / "Dataset012_G"
    generate_synthetic_dataset(folder, num_cases=2, shape=(8, 16, 16), num_channels=2)
    _rewrite(_image(folder, "case_001", 1), origin=(5.0, 5.0, 5.0))
    text = _expect(folder, "case 'case_001'")
    assert "origin" in text and "case_001_0001" in text


def test_undeclared_label_value(dataset):
    _rewrite(_label(dataset), lambda a: np.where(a == 2, 5, a).astype(a.dtype))
    _expect(dataset, "case 'case_002': case_002.nii.gz contains label values not declared in dataset.json: [5]")


def test_value_above_ignore_is_undeclared(tmp_path):
    folder = tmp_path / "Dataset013_I"
    generate_synthetic_dataset(folder, num_cases=2, shape=(8, 16, 16), ignore_label=True)
    verify_dataset_integrity(folder)  # the ignore value (3) in the files counts as declared
    _rewrite(_label(folder, "case_000"), lambda a: np.where(a == 3, 4, a).astype(a.dtype))
    _expect(folder, "case_000.nii.gz contains label values not declared in dataset.json: [4]")


def test_ignore_must_be_highest(dataset):
    _edit_json(dataset, labels={"background": 0, "ignore": 1, "blob": 2, "tube": 3})
    _expect(dataset, "the 'ignore' label (1) must carry the highest label value (3)")


def test_regions_need_class_order(tmp_path):
    folder = tmp_path / "Dataset014_Reg"
    generate_synthetic_dataset(folder, num_cases=2, shape=(8, 16, 16), regions=True)
    _edit_json(folder, regions_class_order=None)
    _expect(folder, "region labels (lists of integers) need 'regions_class_order'")


@pytest.mark.parametrize(("bad_value", "kind"), [(np.nan, "NaN"), (np.inf, "inf")])
def test_non_finite_image_values(tmp_path, bad_value, kind):
    # NRRD keeps NaN/inf; ITK's NIfTI reader would already turn them into 0
    folder = tmp_path / "Dataset016_Nrrd"
    generate_synthetic_dataset(folder, num_cases=2, shape=(6, 10, 10), num_channels=2, file_ending=".nrrd")

    def poison(a):
        a = a.copy()
        a[3, 4, 5] = bad_value
        return a

    _rewrite(folder / "imagesTr" / "case_001_0001.nrrd", poison)
    _expect(folder, f"case 'case_001': image channel 1 contains {kind} values (1 voxel(s))")


def test_unreadable_file(dataset):
    _label(dataset, "case_005").write_bytes(b"not an image")
    _expect(dataset, "case 'case_005':")


def test_wrong_file_ending(dataset):
    shutil.copyfile(_image(dataset), dataset / "imagesTr" / "case_009_0000.nii")
    _expect(dataset, "case_009_0000.nii: does not end in the dataset's file_ending '.nii.gz'")


def test_num_training_mismatch(dataset):
    _edit_json(dataset, numTraining=7)
    _expect(dataset, "numTraining is 7 but the dataset has 6 training cases")


def test_channels_read_differ_from_channel_names(dataset):
    _edit_json(dataset, channel_names={"0": "T1", "1": "T2"})
    _expect(dataset, "case 'case_000': images have 1 channel(s) but channel_names lists 2")


def test_several_problems_are_counted(dataset):
    for case in ("case_001", "case_003"):
        _rewrite(_label(dataset, case), lambda a: (a + 7).astype(a.dtype))
    text = _expect(dataset, "case 'case_001'")
    assert "(and 1 more problem(s), logged above)" in text


def test_pool_finds_the_same_problem(tmp_path):
    folder = tmp_path / "Dataset015_Many"
    generate_synthetic_dataset(folder, num_cases=16, shape=(4, 8, 8))  # 16 cases: the pool is used
    verify_dataset_integrity(folder, num_processes=2)
    _rewrite(_label(folder, "case_011"), lambda a: (a + 7).astype(a.dtype))
    with pytest.raises(DatasetError, match="case 'case_011': .* not declared in dataset.json: \\[7, 8"):
        verify_dataset_integrity(folder, num_processes=2)


def test_dataset_id_matching_no_or_two_folders(tmp_path):
    (tmp_path / "raw" / "Dataset004_A").mkdir(parents=True)
    (tmp_path / "results" / "Dataset004_B").mkdir(parents=True)
    folders = [tmp_path / "raw", tmp_path / "results", tmp_path / "missing"]
    with pytest.raises(DatasetNotFoundError, match="no dataset with id 005 in"):
        resolve_dataset_name(5, folders)
    with pytest.raises(
        DatasetNotFoundError, match="dataset id 004 matches several folders: Dataset004_A, Dataset004_B"
    ):
        resolve_dataset_name("4", folders)
    assert resolve_dataset_name(4, folders[:1]) == "Dataset004_A"
