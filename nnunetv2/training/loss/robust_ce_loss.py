"""Cross-entropy on (b, 1, ...) label maps and its top-k% variant (nnU-Net v2's names and signatures)."""

from __future__ import annotations

import torch
from torch import nn


class RobustCrossEntropyLoss(nn.CrossEntropyLoss):
    """``nn.CrossEntropyLoss`` that accepts targets of shape (b, 1, ...) and any dtype (logits as input)."""

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the cross-entropy of logits (b, C, ...) against labels (b, 1, ...) or (b, ...)."""
        if target.ndim == input.ndim:
            if target.shape[1] != 1:
                raise ValueError(f"RobustCrossEntropyLoss expects one target channel, got {target.shape[1]}")
            target = target[:, 0]
        return super().forward(input, target.long())


class TopKLoss(RobustCrossEntropyLoss):
    """Mean cross-entropy of the ``k`` percent hardest voxels of the batch (ignored voxels count as 0)."""

    def __init__(self, weight=None, ignore_index: int = -100, k: float = 10, label_smoothing: float = 0):
        super().__init__(weight, ignore_index=ignore_index, reduction="none", label_smoothing=label_smoothing)
        self.k = k

    def forward(self, inp: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the mean of the largest ``k`` percent per-voxel losses."""
        per_voxel = super().forward(inp, target).reshape(-1)
        count = max(1, int(per_voxel.numel() * self.k / 100))
        return torch.topk(per_voxel, count, sorted=False)[0].mean()
