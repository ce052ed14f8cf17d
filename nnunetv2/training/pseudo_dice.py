"""Hard TP/FP/FN counts of a validation batch, summed over an epoch into nnU-Net's pseudo Dice."""

from __future__ import annotations

import numpy as np
import torch

from nnunetv2.dataset.label_manager import LabelManager


def hard_tp_fp_fn(
    logits: torch.Tensor, target: torch.Tensor, label_manager: LabelManager
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return per-class (labels, background excluded) or per-region counts over the batch.

    ``logits`` is the highest-resolution output (b, C, ...), ``target`` the matching target;
    voxels under the ignore label are not counted.
    """
    axes = [0] + list(range(2, logits.ndim))
    mask: torch.Tensor | None = None
    if label_manager.has_regions:
        if label_manager.has_ignore_label:
            mask = ~target[:, -1:].bool()
            target = target[:, :-1]
        predicted = logits > 0  # sigmoid > 0.5
        reference = target.bool()
    else:
        target = target.long()
        if label_manager.has_ignore_label:
            ignore_label = label_manager.ignore_label
            assert ignore_label is not None
            mask = torch.ne(target, ignore_label)
            target = torch.where(mask, target, 0)
        predicted = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, logits.argmax(1, keepdim=True), True)
        reference = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, target, True)
    if mask is not None:
        predicted, reference = predicted & mask, reference & mask
    tp = (predicted & reference).sum(axes)
    fp = (predicted & ~reference).sum(axes)
    fn = (~predicted & reference).sum(axes)
    if not label_manager.has_regions:
        tp, fp, fn = tp[1:], fp[1:], fn[1:]
    return tp.cpu().numpy(), fp.cpu().numpy(), fn.cpu().numpy()


def dice_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Return 2TP / (2TP + FP + FN) per class; NaN where a class never occurs nor is predicted."""
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / denominator, np.nan)


def mean_foreground_dice(dice_per_class: np.ndarray) -> float:
    """Return the mean over classes that occurred (NaN entries skipped; NaN if none occurred)."""
    finite = dice_per_class[~np.isnan(dice_per_class)]
    return float(finite.mean()) if finite.size else float("nan")
