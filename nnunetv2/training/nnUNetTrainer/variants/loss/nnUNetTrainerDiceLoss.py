"""Alias of ``nnunetv2.training.trainers.variants_loss``
(nnU-Net v2's ``variants/loss/nnUNetTrainerDiceLoss.py``)."""

from nnunetv2.training.trainers.variants_loss import (
    nnUNetTrainerDiceCELoss_noSmooth,
    nnUNetTrainerDiceLoss,
)

__all__ = ["nnUNetTrainerDiceLoss", "nnUNetTrainerDiceCELoss_noSmooth"]
