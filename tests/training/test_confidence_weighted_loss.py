"""Confidence-weighted Dice + CE: hand computation, confidence 0 = ignored voxel, confidence 1 = plain loss."""

from __future__ import annotations

import math

import pytest
import torch

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.training.loss.compound import DiceCELoss
from nnunetv2.training.loss.confidence_weighted import (
    ConfidenceWeightedDiceCELoss,
    build_confidence_weighted_loss,
)
from nnunetv2.training.loss.deep_supervision import DeepSupervisionLoss
from nnunetv2.training.loss.dice import soft_dice_loss


def _logits_for(p1: list[float]) -> torch.Tensor:
    """(1, 2, 1, n) logits whose softmax gives class 1 the probabilities ``p1``."""
    return torch.tensor([[[[0.0] * len(p1)], [[math.log(p / (1 - p)) for p in p1]]]], dtype=torch.float64)


def _target(labels: list[int], confidence: list[float]) -> torch.Tensor:
    return torch.tensor([[[labels], [confidence]]], dtype=torch.float32)


@pytest.mark.parametrize("batch_dice", [False, True])
def test_weighted_loss_matches_hand_computation(batch_dice):
    # three voxels: labels 1, 0, 1; p(class 1) 0.8, 0.4, 0.3; confidence 1, 0.5, 0
    logits = _logits_for([0.8, 0.4, 0.3])
    target = _target([1, 0, 1], [1.0, 0.5, 0.0])
    ce = (1.0 * -math.log(0.8) + 0.5 * -math.log(0.6)) / 1.5
    tp, fp, fn = 1.0 * 0.8, 0.5 * 0.4, 1.0 * 0.2  # class 1 only (background is not in the Dice)
    smooth = 1e-5
    dice = (2 * tp + smooth) / (2 * tp + fp + fn + smooth)
    loss = ConfidenceWeightedDiceCELoss(batch_dice=batch_dice, smooth=smooth)(logits, target)
    assert float(loss) == pytest.approx(ce - dice, abs=1e-6)


def test_dice_term_alone_matches_hand_computation():
    probabilities = torch.tensor([[[[0.8, 0.4, 0.3]]]])
    onehot = torch.tensor([[[[1.0, 0.0, 1.0]]]])
    weight = torch.tensor([[[[1.0, 0.5, 0.0]]]])
    value = soft_dice_loss(probabilities, onehot, weight, smooth=0.0)
    assert float(value) == pytest.approx(-(1.6 / (1.6 + 0.2 + 0.2)), abs=1e-6)


def _random_case(seed: int, num_classes: int = 3, shape=(2, 4, 5, 6)):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape[0], num_classes, *shape[1:], generator=generator, dtype=torch.float64)
    labels = torch.randint(0, num_classes, (shape[0], 1, *shape[1:]), generator=generator)
    return logits, labels, generator


@pytest.mark.parametrize("batch_dice", [False, True])
def test_confidence_zero_or_one_equals_the_ignore_label_loss(batch_dice):
    logits, labels, generator = _random_case(0)
    confidence = (torch.rand(labels.shape, generator=generator) > 0.4).float()
    target = torch.cat([labels.float(), confidence], 1)
    ignore_label = 3
    masked_labels = torch.where(confidence > 0, labels, ignore_label)
    expected = DiceCELoss(batch_dice, ignore_label=ignore_label)(logits, masked_labels)
    weighted = ConfidenceWeightedDiceCELoss(batch_dice)(logits, target)
    assert float(weighted) == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.parametrize("batch_dice", [False, True])
def test_confidence_one_everywhere_is_the_plain_loss(batch_dice):
    logits, labels, _ = _random_case(1)
    expected = DiceCELoss(batch_dice)(logits, labels)
    with_channel = ConfidenceWeightedDiceCELoss(batch_dice)(
        logits, torch.cat([labels.float(), torch.ones_like(labels, dtype=torch.float32)], 1)
    )
    without_channel = ConfidenceWeightedDiceCELoss(batch_dice)(logits, labels)
    assert float(with_channel) == pytest.approx(float(expected), rel=1e-6)
    assert float(without_channel) == pytest.approx(float(expected), rel=1e-6)


def test_voxels_of_confidence_zero_get_no_gradient_and_weights_scale_the_rest():
    logits, labels, generator = _random_case(2)
    confidence = torch.rand(labels.shape, generator=generator)
    confidence[:, :, :2] = 0.0
    logits.requires_grad_(True)
    ConfidenceWeightedDiceCELoss(batch_dice=True)(logits, torch.cat([labels.float(), confidence], 1)).backward()
    assert torch.all(logits.grad[:, :, :2] == 0)
    assert torch.all(logits.grad[:, :, 2:].abs().sum(1) > 0)


def test_ignore_label_voxels_are_ignored_whatever_their_confidence():
    logits, labels, generator = _random_case(3)
    labels[:, :, 0] = 3  # the ignore label
    confidence = torch.rand(labels.shape, generator=generator)
    loss = ConfidenceWeightedDiceCELoss(False, ignore_label=3)
    zeroed = torch.where(labels == 3, 0.0, confidence)
    relabelled = torch.where(labels == 3, 1, labels).float()  # any class: weight 0 makes it irrelevant
    assert float(loss(logits, torch.cat([labels.float(), confidence], 1))) == pytest.approx(
        float(ConfidenceWeightedDiceCELoss(False)(logits, torch.cat([relabelled, zeroed], 1))), rel=1e-6
    )


def test_no_weight_at_all_gives_a_finite_loss_without_cross_entropy():
    logits, labels, _ = _random_case(4)
    target = torch.cat([labels.float(), torch.zeros_like(labels, dtype=torch.float32)], 1)
    assert float(ConfidenceWeightedDiceCELoss(False)(logits, target)) == pytest.approx(-1.0)


def test_factory_wraps_deep_supervision_and_uses_the_dataset_ignore_label():
    label_manager = LabelManager({"background": 0, "a": 1, "b": 2, "ignore": 3})
    loss = build_confidence_weighted_loss(label_manager, batch_dice=False, deep_supervision_weights=[0.75, 0.25])
    assert isinstance(loss, DeepSupervisionLoss) and loss.loss.ignore_label == 3
    logits, labels, generator = _random_case(5)
    confidence = torch.rand(labels.shape, generator=generator)
    target = torch.cat([labels.float(), confidence], 1)
    small_logits, small_target = logits[..., ::2, ::2, ::2], target[..., ::2, ::2, ::2]
    single = ConfidenceWeightedDiceCELoss(False, ignore_label=3)
    expected = 0.75 * single(logits, target) + 0.25 * single(small_logits, small_target)
    assert float(loss([logits, small_logits], [target, small_target])) == pytest.approx(float(expected), rel=1e-6)
