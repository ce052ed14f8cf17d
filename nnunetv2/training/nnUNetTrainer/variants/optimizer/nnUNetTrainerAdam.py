"""Alias of ``nnunetv2.training.trainers.variants_optimizer``
(nnU-Net v2's ``variants/optimizer/nnUNetTrainerAdam.py``)."""

from nnunetv2.training.trainers.variants_optimizer import (
    nnUNetTrainerAdam,
    nnUNetTrainerAdam1en3,
    nnUNetTrainerAdam3en4,
    nnUNetTrainerVanillaAdam,
    nnUNetTrainerVanillaAdam1en3,
    nnUNetTrainerVanillaAdam3en4,
)

__all__ = [
    "nnUNetTrainerAdam",
    "nnUNetTrainerVanillaAdam",
    "nnUNetTrainerVanillaAdam1en3",
    "nnUNetTrainerVanillaAdam3en4",
    "nnUNetTrainerAdam1en3",
    "nnUNetTrainerAdam3en4",
]
