import numpy as np
import pytest
import torch

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.exceptions import DatasetError


def test_plain_labels_with_ignore():
    lm = LabelManager({"background": 0, "a": 1, "b": 2, "ignore": 3})
    assert lm.has_ignore_label and lm.ignore_label == 3
    assert lm.all_labels == [0, 1, 2]
    assert lm.foreground_labels == [1, 2]
    assert lm.num_segmentation_heads == 3
    seg = np.array([0, 1, 3, 2])
    assert lm.annotated_mask(seg).tolist() == [True, True, False, True]


def test_regions():
    lm = LabelManager({"background": 0, "whole": [1, 2], "core": 2}, regions_class_order=[1, 2])
    assert lm.has_regions and lm.foreground_regions == [(1, 2), 2]
    assert lm.num_segmentation_heads == 2
    seg = np.array([[0, 1, 2]])
    targets = lm.segmentation_to_region_targets(seg)
    assert targets[:, 0].tolist() == [[0, 1, 1], [0, 0, 1]]
    probabilities = np.array([[0.1, 0.9, 0.9], [0.2, 0.3, 0.8]])
    assert lm.probabilities_to_segmentation(probabilities).tolist() == [0, 1, 2]


def test_softmax_argmax_for_labels():
    lm = LabelManager({"background": 0, "a": 1})
    logits = torch.tensor([[2.0, -1.0], [0.0, 3.0]])
    probabilities = lm.apply_inference_nonlinearity(logits)
    assert torch.allclose(probabilities.sum(0), torch.ones(2))
    assert lm.probabilities_to_segmentation(probabilities).tolist() == [0, 1]


@pytest.mark.parametrize(
    "labels, regions_order, message",
    [
        ({"background": 0, "a": 1, "ignore": 1}, None, "used by 'a' and by 'ignore'"),
        ({"background": 0, "a": 2, "ignore": 1}, None, "highest label value"),
        ({"a": 1, "b": 2}, None, "background with value 0"),
        ({"background": 0, "a": 1, "b": 3}, None, "consecutive"),
        ({"background": 0, "whole": [1, 2], "core": [2]}, None, "regions_class_order"),
        ({"background": 0, "whole": [1, 2], "core": [2]}, [1], "2 regions"),
        ({"background": 0, "a": 1, "ignore": [2, 3]}, None, "single integer"),
    ],
)
def test_invalid_label_definitions(labels, regions_order, message):
    with pytest.raises(DatasetError, match=message):
        LabelManager(labels, regions_order)
