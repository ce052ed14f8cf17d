"""nnU-Net v2's optimizer variants: AdamW (amsgrad) and Adam with the poly learning rate, at three initial rates.

(nnU-Net v2's Adan variants need the adan-pytorch package, which this package does not install.)
"""

from __future__ import annotations

from typing import Any

import torch

from nnunetv2.training.lr_schedule.poly import PolyLRScheduler
from nnunetv2.training.trainers.nnunet_trainer import nnUNetTrainer


class nnUNetTrainerAdam(nnUNetTrainer):
    """AdamW with amsgrad and nnU-Net's weight decay, poly learning rate."""

    def configure_optimizers(self) -> tuple[torch.optim.Optimizer, Any]:
        """Return (AdamW, poly scheduler)."""
        optimizer = torch.optim.AdamW(
            self.network.parameters(), lr=self.initial_lr, weight_decay=self.weight_decay, amsgrad=True
        )
        return optimizer, PolyLRScheduler(optimizer, self.initial_lr, self.num_epochs)


class nnUNetTrainerVanillaAdam(nnUNetTrainer):
    """Adam with nnU-Net's weight decay, poly learning rate."""

    def configure_optimizers(self) -> tuple[torch.optim.Optimizer, Any]:
        """Return (Adam, poly scheduler)."""
        optimizer = torch.optim.Adam(self.network.parameters(), lr=self.initial_lr, weight_decay=self.weight_decay)
        return optimizer, PolyLRScheduler(optimizer, self.initial_lr, self.num_epochs)


class nnUNetTrainerVanillaAdam1en3(nnUNetTrainerVanillaAdam):
    """nnUNetTrainerVanillaAdam from learning rate 1e-3."""

    initial_lr = 1e-3


class nnUNetTrainerVanillaAdam3en4(nnUNetTrainerVanillaAdam):
    """nnUNetTrainerVanillaAdam from learning rate 3e-4."""

    initial_lr = 3e-4


class nnUNetTrainerAdam1en3(nnUNetTrainerAdam):
    """nnUNetTrainerAdam from learning rate 1e-3."""

    initial_lr = 1e-3


class nnUNetTrainerAdam3en4(nnUNetTrainerAdam):
    """nnUNetTrainerAdam from learning rate 3e-4."""

    initial_lr = 3e-4
