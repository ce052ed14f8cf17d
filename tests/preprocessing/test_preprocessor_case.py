"""DefaultPreprocessor on in-memory cases with known geometry: crop box, transposition, spacing, shapes."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from nnunetv2.exceptions import DatasetError, PlansError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.preprocessing.preprocessor import DefaultPreprocessor, preprocessor_class_from_name

DATASET_JSON = DatasetJson.from_dict(
    {
        "channel_names": {"0": "MR"},
        "labels": {"background": 0, "a": 1, "b": 2},
        "numTraining": 1,
        "file_ending": ".nii.gz",
    }
)


def tiny_case():
    """(1, 10, 12, 14) image at spacing [2, 1, 0.5]: nonzero L-shape inside z 2:8, y 3:9, x 4:12."""
    data = np.zeros((1, 10, 12, 14), dtype=np.float32)
    data[0, 2:8, 3:9, 4:8] = np.arange(6 * 6 * 4, dtype=np.float32).reshape(6, 6, 4) + 1
    data[0, 2:8, 3:5, 8:12] = 5.0  # the rest of the box (y 5:9, x 8:12) stays zero: outside the nonzero region
    seg = np.zeros((1, 10, 12, 14), dtype=np.uint8)
    seg[0, 3:6, 4:7, 5:7] = 1
    seg[0, 6:8, 3:5, 9:11] = 2
    return data, seg, {"spacing": [2.0, 1.0, 0.5]}


def test_run_case_npy_records_geometry_and_transposes(make_plans):
    data, seg, properties = tiny_case()
    plans = make_plans(transpose_forward=(1, 0, 2))
    out, out_seg, props = DefaultPreprocessor().run_case_npy(
        data, seg, properties, plans, plans.configuration("3d_fullres"), DATASET_JSON
    )
    assert props["spacing"] == [2.0, 1.0, 0.5]  # reader's, untouched
    assert props["shape_before_cropping"] == [12, 10, 14]  # transposed (y, z, x)
    assert props["bbox_used_for_cropping"] == [[3, 9], [2, 8], [4, 12]]
    assert props["shape_after_cropping_and_before_resampling"] == [6, 6, 8]
    # transposed spacing [1, 2, 0.5] -> [1, 1, 1]
    assert out.shape == (1, 6, 12, 4) and out_seg.shape == (1, 6, 12, 4)
    assert out.dtype == np.float32
    assert set(np.unique(out_seg)) == {-1, 0, 1, 2}
    for label in (1, 2):
        coords = props["class_locations"][label]
        assert len(coords) == (out_seg == label).sum() > 0
        assert (out_seg[tuple(coords.T)] == label).all()
    assert np.array_equal(data, tiny_case()[0])  # the input is not modified


def test_normalization_happens_before_resampling(make_plans):
    data, seg, properties = tiny_case()
    plans = make_plans(fullres_spacing=(2.0, 1.0, 0.5))  # no resampling at all
    out, _, _ = DefaultPreprocessor().run_case_npy(
        data, seg, properties, plans, plans.configuration("3d_fullres"), DATASET_JSON
    )
    cropped = data[:, 2:8, 3:9, 4:12]
    np.testing.assert_allclose(out, (cropped - cropped.mean()) / cropped.std(), rtol=1e-5, atol=1e-6)


def test_2d_configuration_keeps_the_slice_spacing(make_plans):
    data, seg, properties = tiny_case()
    plans = make_plans(fullres_spacing=(1.0, 0.5, 0.5))
    out, out_seg, props = DefaultPreprocessor().run_case_npy(
        data, seg, properties, plans, plans.configuration("2d"), DATASET_JSON
    )
    assert out.shape == (1, 6, 12, 8)  # z kept, y 1 -> 0.5, x kept


def test_prediction_input_without_seg(make_plans):
    data, seg, properties = tiny_case()
    plans = make_plans()
    preprocessor = DefaultPreprocessor()
    with_seg, _, _ = preprocessor.run_case_npy(
        data, seg, properties, plans, plans.configuration("3d_fullres"), DATASET_JSON
    )
    out, out_seg, props = preprocessor.run_case_npy(
        data, None, properties, plans, plans.configuration("3d_fullres"), DATASET_JSON.to_dict()
    )
    assert out_seg is None and "class_locations" not in props
    assert np.array_equal(out, with_seg)


def test_masked_zscore_and_ct_use_the_plans(make_plans):
    data, seg, properties = tiny_case()
    plans = make_plans(fullres_spacing=(2.0, 1.0, 0.5))
    masked = plans.configuration("3d_fullres")
    masked.use_mask_for_norm = [True]
    out, out_seg, _ = DefaultPreprocessor().run_case_npy(data, seg, properties, plans, masked, DATASET_JSON)
    assert (out[out_seg < 0] == 0).all() and abs(out[out_seg >= 0].mean()) < 1e-5
    ct = plans.configuration("3d_fullres")
    ct.normalization_schemes = ["CTNormalization"]
    out, _, _ = DefaultPreprocessor().run_case_npy(data, seg, properties, plans, ct, DATASET_JSON)
    np.testing.assert_allclose(out, (np.clip(data[:, 2:8, 3:9, 4:12], 1, 8) - 4) / 2)


def test_class_locations_for_regions_and_ignore_label(make_plans):
    data, seg, properties = tiny_case()
    plans = make_plans(fullres_spacing=(2.0, 1.0, 0.5))
    sparse = DatasetJson.from_dict(
        {
            "channel_names": {"0": "MR"},
            "numTraining": 1,
            "file_ending": ".nii.gz",
            "labels": {"background": 0, "a": 1, "ignore": 2},
        }
    )
    _, _, props = DefaultPreprocessor().run_case_npy(
        data, seg, properties, plans, plans.configuration("3d_fullres"), sparse
    )
    assert sorted(props["class_locations"]) == [0, 1]  # annotated background too
    regions = DatasetJson.from_dict(
        {
            "channel_names": {"0": "MR"},
            "numTraining": 1,
            "file_ending": ".nii.gz",
            "labels": {"background": 0, "whole": [1, 2], "b": 2},
            "regions_class_order": [1, 2],
        }
    )
    _, out_seg, props = DefaultPreprocessor().run_case_npy(
        data, seg, properties, plans, plans.configuration("3d_fullres"), regions
    )
    assert set(props["class_locations"]) == {(1, 2), 2}
    assert len(props["class_locations"][(1, 2)]) == np.isin(out_seg, [1, 2]).sum()


def test_channel_count_must_match_the_plans(make_plans):
    data, seg, properties = tiny_case()
    plans = make_plans()
    with pytest.raises(
        DatasetError, match="the image has 2 channel\\(s\\) but configuration '3d_fullres' normalizes 1"
    ):
        DefaultPreprocessor().run_case_npy(
            np.concatenate([data, data]), seg, properties, plans, plans.configuration("3d_fullres"), DATASET_JSON
        )


def test_configurations_sharing_results_are_computed_once(make_plans, monkeypatch):
    data, seg, properties = tiny_case()
    plans = make_plans(fullres_spacing=(2.0, 1.0, 1.0))  # 2d == 3d_fullres here
    preprocessor = DefaultPreprocessor()
    monkeypatch.setattr(preprocessor, "read_case", lambda *a: (data, seg, copy.deepcopy(properties)))
    calls = []
    original = preprocessor.resample
    monkeypatch.setattr(preprocessor, "resample", lambda *a: calls.append(a[2].name) or original(*a))
    configurations = [plans.configuration(n) for n in ("2d", "3d_fullres", "3d_lowres")]
    results = {
        c.name: (d, s)
        for c, d, s, _ in preprocessor.run_case_for_configurations(
            ["unused"], "unused", plans, configurations, DATASET_JSON
        )
    }
    assert calls == ["2d", "3d_lowres"]
    assert np.array_equal(results["2d"][0], results["3d_fullres"][0])
    single, _, _ = DefaultPreprocessor().run_case_npy(data, seg, properties, plans, configurations[2], DATASET_JSON)
    assert np.array_equal(results["3d_lowres"][0], single)


def test_unknown_preprocessor_name():
    assert preprocessor_class_from_name("DefaultPreprocessor") is DefaultPreprocessor
    with pytest.raises(PlansError, match="unknown preprocessor 'FancyPreprocessor'"):
        preprocessor_class_from_name("FancyPreprocessor")
