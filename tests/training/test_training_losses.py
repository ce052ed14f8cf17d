import numpy as np
import pytest
import torch

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.training.loss.compound import DiceBCELoss, DiceCELoss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionLoss, deep_supervision_weights
from nnunetv2.training.loss.factory import build_segmentation_loss

SMOOTH = 1e-5


def _softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _hand_dice_ce(logits, labels, annotated, batch_dice):
    """nnU-Net's -Dice (no background) + mean CE over annotated voxels, in plain numpy."""
    p = _softmax(logits)
    num_classes = logits.shape[1]
    onehot = np.stack([labels == c for c in range(num_classes)], 1).astype(float)
    m = annotated[:, None].astype(float)
    axes = (0, 2, 3) if batch_dice else (2, 3)
    inter = (p * onehot * m).sum(axes)
    sp = (p * m).sum(axes)
    sg = (onehot * m).sum(axes)
    dice = (2 * inter + SMOOTH) / (sp + sg + SMOOTH)
    dice = dice[1:] if batch_dice else dice[:, 1:]
    picked = np.take_along_axis(p, labels[:, None].clip(0, num_classes - 1), 1)[:, 0]
    ce = -np.log(picked)[annotated].mean()
    return -dice.mean() + ce


@pytest.mark.parametrize("batch_dice", [False, True])
def test_dice_ce_matches_hand_computation(batch_dice):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 4, 5))
    labels = rng.integers(0, 3, size=(2, 4, 5))
    loss = DiceCELoss(batch_dice)(torch.tensor(logits), torch.tensor(labels[:, None]))
    expected = _hand_dice_ce(logits, labels, np.ones_like(labels, dtype=bool), batch_dice)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_ignored_voxels_change_nothing_whatever_the_logits():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 3, 6, 6))
    labels = rng.integers(0, 3, size=(2, 6, 6))
    ignored = rng.random((2, 6, 6)) < 0.4
    labels_with_ignore = np.where(ignored, 3, labels)
    loss_fn = DiceCELoss(batch_dice=False, ignore_label=3)
    target = torch.tensor(labels_with_ignore[:, None])
    reference = loss_fn(torch.tensor(logits), target)
    assert reference.item() == pytest.approx(_hand_dice_ce(logits, labels, ~ignored, False), rel=1e-5)

    wild = logits.copy()
    wild[np.broadcast_to(ignored[:, None], wild.shape)] = rng.normal(scale=1e3, size=int(ignored.sum()) * 3)
    x = torch.tensor(wild, requires_grad=True)
    loss = loss_fn(x, target)
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)
    loss.backward()
    assert (x.grad.permute(0, 2, 3, 1)[torch.tensor(ignored)] == 0).all()
    assert (x.grad.permute(0, 2, 3, 1)[~torch.tensor(ignored)] != 0).any()


def test_everything_ignored_gives_a_finite_loss():
    logits = torch.randn(1, 2, 3, 3, requires_grad=True)
    loss = DiceCELoss(batch_dice=True, ignore_label=2)(logits, torch.full((1, 1, 3, 3), 2))
    assert torch.isfinite(loss)
    loss.backward()
    assert (logits.grad == 0).all()


def test_dice_bce_for_regions_with_ignore_channel():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(2, 2, 5, 5))
    regions = rng.random((2, 2, 5, 5)) < 0.5
    ignored = rng.random((2, 1, 5, 5)) < 0.3
    target = torch.tensor(np.concatenate([regions, ignored], 1))  # bool, as the region transform gives
    loss = DiceBCELoss(batch_dice=False, use_ignore_label=True)(torch.tensor(logits), target)

    p = 1 / (1 + np.exp(-logits))
    m = (~ignored).astype(float)
    y = regions.astype(float)
    dice = (2 * (p * y * m).sum((2, 3)) + SMOOTH) / ((p * m).sum((2, 3)) + (y * m).sum((2, 3)) + SMOOTH)
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    expected = -dice.mean() + (bce * m).sum() / (m.sum() * 2)
    assert loss.item() == pytest.approx(expected, rel=1e-5)

    # without an ignore channel every voxel counts and BCE is the plain mean
    unmasked = DiceBCELoss(batch_dice=False)(torch.tensor(logits), torch.tensor(regions))
    full_dice = (2 * (p * y).sum((2, 3)) + SMOOTH) / (p.sum((2, 3)) + y.sum((2, 3)) + SMOOTH)
    assert unmasked.item() == pytest.approx(-full_dice.mean() + bce.mean(), rel=1e-5)


def test_deep_supervision_weights_and_sum():
    assert deep_supervision_weights(3) == pytest.approx([2 / 3, 1 / 3, 0])
    kept = deep_supervision_weights(3, keep_lowest_output=True)
    assert kept[2] > 0 and sum(kept) == pytest.approx(1)
    assert deep_supervision_weights(1) == [1.0]

    base = DiceCELoss(batch_dice=False)
    outputs = [torch.randn(2, 3, 8, 8), torch.randn(2, 3, 4, 4), torch.randn(2, 3, 2, 2)]
    targets = [torch.randint(0, 3, (2, 1, s, s)) for s in (8, 4, 2)]
    wrapped = DeepSupervisionLoss(base, [0.5, 0.3, 0.2])
    expected = sum(w * base(o, t) for w, o, t in zip([0.5, 0.3, 0.2], outputs, targets))
    assert wrapped(outputs, targets).item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="expects 3 outputs"):
        wrapped(outputs[:2], targets[:2])


def test_factory_picks_loss_by_label_kind():
    labels = LabelManager({"background": 0, "a": 1, "ignore": 2})
    loss = build_segmentation_loss(labels, batch_dice=True)
    assert isinstance(loss, DiceCELoss) and loss.ignore_label == 2 and loss.batch_dice
    regions = LabelManager({"background": 0, "whole": [1, 2], "core": 2}, regions_class_order=[1, 2])
    wrapped = build_segmentation_loss(regions, batch_dice=False, deep_supervision_weights=[1.0, 0.0])
    assert isinstance(wrapped, DeepSupervisionLoss) and isinstance(wrapped.loss, DiceBCELoss)
    assert not wrapped.loss.use_ignore_label
