"""Alias of ``nnunetv2.training.trainers.variants_loss``
(nnU-Net v2's ``variants/loss/nnUNetTrainerTopkLoss.py``)."""

from nnunetv2.training.trainers.variants_loss import (
    nnUNetTrainerDiceTopK10Loss,
    nnUNetTrainerTopk10Loss,
    nnUNetTrainerTopk10LossLS01,
)

__all__ = ["nnUNetTrainerTopk10Loss", "nnUNetTrainerTopk10LossLS01", "nnUNetTrainerDiceTopK10Loss"]
