"""Evaluate a folder of predictions against a folder of references and write ``summary.json``.

The file has nnU-Net v2's layout: ``metric_per_case`` (one entry per case), ``mean`` (per label
or region, NaN-skipping mean over cases) and ``foreground_mean`` (mean of ``mean`` over every key
but background). Keys are ``str(label)`` for labels (``"1"``) and ``str(tuple)`` for regions
(``"(1, 2)"``); keys are sorted, as nnU-Net v2 writes them.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.evaluation.metrics import (  # noqa: F401 (compute_tp_fp_fn_tn: nnU-Net v2 has it here)
    METRIC_NAMES,
    LabelOrRegion,
    _as_values,
    compute_metrics,
    compute_tp_fp_fn_tn,
)
from nnunetv2.exceptions import EvaluationError
from nnunetv2.utilities.file_io import list_files, load_json, save_json
from nnunetv2.utilities.parameters import check_number
from nnunetv2.utilities.process_pool import spawn_executor

logger = logging.getLogger(__name__)

_MIN_CASES_PER_PROCESS = 4  # below this a worker costs more to start than it saves


def label_or_region_to_key(label_or_region: LabelOrRegion) -> str:
    """Return the summary.json key: ``"1"`` for a label, ``"(1, 2)"`` for a region."""
    return str(tuple(label_or_region)) if isinstance(label_or_region, (tuple, list)) else str(int(label_or_region))


def key_to_label_or_region(key: str) -> LabelOrRegion:
    """Inverse of label_or_region_to_key."""
    text = key.strip()
    if text.startswith("("):
        return tuple(int(part) for part in text.strip("()").split(",") if part.strip())
    return int(text)


def label_names_by_key(dataset_json_file: str | os.PathLike) -> dict[str, str]:
    """Return ``summary.json key -> label or region name`` from a dataset.json's ``labels``."""
    from nnunetv2.formats.dataset_json import DatasetJson

    labels = DatasetJson.load(dataset_json_file).labels
    return {
        label_or_region_to_key(tuple(value) if isinstance(value, list) else value): name
        for name, value in labels.items()
        if name != "background"
    }


def mean_dice_lines(results: dict[str, Any], label_names: dict[str, str] | None = None) -> list[str]:
    """Return the report of a summary: ``1 (liver): Dice 0.9512`` per label or region (the number alone without a
    name), then the foreground mean."""
    lines = []
    for key, metrics in results["mean"].items():
        key = label_or_region_to_key(key)
        name = (label_names or {}).get(key)
        lines.append(
            f"{key} ({name}): Dice {metrics['Dice']:.4f}" if name else f"label {key}: Dice {metrics['Dice']:.4f}"
        )
    lines.append(f"foreground mean Dice: {results['foreground_mean']['Dice']:.4f}")
    return lines


def save_summary_json(results: dict[str, Any], output_file: str | os.PathLike) -> None:
    """Write evaluation results (keys may be labels or region tuples) as summary.json."""
    converted = {
        "foreground_mean": results["foreground_mean"],
        "mean": {label_or_region_to_key(k): v for k, v in results["mean"].items()},
        "metric_per_case": [
            {**case, "metrics": {label_or_region_to_key(k): v for k, v in case["metrics"].items()}}
            for case in results["metric_per_case"]
        ],
    }
    save_json(converted, output_file, sort_keys=True)


