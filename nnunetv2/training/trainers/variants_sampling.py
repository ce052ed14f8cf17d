"""nnU-Net v2's sampling variants: each sample of a batch is centred on a class with a probability, instead of the
last third of every batch."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnunetv2.training.ddp import split_batch
from nnunetv2.training.trainers.nnunet_trainer import nnUNetTrainer


class nnUNetTrainer_probabilisticOversampling(nnUNetTrainer):
    """Probabilistic foreground oversampling at the rate nnUNetTrainer effectively uses for this batch size."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.probabilistic_oversampling = True
        batch_size = self.configuration_manager.batch_size
        first_forced = round(batch_size * (1 - self.oversample_foreground_percent))
        self.oversample_foreground_percent = float(np.mean([i >= first_forced for i in range(batch_size)]))
        self.print_to_log_file(f"probabilistic oversampling of {self.oversample_foreground_percent} of the samples")

    def _set_batch_size_and_oversample(self) -> None:
        """Split the batch over DDP ranks; every rank keeps the same oversampling probability."""
        self.batch_size, _ = split_batch(
            self.configuration_manager.batch_size, self.oversample_foreground_percent, self.dist.rank,
            self.dist.world_size,
        )  # fmt: skip


class nnUNetTrainer_probabilisticOversampling_033(nnUNetTrainer_probabilisticOversampling):
    """Each sample centred on a class with probability 0.33."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.oversample_foreground_percent = 0.33


class nnUNetTrainer_probabilisticOversampling_010(nnUNetTrainer_probabilisticOversampling):
    """Each sample centred on a class with probability 0.1."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.oversample_foreground_percent = 0.1
