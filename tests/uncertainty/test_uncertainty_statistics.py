import math

import numpy as np
import pytest

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.exceptions import InferenceError
from nnunetv2.uncertainty.measures import (
    EnsembleStatistics,
    class_entropy,
    t_test_p_values,
    t_test_uncertain,
    total_entropy,
)
from nnunetv2.uncertainty.score_report import error_detection_auroc, mean_foreground_dice, spearman_correlation


def _random_probabilities(t=6, shape=(5, 7), seed=0):
    rng = np.random.default_rng(seed)
    return rng.dirichlet([0.5, 1, 2], size=(t, *shape)).transpose(0, 3, 1, 2).astype(np.float32)


def test_streamed_statistics_match_the_whole_array():
    p = _random_probabilities()
    streamed = EnsembleStatistics()
    for member in p:
        streamed.add(member.astype(np.float16))  # as stored on disk
    np.testing.assert_allclose(streamed.mean, p.mean(0), atol=1e-3)
    np.testing.assert_allclose(streamed.variance(), p.var(0, ddof=1), atol=1e-3)
    np.testing.assert_allclose(streamed.class_entropy(), class_entropy(p), atol=2e-3)
    np.testing.assert_allclose(streamed.total_entropy(), total_entropy(p), atol=2e-3)
    whole = EnsembleStatistics.of(p)
    # the t-test from running moments equals scipy's t-test on the samples themselves
    from scipy import stats

    order = np.argsort(p.mean(0), axis=0)
    first = np.take_along_axis(p, order[None, -1:], axis=1)[:, 0]
    second = np.take_along_axis(p, order[None, -2:-1], axis=1)[:, 0]
    expected = stats.ttest_ind(first, second, axis=0, equal_var=False).pvalue
    np.testing.assert_allclose(whole.t_test_p_values(), expected, atol=1e-5)
    np.testing.assert_array_equal(whole.t_test_uncertain(), (whole.t_test_p_values() >= 0.05).astype(np.float32))


def test_t_test_marks_undecidable_voxels():
    certain = np.zeros((5, 3, 2))
    certain[:, 0] = 1
    split = np.zeros((6, 2, 2))
    split[:3, 0], split[3:, 1] = 1, 1
    assert t_test_uncertain(certain).tolist() == [0, 0]
    assert t_test_uncertain(np.full((5, 3, 2), 1 / 3)).tolist() == [1, 1]
    assert t_test_uncertain(split).tolist() == [1, 1]
    assert (t_test_p_values(split) >= 0.05).all()


def test_statistics_errors():
    statistics = EnsembleStatistics()
    with pytest.raises(ValueError, match="no checkpoint probabilities were added"):
        statistics.class_entropy()
    statistics.add(np.full((3, 4), 1 / 3))
    with pytest.raises(ValueError, match=r"shape \[3, 5\] do not match the earlier \[3, 4\]"):
        statistics.add(np.full((3, 5), 1 / 3))
    with pytest.raises(ValueError, match="unknown uncertainty measure 'variance'"):
        statistics.uncertainty_map("variance")
    assert statistics.count == 1 and np.allclose(statistics.variance(), 0)


def test_auroc_of_error_detection():
    reference = np.array([0, 0, 1, 1, 2, 2, 3])
    prediction = np.array([0, 1, 1, 0, 2, 2, 0])  # wrong at 1, 3 and 6 (6 is under ignore label 3)
    perfect = np.array([0.1, 0.9, 0.2, 0.8, 0.0, 0.3, 0.0])
    assert error_detection_auroc(perfect, prediction, reference, ignore_label=3) == 1.0
    assert error_detection_auroc(1 - perfect, prediction, reference, ignore_label=3) == 0.0
    assert error_detection_auroc(np.zeros(7), prediction, reference, ignore_label=3) == 0.5  # all tied
    # the ignored voxel, scored as most certain, would pull the AUROC down if it counted
    assert error_detection_auroc(perfect, prediction, reference) < 1.0
    assert math.isnan(error_detection_auroc(perfect, reference, reference))


def test_dice_and_spearman():
    labels = LabelManager({"background": 0, "a": 1, "b": 2, "ignore": 3})
    reference = np.array([[0, 1, 1, 3], [0, 0, 0, 3]])
    prediction = np.array([[0, 1, 0, 1], [0, 0, 0, 2]])
    assert mean_foreground_dice(reference, prediction, labels) == pytest.approx(2 / 3)  # b absent in both
    with pytest.raises(InferenceError, match=r"ref.nii.gz: reference shape \(2, 4\) differs"):
        mean_foreground_dice(reference, prediction[:, :3], labels, "ref.nii.gz")
    result = spearman_correlation([0.9, 0.8, float("nan"), 0.5, 0.2], [0.1, 0.2, 0.9, 0.3, 0.6])
    assert result["rho"] == pytest.approx(-1.0) and result["num_cases"] == 4
    assert math.isnan(spearman_correlation([0.9, 0.8], [0.1, 0.2])["rho"])
