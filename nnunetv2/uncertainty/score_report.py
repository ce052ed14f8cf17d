"""How well uncertainty predicts errors: per-case Dice, Spearman correlation, AUROC, and the score table files."""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.exceptions import EvaluationError, InferenceError
from nnunetv2.utilities.file_io import atomic_path, save_json

logger = logging.getLogger(__name__)

TABLE_NAME = "uncertainty_scores"
PLOT_NAME = "dice_vs_uncertainty.png"


def mean_foreground_dice(
    reference: np.ndarray,
    segmentation: np.ndarray,
    label_manager: LabelManager,
    reference_file: str | os.PathLike = "reference",
) -> float:
    """Return the mean Dice over foreground labels present in either map (nan when none is); ignore label skipped."""
    from nnunetv2.evaluation.metrics import metrics_from_segmentations

    try:
        metrics = metrics_from_segmentations(
            reference, segmentation, label_manager.foreground_labels, label_manager.ignore_label
        )
    except EvaluationError as e:
        raise InferenceError(f"{reference_file}: {e}") from None
    dice = [m["Dice"] for m in metrics.values() if not math.isnan(m["Dice"])]
    return float(np.mean(dice)) if dice else float("nan")


def spearman_correlation(dice: Sequence[float], scores: Sequence[float]) -> dict[str, float | int]:
    """Return Spearman's rho and its p-value between Dice and score over cases with a defined Dice."""
    from scipy import stats

    pairs = [(d, s) for d, s in zip(dice, scores) if not math.isnan(d)]
    if len(pairs) < 3:
        return {"rho": float("nan"), "p_value": float("nan"), "num_cases": len(pairs)}
    result = stats.spearmanr(*zip(*pairs))
    return {"rho": float(result.statistic), "p_value": float(result.pvalue), "num_cases": len(pairs)}


def error_detection_auroc(
    uncertainty: np.ndarray, segmentation: np.ndarray, reference: np.ndarray, ignore_label: int | None = None
) -> float:
    """Return the AUROC of ``uncertainty`` for finding voxels where ``segmentation`` differs from ``reference``.

    0.5 is chance, 1 means every wrong voxel is more uncertain than every right one; nan when all
    voxels are right (or all wrong). Voxels under the ignore label do not count.
    """
    from scipy.stats import rankdata

    keep = np.ones(reference.shape, dtype=bool) if ignore_label is None else reference != ignore_label
    wrong = (segmentation != reference)[keep]
    num_wrong, num_right = int(wrong.sum()), int(wrong.size - wrong.sum())
    if num_wrong == 0 or num_right == 0:
        return float("nan")
    # Mann-Whitney: the rank sum of the wrong voxels (ties averaged) counts the pairs they win
    ranks = rankdata(uncertainty[keep])
    return float((ranks[wrong].sum() - num_wrong * (num_wrong + 1) / 2) / (num_wrong * num_right))


def _write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, columns, restval="")
            writer.writeheader()
            writer.writerows({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()} for row in rows)


def plot_dice_against_score(
    rows: list[dict[str, Any]], spearman: dict[str, float | int], measure: str, path: str | os.PathLike
) -> None:
    """Draw each case's Dice against its uncertainty score (case names beside the points) into a png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4.5), dpi=120)
    try:
        scores = [r["score"] for r in rows]
        axis.scatter(scores, [r["dice"] for r in rows], color="tab:blue")
        for row in rows:
            axis.annotate(
                row["case"], (row["score"], row["dice"]), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
        axis.set_xlabel(f"case uncertainty score ({measure})")
        axis.set_ylabel("mean foreground Dice")
        axis.set_title(
            f"Spearman rho = {spearman['rho']:.3f}, p = {spearman['p_value']:.3g}, n = {spearman['num_cases']} cases"
        )
        axis.grid(alpha=0.3)
        figure.tight_layout()
        with atomic_path(path, suffix=".png") as tmp:
            figure.savefig(tmp, format="png")
    finally:
        plt.close(figure)


def write_score_report(
    rows: list[dict[str, Any]], settings: dict[str, Any], output_folder: str | os.PathLike
) -> dict[str, Any]:
    """Write uncertainty_scores.csv / .json (with Dice: also Spearman's rho and the plot); return the json content."""
    output_folder = Path(output_folder)
    report: dict[str, Any] = dict(settings)
    report["mean_score"] = float(np.mean([r["score"] for r in rows])) if rows else float("nan")
    if rows and "dice" in rows[0]:
        report["spearman_dice_vs_score"] = spearman_correlation([r["dice"] for r in rows], [r["score"] for r in rows])
        plot_dice_against_score(rows, report["spearman_dice_vs_score"], settings["measure"], output_folder / PLOT_NAME)
        # the command prints the figure once; the library only records it
        logger.debug(
            "Spearman rho between Dice and %s score: %.3f", settings["measure"], report["spearman_dice_vs_score"]["rho"]
        )
    report["cases"] = rows
    _write_csv(rows, output_folder / f"{TABLE_NAME}.csv")
    save_json(report, output_folder / f"{TABLE_NAME}.json")
    return report
