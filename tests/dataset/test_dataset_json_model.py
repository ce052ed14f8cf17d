import json

import pytest

from nnunetv2.exceptions import DatasetError
from nnunetv2.formats.dataset_json import DatasetJson

VALID = {
    "channel_names": {"0": "CT"},
    "labels": {"background": 0, "liver": 1},
    "numTraining": 3,
    "file_ending": ".nii.gz",
    "description": "kept as is",
}


def test_round_trip_is_lossless(tmp_path):
    dj = DatasetJson.from_dict(dict(VALID, regions_class_order=[1], dataset={"a": {"images": [], "label": "x"}}))
    path = tmp_path / "dataset.json"
    dj.save(path)
    assert json.loads(path.read_text()) == dict(
        VALID, regions_class_order=[1], dataset={"a": {"images": [], "label": "x"}}
    )
    assert DatasetJson.load(path) == dj
    assert dj.num_channels == 1


def test_v1_modality_key_is_accepted():
    d = {k: v for k, v in VALID.items() if k != "channel_names"}
    d["modality"] = {"0": "MRI"}
    assert DatasetJson.from_dict(d).channel_names == {"0": "MRI"}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"labels": None}, "required key 'labels'"),
        ({"numTraining": -1}, "numTraining"),
        ({"file_ending": "nii.gz"}, "must start with a dot"),
        ({"labels": {"background": 0, "x": "one"}}, "label 'x' must be an integer"),
        ({"labels": {"background": 0, "x": True}}, "label 'x' must be an integer"),
        ({"channel_names": {}}, "channel_names"),
    ],
)
def test_malformed_dataset_json_is_rejected(change, message):
    d = dict(VALID)
    for k, v in change.items():
        if v is None:
            d.pop(k)
        else:
            d[k] = v
    with pytest.raises(DatasetError, match=message):
        DatasetJson.from_dict(d, source="dj.json")


def test_missing_and_broken_files_name_the_file(tmp_path):
    with pytest.raises(Exception, match="dataset.json: file not found"):
        DatasetJson.load(tmp_path / "dataset.json")
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(Exception, match="not valid JSON"):
        DatasetJson.load(tmp_path / "dataset.json")
