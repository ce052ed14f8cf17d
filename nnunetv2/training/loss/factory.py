"""Pick the loss for a dataset: Dice + CE for labels, Dice + BCE for regions, deep supervision on top."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.training.loss.compound import DiceBCELoss, DiceCELoss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper


def build_segmentation_loss(
    label_manager: LabelManager,
    batch_dice: bool,
    deep_supervision_weights: Sequence[float] | None = None,
    distributed: bool = False,
) -> nn.Module:
    """Return nnU-Net v2's loss for this label set, wrapped for deep supervision when weights are given.

    ``distributed``: a DDP run, whose batch Dice is computed over the batches of all ranks.
    """
    if label_manager.has_regions:
        loss: nn.Module = DiceBCELoss(
            batch_dice, use_ignore_label=label_manager.has_ignore_label, dice_across_ranks=distributed
        )
    else:
        loss = DiceCELoss(batch_dice, ignore_label=label_manager.ignore_label, dice_across_ranks=distributed)
    if deep_supervision_weights is not None:
        loss = DeepSupervisionWrapper(loss, deep_supervision_weights)
    return loss
