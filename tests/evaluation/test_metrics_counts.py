import math

import numpy as np
import pytest

from nnunetv2.evaluation.metrics import compute_tp_fp_fn_tn, metrics_from_segmentations
from nnunetv2.exceptions import EvaluationError

# eight voxels; the last one's reference is the ignore label 3
REF = np.array([[0, 1, 1, 2], [2, 2, 0, 3]], dtype=np.uint8)
PRED = np.array([[1, 1, 0, 2], [2, 0, 0, 1]], dtype=np.uint8)


def test_hand_computed_counts_with_ignore_label_and_region():
    m = metrics_from_segmentations(REF, PRED, [1, 2, (1, 2), 4], ignore_label=3)
    assert m[1] == {
        "Dice": 0.5,
        "IoU": pytest.approx(1 / 3),
        "FP": 1,
        "TP": 1,
        "FN": 1,
        "TN": 4,
        "n_pred": 2,
        "n_ref": 2,
    }
    assert m[2] == {
        "Dice": 0.8,
        "IoU": pytest.approx(2 / 3),
        "FP": 0,
        "TP": 2,
        "FN": 1,
        "TN": 4,
        "n_pred": 2,
        "n_ref": 3,
    }
    assert m[(1, 2)] == {
        "Dice": pytest.approx(2 / 3),
        "IoU": 0.5,
        "FP": 1,
        "TP": 3,
        "FN": 2,
        "TN": 1,
        "n_pred": 4,
        "n_ref": 5,
    }
    # label 4 is in neither map: nothing to score
    assert math.isnan(m[4]["Dice"]) and math.isnan(m[4]["IoU"])
    assert (m[4]["TP"], m[4]["FP"], m[4]["FN"], m[4]["TN"]) == (0, 0, 0, 7)


def test_without_ignore_label_every_voxel_counts():
    m = metrics_from_segmentations(REF, PRED, [1], ignore_label=None)
    # the last voxel (reference 3, predicted 1) is now a false positive of label 1
    assert (m[1]["TP"], m[1]["FP"], m[1]["FN"], m[1]["TN"]) == (1, 2, 1, 4)


def test_boolean_mask_counts_match_hand_computation():
    assert compute_tp_fp_fn_tn(REF == 2, PRED == 2, REF == 3) == (2, 0, 1, 4)
    assert compute_tp_fp_fn_tn(REF == 2, PRED == 2) == (2, 0, 1, 5)


# uint8: dense uint8 pairs; +90: dense uint16 pairs; negative or +300: binned; float32: converted to int
@pytest.mark.parametrize(
    "dtype, offset", [(np.uint8, 0), (np.int32, 90), (np.int16, -2), (np.int32, 300), (np.float32, 0)]
)
def test_all_counting_paths_agree_with_per_label_masks(dtype, offset):
    rng = np.random.default_rng(3)
    ref = (rng.integers(0, 5, size=(6, 7, 9)) + offset).astype(dtype)
    pred = (rng.integers(0, 5, size=(6, 7, 9)) + offset).astype(dtype)
    ignore = 4 + offset
    keys = [1 + offset, 2 + offset, (1 + offset, 3 + offset), 0 + offset]
    m = metrics_from_segmentations(ref, pred, keys, ignore_label=ignore)
    for key in keys:
        values = key if isinstance(key, tuple) else (key,)
        expected = compute_tp_fp_fn_tn(np.isin(ref, values), np.isin(pred, values), ref == ignore)
        assert (m[key]["TP"], m[key]["FP"], m[key]["FN"], m[key]["TN"]) == expected


def test_shape_mismatch_and_no_labels_are_errors():
    with pytest.raises(EvaluationError, match="reference shape \\(2, 4\\) differs from prediction shape \\(4, 2\\)"):
        metrics_from_segmentations(REF, PRED.reshape(4, 2), [1])
    with pytest.raises(EvaluationError, match="no labels or regions to evaluate"):
        metrics_from_segmentations(REF, PRED, [])
