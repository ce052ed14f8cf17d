"""label_probabilities: a region model's sigmoid outputs as one probability per label value (painting order)."""

from __future__ import annotations

import numpy as np
import pytest

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.exceptions import DatasetError, NnUNetError
from nnunetv2.scribble_loop.label_probabilities import label_probabilities

NESTED = LabelManager({"background": 0, "whole": [1, 2], "core": 2}, [1, 2])


def test_hand_computed_values_of_two_nested_regions():
    p_whole = np.array([0.6, 0.9, 0.2, 0.0, 1.0], np.float32)
    p_core = np.array([0.45, 0.8, 0.1, 0.0, 1.0], np.float32)
    result = label_probabilities(np.stack([p_whole, p_core]), NESTED)
    expected = np.array(
        [
            [0.4 * 0.55, 0.1 * 0.2, 0.8 * 0.9, 1.0, 0.0],  # (1 - p_whole)(1 - p_core)
            [0.6 * 0.55, 0.9 * 0.2, 0.2 * 0.9, 0.0, 0.0],  # p_whole (1 - p_core)
            [0.45, 0.8, 0.1, 0.0, 1.0],
        ]
    )  # p_core: painted last
    assert result.dtype == np.float32 and result.shape == (3, 5)
    np.testing.assert_allclose(result, expected, atol=1e-6)
    np.testing.assert_allclose(result.sum(0), 1.0, atol=1e-6)


def test_three_regions_and_a_label_value_no_region_paints():
    # label 3 exists, but no region paints it (regions_class_order 1, 2, 4)
    labels = {"background": 0, "whole": [1, 2, 3, 4], "core": [2, 3, 4], "enhancing": [4]}
    manager = LabelManager(labels, [1, 2, 4])
    p = np.array([[0.5], [0.4], [0.3]], np.float32)
    result = label_probabilities(p, manager)[:, 0]
    np.testing.assert_allclose(result, [0.5 * 0.6 * 0.7, 0.5 * 0.6 * 0.7, 0.4 * 0.7, 0.0, 0.3], atol=1e-6)
    assert result.sum() == pytest.approx(1.0, abs=1e-6)


def test_argmax_equals_painting_where_the_network_is_sure():
    rng = np.random.default_rng(0)
    # nested truth: core inside whole; sure probabilities (< 0.1 or > 0.9) with some voxels against the nesting
    whole = np.zeros((12, 12), bool)
    whole[2:10, 2:10] = True
    core = np.zeros_like(whole)
    core[4:8, 4:8] = True
    core[0, 0] = True  # the network may claim core outside whole; painting and argmax still agree

    def sure(mask):
        return np.where(mask, rng.uniform(0.9, 1.0, mask.shape), rng.uniform(0.0, 0.1, mask.shape))

    p = np.stack([sure(whole), sure(core)]).astype(np.float32)
    result = label_probabilities(p, NESTED)
    np.testing.assert_allclose(result.sum(0), 1.0, atol=1e-6)
    painted = NESTED.probabilities_to_segmentation(p)
    assert np.array_equal(result.argmax(0), painted)
    assert set(np.unique(painted)) == {0, 1, 2}


def test_argmax_and_painting_differ_exactly_where_the_later_region_is_just_below_one_half():
    # two regions: the argmax shows label 2 iff p_core > m / (1 + m), m = max(p_whole, 1 - p_whole)
    p_whole, p_core = np.meshgrid(np.linspace(0.0, 1.0, 41), np.linspace(0.0, 1.0, 41))
    p_whole, p_core = p_whole + 0.001, p_core + 0.0013  # keep off the exact ties
    p = np.clip(np.stack([p_whole, p_core]), 0, 1).astype(np.float32)
    argmax = label_probabilities(p, NESTED).argmax(0)
    painted = NESTED.probabilities_to_segmentation(p)
    m = np.maximum(p[0], 1 - p[0])
    predicted_difference = (p[1] > m / (1 + m)) & (p[1] <= 0.5)
    assert np.array_equal(argmax != painted, predicted_difference)
    assert predicted_difference.any() and np.all(argmax[predicted_difference] == 2)
    assert np.all((p[1][predicted_difference] > 1 / 3) & (p[1][predicted_difference] <= 0.5))


def test_plain_labels_pass_through_and_bad_inputs_are_clear_errors():
    plain = LabelManager({"background": 0, "a": 1, "b": 2})
    softmax = np.full((3, 2, 2), 1 / 3, np.float32)
    assert label_probabilities(softmax, plain) is softmax
    with pytest.raises(NnUNetError, match="3 region probability channels, but regions_class_order has 2 entries"):
        label_probabilities(np.zeros((3, 4), np.float32), NESTED)
    odd = LabelManager({"background": 0, "whole": [1, 2], "core": 2}, [1, 5])
    with pytest.raises(DatasetError, match=r"regions_class_order value 5 is not a label value \(\[0, 1, 2\]\)"):
        label_probabilities(np.zeros((2, 4), np.float32), odd)
