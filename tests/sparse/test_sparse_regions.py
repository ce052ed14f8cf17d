"""Regions beside an ignore label: output channels, targets, export back to a label map, pseudo Dice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.exceptions import DatasetError
from nnunetv2.training.pseudo_dice import hard_tp_fp_fn

IGNORE = 3
REGIONS = {"background": 0, "whole": [1, 2], "core": 2}


@pytest.mark.parametrize("with_ignore", [True, False])
def test_one_sigmoid_channel_per_region_and_none_for_ignore(with_ignore):
    labels = LabelManager({**REGIONS, **({"ignore": IGNORE} if with_ignore else {})}, regions_class_order=[1, 2])
    assert labels.has_regions and labels.has_ignore_label == with_ignore
    assert labels.foreground_regions == [(1, 2), 2] and labels.num_segmentation_heads == 2
    logits = torch.tensor([[-3.0, 3.0, 3.0, 0.5], [-3.0, -3.0, 3.0, 3.0]])
    probabilities = labels.apply_inference_nonlinearity(logits)
    assert torch.allclose(probabilities, torch.sigmoid(logits))  # independent sigmoids, not a softmax
    # painted in regions_class_order: core (2) over whole (1); the last voxel says 'core' without 'whole'
    assert labels.probabilities_to_segmentation(probabilities).tolist() == [0, 1, 2, 2]


def test_every_probability_map_exports_without_the_ignore_value():
    labels = LabelManager({**REGIONS, "ignore": IGNORE}, regions_class_order=[1, 2])
    rng = np.random.default_rng(0)
    segmentation = labels.probabilities_to_segmentation(rng.random((2, 30, 30)))
    assert set(np.unique(segmentation)) <= {0, 1, 2} and segmentation.dtype == np.uint8


def test_ignored_voxels_belong_to_no_region():
    labels = LabelManager({**REGIONS, "ignore": IGNORE}, regions_class_order=[1, 2])
    seg = np.array([[0, 1, 2, IGNORE]])
    targets = labels.segmentation_to_region_targets(seg)
    assert targets.shape == (2, 1, 4)
    assert targets[:, 0].tolist() == [[0, 1, 1, 0], [0, 0, 1, 0]]
    assert labels.annotated_mask(seg).tolist() == [[True, True, True, False]]


def test_pseudo_dice_of_regions_skips_ignored_voxels_whatever_is_predicted_there():
    labels = LabelManager({**REGIONS, "ignore": IGNORE}, regions_class_order=[1, 2])
    # targets as the region transform gives them: whole, core, then the ignore mask
    target = torch.tensor([[[[1, 1, 0, 0, 1, 0]], [[0, 1, 0, 0, 0, 0]], [[0, 0, 0, 0, 1, 1]]]]).bool()
    logits = torch.tensor([[[[5.0, 5.0, -5.0, 5.0, -5.0, 5.0]], [[-5.0, 5.0, -5.0, -5.0, 5.0, 5.0]]]])
    tp, fp, fn = hard_tp_fp_fn(logits, target, labels)
    # voxels 4 and 5 are ignored; annotated: whole TP 2, FP 1 (voxel 3); core TP 1
    assert tp.tolist() == [2, 1] and fp.tolist() == [1, 0] and fn.tolist() == [0, 0]
    flipped = logits.clone()
    flipped[..., 4:] *= -1
    assert [c.tolist() for c in hard_tp_fp_fn(flipped, target, labels)] == [[2, 1], [1, 0], [0, 0]]


@pytest.mark.parametrize(
    "labels, message",
    [
        ({**REGIONS, "ignore": [2, 3]}, "the 'ignore' label must be a single integer, not a region"),
        (
            {"background": 0, "whole": [1, 2, 3], "core": 2, "ignore": 3},
            "label value 3 is used by 'whole' and by 'ignore'",
        ),
        ({"background": 0, "whole": [1, 2], "ignore": 1}, "must carry the highest label value"),
    ],
)
def test_an_ignore_label_inside_a_region_is_refused_in_one_line(labels, message):
    with pytest.raises(DatasetError) as error:
        LabelManager(labels, regions_class_order=[1, 2])
    assert message in str(error.value) and "\n" not in str(error.value)
