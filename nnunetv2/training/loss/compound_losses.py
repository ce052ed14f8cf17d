"""Dice + cross-entropy (labels), Dice + BCE (regions) and Dice + top-k CE, with nnU-Net v2's names and signatures.

This module is the implementation (``nnunetv2.training.loss.compound_losses`` is upstream's path);
``compound.py`` gives the two losses the trainer uses shorter constructors. Voxels under the ignore
label take part in neither term. One deliberate difference: with an ignore label, Dice + BCE averages
the BCE over annotated voxels *and* region channels (nnU-Net v2 sums over channels), so it equals the
plain mean when nothing is ignored.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss, SoftDiceLoss
from nnunetv2.training.loss.robust_ce_loss import RobustCrossEntropyLoss, TopKLoss


def softmax_float32(x: torch.Tensor) -> torch.Tensor:
    """Return the softmax over channels, computed in float32."""
    return torch.softmax(x.float(), 1)


class DC_and_CE_loss(nn.Module):
    """``weight_dice`` * soft Dice + ``weight_ce`` * cross-entropy for label maps (b, 1, ...) and logits."""

    def __init__(
        self,
        soft_dice_kwargs: dict[str, Any],
        ce_kwargs: dict[str, Any],
        weight_ce: float = 1,
        weight_dice: float = 1,
        ignore_label: int | None = None,
        dice_class: type[nn.Module] = SoftDiceLoss,
    ):
        super().__init__()
        ce_kwargs = dict(ce_kwargs)
        if ignore_label is not None:
            ce_kwargs["ignore_index"] = ignore_label
        self.weight_dice, self.weight_ce, self.ignore_label = weight_dice, weight_ce, ignore_label
        self.ce = RobustCrossEntropyLoss(**ce_kwargs)
        self.dc = dice_class(apply_nonlin=softmax_float32, **soft_dice_kwargs)

    def forward(self, net_output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the weighted sum of both terms; a batch with nothing annotated gets Dice only."""
        mask = None
        target_dice = target
        if self.ignore_label is not None:
            if target.shape[1] != 1:
                raise ValueError("the ignore label needs label-map targets (b, 1, ...), not one-hot ones")
            mask = target != self.ignore_label
            target_dice = torch.where(mask, target, 0)
        dc_loss = self.dc(net_output, target_dice, loss_mask=mask) if self.weight_dice != 0 else 0
        annotated = mask is None or bool(mask.any())
        ce_loss = self.ce(net_output.float(), target) if self.weight_ce != 0 and annotated else 0
        return self.weight_ce * ce_loss + self.weight_dice * dc_loss  # type: ignore[return-value]


class DC_and_BCE_loss(nn.Module):
    """Soft Dice over all regions + BCE for sigmoid outputs; with ``use_ignore_label`` the target's last channel is
    True where voxels are ignored."""

    def __init__(
        self,
        bce_kwargs: dict[str, Any],
        soft_dice_kwargs: dict[str, Any],
        weight_ce: float = 1,
        weight_dice: float = 1,
        use_ignore_label: bool = False,
        dice_class: type[nn.Module] = MemoryEfficientSoftDiceLoss,
    ):
        super().__init__()
        bce_kwargs = {k: v for k, v in bce_kwargs.items() if k != "reduction"}
        self.weight_dice, self.weight_ce, self.use_ignore_label = weight_dice, weight_ce, use_ignore_label
        self.ce = nn.BCEWithLogitsLoss(reduction="none", **bce_kwargs)
        self.dc = dice_class(apply_nonlin=torch.sigmoid, **soft_dice_kwargs)

    def forward(self, net_output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the weighted sum of both terms for logits (b, R, ...) and targets (b, R[+1], ...)."""
        mask = None
        if self.use_ignore_label:
            mask = ~target[:, -1:].bool()
            target = target[:, :-1]
        target = target.float()
        net_output = net_output.float()
        dc_loss = self.dc(net_output, target, loss_mask=mask)
        bce = self.ce(net_output, target)
        if mask is None:
            ce_loss = bce.mean()
        else:
            ce_loss = torch.where(mask, bce, 0.0).sum() / torch.clamp(mask.sum() * bce.shape[1], min=1)
        return self.weight_ce * ce_loss + self.weight_dice * dc_loss


class DC_and_topk_loss(DC_and_CE_loss):
    """Soft Dice + the mean cross-entropy of the hardest ``k`` percent voxels (``ce_kwargs``: k, label_smoothing)."""

    def __init__(
        self,
        soft_dice_kwargs: dict[str, Any],
        ce_kwargs: dict[str, Any],
        weight_ce: float = 1,
        weight_dice: float = 1,
        ignore_label: int | None = None,
    ):
        super().__init__(soft_dice_kwargs, {}, weight_ce, weight_dice, ignore_label, dice_class=SoftDiceLoss)
        ce_kwargs = dict(ce_kwargs)
        if ignore_label is not None:
            ce_kwargs["ignore_index"] = ignore_label
        self.ce = TopKLoss(**ce_kwargs)
