"""Confidence-weighted Dice + BCE for region-based datasets: the loss, the batch pipeline and the trainer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nnunetv2.training.augmentation.pipelines import get_validation_transforms
from nnunetv2.training.loss.compound import DiceBCELoss
from nnunetv2.training.loss.confidence_weighted import ConfidenceWeightedDiceBCELoss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionLoss
from nnunetv2.training.trainers.nnUNetTrainerConfidenceWeighted import nnUNetTrainerConfidenceWeighted
from tests.helpers.tiny_models import DATASET_JSON, tiny_plans

REGIONS = [(1, 2), (2,)]
IGNORE = 3
REGION_DATASET_JSON = dict(
    DATASET_JSON, labels={"background": 0, "whole": [1, 2], "core": [2], "ignore": IGNORE}, regions_class_order=[1, 2]
)


def _region_target(label: torch.Tensor, with_ignore: bool) -> torch.Tensor:
    """(b, 1, ...) labels -> (b, R [+ 1 ignore], ...) float, as the batch pipeline makes them."""
    label = label.long()
    channels = [torch.isin(label, torch.tensor(region)) for region in REGIONS]
    if with_ignore:
        channels.append(label == IGNORE)
    return torch.cat(channels, 1).float()


def test_hand_computed_loss_of_four_voxels():
    logits = torch.tensor([[[0.0, 2.0, -1.0, 1.0], [-2.0, 1.0, 0.5, 0.0]]])  # (b=1, R=2, 4 voxels)
    regions = torch.tensor([[[1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0]]])
    confidence = torch.tensor([[[1.0, 0.5, 0.25, 0.0]]])
    loss = ConfidenceWeightedDiceBCELoss(batch_dice=False)(logits, torch.cat([regions, confidence], 1))

    def sigmoid(x):
        return 1 / (1 + math.exp(-x))

    def bce(x, y):
        return -(y * math.log(sigmoid(x)) + (1 - y) * math.log(1 - sigmoid(x)))

    w = [1.0, 0.5, 0.25, 0.0]
    x, y = logits[0].tolist(), regions[0].tolist()
    bce_term = sum(w[v] * (bce(x[0][v], y[0][v]) + bce(x[1][v], y[1][v])) for v in range(4)) / (sum(w) * 2)
    dice = []
    for r in range(2):
        tp = sum(w[v] * sigmoid(x[r][v]) * y[r][v] for v in range(4))
        fp = sum(w[v] * sigmoid(x[r][v]) * (1 - y[r][v]) for v in range(4))
        fn = sum(w[v] * (1 - sigmoid(x[r][v])) * y[r][v] for v in range(4))
        dice.append((2 * tp + 1e-5) / (2 * tp + fp + fn + 1e-5))
    assert float(loss) == pytest.approx(bce_term - sum(dice) / 2, rel=1e-6)


@pytest.mark.parametrize("batch_dice", [False, True])
@pytest.mark.parametrize("with_ignore", [False, True])
def test_confidence_one_everywhere_is_the_plain_dice_bce_loss(batch_dice, with_ignore):
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 4, 6, 6)
    label = torch.randint(0, 4 if with_ignore else 3, (2, 1, 4, 6, 6))
    target = _region_target(label, with_ignore)
    plain = DiceBCELoss(batch_dice, use_ignore_label=with_ignore)(logits, target)
    weighted = ConfidenceWeightedDiceBCELoss(batch_dice, use_ignore_label=with_ignore)
    ones = torch.ones_like(label, dtype=torch.float32)
    assert float(weighted(logits, torch.cat([target, ones], 1))) == pytest.approx(float(plain), rel=1e-6)
    assert float(weighted(logits, target)) == pytest.approx(float(plain), rel=1e-6)  # no confidence channel: 1


@pytest.mark.parametrize("batch_dice", [False, True])
def test_a_voxel_of_confidence_zero_changes_nothing_whatever_its_logits(batch_dice):
    torch.manual_seed(1)
    label = torch.randint(0, 3, (2, 1, 3, 5, 5))
    confidence = torch.rand(2, 1, 3, 5, 5)
    confidence[0, 0, 1, 2, 2] = 0.0
    target = torch.cat([_region_target(label, False), confidence], 1)
    loss = ConfidenceWeightedDiceBCELoss(batch_dice)
    results = []
    for value in (0.0, 1e4, -1e4):
        logits = torch.randn(2, 2, 3, 5, 5, generator=torch.Generator().manual_seed(2))
        logits[0, :, 1, 2, 2] = value
        logits.requires_grad_(True)
        value_of_loss = loss(logits, target)
        value_of_loss.backward()
        results.append((float(value_of_loss.detach()), logits.grad.clone()))
    for other_loss, other_grad in results[1:]:
        assert other_loss == pytest.approx(results[0][0], rel=1e-6)
        torch.testing.assert_close(other_grad, results[0][1])
    assert torch.all(results[0][1][0, :, 1, 2, 2] == 0)
    # and an ignored voxel weighs 0 whatever its confidence
    with_ignore = ConfidenceWeightedDiceBCELoss(batch_dice, use_ignore_label=True)
    ignored = label.clone()
    ignored[0, 0, 1, 2, 2] = IGNORE
    logits = torch.randn(2, 2, 3, 5, 5)
    full, zero = confidence.clone(), confidence.clone()
    full[0, 0, 1, 2, 2], zero[0, 0, 1, 2, 2] = 1.0, 0.0
    region_target = _region_target(ignored, True)
    assert float(with_ignore(logits, torch.cat([region_target, full], 1))) == pytest.approx(
        float(with_ignore(logits, torch.cat([region_target, zero], 1))), rel=1e-6
    )


def test_the_confidence_channel_survives_region_conversion_and_deep_supervision():
    torch.manual_seed(3)
    label = torch.randint(-1, 4, (1, 8, 8, 8)).to(torch.int16).float()  # -1: outside the image
    confidence = torch.rand(1, 8, 8, 8)
    scales = [[1.0, 1.0, 1.0], [0.5, 0.5, 0.5]]
    transforms = get_validation_transforms(scales, regions=REGIONS, ignore_label=IGNORE)
    targets = transforms(image=torch.zeros(1, 8, 8, 8), segmentation=torch.cat([label, confidence]))["segmentation"]
    assert [tuple(t.shape) for t in targets] == [(4, 8, 8, 8), (4, 4, 4, 4)]
    background_label = torch.where(label == -1, 0.0, label)
    expected = torch.cat([_region_target(background_label[None], True)[0], confidence])
    torch.testing.assert_close(targets[0], expected)
    # nearest-exact halving of an 8-cube takes every second voxel, from index 1 on
    torch.testing.assert_close(targets[1], expected[:, 1::2, 1::2, 1::2])
    # a label map alone gives the bool regions as before
    alone = get_validation_transforms(None, regions=REGIONS, ignore_label=IGNORE)(
        image=torch.zeros(1, 8, 8, 8), segmentation=label.to(torch.int16)
    )["segmentation"]
    assert alone.dtype == torch.bool and torch.equal(alone.float(), expected[:3])


def test_trainer_trains_regions_with_the_weighted_loss_and_validates_them_unweighted(nnunet_env):
    trainer = nnUNetTrainerConfidenceWeighted(tiny_plans(), "3d_fullres", "all", REGION_DATASET_JSON, "cpu")
    loss = trainer._build_loss()
    assert isinstance(loss, DeepSupervisionLoss) and isinstance(loss.loss, ConfidenceWeightedDiceBCELoss)
    assert loss.loss.use_ignore_label
    trainer.enable_deep_supervision = False
    trainer.cpu_bf16 = False  # the counts below are recomputed with a float32 forward pass
    trainer.initialize()
    torch.manual_seed(4)
    data = torch.randn(2, 2, 8, 16, 16)
    label = torch.randint(0, 4, (2, 1, 8, 16, 16))
    target = _region_target(label, True)
    out = trainer.validation_step({"data": data, "target": torch.cat([target, torch.full_like(target[:, :1], 0.5)], 1)})
    loss_value, tp, fp, fn = (out[k] for k in ("loss", "tp_hard", "fp_hard", "fn_hard"))
    trainer.network.eval()
    with torch.no_grad():
        output = trainer.network(data)
    annotated = label[:, 0] != IGNORE
    for r in range(2):
        predicted, reference = (output[:, r] > 0) & annotated, target[:, r].bool() & annotated
        assert tp[r] == (predicted & reference).sum() and fp[r] == (predicted & ~reference).sum()
        assert fn[r] == (~predicted & reference).sum()
    with torch.no_grad():
        assert float(loss_value) == pytest.approx(float(trainer.loss(output, target)), rel=1e-5)
    assert np.isfinite(loss_value)
