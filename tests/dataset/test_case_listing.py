import pytest

from nnunetv2.dataset.cases import group_images_by_case, list_training_cases
from nnunetv2.exceptions import DatasetError
from nnunetv2.formats.dataset_json import DatasetJson


def _touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).touch()


def test_groups_channels_in_order(tmp_path):
    _touch(tmp_path, "b_0001.nii.gz", "b_0000.nii.gz", "a_0000.nii.gz", "a_0001.nii.gz", ".a_0000.nii.gz")
    cases = group_images_by_case(tmp_path, ".nii.gz", 2)
    assert list(cases) == ["a", "b"]
    assert [p.name for p in cases["b"]] == ["b_0000.nii.gz", "b_0001.nii.gz"]


def test_missing_channel_is_named(tmp_path):
    _touch(tmp_path, "a_0000.nii.gz", "a_0001.nii.gz", "b_0000.nii.gz")
    with pytest.raises(DatasetError, match=r"b_0001.nii.gz: channel 1 of case 'b' is missing"):
        group_images_by_case(tmp_path, ".nii.gz", 2)
    with pytest.raises(DatasetError, match="channel 1 of case 'b' is missing"):
        group_images_by_case(tmp_path, ".nii.gz")


def test_too_many_channels_and_bad_names(tmp_path):
    _touch(tmp_path / "x", "a_0000.png", "a_0001.png")
    with pytest.raises(DatasetError, match="has 1 channel"):
        group_images_by_case(tmp_path / "x", ".png", 1)
    _touch(tmp_path / "y", "a.png")
    with pytest.raises(DatasetError, match="CASE_XXXX.png"):
        group_images_by_case(tmp_path / "y", ".png")


def test_single_rgb_file_may_hold_all_channels(tmp_path):
    _touch(tmp_path, "a_0000.png")
    assert len(group_images_by_case(tmp_path, ".png", 3)["a"]) == 1


def test_training_cases_from_folders_and_from_explicit_list(tmp_path):
    dj = DatasetJson({"0": "MR"}, {"background": 0, "a": 1}, 1, ".nii.gz")
    _touch(tmp_path / "imagesTr", "c1_0000.nii.gz")
    cases = list_training_cases(tmp_path, dj)
    assert cases == {
        "c1": {"images": [tmp_path / "imagesTr" / "c1_0000.nii.gz"], "label": tmp_path / "labelsTr" / "c1.nii.gz"}
    }
    outside = tmp_path.parent / "labels_elsewhere" / "z_seg.nii.gz"  # an absolute path outside the dataset
    dj.dataset = {"z": {"images": ["elsewhere/z.nii.gz"], "label": str(outside)}}
    cases = list_training_cases(tmp_path, dj)
    assert cases["z"]["images"] == [tmp_path / "elsewhere" / "z.nii.gz"]
    assert cases["z"]["label"] == outside
