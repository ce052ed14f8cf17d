import json

import pytest

from nnunetv2.exceptions import ImageIOError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.imageio.registry import (
    READER_WRITERS,
    reader_writer_class_from_name,
    reader_writer_for_dataset,
    reader_writer_for_ending,
)


@pytest.mark.parametrize(
    "ending, name",
    [
        (".nii.gz", "SimpleITKIO"),
        (".nii", "SimpleITKIO"),
        (".nrrd", "SimpleITKIO"),
        (".mha", "SimpleITKIO"),
        (".png", "NaturalImage2DIO"),
        (".PNG", "NaturalImage2DIO"),
        (".bmp", "NaturalImage2DIO"),
        (".tif", "NaturalImage2DIO"),
        (".tiff", "Tiff3DIO"),
    ],
)
def test_reader_writer_by_ending(ending, name):
    assert reader_writer_for_ending(ending).__name__ == name


def test_every_registered_name_resolves_to_its_class():
    for name in READER_WRITERS:
        assert reader_writer_class_from_name(name).__name__ == name


def test_tif_with_spacing_sidecar_is_a_3d_stack(tmp_path):
    (tmp_path / "a_0000.tif").touch()
    assert reader_writer_for_ending(".tif", str(tmp_path / "a_0000.tif")).__name__ == "NaturalImage2DIO"
    (tmp_path / "a.json").write_text(json.dumps({"spacing": [1, 1, 1]}))
    assert reader_writer_for_ending(".tif", str(tmp_path / "a_0000.tif")).__name__ == "Tiff3DIO"


def test_dataset_json_override_wins_over_the_ending(tmp_path):
    content = {
        "channel_names": {"0": "MR"},
        "labels": {"background": 0, "a": 1},
        "numTraining": 1,
        "file_ending": ".nii.gz",
        "overwrite_image_reader_writer": "NibabelIOWithReorient",
    }
    (tmp_path / "dataset.json").write_text(json.dumps(content))
    assert reader_writer_for_dataset(DatasetJson.load(tmp_path / "dataset.json")).__name__ == "NibabelIOWithReorient"
    del content["overwrite_image_reader_writer"]
    assert reader_writer_for_dataset(DatasetJson.from_dict(content)).__name__ == "SimpleITKIO"


def test_unknown_names_and_endings_are_errors():
    content = {
        "channel_names": {"0": "MR"},
        "labels": {"background": 0},
        "numTraining": 1,
        "file_ending": ".nii.gz",
        "overwrite_image_reader_writer": "MyIO",
    }
    with pytest.raises(ImageIOError, match=r"unknown image reader-writer 'MyIO' \(known: SimpleITKIO, NibabelIO"):
        reader_writer_for_dataset(DatasetJson.from_dict(content))
    with pytest.raises(ImageIOError, match="no image reader-writer supports files ending in '.jpg'"):
        reader_writer_for_ending(".jpg")
