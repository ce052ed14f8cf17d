"""Voxel uncertainty from a checkpoint ensemble's probabilities, and a per-case score.

All measures take probabilities shaped ``(T, C, *spatial)``: T checkpoints (samples), C classes
(softmax outputs). Entropies are normalised to [0, 1] so maps of different datasets compare.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

_EPS = 1e-12


def _check(probabilities: np.ndarray) -> None:
    if probabilities.ndim < 3:
        raise ValueError("probabilities must be shaped (T, C, *spatial)")


def class_entropy(probabilities: np.ndarray) -> np.ndarray:
    """Entropy of the mean probability over checkpoints, divided by log(C)."""
    _check(probabilities)
    mean = probabilities.mean(0, dtype=np.float64)
    entropy = -(mean * np.log(mean + _EPS)).sum(0)
    return np.clip(entropy / np.log(probabilities.shape[1]), 0, 1).astype(np.float32)


def total_entropy(probabilities: np.ndarray) -> np.ndarray:
    """Entropy of all T x C probabilities taken as one distribution (each divided by T), rescaled.

    That joint entropy is log T + the mean entropy of the single checkpoints; we subtract log T and
    divide by log C so a certain voxel scores 0 and a uniform one 1. It rises with what each
    checkpoint is unsure of, while class_entropy also rises when confident checkpoints disagree.
    """
    _check(probabilities)
    c = probabilities.shape[1]
    per_checkpoint = -(probabilities * np.log(probabilities + _EPS)).sum(1, dtype=np.float64)
    return np.clip(per_checkpoint.mean(0) / np.log(c), 0, 1).astype(np.float32)


def t_test_p_values(probabilities: np.ndarray) -> np.ndarray:
    """Welch's t-test p-value between the checkpoints' samples of the two most probable classes.

    A high p-value (>= 0.05) means the two classes cannot be told apart: the voxel is uncertain.
    Voxels where all checkpoints agree exactly (zero variance) get p = 0 when the means differ.
    """
    _check(probabilities)
    from scipy import stats
    order = np.argsort(probabilities.mean(0), axis=0)
    first = np.take_along_axis(probabilities, order[None, -1:], axis=1)[:, 0]
    second = np.take_along_axis(probabilities, order[None, -2:-1], axis=1)[:, 0]
    # zero-variance voxels are expected (checkpoints agreeing); they are handled below
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p_values = stats.ttest_ind(first, second, axis=0, equal_var=False).pvalue
    undefined = ~np.isfinite(p_values)
    same = np.isclose(first.mean(0), second.mean(0))
    p_values = np.where(undefined, np.where(same, 1.0, 0.0), p_values)
    return p_values.astype(np.float32)


MEASURES = {"class_entropy": class_entropy, "total_entropy": total_entropy, "t_test": t_test_p_values}


def uncertainty_map(probabilities: np.ndarray, measure: str) -> np.ndarray:
    """Return the voxel map of ``measure`` (one of MEASURES); higher means less certain."""
    if measure not in MEASURES:
        raise ValueError(f"unknown uncertainty measure '{measure}' (use {', '.join(MEASURES)})")
    return MEASURES[measure](probabilities)


def case_uncertainty_score(uncertainty: np.ndarray, segmentation: np.ndarray, border_width: int = 2) -> float:
    """Mean uncertainty over the predicted foreground and a band of ``border_width`` voxels around it.

    Background far from any structure is certain in every case and would only dilute the score;
    with no predicted foreground the whole image is averaged.
    """
    foreground = segmentation > 0
    if not foreground.any():
        return float(uncertainty.mean())
    region = ndimage.binary_dilation(foreground, iterations=border_width) if border_width else foreground
    return float(uncertainty[region].mean())
