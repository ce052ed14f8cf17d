"""Ensemble segmentation, voxel uncertainty map and case score from checkpoint probabilities (nnUNetv2_uncertainty).

Input is the folder written by ``predict_checkpoint_ensemble``. Per case, the checkpoints'
probabilities are streamed into ``EnsembleStatistics`` (one member in memory at a time); the
ensemble segmentation is the argmax of their mean; the map is the chosen measure; the score is
the map's mean over the predicted foreground and a ``border_width``-voxel band around it
(``foreground_mean``), or UnnUNet's ``edge_ring`` score.
With fold selection each fold's checkpoints form their own ensemble and the fold with the
lowest score gives the case's outputs. Output layout::

    OUT/CASE{file_ending}                    ensemble segmentation, in the image's geometry
    OUT/uncertainty_maps/CASE{file_ending}   uncertainty x 1000 as integers 0..1000 (same geometry)
    OUT/uncertainty_scores.csv / .json       the table (and, with references, Dice and Spearman)
    OUT/dice_vs_uncertainty.png              with references: Dice against score
    OUT/plans.json, OUT/dataset.json         so OUT is an ordinary prediction folder
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.exceptions import InferenceError
from nnunetv2.uncertainty.measures import CASE_SCORE_DEFINITIONS, CASE_SCORES, MEASURES, EnsembleStatistics, case_score

logger = logging.getLogger(__name__)

MAPS_FOLDER = "uncertainty_maps"
# maps are written through the dataset's own label writer (right geometry for every format), so
# they are stored as integers: 1000 = fully uncertain
MAP_SCALE = 1000
ALL_FOLDS = "all_folds"  # the table's fold when all folds form one ensemble


@dataclass
class CaseUncertainty:
    """One case's ensemble result: segmentation, map and scores (raw image geometry)."""

    case_id: str
    fold: int | str  # the fold whose ensemble was kept, or 'all'
    num_checkpoints: int
    segmentation: np.ndarray
    uncertainty: np.ndarray  # the chosen measure, float32 in [0, 1]
    score: float
    scores_per_measure: dict[str, float]
    scores_per_fold: dict[str, float] = field(default_factory=dict)


def _check_score_definition(score_definition: str) -> None:
    if score_definition not in CASE_SCORES:
        raise InferenceError(f"unknown case score '{score_definition}' (use {' or '.join(CASE_SCORES)})")


def _ensemble_of(npz_files: Sequence[Path], spacing: Sequence[float] | None) -> EnsembleStatistics:
    from nnunetv2.ensembling.ensemble import load_probabilities

    statistics = EnsembleStatistics(spacing)
    for npz_file in npz_files:
        probabilities = load_probabilities(npz_file)
        if statistics.mean is not None and probabilities.shape != statistics.mean.shape:
            raise InferenceError(
                f"{npz_file}: probabilities of shape {list(probabilities.shape)}, but "
                f"{npz_files[0]} has {list(statistics.mean.shape)}"
            )
        statistics.add(probabilities)
    return statistics


def case_uncertainty(
    case_id: str,
    npz_files_per_fold: Mapping[int | str, Sequence[Path]],
    label_manager: LabelManager,
    measure: str = "class_entropy",
    border_width: int = 2,
    score_definition: str = "foreground_mean",
    spacing: Sequence[float] | None = None,
) -> CaseUncertainty:
    """Return the case's result from each group's .npz files, keeping the group with the lowest score.

    Pass one group (e.g. ``{'all': files}``) for a single ensemble, one per fold for fold selection.
    ``score_definition`` is one of CASE_SCORES (ours, or UnnUNet's edge ring). ``spacing`` (per spatial
    axis of the probabilities) scales class_entropy_regional's blur to millimetres.
    """
    if measure not in MEASURES:
        raise InferenceError(f"unknown uncertainty measure '{measure}' (use {', '.join(MEASURES)})")
    _check_score_definition(score_definition)
    best: tuple[float, Any, EnsembleStatistics, np.ndarray, np.ndarray] | None = None
    scores_per_fold: dict[str, float] = {}
    for fold, npz_files in npz_files_per_fold.items():
        statistics = _ensemble_of(npz_files, spacing)
        segmentation = label_manager.probabilities_to_segmentation(statistics.mean_probabilities())
        uncertainty = statistics.uncertainty_map(measure)
        score = case_score(uncertainty, segmentation, score_definition, border_width)
        scores_per_fold[str(fold)] = score
        if best is None or score < best[0]:
            best = (score, fold, statistics, segmentation, uncertainty)
    if best is None:
        raise InferenceError(f"case '{case_id}': no checkpoint probabilities to measure")
    score, fold, statistics, segmentation, uncertainty = best
    scores_per_measure = {
        m: score
        if m == measure
        else case_score(statistics.uncertainty_map(m), segmentation, score_definition, border_width)
        for m in MEASURES
    }
    return CaseUncertainty(
        case_id,
        fold,
        statistics.count,
        segmentation,
        uncertainty,
        score,
        scores_per_measure,
        scores_per_fold if len(scores_per_fold) > 1 else {},
    )


