"""Partial (ignore-masked) losses against hand computation, for labels and regions, with deep supervision."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.training.augmentation.pipelines import get_validation_transforms
from nnunetv2.training.loss.compound import DiceBCELoss, DiceCELoss
from nnunetv2.training.loss.deep_supervision import deep_supervision_weights
from nnunetv2.training.loss.factory import build_segmentation_loss

SMOOTH = 1e-5
IGNORE = 3


def _soft_dice(p, y, m, batch_dice):
    """nnU-Net's soft Dice per channel (and per sample unless batch_dice) over annotated voxels only."""
    axes = (0,) + tuple(range(2, p.ndim)) if batch_dice else tuple(range(2, p.ndim))
    return (2 * (p * y * m).sum(axes) + SMOOTH) / ((p * m).sum(axes) + (y * m).sum(axes) + SMOOTH)


def hand_dice_ce(logits: np.ndarray, labels: np.ndarray, batch_dice: bool) -> float:
    """-Dice (no background) + cross-entropy averaged over the voxels whose label is not IGNORE."""
    annotated = labels != IGNORE
    safe = np.where(annotated, labels, 0)
    e = np.exp(logits - logits.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    onehot = np.stack([safe == c for c in range(logits.shape[1])], 1).astype(float)
    m = annotated[:, None].astype(float)
    dice = _soft_dice(p, onehot, m, batch_dice)
    dice = dice[1:] if batch_dice else dice[:, 1:]
    picked = np.take_along_axis(p, safe[:, None], 1)[:, 0]
    ce = -np.log(picked)[annotated].sum() / annotated.sum()
    return float(-dice.mean() + ce)


def hand_dice_bce(logits: np.ndarray, regions: np.ndarray, ignored: np.ndarray, batch_dice: bool) -> float:
    """-Dice over all regions + BCE summed over annotated voxels and regions, divided by their number."""
    p = 1 / (1 + np.exp(-logits))
    y = regions.astype(float)
    m = (~ignored).astype(float)
    dice = _soft_dice(p, y, m, batch_dice)
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return float(-dice.mean() + (bce * m).sum() / (m.sum() * logits.shape[1]))


def _random_case(seed: int, shape=(2, 3, 6, 7), ignored_fraction=0.5):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=shape)
    labels = rng.integers(0, shape[1], size=(shape[0],) + shape[2:])
    labels[rng.random(labels.shape) < ignored_fraction] = IGNORE
    return rng, logits, labels


@pytest.mark.parametrize("batch_dice", [False, True])
def test_dice_ce_with_ignore_matches_hand_computation(batch_dice):
    _, logits, labels = _random_case(0)
    loss = DiceCELoss(batch_dice, ignore_label=IGNORE)(torch.tensor(logits), torch.tensor(labels[:, None]))
    assert loss.item() == pytest.approx(hand_dice_ce(logits, labels, batch_dice), rel=1e-6)


@pytest.mark.parametrize("batch_dice", [False, True])
def test_any_logits_under_ignore_change_neither_loss_nor_gradient(batch_dice):
    rng, logits, labels = _random_case(1)
    ignored = np.broadcast_to((labels == IGNORE)[:, None], logits.shape)
    loss_fn = DiceCELoss(batch_dice, ignore_label=IGNORE)
    target = torch.tensor(labels[:, None])
    results = []
    for scale in (0.0, 1e4):  # the ignored logits zeroed, then huge
        x = torch.tensor(np.where(ignored, rng.normal(scale=scale, size=logits.shape), logits), requires_grad=True)
        loss = loss_fn(x, target)
        loss.backward()
        results.append((loss.item(), x.grad.clone()))
    (loss_a, grad_a), (loss_b, grad_b) = results
    assert loss_a == pytest.approx(loss_b, rel=1e-9)
    assert torch.equal(grad_a, grad_b)
    assert (grad_a[torch.tensor(ignored)] == 0).all() and (grad_a[~torch.tensor(ignored)] != 0).any()


