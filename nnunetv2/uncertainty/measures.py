"""Voxel uncertainty from a checkpoint ensemble's probabilities, and a per-case score.

The array functions take probabilities shaped ``(T, C, *spatial)``: T checkpoints (samples), C
classes (softmax outputs). They are computed from ``EnsembleStatistics``, running per-voxel
statistics that are fed one checkpoint at a time, so a large ensemble never has to be held in
memory at once. Entropies are normalised to [0, 1] so maps of different datasets compare.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

_EPS = 1e-12
T_TEST_ALPHA = 0.05  # p-values at or above this: the two most probable classes cannot be told apart
# class_entropy_regional: the voxel's entropy plus REGIONAL_WEIGHT x its neighbourhood's (Gaussian of
# REGIONAL_SIGMA voxels); chosen on the uncertainty benchmark (documentation/benchmarks.md)
REGIONAL_SIGMA = 8.0
REGIONAL_WEIGHT = 0.5


def _check(probabilities: np.ndarray) -> None:
    if probabilities.ndim < 3:
        raise ValueError("probabilities must be shaped (T, C, *spatial)")


class EnsembleStatistics:
    """Per-voxel mean, spread and mean entropy of checkpoint probabilities, updated one checkpoint at a time.

    Memory is (2C + 1) float32 volumes whatever the number of checkpoints; the spread uses
    Welford's update, which stays exact in float32 where sum-of-squares would cancel.
    """

    def __init__(self, spacing: Sequence[float] | None = None) -> None:
        self.spacing = spacing  # per spatial axis; scales class_entropy_regional's blur (None: isotropic)
        self.count = 0
        self.mean: np.ndarray | None = None  # (C, *spatial)
        self._squared_deviations: np.ndarray | None = None  # (C, *spatial)
        self._entropy_sum: np.ndarray | None = None  # (*spatial), nats

    @classmethod
    def of(cls, probabilities: np.ndarray, spacing: Sequence[float] | None = None) -> EnsembleStatistics:
        """Return the statistics of a whole ``(T, C, *spatial)`` array."""
        _check(probabilities)
        statistics = cls(spacing)
        for member in probabilities:
            statistics.add(member)
        return statistics

    def add(self, probabilities: np.ndarray) -> None:
        """Add one checkpoint's ``(C, *spatial)`` probabilities."""
        p = np.asarray(probabilities, dtype=np.float32)
        if p.ndim < 2:
            raise ValueError("one checkpoint's probabilities must be shaped (C, *spatial)")
        if self.mean is None or self._squared_deviations is None or self._entropy_sum is None:
            self.mean = np.zeros_like(p)
            self._squared_deviations = np.zeros_like(p)
            self._entropy_sum = np.zeros(p.shape[1:], dtype=np.float32)
        elif p.shape != self.mean.shape:
            raise ValueError(f"probabilities of shape {list(p.shape)} do not match the earlier {list(self.mean.shape)}")
        self.count += 1
        delta = p - self.mean
        self.mean += delta / self.count
        delta *= p - self.mean
        self._squared_deviations += delta
        self._entropy_sum -= (p * np.log(p + _EPS)).sum(0)

    def _require_data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (mean, squared deviations, entropy sum), refusing an empty ensemble."""
        if self.count == 0 or self.mean is None or self._squared_deviations is None or self._entropy_sum is None:
            raise ValueError("no checkpoint probabilities were added")
        return self.mean, self._squared_deviations, self._entropy_sum

    def mean_probabilities(self) -> np.ndarray:
        """Return the mean probability over checkpoints, (C, *spatial)."""
        mean, _, _ = self._require_data()
        return mean

    @property
    def num_classes(self) -> int:
        """Number of classes C."""
        mean, _, _ = self._require_data()
        return int(mean.shape[0])

    def variance(self) -> np.ndarray:
        """Sample variance (ddof 1) per class and voxel; zero for a single checkpoint."""
        _, squared_deviations, _ = self._require_data()
        return squared_deviations / max(self.count - 1, 1)

    def class_entropy(self) -> np.ndarray:
        """Entropy of the mean probability over checkpoints, divided by log(C)."""
        mean, _, _ = self._require_data()
        entropy = -(mean * np.log(mean + _EPS)).sum(0)
        return np.clip(entropy / np.log(self.num_classes), 0, 1).astype(np.float32)

    def total_entropy(self) -> np.ndarray:
        """Mean entropy of the single checkpoints, divided by log(C) (see ``total_entropy``)."""
        _, _, entropy_sum = self._require_data()
        return np.clip(entropy_sum / self.count / np.log(self.num_classes), 0, 1).astype(np.float32)

    def class_entropy_regional(self) -> np.ndarray:
        """Class entropy raised where the neighbourhood is uncertain too (see ``class_entropy_regional``)."""
        entropy = self.class_entropy()
        regional = ndimage.gaussian_filter(entropy, _regional_sigma(entropy.shape, self.spacing), mode="nearest")
        return np.clip((entropy + REGIONAL_WEIGHT * regional) / (1 + REGIONAL_WEIGHT), 0, 1).astype(np.float32)

    def mutual_information(self) -> np.ndarray:
        """Class entropy minus total entropy (the checkpoints' disagreement alone), divided by log(C)."""
        return np.clip(self.class_entropy() - self.total_entropy(), 0, 1)

    def margin(self) -> np.ndarray:
        """One minus the gap between the two largest mean probabilities over checkpoints."""
        mean, _, _ = self._require_data()
        top_two = np.partition(mean, mean.shape[0] - 2, axis=0)[-2:]
        return np.clip(1 - top_two[1] + top_two[0], 0, 1).astype(np.float32)

    def t_test_p_values(self) -> np.ndarray:
        """Welch's t-test p-value between the checkpoints' samples of the two most probable classes."""
        from scipy import stats

        mean, _, _ = self._require_data()
        order = np.argsort(mean, axis=0)
        first, second = order[-1:], order[-2:-1]
        mean_1 = np.take_along_axis(mean, first, 0)[0]
        mean_2 = np.take_along_axis(mean, second, 0)[0]
        variance = self.variance()
        std_1 = np.sqrt(np.take_along_axis(variance, first, 0)[0])
        std_2 = np.sqrt(np.take_along_axis(variance, second, 0)[0])
        # zero-variance voxels are expected (checkpoints agreeing); they are handled below
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            p_values = stats.ttest_ind_from_stats(
                mean_1, std_1, self.count, mean_2, std_2, self.count, equal_var=False
            ).pvalue
        undefined = ~np.isfinite(p_values)
        same = np.isclose(mean_1, mean_2)
        return np.where(undefined, np.where(same, 1.0, 0.0), p_values).astype(np.float32)

    def t_test_uncertain(self, alpha: float = T_TEST_ALPHA) -> np.ndarray:
        """1 where the two most probable classes cannot be told apart (p >= ``alpha``), else 0 (float32)."""
        return (self.t_test_p_values() >= alpha).astype(np.float32)

    def uncertainty_map(self, measure: str) -> np.ndarray:
        """Return the voxel map of ``measure`` (one of MEASURES); higher means less certain."""
        if measure not in MEASURES:
            raise ValueError(f"unknown uncertainty measure '{measure}' (use {', '.join(MEASURES)})")
        return _MEASURE_METHODS[measure](self)


def class_entropy(probabilities: np.ndarray) -> np.ndarray:
    """Entropy of the mean probability over checkpoints, divided by log(C)."""
    return EnsembleStatistics.of(probabilities).class_entropy()


def total_entropy(probabilities: np.ndarray) -> np.ndarray:
    """Entropy of all T x C probabilities taken as one distribution (each divided by T), rescaled.

    That joint entropy is log T + the mean entropy of the single checkpoints; we subtract log T and
    divide by log C so a certain voxel scores 0 and a uniform one 1. It rises with what each
    checkpoint is unsure of, while class_entropy also rises when confident checkpoints disagree.
    """
    return EnsembleStatistics.of(probabilities).total_entropy()


def class_entropy_regional(probabilities: np.ndarray, spacing: Sequence[float] | None = None) -> np.ndarray:
    """(H + 0.5 G(H)) / 1.5: class entropy H plus half its Gaussian blur G, in [0, 1].

    Errors cluster: a voxel whose neighbourhood is uncertain is more likely wrong than one as
    uncertain among certain voxels, and a structure the network missed lies next to uncertain
    boundaries while its own voxels look certain. G's sigma is 8 voxels along the finest axis and the
    same length in millimetres along the others (``spacing`` per spatial axis; None: 8 voxels each).
    """
    return EnsembleStatistics.of(probabilities, spacing).class_entropy_regional()


def _regional_sigma(shape: Sequence[int], spacing: Sequence[float] | None) -> list[float]:
    """REGIONAL_SIGMA voxels along the finest axis, the same length along coarser ones; 0 on single-voxel axes."""
    if spacing is None:
        return [0.0 if n == 1 else REGIONAL_SIGMA for n in shape]
    if len(spacing) != len(shape) or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing {list(spacing)} does not fit a map of shape {list(shape)}")
    finest = min((float(s) for s, n in zip(spacing, shape) if n > 1), default=1.0)
    return [0.0 if n == 1 else REGIONAL_SIGMA * finest / float(s) for s, n in zip(spacing, shape)]


def mutual_information(probabilities: np.ndarray) -> np.ndarray:
    """Mutual information between the class and the checkpoint, divided by log(C): class minus total entropy.

    It is the part of class_entropy that comes from checkpoints disagreeing (BALD's score): 0 when
    all agree, whether sure or unsure, and 1 when confident checkpoints split evenly over all classes.
    """
    return EnsembleStatistics.of(probabilities).mutual_information()


def margin(probabilities: np.ndarray) -> np.ndarray:
    """1 - (p1 - p2) of the mean probability over checkpoints: 0 when one class is certain, 1 when two tie."""
    return EnsembleStatistics.of(probabilities).margin()


def t_test_p_values(probabilities: np.ndarray) -> np.ndarray:
    """Welch's t-test p-value between the checkpoints' samples of the two most probable classes.

    A high p-value (>= 0.05) means the two classes cannot be told apart: the voxel is uncertain.
    Voxels where all checkpoints agree exactly (zero variance) get p = 0 when the means differ.
    """
    return EnsembleStatistics.of(probabilities).t_test_p_values()


def t_test_uncertain(probabilities: np.ndarray, alpha: float = T_TEST_ALPHA) -> np.ndarray:
    """1 where the t-test cannot tell the two most probable classes apart (p >= ``alpha``), else 0."""
    return EnsembleStatistics.of(probabilities).t_test_uncertain(alpha)


# the t_test measure marks voxels uncertain where p >= 0.05; t_test_p_value is UnnUNet's map (the p-values)
_MEASURE_METHODS = {
    "class_entropy": EnsembleStatistics.class_entropy,
    "total_entropy": EnsembleStatistics.total_entropy,
    "t_test": EnsembleStatistics.t_test_uncertain,
    "t_test_p_value": EnsembleStatistics.t_test_p_values,
    "mutual_information": EnsembleStatistics.mutual_information,
    "margin": EnsembleStatistics.margin,
    "class_entropy_regional": EnsembleStatistics.class_entropy_regional,
}
MEASURES = {
    "class_entropy": class_entropy,
    "total_entropy": total_entropy,
    "t_test": t_test_uncertain,
    "t_test_p_value": t_test_p_values,
    "mutual_information": mutual_information,
    "margin": margin,
    "class_entropy_regional": class_entropy_regional,
}


def uncertainty_map(probabilities: np.ndarray, measure: str) -> np.ndarray:
    """Return the voxel map of ``measure`` (one of MEASURES); higher means less certain."""
    if measure not in MEASURES:
        raise ValueError(f"unknown uncertainty measure '{measure}' (use {', '.join(MEASURES)})")
    return EnsembleStatistics.of(probabilities).uncertainty_map(measure)


def score_region(segmentation: np.ndarray, border_width: int = 2) -> np.ndarray | None:
    """The voxels a case score averages: predicted foreground dilated by ``border_width``; None without foreground."""
    foreground = segmentation > 0
    if not foreground.any():
        return None
    return ndimage.binary_dilation(foreground, iterations=border_width) if border_width else foreground


def case_uncertainty_score(uncertainty: np.ndarray, segmentation: np.ndarray, border_width: int = 2) -> float:
    """Mean uncertainty over the predicted foreground and a band of ``border_width`` voxels around it.

    Background far from any structure is certain in every case and would only dilute the score;
    with no predicted foreground the whole image is averaged.
    """
    region = score_region(segmentation, border_width)
    return float(uncertainty.mean() if region is None else uncertainty[region].mean())


def edge_ring(segmentation: np.ndarray) -> np.ndarray:
    """The one-voxel ring just outside the predicted foreground (dilation by a full 3^n neighbourhood, minus it)."""
    foreground = segmentation > 0
    structure = np.ones((3,) * foreground.ndim, dtype=bool)
    return ndimage.binary_dilation(foreground, structure=structure) & ~foreground


def edge_ring_score(uncertainty: np.ndarray, segmentation: np.ndarray) -> float:
    """UnnUNet's case score: 100 x the map's sum over the whole image / the number of voxels in the edge ring.

    The ring normalises for the object's outline length. Without predicted foreground the ring is
    empty and UnnUNet divides by zero; we divide by one voxel instead, so the score stays finite and large.
    """
    return float(100.0 * uncertainty.sum(dtype=np.float64) / max(int(edge_ring(segmentation).sum()), 1))


CASE_SCORES = ("foreground_mean", "edge_ring")
CASE_SCORE_DEFINITIONS = {
    "foreground_mean": "mean of the map over the predicted foreground dilated by border_width voxels",
    "edge_ring": "UnnUNet's edge ring: 100 x sum of the map over the image / voxels of the 1-voxel ring just "
    "outside the predicted foreground",
}


def case_score(uncertainty: np.ndarray, segmentation: np.ndarray, definition: str, border_width: int = 2) -> float:
    """Return the case score of ``definition`` (one of CASE_SCORES); higher means less certain."""
    if definition == "foreground_mean":
        return case_uncertainty_score(uncertainty, segmentation, border_width)
    if definition == "edge_ring":
        return edge_ring_score(uncertainty, segmentation)
    raise ValueError(f"unknown case score '{definition}' (use {' or '.join(CASE_SCORES)})")
