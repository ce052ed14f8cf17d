"""nnU-Net v2's path of nnUNetTrainer: an alias of ``nnunetv2.training.trainers.nnunet_trainer``.

Subclass it and override nnU-Net v2's hooks (documentation/compatibility.md, "Trainer hooks").
"""

from nnunetv2.training.trainers.nnunet_trainer import nnUNetTrainer

__all__ = ["nnUNetTrainer"]
