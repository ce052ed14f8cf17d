"""Which voxel map finds a checkpoint ensemble's errors: candidate maps scored on one benchmark run.

Every candidate is computed from the same stored member probabilities and judged against the same
errors (the library's ensemble segmentation: argmax of the checkpoints' mean, mirroring on), so the
rows differ only in the map. Mirror members come from predicting flipped copies of the test images
without test-time mirroring and flipping the probabilities back: T checkpoints x 4 mirrors.

Regions: "image" is every pixel; "fg+border" is the reference or predicted foreground dilated by
``BORDER`` pixels (it holds every wrong pixel that is not far background); "pred+border" is the
predicted foreground dilated by ``BORDER`` pixels (the case score's region, the benchmark's earlier
definition: it leaves out missed structures away from the prediction).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

BORDER = 2
MIRRORS = ((), (-1,), (-2,), (-2, -1))  # axes of the (C, 1, H, W) probability arrays


def _entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(p + 1e-12)).sum(0) / np.log(p.shape[0])


def _sharpened(members: np.ndarray, temperature: float) -> np.ndarray:
    # softmax(z / T) from softmax(z): p^(1/T), renormalised
    p = np.power(np.clip(members, 1e-8, 1), 1.0 / temperature)
    return p / p.sum(1, keepdims=True)


def candidate_maps(checkpoints: np.ndarray, mirrored: np.ndarray | None) -> dict[str, np.ndarray]:
    """Return every candidate map of one case from its (T, C, ...) checkpoint and (4T, C, ...) mirror members."""
    from nnunetv2.uncertainty.measures import EnsembleStatistics

    statistics = EnsembleStatistics.of(checkpoints)
    library = (
        "class_entropy",
        "total_entropy",
        "t_test_p_value",
        "mutual_information",
        "margin",
        "class_entropy_regional",
    )
    maps = {m: statistics.uncertainty_map(m) for m in library}
    maps["variance (sum over classes)"] = statistics.variance().sum(0)
    for temperature in (2.0, 4.0):
        maps[f"class_entropy T={temperature:g}"] = _entropy(_sharpened(checkpoints, temperature).mean(0))
    for sigma in (1.0, 2.0, 4.0):
        maps[f"class_entropy smoothed {sigma:g} px"] = smoothed(maps["class_entropy"], sigma)
    if mirrored is not None:
        mirror_statistics = EnsembleStatistics.of(mirrored)
        maps["class_entropy, checkpoints x mirrors"] = mirror_statistics.class_entropy()
        maps["mutual_information, checkpoints x mirrors"] = np.clip(
            mirror_statistics.class_entropy() - mirror_statistics.total_entropy(), 0, 1
        )
        maps["variance, checkpoints x mirrors"] = mirror_statistics.variance().sum(0)
        per_checkpoint = mirrored.reshape(len(MIRRORS), -1, *mirrored.shape[1:])
        maps["mirror variance only"] = per_checkpoint.var(0).mean(0).sum(0)
        maps["class_entropy x mirrors, smoothed 2 px"] = smoothed(maps["class_entropy, checkpoints x mirrors"], 2.0)
    return maps


def smoothed(uncertainty: np.ndarray, sigma: float) -> np.ndarray:
    """The map blurred in-plane (last two axes) with a Gaussian of ``sigma`` pixels."""
    return ndimage.gaussian_filter(uncertainty, [0] * (uncertainty.ndim - 2) + [sigma, sigma])


def foreground_and_border(reference: np.ndarray, segmentation: np.ndarray) -> np.ndarray:
    """Reference or predicted foreground, dilated by BORDER pixels."""
    return ndimage.binary_dilation((reference > 0) | (segmentation > 0), iterations=BORDER)


def predicted_foreground_and_border(segmentation: np.ndarray) -> np.ndarray:
    """Predicted foreground dilated by BORDER pixels (the whole image when nothing is predicted)."""
    from nnunetv2.uncertainty.measures import score_region

    region = score_region(segmentation, BORDER)
    return np.ones(segmentation.shape, bool) if region is None else region


def region_aurocs(uncertainty: np.ndarray, wrong: np.ndarray, regions: dict[str, np.ndarray]) -> list[float]:
    """AUROC of ``uncertainty`` for the ``wrong`` pixels over the whole arrays, then inside each region."""
    from nnunetv2.uncertainty.score_report import error_detection_auroc

    right = np.zeros_like(wrong, dtype=np.int64)  # error_detection_auroc compares a segmentation with a reference
    wrong = wrong.astype(np.int64)
    aurocs = [error_detection_auroc(uncertainty, wrong, right)]
    for inside in regions.values():
        aurocs.append(error_detection_auroc(uncertainty[inside], wrong[inside], right[inside]))
    return aurocs


def load_members(folders: list[Path], case: str) -> np.ndarray:
    """Stack the case's probabilities from each member folder: (T, C, ...)."""
    from nnunetv2.ensembling.ensemble import load_probabilities

    return np.stack([load_probabilities(folder / f"{case}.npz") for folder in folders])


