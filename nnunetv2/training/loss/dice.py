"""Soft Dice as nnU-Net v2 computes it (negative Dice, smooth 1e-5 in the trainer), with voxel weights.

``soft_dice_loss`` is the one implementation; ``SoftDiceLoss`` and ``MemoryEfficientSoftDiceLoss`` are
nnU-Net v2's module names and signatures around it (``nnunetv2.training.loss.dice`` is upstream's path).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn


def soft_dice_loss(
    probabilities: torch.Tensor,
    target_onehot: torch.Tensor,
    mask: torch.Tensor | None = None,
    batch_dice: bool = False,
    smooth: float = 1e-5,
    across_ranks: bool = False,
) -> torch.Tensor:
    """Return minus the mean soft Dice over channels (and over samples unless ``batch_dice``).

    ``probabilities`` and ``target_onehot`` are (b, c, ...); ``mask`` is (b, 1, ...): True (or a weight in
    [0, 1]) where a voxel counts. With weights w: TP = sum(w p y), sum_pred = sum(w p), sum_gt = sum(w y);
    a voxel of weight 0 takes no part even if its probability is inf/nan. ``across_ranks`` makes the batch
    Dice one over the global batch of a DDP run, as in nnU-Net v2.
    """
    target_onehot = target_onehot.to(probabilities.dtype)
    if mask is not None:
        weight = mask.to(probabilities.dtype)
        # where() rather than a product alone: a masked voxel contributes nothing even if its value is inf/nan
        probabilities = torch.where(
            mask.bool() if mask.dtype == torch.bool else weight > 0, probabilities * weight, 0.0
        )
        weighted_target = target_onehot * weight
    else:
        weighted_target = target_onehot
    axes = tuple(range(2, probabilities.ndim))
    intersection = (probabilities * target_onehot).sum(axes)
    sum_pred = probabilities.sum(axes)
    sum_gt = weighted_target.sum(axes)
    if batch_dice:
        intersection, sum_pred, sum_gt = intersection.sum(0), sum_pred.sum(0), sum_gt.sum(0)
        if across_ranks:
            from nnunetv2.training.ddp import all_gather_with_grad

            intersection, sum_pred, sum_gt = (all_gather_with_grad(t).sum(0) for t in (intersection, sum_pred, sum_gt))
    dice = (2 * intersection + smooth) / torch.clamp(sum_gt + sum_pred + smooth, min=1e-8)
    return -dice.mean()


def _onehot_like(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return ``y`` (label map (b, 1, ...) or (b, ...), or already one-hot) one-hot in x's shape."""
    if x.ndim != y.ndim:
        y = y.view((y.shape[0], 1, *y.shape[1:]))
    if x.shape == y.shape:
        return y
    return torch.zeros(x.shape, device=x.device, dtype=torch.bool).scatter_(1, y.long(), True)


def _ddp_active(ddp: bool) -> bool:
    return ddp and torch.distributed.is_available() and torch.distributed.is_initialized()


class MemoryEfficientSoftDiceLoss(nn.Module):
    """nnU-Net v2's soft Dice module: ``forward(x, y, loss_mask=None)`` on logits or probabilities ``x``."""

    def __init__(
        self,
        apply_nonlin: Callable | None = None,
        batch_dice: bool = False,
        do_bg: bool = True,
        smooth: float = 1.0,
        ddp: bool = True,
    ):
        super().__init__()
        self.apply_nonlin, self.batch_dice, self.do_bg, self.smooth, self.ddp = (
            apply_nonlin,
            batch_dice,
            do_bg,
            smooth,
            ddp,
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor, loss_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Return minus the mean soft Dice of ``x`` against labels or one-hot targets ``y``."""
        if self.apply_nonlin is not None:
            x = self.apply_nonlin(x)
        with torch.no_grad():
            y_onehot = _onehot_like(x, y)
        if not self.do_bg:
            x, y_onehot = x[:, 1:], y_onehot[:, 1:]
        return soft_dice_loss(x, y_onehot, loss_mask, self.batch_dice, self.smooth, _ddp_active(self.ddp))


class SoftDiceLoss(MemoryEfficientSoftDiceLoss):
    """nnU-Net v2's SoftDiceLoss: the same Dice as MemoryEfficientSoftDiceLoss (``clip_tp`` is not supported)."""

    def __init__(
        self,
        apply_nonlin: Callable | None = None,
        batch_dice: bool = False,
        do_bg: bool = True,
        smooth: float = 1.0,
        ddp: bool = True,
        clip_tp: float | None = None,
    ):
        if clip_tp is not None:
            raise NotImplementedError("SoftDiceLoss(clip_tp=...) is not supported by this nnunetv2")
        super().__init__(apply_nonlin, batch_dice, do_bg, smooth, ddp)


def get_tp_fp_fn_tn(
    net_output: torch.Tensor,
    gt: torch.Tensor,
    axes: Sequence[int] | None = None,
    mask: torch.Tensor | None = None,
    square: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return soft (tp, fp, fn, tn) of ``net_output`` (b, c, ...) against labels or one-hot ``gt``, summed over
    ``axes`` (default: the spatial axes); ``mask`` (b, 1, ...) selects the voxels that count."""
    if axes is None:
        axes = tuple(range(2, net_output.ndim))
    with torch.no_grad():
        y_onehot = _onehot_like(net_output, gt).to(net_output.dtype)
    tp = net_output * y_onehot
    fp = net_output * (1 - y_onehot)
    fn = (1 - net_output) * y_onehot
    tn = (1 - net_output) * (1 - y_onehot)
    if mask is not None:
        weight = mask.to(net_output.dtype)
        tp, fp, fn, tn = (t * weight for t in (tp, fp, fn, tn))
    if square:
        tp, fp, fn, tn = (t**2 for t in (tp, fp, fn, tn))
    if len(axes) > 0:
        tp, fp, fn, tn = (t.sum(dim=tuple(axes), keepdim=False) for t in (tp, fp, fn, tn))
    return tp, fp, fn, tn
