"""Deep supervision: one loss per decoder output, weighted 1/2^i and normalised, the lowest ignored."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


def deep_supervision_weights(num_outputs: int, keep_lowest_output: bool = False) -> list[float]:
    """Return nnU-Net v2's output weights: 1/2^i, the lowest resolution 0 (1e-6 if kept), summing to 1.

    ``keep_lowest_output`` is for DDP, which fails on parameters that receive no gradient. A network
    with a single output keeps it (nnU-Net would divide by zero there).
    """
    weights = np.array([1 / 2**i for i in range(num_outputs)])
    if num_outputs > 1:
        weights[-1] = 1e-6 if keep_lowest_output else 0.0
    return (weights / weights.sum()).tolist()


class DeepSupervisionLoss(nn.Module):
    """Weighted sum of ``loss`` over (output, target) pairs, highest resolution first."""

    def __init__(self, loss: nn.Module, weights: Sequence[float]):
        super().__init__()
        self.loss = loss
        self.weights = list(weights)

    def forward(self, outputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor]) -> torch.Tensor:
        """Return the weighted loss; outputs with weight 0 are not computed at all."""
        if len(outputs) != len(self.weights) or len(targets) != len(self.weights):
            raise ValueError(
                f"deep supervision expects {len(self.weights)} outputs and targets, "
                f"got {len(outputs)} and {len(targets)}"
            )
        return sum(w * self.loss(o, t) for w, o, t in zip(self.weights, outputs, targets) if w != 0)