@dataclass
class _CaseJob:
    case_id: str
    npz_files_per_fold: dict[int | str, list[Path]]
    properties_file: Path
    output_folder: Path
    file_ending: str
    reader_writer_name: str
    label_manager: LabelManager
    measure: str
    border_width: int
    reference_file: Path | None
    score_definition: str = "foreground_mean"


def _run_case(job: _CaseJob) -> dict[str, Any]:
    """Compute and write one case; return its table row."""
    from nnunetv2.ensembling.ensemble import load_case_properties
    from nnunetv2.imageio.image_files import write_scaled_map
    from nnunetv2.imageio.registry import reader_writer_class_from_name
    from nnunetv2.uncertainty.score_report import mean_foreground_dice

    properties = load_case_properties(job.properties_file)
    result = case_uncertainty(
        job.case_id,
        job.npz_files_per_fold,
        job.label_manager,
        job.measure,
        job.border_width,
        job.score_definition,
        spacing=properties.get("spacing"),
    )
    writer = reader_writer_class_from_name(job.reader_writer_name)()
    row: dict[str, Any] = {
        "case": job.case_id,
        "fold": result.fold,
        "num_checkpoints": result.num_checkpoints,
        "score": result.score,
        "case_score": job.score_definition,
        **{f"score_{m}": s for m, s in result.scores_per_measure.items()},
        **{f"score_fold_{f}": s for f, s in result.scores_per_fold.items()},
    }
    if job.reference_file is not None:
        reference, _ = writer.read_seg(job.reference_file)
        row["dice"] = mean_foreground_dice(reference[0], result.segmentation, job.label_manager, job.reference_file)
    segmentation_file = job.output_folder / f"{job.case_id}{job.file_ending}"
    map_file = job.output_folder / MAPS_FOLDER / f"{job.case_id}{job.file_ending}"
    map_file.parent.mkdir(exist_ok=True)
    write_scaled_map(result.uncertainty, map_file, properties, writer, MAP_SCALE)
    writer.write_seg(result.segmentation, segmentation_file, properties)
    row.update(segmentation_file=segmentation_file.name, uncertainty_map_file=f"{MAPS_FOLDER}/{map_file.name}")
    return row


def _load_run(prediction_folder: Path) -> dict[str, Any]:
    from nnunetv2.uncertainty.checkpoint_prediction import RUN_INDEX_FILE
    from nnunetv2.utilities.file_io import load_json

    index_file = prediction_folder / RUN_INDEX_FILE
    if not index_file.is_file():
        raise InferenceError(f"{index_file}: not found; predict with nnUNetv2_predict_checkpoints first")
    run = load_json(index_file)
    if not isinstance(run, dict) or not run.get("members") or not run.get("cases"):
        raise InferenceError(f"{index_file}: lists no members or no cases")
    return run


