"""Dice + cross-entropy (labels) or Dice + BCE (regions) with a per-voxel confidence weight, for training on
pseudo labels.

The target carries the confidence as an extra last channel: labels ``(b, 2, ...)`` = (label,
confidence in [0, 1]); regions ``(b, R [+ 1 ignore] + 1, ...)`` = the region targets as the batch
pipeline makes them (regions, then the ignore channel when the dataset has an ignore label), then
the confidence. Without that last channel (labels ``(b, 1, ...)``, regions ``(b, R [+ 1], ...)``) the
confidence is 1 everywhere. With weights ``w``:

    CE   = sum(w * ce) / sum(w)                  BCE = sum(w * bce summed over regions) / (sum(w) * R)
    TP_c = sum(w * p_c * y_c),  FP_c = sum(w * p_c * (1 - y_c)),  FN_c = sum(w * (1 - p_c) * y_c)
    Dice = mean_c (2 TP_c + smooth) / (2 TP_c + FP_c + FN_c + smooth)  (labels: background excluded; regions: all)

so a voxel of confidence 0 takes no part (exactly like the ignore label), and confidence 1 everywhere
is the plain nnU-Net loss (DiceCELoss, DiceBCELoss). Voxels under the ignore label get weight 0
whatever their confidence.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.training.loss.compound import DiceBCELoss, DiceCELoss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.dice import soft_dice_loss


def split_label_and_confidence(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (label (b, 1, ...) long, confidence (b, 1, ...) float) of a (b, 1 or 2, ...) target."""
    label = target[:, :1].long()
    if target.shape[1] == 1:
        return label, torch.ones(label.shape, dtype=torch.float32, device=target.device)
    return label, target[:, -1:].float()


class ConfidenceWeightedDiceCELoss(DiceCELoss):
    """Soft Dice (background excluded) + cross-entropy, each voxel weighted by its confidence (DiceCELoss's options)."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the weighted sum of both terms for logits (b, C, ...) and a (label[, confidence]) target."""
        label, weight = split_label_and_confidence(target)
        if self.ignore_label is not None:
            annotated = label != self.ignore_label
            weight = torch.where(annotated, weight, 0.0)
            label = torch.where(annotated, label, 0)
        with torch.no_grad():
            onehot = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, label, True)
        probabilities = torch.softmax(logits.float(), 1)
        dice = soft_dice_loss(
            probabilities[:, 1:], onehot[:, 1:], weight, self.batch_dice, self.smooth, self.dice_across_ranks
        )
        ce = F.cross_entropy(logits.float(), label[:, 0], reduction="none")
        # no weight at all (a batch of padding only): the numerator is 0 too, so the term is 0
        ce = (ce * weight[:, 0]).sum() / torch.clamp(weight.sum(), min=1e-8)
        return self.weight_dice * dice + self.weight_ce * ce


class ConfidenceWeightedDiceBCELoss(DiceBCELoss):
    """Soft Dice over all regions + binary cross-entropy for sigmoid outputs, each voxel weighted by its confidence
    (DiceBCELoss's options)."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the weighted sum of both terms for logits (b, R, ...) and targets (b, R [+ 1] [+ 1], ...)."""
        num_regions = logits.shape[1]
        without_confidence = num_regions + int(self.use_ignore_label)
        assert target.shape[1] in (without_confidence, without_confidence + 1), (
            f"{target.shape[1]} target channels for {num_regions} regions"
        )
        if target.shape[1] > without_confidence:
            weight, target = target[:, -1:].float(), target[:, :-1]
        else:
            weight = torch.ones((target.shape[0], 1, *target.shape[2:]), dtype=torch.float32, device=target.device)
        if self.use_ignore_label:
            weight = torch.where(target[:, -1:].bool(), 0.0, weight)
            target = target[:, :-1]
        target = target.float()
        logits = logits.float()
        dice = soft_dice_loss(
            torch.sigmoid(logits), target, weight, self.batch_dice, self.smooth, self.dice_across_ranks
        )
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        # where(): a voxel of weight 0 adds nothing even if its bce is inf (infinite logits)
        bce = torch.where(weight > 0, bce * weight, 0.0).sum() / torch.clamp(weight.sum() * num_regions, min=1e-8)
        return self.weight_dice * dice + self.weight_ce * bce


def build_confidence_weighted_loss(
    label_manager: LabelManager,
    batch_dice: bool,
    deep_supervision_weights: Sequence[float] | None = None,
    distributed: bool = False,
) -> nn.Module:
    """Return the confidence-weighted Dice + CE (Dice + BCE for regions), wrapped for deep supervision when weights
    are given."""
    if label_manager.has_regions:
        loss: nn.Module = ConfidenceWeightedDiceBCELoss(
            batch_dice, use_ignore_label=label_manager.has_ignore_label, dice_across_ranks=distributed
        )
    else:
        loss = ConfidenceWeightedDiceCELoss(
            batch_dice, ignore_label=label_manager.ignore_label, dice_across_ranks=distributed
        )
    if deep_supervision_weights is not None:
        loss = DeepSupervisionWrapper(loss, deep_supervision_weights)
    return loss