def load_mirrored(root: Path, member_names: list[str], case: str) -> np.ndarray | None:
    """The case's checkpoint x mirror members, flipped back (None when the mirror runs are missing)."""
    stacks = []
    for axes in MIRRORS:
        run = root / mirror_folder_name(axes)
        if not (run / "checkpoint_predictions.json").is_file():
            return None
        members = load_members([run / name for name in member_names], case)
        stacks.append(np.flip(members, axes) if axes else members)
    return np.concatenate(stacks)


def mirror_folder_name(axes: tuple[int, ...]) -> str:
    """Folder of the no-TTA run on images flipped along ``axes`` (negative axes of the array)."""
    return "members_flip_" + ("none" if not axes else "_".join(str(-a) for a in axes))


CaseData = tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]  # reference, segmentation, maps


def score_maps(cases: list[str], dice: dict[str, float], data: dict[str, CaseData]) -> list[list[object]]:
    """One row per candidate: pooled AUROC (image, fg+border, pred+border), Spearman of the score vs Dice."""
    from nnunetv2.uncertainty.score_report import spearman_correlation

    rows = []
    for name in data[cases[0]][2]:
        aurocs = pooled_aurocs(cases, data, name)
        scores = [case_uncertainty_score(data[c][2][name], data[c][1]) for c in cases]
        rho = spearman_correlation([dice[c] for c in cases], scores)["rho"]
        rows.append([name, *(f"{a:.3f}" for a in aurocs), f"{rho:.3f}"])
    return rows


def pooled_aurocs(cases: list[str], data: dict[str, CaseData], name: str) -> list[float]:
    """AUROC of map ``name`` for wrong pixels pooled over ``cases``: whole images, fg+border, pred+border."""
    u = np.concatenate([data[c][2][name].ravel() for c in cases])
    wrong = np.concatenate([(data[c][0] != data[c][1]).ravel() for c in cases])
    regions = {
        "fg+border": np.concatenate([foreground_and_border(data[c][0], data[c][1]).ravel() for c in cases]),
        "pred+border": np.concatenate([predicted_foreground_and_border(data[c][1]).ravel() for c in cases]),
    }
    return region_aurocs(u, wrong, regions)


def score_groups(
    groups: dict[str, list[str]], dice: dict[str, float], data: dict[str, CaseData], names: list[str]
) -> list[list[object]]:
    """One row per group of cases (e.g. per shift): its mean Dice and the maps' pooled AUROCs (image, fg+border)."""
    rows = []
    for group, cases in groups.items():
        row: list[object] = [group, len(cases), f"{np.mean([dice[c] for c in cases]):.3f}"]
        for name in names:
            row += [f"{a:.3f}" for a in pooled_aurocs(cases, data, name)[:2]]
        rows.append(row)
    return rows


def case_uncertainty_score(uncertainty: np.ndarray, segmentation: np.ndarray) -> float:
    """The library's default case score (mean over the predicted foreground and a 2-pixel border)."""
    from nnunetv2.uncertainty.measures import case_uncertainty_score as library_score

    return library_score(uncertainty, segmentation)
