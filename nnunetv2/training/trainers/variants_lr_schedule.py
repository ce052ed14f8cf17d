"""nnU-Net v2's learning-rate variants: cosine annealing, and a linear warm-up before the poly decay."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR

from nnunetv2.training.lr_schedule.warmup import Lin_incr_LRScheduler, PolyLRScheduler_offset
from nnunetv2.training.trainers.nnunet_trainer import nnUNetTrainer


class nnUNetTrainerCosAnneal(nnUNetTrainer):
    """SGD as nnUNetTrainer with a cosine-annealed learning rate over ``num_epochs``."""

    def configure_optimizers(self) -> tuple[torch.optim.Optimizer, Any]:
        """Return (SGD, CosineAnnealingLR)."""
        optimizer, _ = super().configure_optimizers()
        return optimizer, CosineAnnealingLR(optimizer, T_max=self.num_epochs)


class nnUNetTrainer_warmup(nnUNetTrainer):
    """The learning rate rises linearly over ``warmup_duration_whole_net`` epochs, then decays by the poly rule
    (the optimizer, with its momentum, is kept across the switch)."""

    warmup_duration_whole_net = 50

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.training_stage: str | None = None  # 'warmup_all' or 'train'

    def configure_optimizers(self, stage: str = "warmup_all") -> tuple[Any, Any]:
        """Return the optimizer and scheduler of ``stage`` ('warmup_all' or 'train'); the current ones if unchanged."""
        if stage not in ("warmup_all", "train"):
            raise ValueError(f"unknown training stage '{stage}'")
        if self.training_stage == stage:
            return self.optimizer, self.lr_scheduler
        if stage == "train" and self.training_stage == "warmup_all":
            optimizer = self.optimizer
        else:
            optimizer, _ = super().configure_optimizers()
        if stage == "warmup_all":
            scheduler: Any = Lin_incr_LRScheduler(optimizer, self.initial_lr, self.warmup_duration_whole_net)
        else:
            scheduler = PolyLRScheduler_offset(
                optimizer, self.initial_lr, self.num_epochs, self.warmup_duration_whole_net
            )
        self.print_to_log_file(f"learning rate stage '{stage}' from epoch {self.current_epoch}")
        self.training_stage = stage
        return optimizer, scheduler

    def on_train_epoch_start(self) -> None:
        """Switch from warm-up to the poly decay at ``warmup_duration_whole_net``, then start the epoch."""
        if self.current_epoch == 0:
            self.optimizer, self.lr_scheduler = self.configure_optimizers("warmup_all")
        elif self.current_epoch == self.warmup_duration_whole_net:
            self.optimizer, self.lr_scheduler = self.configure_optimizers("train")
        super().on_train_epoch_start()

    def load_checkpoint(self, filename_or_checkpoint: str | os.PathLike | dict[str, Any]) -> None:
        """Restore the checkpoint, then the stage its epoch belongs to (keeping the restored optimizer state)."""
        super().load_checkpoint(filename_or_checkpoint)
        stage = "warmup_all" if self.current_epoch < self.warmup_duration_whole_net else "train"
        self.optimizer, self.lr_scheduler = self.configure_optimizers(stage)
