"""Alias of ``nnunetv2.training.trainers.variants_network_architecture``
(nnU-Net v2's ``variants/network_architecture/nnUNetTrainerBN.py``)."""

from nnunetv2.training.trainers.variants_network_architecture import (
    nnUNetTrainerBN,
)

__all__ = ["nnUNetTrainerBN"]
