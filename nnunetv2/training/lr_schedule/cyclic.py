"""Cyclic learning rate (poly decay restarted ``num_cycles`` times) and its checkpoint epochs.

Within each cycle of L = num_epochs / num_cycles epochs the rate follows nnU-Net's poly decay,
lr = initial_lr * (1 - e / L) ** 0.9 with e the epoch inside the cycle; with one cycle this is
exactly nnU-Net's schedule. Each cycle ends near a minimum whose checkpoints form the ensemble.
"""

from __future__ import annotations

import numpy as np
from torch.optim import Optimizer

from nnunetv2.exceptions import TrainingError
from nnunetv2.formats.checkpoint_index import cycle_bounds
from nnunetv2.training.lr_schedule.poly import EpochLRScheduler
from nnunetv2.utilities.parameters import check_number

CHECKPOINT_RULES = ("sparse", "late")


def _cycle_bounds(num_epochs: int, num_cycles: int) -> list[tuple[int, int]]:
    # at most one cycle per epoch
    check_number("-num_of_cycles", num_cycles, f"integer [1, {num_epochs}]", error=TrainingError)
    return cycle_bounds(num_epochs, num_cycles)


def cyclic_poly_lr(epoch: int, num_epochs: int, num_cycles: int, initial_lr: float, exponent: float = 0.9) -> float:
    """Return the learning rate of ``epoch`` (0-based)."""
    for start, end in _cycle_bounds(num_epochs, num_cycles):
        if start <= epoch < end:
            return initial_lr * (1 - (epoch - start) / (end - start)) ** exponent
    return 0.0  # past the schedule (e.g. an extended run): keep the last cycle's floor


class CyclicPolyLRScheduler(EpochLRScheduler):
    """Torch scheduler of ``cyclic_poly_lr``, stepped once per epoch like nnU-Net v2's PolyLRScheduler."""

    def __init__(
        self,
        optimizer: Optimizer,
        initial_lr: float,
        num_epochs: int,
        num_cycles: int,
        exponent: float = 0.9,
        current_step: int | None = None,
    ):
        _cycle_bounds(num_epochs, num_cycles)  # bad settings fail here, before the first epoch
        self.initial_lr, self.num_epochs, self.num_cycles, self.exponent = initial_lr, num_epochs, num_cycles, exponent
        super().__init__(optimizer, current_step)

    def lr_at(self, step: int) -> float:
        """Return the cyclic rate of epoch ``step``."""
        return cyclic_poly_lr(step, self.num_epochs, self.num_cycles, self.initial_lr, self.exponent)


def cycle_of_epoch(epoch: int, num_epochs: int, num_cycles: int) -> int:
    """Return the 1-based cycle that ``epoch`` (0-based) belongs to (the last one past the schedule)."""
    bounds = _cycle_bounds(num_epochs, num_cycles)
    return next((i + 1 for i, (start, end) in enumerate(bounds) if start <= epoch < end), len(bounds))


def ensemble_checkpoint_epochs(num_epochs: int, num_cycles: int, rule: str) -> list[int]:
    """Return the 0-based epochs after which an ensemble checkpoint is saved.

    ``sparse``: six evenly spaced epochs from 70% of each cycle to its last epoch;
    ``late``: the last ten epochs of each cycle (fewer if the cycle is shorter).
    """
    if rule not in CHECKPOINT_RULES:
        raise TrainingError(f"unknown checkpoint rule '{rule}' (use {' or '.join(CHECKPOINT_RULES)})")
    epochs: list[int] = []
    for start, end in _cycle_bounds(num_epochs, num_cycles):
        last = end - 1
        if rule == "late":
            epochs += list(range(max(start, end - 10), end))
        else:
            first = start + int(np.ceil(0.7 * (end - start))) - 1
            epochs += sorted(set(np.round(np.linspace(min(first, last), last, 6)).astype(int).tolist()))
    return epochs
