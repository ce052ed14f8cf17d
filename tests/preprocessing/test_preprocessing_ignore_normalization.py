"""A sparse (ignore-label) training case is normalized exactly like the same image at prediction time."""

from __future__ import annotations

import numpy as np

from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.preprocessing.preprocessor import DefaultPreprocessor

SPARSE_JSON = DatasetJson.from_dict(
    {
        "channel_names": {"0": "MR"},
        "numTraining": 1,
        "file_ending": ".nii.gz",
        "labels": {"background": 0, "a": 1, "ignore": 2},
    }
)


def _case_with_empty_corner():
    """(1, 6, 10, 10) image: nonzero except a zero corner y 6:, x 6: inside the crop box; labels mostly ignored."""
    rng = np.random.default_rng(0)
    data = (rng.normal(100, 10, (1, 6, 10, 10)) * np.linspace(0.8, 1.2, 10)).astype(np.float32)
    data[0, :, 6:, 6:] = 0
    seg = np.full((1, 6, 10, 10), 2, dtype=np.uint8)  # unannotated, including the zero corner
    seg[0, :, 1, 1:5] = 0  # a background scribble
    seg[0, :, 3, 3:5] = 1
    return data, seg, {"spacing": [1.0, 1.0, 1.0]}


def test_ignored_voxels_outside_the_nonzero_region_do_not_enter_the_masked_zscore(make_plans):
    data, seg, properties = _case_with_empty_corner()
    plans = make_plans()
    configuration = plans.configuration("3d_fullres")
    configuration.use_mask_for_norm = [True]
    preprocessor = DefaultPreprocessor()
    training, training_seg, _ = preprocessor.run_case_npy(data, seg, properties, plans, configuration, SPARSE_JSON)
    prediction, _, _ = preprocessor.run_case_npy(data, None, properties, plans, configuration, SPARSE_JSON)
    np.testing.assert_array_equal(training, prediction)
    assert (training[0, :, 6:, 6:] == 0).all()  # outside the region, as at prediction
    inside = data[0][data[0] != 0]
    np.testing.assert_allclose(training[0][data[0] != 0], (inside - inside.mean()) / inside.std(), rtol=1e-4)
    assert (training_seg[0, :, 6:, 6:] == 2).all()  # the labels stay ignored, not background