def load_summary_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read summary.json with label / region keys turned back into ints / tuples."""
    results = load_json(path)
    results["mean"] = {key_to_label_or_region(k): v for k, v in results["mean"].items()}
    for case in results["metric_per_case"]:
        case["metrics"] = {key_to_label_or_region(k): v for k, v in case["metrics"].items()}
    return results


def _files_with_ending(folder: Path, file_ending: str) -> list[str]:
    if not folder.is_dir():
        raise EvaluationError(f"{folder}: folder not found")
    return [f.name for f in list_files(folder, file_ending)]


def _case_pairs(folder_ref: Path, folder_pred: Path, file_ending: str, chill: bool) -> list[tuple[Path, Path]]:
    """(reference, prediction) file pairs, matched by file name."""
    references = _files_with_ending(folder_ref, file_ending)
    predictions = _files_with_ending(folder_pred, file_ending)
    without_reference = sorted(set(predictions) - set(references))
    if without_reference:
        raise EvaluationError(f"{folder_pred / without_reference[0]}: prediction has no reference file in {folder_ref}")
    missing = sorted(set(references) - set(predictions))
    if missing and not chill:
        raise EvaluationError(
            f"{len(missing)} of {len(references)} cases in {folder_ref} have no prediction in "
            f"{folder_pred} (first: {missing[0]}); use --chill to evaluate only the predicted ones"
        )
    if not predictions:
        raise EvaluationError(f"{folder_pred}: no predictions ending in '{file_ending}'")
    return [(folder_ref / name, folder_pred / name) for name in predictions]


def _compute_case(args: tuple) -> dict[str, Any]:
    reference, prediction, reader_writer, labels_or_regions, ignore_label, declared_values = args
    return compute_metrics(reference, prediction, reader_writer, labels_or_regions, ignore_label, declared_values)


def _summarize(per_case: list[dict[str, Any]], labels_or_regions: Sequence[LabelOrRegion]) -> dict[str, Any]:
    """Add the per-label means (NaN-skipping) and the foreground mean to the per-case results."""
    means: dict[LabelOrRegion, dict[str, float]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a label with Dice NaN in every case stays NaN
        for key in labels_or_regions:
            means[key] = {m: float(np.nanmean([case["metrics"][key][m] for case in per_case])) for m in METRIC_NAMES}
        foreground = [k for k in labels_or_regions if k != 0]
        foreground_mean = {
            m: float(np.nanmean([means[k][m] for k in foreground])) if foreground else float("nan")
            for m in METRIC_NAMES
        }
    return {"metric_per_case": per_case, "mean": means, "foreground_mean": foreground_mean}


def compute_metrics_on_folder(
    folder_ref: str | os.PathLike,
    folder_pred: str | os.PathLike,
    output_file: str | os.PathLike | None,
    reader_writer_class,
    file_ending: str,
    labels_or_regions: Sequence[LabelOrRegion],
    ignore_label: int | None = None,
    num_processes: int = 1,
    chill: bool = False,
    declared_values: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Return (and write to ``output_file`` unless None) the summary of every prediction in ``folder_pred``.

    A reference without a prediction is an error unless ``chill``; a prediction without a
    reference is always an error. ``reader_writer_class`` may also be an instance. With
    ``declared_values``, files holding other label values are refused.
    """
    check_number("the number of processes (-np)", num_processes, "integer >= 0", error=EvaluationError)
    labels_or_regions = [tuple(r) if isinstance(r, list) else r for r in labels_or_regions]
    if not labels_or_regions:
        raise EvaluationError("no labels or regions to evaluate")
    reader_writer = reader_writer_class() if isinstance(reader_writer_class, type) else reader_writer_class
    pairs = _case_pairs(Path(folder_ref), Path(folder_pred), file_ending, chill)
    jobs = [(ref, pred, reader_writer, labels_or_regions, ignore_label, declared_values) for ref, pred in pairs]
    workers = min(num_processes, len(jobs) // _MIN_CASES_PER_PROCESS)
    if workers > 1:
        # spawn: forked workers can deadlock on thread pools numpy or torch started in the parent
        with spawn_executor(workers) as pool:
            per_case = list(pool.map(_compute_case, jobs))
    else:
        per_case = [_compute_case(job) for job in jobs]
    results = _summarize(per_case, labels_or_regions)
    if output_file is not None:
        save_summary_json(results, output_file)
        logger.info("wrote %s", output_file)
    return results


def compute_metrics_on_folder_with_plans(
    folder_ref: str | os.PathLike,
    folder_pred: str | os.PathLike,
    dataset_json_file: str | os.PathLike,
    plans_file: str | os.PathLike,
    output_file: str | os.PathLike | None = None,
    num_processes: int = 1,
    chill: bool = False,
) -> dict[str, Any]:
    """Evaluate with the labels/regions and ignore label of dataset.json and the plans' reader-writer.

    ``output_file`` defaults to ``folder_pred/summary.json`` (nnUNetv2_evaluate_folder).
    """
    from nnunetv2.dataset.label_manager import LabelManager
    from nnunetv2.formats.dataset_json import DatasetJson
    from nnunetv2.formats.plans import Plans
    from nnunetv2.imageio.registry import reader_writer_class_from_name

    dataset_json = DatasetJson.load(dataset_json_file)
    plans = Plans.load(plans_file)
    label_manager = LabelManager(dataset_json.labels, dataset_json.regions_class_order, source=str(dataset_json_file))
    if output_file is None:
        output_file = Path(folder_pred) / "summary.json"
    return compute_metrics_on_folder(
        folder_ref,
        folder_pred,
        output_file,
        reader_writer_class_from_name(plans.image_reader_writer),
        dataset_json.file_ending,
        label_manager.foreground_labels_or_regions,
        label_manager.ignore_label,
        num_processes,
        chill,
        label_manager.declared_values,
    )


def compute_metrics_on_folder_simple(
    folder_ref: str | os.PathLike,
    folder_pred: str | os.PathLike,
    labels: Sequence[int],
    output_file: str | os.PathLike | None = None,
    num_processes: int = 1,
    ignore_label: int | None = None,
    chill: bool = False,
) -> dict[str, Any]:
    """Evaluate ``labels`` with the reader-writer that fits the reference files' ending.

    Arguments in nnU-Net v2's order.
    ``output_file`` defaults to ``folder_pred/summary.json`` (nnUNetv2_evaluate_simple).
    """
    from nnunetv2.imageio.registry import file_ending_of, reader_writer_for_ending

    folder_ref = Path(folder_ref)
    if not folder_ref.is_dir():
        raise EvaluationError(f"{folder_ref}: folder not found")
    examples = list_files(folder_ref)
    if not examples:
        raise EvaluationError(f"{folder_ref}: no reference files")
    # the ending as spelled in the folder (file_ending_of lowercases it for the reader lookup)
    file_ending = examples[0].name[-len(file_ending_of(examples[0].name)) :]
    reader_writer_class = reader_writer_for_ending(file_ending, str(examples[0]))
    if output_file is None:
        output_file = Path(folder_pred) / "summary.json"
    return compute_metrics_on_folder(
        folder_ref,
        folder_pred,
        output_file,
        reader_writer_class,
        file_ending,
        list(labels),
        ignore_label,
        num_processes,
        chill,
    )


# nnU-Net v2's other names in this module
compute_metrics_on_folder2 = compute_metrics_on_folder_with_plans


def labels_to_list_of_regions(labels: Sequence[int]) -> list[tuple[int]]:
    """Each label as a one-label region, ``[(1,), (2,)]``."""
    return [(int(i),) for i in labels]


def region_or_label_to_mask(segmentation: np.ndarray, region_or_label: LabelOrRegion) -> np.ndarray:
    """Boolean mask of the voxels whose label is ``region_or_label`` (or one of the region's labels)."""
    return np.isin(segmentation, _as_values(region_or_label))
