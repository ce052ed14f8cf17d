import numpy as np
import pytest

from nnunetv2.dataset.preprocessed_case import (
    list_preprocessed_cases,
    load_preprocessed_case,
    open_preprocessed_case,
    sample_class_locations,
    save_preprocessed_case,
)
from nnunetv2.exceptions import PreprocessingError


def test_round_trip_and_patch_reads(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.random((2, 6, 10, 12)).astype(np.float32)
    seg = rng.integers(-1, 3, (1, 6, 10, 12))
    locations = sample_class_locations(seg, [1, 2, (1, 2)])
    save_preprocessed_case(
        tmp_path, "case_a", data, seg, {"spacing": [3.0, 1.0, 1.0], "scale": np.float32(2)}, locations
    )
    loaded, loaded_seg, properties = load_preprocessed_case(tmp_path, "case_a")
    assert np.array_equal(loaded, data) and np.array_equal(loaded_seg, seg)
    assert properties["spacing"] == [3.0, 1.0, 1.0] and properties["scale"] == 2
    assert set(properties["class_locations"]) == {1, 2, (1, 2)}
    for key, coords in properties["class_locations"].items():
        values = seg[tuple(coords.T)]
        assert np.isin(values, key).all()
    lazy_data, _ = open_preprocessed_case(tmp_path, "case_a")
    assert np.array_equal(lazy_data[:, 1:3, 2:5, 4:8], data[:, 1:3, 2:5, 4:8])
    assert list_preprocessed_cases(tmp_path) == ["case_a"]
    assert not list(tmp_path.glob("*.tmp"))


def test_locations_keep_small_classes_whole_and_cap_large_ones():
    seg = np.zeros((1, 50, 50, 50), dtype=np.int16)
    seg[0, :2, :2, :2] = 2
    seg[0, 10:] = 1
    locations = sample_class_locations(seg, [1, 2], max_per_class=1000, min_fraction=0.01)
    assert len(locations[2]) == 8
    assert len(locations[1]) == int(np.ceil(100000 * 0.01))


def test_missing_folder_and_case_are_user_errors(tmp_path):
    with pytest.raises(PreprocessingError, match="nnUNetv2_preprocess"):
        list_preprocessed_cases(tmp_path / "nope")
    with pytest.raises(PreprocessingError, match="case_x.b2nd: preprocessed case not found"):
        open_preprocessed_case(tmp_path, "case_x")
