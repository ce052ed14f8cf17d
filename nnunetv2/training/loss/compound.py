"""Dice + cross-entropy (labels) and Dice + BCE (regions), 1:1 as in nnU-Net v2, with an ignore label.

Voxels under the ignore label take part in neither term; cross-entropy is the mean over annotated
voxels (and over region channels for BCE), so with nothing ignored it equals the plain mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nnunetv2.training.loss.dice import soft_dice_loss


class DiceCELoss(nn.Module):
    """Soft Dice without background + cross-entropy for label maps (b, 1, ...) and softmax outputs."""

    def __init__(
        self,
        batch_dice: bool,
        ignore_label: int | None = None,
        smooth: float = 1e-5,
        weight_dice: float = 1.0,
        weight_ce: float = 1.0,
        dice_across_ranks: bool = False,
    ):
        super().__init__()
        self.batch_dice, self.ignore_label, self.smooth = batch_dice, ignore_label, smooth
        self.dice_across_ranks = dice_across_ranks
        self.weight_dice, self.weight_ce = weight_dice, weight_ce

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the weighted sum of both terms for logits (b, C, ...) and labels (b, 1, ...)."""
        target = target.long()
        mask = None
        if self.ignore_label is not None:
            mask = target != self.ignore_label
            target = torch.where(mask, target, 0)
        with torch.no_grad():
            onehot = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, target, True)
        probabilities = torch.softmax(logits.float(), 1)
        dice = soft_dice_loss(
            probabilities[:, 1:], onehot[:, 1:], mask, self.batch_dice, self.smooth, self.dice_across_ranks
        )
        ce_target = target[:, 0]
        if mask is not None:
            if not mask.any():  # nothing annotated in this batch: cross-entropy has no voxel to average
                return self.weight_dice * dice
            ce_target = torch.where(mask[:, 0], ce_target, -100)
        ce = F.cross_entropy(logits.float(), ce_target, ignore_index=-100)
        return self.weight_dice * dice + self.weight_ce * ce


class DiceBCELoss(nn.Module):
    """Soft Dice over all regions + binary cross-entropy for region targets and sigmoid outputs.

    With an ignore label the target has one extra last channel that is True where voxels are ignored
    (the region conversion appends the ignore label as a last region).
    """

    def __init__(
        self,
        batch_dice: bool,
        use_ignore_label: bool = False,
        smooth: float = 1e-5,
        weight_dice: float = 1.0,
        weight_ce: float = 1.0,
        dice_across_ranks: bool = False,
    ):
        super().__init__()
        self.batch_dice, self.use_ignore_label, self.smooth = batch_dice, use_ignore_label, smooth
        self.dice_across_ranks = dice_across_ranks
        self.weight_dice, self.weight_ce = weight_dice, weight_ce

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the weighted sum of both terms for logits (b, R, ...) and targets (b, R[+1], ...)."""
        mask = None
        if self.use_ignore_label:
            mask = ~target[:, -1:].bool()
            target = target[:, :-1]
        target = target.float()
        logits = logits.float()
        dice = soft_dice_loss(torch.sigmoid(logits), target, mask, self.batch_dice, self.smooth, self.dice_across_ranks)
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        if mask is None:
            bce = bce.mean()
        else:
            bce = torch.where(mask, bce, 0.0).sum() / torch.clamp(mask.sum() * bce.shape[1], min=1)
        return self.weight_dice * dice + self.weight_ce * bce
