"""Exact foreground intensity statistics of a dataset, pooled from compact per-case summaries.

nnU-Net v2 draws 1e8 / number-of-cases foreground voxels per case (with replacement, seed 1234)
and takes mean, std, min, max and the 0.5 / 50 / 99.5 percentiles of the pooled draws, so every
case with foreground weighs the same, whatever its foreground size. We compute the statistics
of that same equal-weight mixture of the cases' foreground intensities exactly, not from a sample:

- mean and std from each case's exact mean and variance;
- min and max over all foreground voxels;
- a percentile p is the smallest intensity at which the mixture's cumulative distribution
  reaches p / 100 (inverted-CDF definition; np.percentile on a sample would interpolate between
  neighbouring values, which differ by far less than one intensity step on real data).

Per case we keep its distinct foreground values with cumulative counts: exact and small for
integer-valued images (a CT case has a few thousand distinct values). A case with more distinct
values than its share of ``num_foreground_voxels_for_stats`` (the number nnU-Net would draw)
keeps that many evenly spaced order statistics instead: memory stays bounded like nnU-Net's
sample, and the percentile error stays below nnU-Net's sampling error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PERCENTILE_KEYS = (("percentile_00_5", 0.005), ("median", 0.5), ("percentile_99_5", 0.995))
# cumulative fractions are sums of case fractions; this absorbs their float rounding at exact ties
_CDF_TOLERANCE = 1e-12


@dataclass
class ForegroundIntensitySummary:
    """One case's foreground intensities in one channel: exact moments, extremes and distribution."""

    num_voxels: int
    mean: float
    variance: float
    minimum: float
    maximum: float
    values: np.ndarray  # sorted distinct float32 intensities (or order statistics)
    cumulative_counts: np.ndarray  # voxels (or order statistics) <= each value

    def cdf(self, x: np.float32) -> float:
        """Return the fraction of this case's foreground voxels with intensity <= x."""
        index = int(np.searchsorted(self.values, x, side="right"))
        return float(self.cumulative_counts[index - 1] / self.cumulative_counts[-1]) if index else 0.0


def summarize_foreground_intensities(voxels: np.ndarray, max_distinct_values: int) -> ForegroundIntensitySummary | None:
    """Return the summary of a case's foreground intensities, or None when it has none."""
    voxels = np.asarray(voxels, dtype=np.float32).ravel()
    if voxels.size == 0:
        return None
    values, counts = np.unique(voxels, return_counts=True)
    cumulative = np.cumsum(counts)
    minimum, maximum = float(values[0]), float(values[-1])
    if len(values) > max_distinct_values:
        # order statistics at ranks (k + 0.5) * n / m stand for equal shares of the voxels
        ranks = ((np.arange(max_distinct_values) + 0.5) * voxels.size / max_distinct_values).astype(np.int64)
        values, counts = np.unique(values[np.searchsorted(cumulative, ranks, side="right")], return_counts=True)
        cumulative = np.cumsum(counts)
    return ForegroundIntensitySummary(
        num_voxels=int(voxels.size),
        mean=float(voxels.mean(dtype=np.float64)),
        variance=float(voxels.var(dtype=np.float64)),
        minimum=minimum,
        maximum=maximum,
        values=values,
        cumulative_counts=cumulative,
    )


def mixture_cdf(summaries: Sequence[ForegroundIntensitySummary], x: np.float32) -> float:
    """Return the equal-weight mixture's fraction of intensities <= x."""
    return sum(s.cdf(x) for s in summaries) / len(summaries)


def mixture_quantile(summaries: Sequence[ForegroundIntensitySummary], fraction: float) -> float:
    """Return the smallest intensity at which the equal-weight mixture's CDF reaches ``fraction``.

    Bisection over float32 intensities keeps cdf(low) < fraction <= cdf(high); when the two are
    adjacent float32 numbers, ``high`` is an intensity that occurs in the data.
    """
    low = np.float32(min(s.minimum for s in summaries))
    high = np.float32(max(s.maximum for s in summaries))
    if mixture_cdf(summaries, low) >= fraction - _CDF_TOLERANCE:
        return float(low)
    while True:
        above_low = np.nextafter(low, np.float32(np.inf))
        if above_low >= high:
            return float(high)
        middle = np.float32((np.float64(low) + np.float64(high)) / 2)
        if not low < middle < high:
            middle = above_low
        if mixture_cdf(summaries, middle) >= fraction - _CDF_TOLERANCE:
            high = middle
        else:
            low = middle


def pooled_foreground_statistics(summaries: Sequence[ForegroundIntensitySummary]) -> dict[str, float]:
    """Return nnU-Net v2's per-channel statistics (mean, median, std, min, max, 99.5 / 0.5 percentiles)."""
    means = np.array([s.mean for s in summaries])
    variances = np.array([s.variance for s in summaries])
    mean = float(means.mean())
    # law of total variance over the equally weighted cases
    std = float(np.sqrt(np.mean(variances + (means - mean) ** 2)))
    quantiles = {key: mixture_quantile(summaries, fraction) for key, fraction in PERCENTILE_KEYS}
    return {
        "mean": mean,
        "median": quantiles["median"],
        "std": std,
        "min": float(min(s.minimum for s in summaries)),
        "max": float(max(s.maximum for s in summaries)),
        "percentile_99_5": quantiles["percentile_99_5"],
        "percentile_00_5": quantiles["percentile_00_5"],
    }
