"""Soft Dice as nnU-Net v2 computes it (negative Dice, smooth 1e-5), with a mask of annotated voxels."""

from __future__ import annotations

import torch


def soft_dice_loss(
    probabilities: torch.Tensor,
    target_onehot: torch.Tensor,
    mask: torch.Tensor | None = None,
    batch_dice: bool = False,
    smooth: float = 1e-5,
    across_ranks: bool = False,
) -> torch.Tensor:
    """Return minus the mean soft Dice over channels (and over samples unless ``batch_dice``).

    ``probabilities`` and ``target_onehot`` are (b, c, ...); ``mask`` is (b, 1, ...) and True where a
    voxel is annotated: the other voxels take no part, whatever the network predicts there.
    ``across_ranks`` makes the batch Dice one over the global batch of a DDP run, as in nnU-Net v2.
    """
    target_onehot = target_onehot.to(probabilities.dtype)
    if mask is not None:
        # where() rather than a product: a masked voxel contributes nothing even if its value is inf/nan
        probabilities = torch.where(mask, probabilities, 0.0)
        target_onehot = torch.where(mask, target_onehot, 0.0)
    axes = tuple(range(2, probabilities.ndim))
    intersection = (probabilities * target_onehot).sum(axes)
    sum_pred = probabilities.sum(axes)
    sum_gt = target_onehot.sum(axes)
    if batch_dice:
        intersection, sum_pred, sum_gt = intersection.sum(0), sum_pred.sum(0), sum_gt.sum(0)
        if across_ranks:
            from nnunetv2.training.ddp import all_gather_with_grad

            intersection, sum_pred, sum_gt = (all_gather_with_grad(t).sum(0) for t in (intersection, sum_pred, sum_gt))
    dice = (2 * intersection + smooth) / torch.clamp(sum_gt + sum_pred + smooth, min=1e-8)
    return -dice.mean()