def compute_uncertainty(
    prediction_folder: str | os.PathLike,
    output_folder: str | os.PathLike,
    measure: str = "class_entropy",
    select_fold: bool = False,
    border_width: int = 2,
    reference_folder: str | os.PathLike | None = None,
    num_processes: int = 1,
    show_progress: bool = True,
    score_definition: str = "foreground_mean",
) -> dict[str, Any]:
    """Write every case's ensemble segmentation, uncertainty map and score; return the table (as in the .json).

    ``select_fold``: each fold's checkpoints form their own ensemble and the least uncertain is kept.
    ``reference_folder``: reference segmentations (``CASE{file_ending}``) to put each case's Dice next
    to its score, with the Spearman correlation and a scatter plot.
    ``score_definition``: the case score, one of CASE_SCORES; the table records which.
    """
    from nnunetv2.formats.prediction_folder import load_plans_and_dataset_json
    from nnunetv2.uncertainty.guidance import ensemble_warnings
    from nnunetv2.uncertainty.score_report import write_score_report
    from nnunetv2.utilities.process_pool import map_over_cases

    if measure not in MEASURES:
        raise InferenceError(f"unknown uncertainty measure '{measure}' (use {', '.join(MEASURES)})")
    _check_score_definition(score_definition)
    if border_width < 0:
        raise InferenceError(f"the border width must be 0 or more voxels, got {border_width}")
    prediction_folder, output_folder = Path(prediction_folder), Path(output_folder)
    if output_folder.resolve() == prediction_folder.resolve():
        raise InferenceError(f"{output_folder}: the output folder must differ from the checkpoint predictions")
    run = _load_run(prediction_folder)
    plans, dataset_json = load_plans_and_dataset_json(prediction_folder)
    label_manager = LabelManager.from_dataset_json(dataset_json)
    if label_manager.has_regions:
        raise InferenceError(
            f"{prediction_folder}: region-based labels have no softmax over classes; "
            f"uncertainty needs class probabilities"
        )

    groups: dict[int | str, list[str]] = {}
    for member in run["members"]:
        groups.setdefault(member["fold"] if select_fold else ALL_FOLDS, []).append(member["folder"])
    if select_fold and len(groups) < 2:
        logger.warning("fold selection with a single fold (%s): nothing to choose from", next(iter(groups)))
    warnings = ensemble_warnings(run.get("model_folder"), run["members"], select_fold)
    reference = Path(reference_folder) if reference_folder is not None else None
    if reference is not None and not reference.is_dir():
        raise InferenceError(f"{reference}: reference folder not found")

    jobs = []
    for case_id in run["cases"]:
        files = {
            fold: [prediction_folder / folder / f"{case_id}.npz" for folder in folders]
            for fold, folders in groups.items()
        }
        missing = next((f for fs in files.values() for f in fs if not f.is_file()), None)
        if missing is not None:
            raise InferenceError(
                f"{missing}: probabilities of case '{case_id}' not found (was the checkpoint "
                f"prediction interrupted? rerun it with --continue_prediction)"
            )
        reference_file = None
        if reference is not None:
            reference_file = reference / f"{case_id}{dataset_json.file_ending}"
            if not reference_file.is_file():
                raise InferenceError(f"{reference_file}: reference segmentation of case '{case_id}' not found")
        first = next(iter(files.values()))[0]
        jobs.append(
            _CaseJob(
                case_id,
                files,
                first.with_suffix(".pkl"),
                output_folder,
                dataset_json.file_ending,
                plans.image_reader_writer,
                label_manager,
                measure,
                border_width,
                reference_file,
                score_definition,
            )
        )

    output_folder.mkdir(parents=True, exist_ok=True)
    plans.save(output_folder / "plans.json")
    dataset_json.save(output_folder / "dataset.json")
    rows = map_over_cases(_run_case, jobs, num_processes, progress="uncertainty" if show_progress else None)
    settings = {
        "measure": measure,
        "border_width": border_width,
        "case_score": score_definition,
        "case_score_definition": CASE_SCORE_DEFINITIONS[score_definition],
        "select_fold": select_fold,
        "map_scale": MAP_SCALE,
        "checkpoint_predictions": str(prediction_folder.resolve()),
        "num_checkpoints": len(run["members"]),
        "warnings": warnings,
    }
    return write_score_report(rows, settings, output_folder)
