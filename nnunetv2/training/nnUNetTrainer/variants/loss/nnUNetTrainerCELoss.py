"""Alias of ``nnunetv2.training.trainers.variants_loss``
(nnU-Net v2's ``variants/loss/nnUNetTrainerCELoss.py``)."""

from nnunetv2.training.trainers.variants_loss import (
    nnUNetTrainerCELoss,
    nnUNetTrainerCELoss_5epochs,
)

__all__ = ["nnUNetTrainerCELoss", "nnUNetTrainerCELoss_5epochs"]
