"""The trainer's Dice + CE (labels) and Dice + BCE (regions), 1:1 as in nnU-Net v2, with an ignore label.

Short constructors over ``compound_losses`` (the implementation, under nnU-Net v2's names): Dice
without background for labels, over all regions for regions, smooth 1e-5.
"""

from __future__ import annotations

from nnunetv2.training.loss.compound_losses import DC_and_BCE_loss, DC_and_CE_loss
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss


class DiceCELoss(DC_and_CE_loss):
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
        dice_kwargs = {"batch_dice": batch_dice, "smooth": smooth, "do_bg": False, "ddp": dice_across_ranks}
        super().__init__(dice_kwargs, {}, weight_ce, weight_dice, ignore_label, MemoryEfficientSoftDiceLoss)
        self.batch_dice, self.smooth, self.dice_across_ranks = batch_dice, smooth, dice_across_ranks


class DiceBCELoss(DC_and_BCE_loss):
    """Soft Dice over all regions + binary cross-entropy for region targets and sigmoid outputs."""

    def __init__(
        self,
        batch_dice: bool,
        use_ignore_label: bool = False,
        smooth: float = 1e-5,
        weight_dice: float = 1.0,
        weight_ce: float = 1.0,
        dice_across_ranks: bool = False,
    ):
        dice_kwargs = {"batch_dice": batch_dice, "smooth": smooth, "do_bg": True, "ddp": dice_across_ranks}
        super().__init__({}, dice_kwargs, weight_ce, weight_dice, use_ignore_label, MemoryEfficientSoftDiceLoss)
        self.batch_dice, self.smooth, self.dice_across_ranks = batch_dice, smooth, dice_across_ranks