def test_cross_entropy_is_normalised_by_annotated_voxels_not_by_all():
    # one annotated voxel among 64: the CE term is that voxel's -log p, not 1/64 of it
    logits = torch.zeros(1, 2, 8, 8)
    logits[0, 1, 3, 4] = 2.0
    target = torch.full((1, 1, 8, 8), IGNORE)
    target[0, 0, 3, 4] = 0
    ce_only = DiceCELoss(batch_dice=False, ignore_label=IGNORE, weight_dice=0.0)(logits, target)
    assert ce_only.item() == pytest.approx(-np.log(1 / (1 + np.exp(2.0))), rel=1e-6)
    region_target = torch.zeros(1, 2, 8, 8, dtype=torch.bool)  # one region channel + the ignore channel
    region_target[0, 1] = True
    region_target[0, 1, 3, 4] = False
    bce_only = DiceBCELoss(batch_dice=False, use_ignore_label=True, weight_dice=0.0)(logits[:, 1:], region_target)
    assert bce_only.item() == pytest.approx(np.log(1 + np.exp(2.0)), rel=1e-6)  # -log(1 - sigmoid(2))


@pytest.mark.parametrize("batch_dice", [False, True])
def test_dice_bce_with_ignore_matches_hand_computation_whatever_the_ignored_logits(batch_dice):
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(2, 2, 5, 6))
    regions = rng.random(logits.shape) < 0.5
    ignored = rng.random((2, 1, 5, 6)) < 0.4
    target = torch.tensor(np.concatenate([regions, ignored], 1))
    loss_fn = DiceBCELoss(batch_dice, use_ignore_label=True)
    x = torch.tensor(logits, requires_grad=True)
    loss = loss_fn(x, target)
    assert loss.item() == pytest.approx(hand_dice_bce(logits, regions, ignored[:, 0][:, None], batch_dice), rel=1e-6)
    loss.backward()
    mask = torch.tensor(np.broadcast_to(ignored, logits.shape))
    assert (x.grad[mask] == 0).all()
    wild = np.where(mask.numpy(), rng.normal(scale=1e4, size=logits.shape), logits)
    assert loss_fn(torch.tensor(wild), target).item() == pytest.approx(loss.item(), rel=1e-9)


@pytest.mark.parametrize("regions", [False, True])
def test_deep_supervision_targets_keep_the_ignore_mask_at_every_scale(regions):
    # the real target pipeline: -1 -> 0, optional region conversion, nearest-exact downsampling
    rng = np.random.default_rng(3)
    seg = rng.integers(0, 3, size=(1, 1, 16, 16)).astype(np.int16)
    seg[rng.random(seg.shape) < 0.6] = IGNORE
    scales = [[1.0, 1.0], [0.5, 0.5], [0.25, 0.25]]
    region_defs = [(1, 2), (2,)] if regions else None
    transforms = get_validation_transforms(scales, regions=region_defs, ignore_label=IGNORE)
    targets = transforms(image=torch.zeros(1, 1, 16, 16), segmentation=torch.from_numpy(seg[0]))["segmentation"]
    full_ignore = seg[0, 0] == IGNORE
    for target, step in zip(targets, (1, 2, 4)):
        ignored_here = (target[-1].numpy() if regions else target[0].numpy() == IGNORE).astype(bool)
        # nearest-exact keeps the centre voxel of each block: start at step // 2
        assert np.array_equal(ignored_here, full_ignore[step // 2 :: step, step // 2 :: step])

    if regions:
        labels = LabelManager({"background": 0, "whole": [1, 2], "core": 2, "ignore": IGNORE}, [1, 2])
    else:
        labels = LabelManager({"background": 0, "a": 1, "b": 2, "ignore": IGNORE})
    weights = deep_supervision_weights(len(scales))
    loss_fn = build_segmentation_loss(labels, batch_dice=False, deep_supervision_weights=weights)
    outputs = [torch.tensor(rng.normal(size=(1, labels.num_segmentation_heads) + tuple(t.shape[1:]))) for t in targets]
    batched = [t[None] for t in targets]
    expected = 0.0
    for w, o, t in zip(weights, outputs, batched):
        if w == 0:
            continue
        if regions:
            t = t.numpy().astype(bool)
            expected += w * hand_dice_bce(o.numpy(), t[:, :-1], t[:, -1:], False)
        else:
            expected += w * hand_dice_ce(o.numpy(), t.numpy()[:, 0].astype(np.int64), False)
    assert loss_fn(outputs, batched).item() == pytest.approx(expected, rel=1e-6)
