"""Find the connected-component postprocessing that raises cross-validation Dice, store it, apply it.

The search follows nnU-Net v2: first keep only the largest component of all foreground together
(kept when the foreground mean Dice rises and no label or region gets worse), then, with more than
one label or region, of each one in dataset.json order (kept when that one's Dice rises), each
trial starting from the best result so far. The decision is stored as ``postprocessing.json`` in
nnU-Net v2's layout; nnU-Net v2's ``postprocessing.pkl`` is read too, without running its code.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.dataset.label_manager import LabelManager, label_names
from nnunetv2.exceptions import NnUNetError
from nnunetv2.formats.prediction_folder import (
    DatasetJsonLike,
    PlansLike,
    load_plans_and_dataset_json,
    segmentation_files,
)
from nnunetv2.postprocessing.connected_components import LabelOrRegion, Operation, apply_postprocessing
from nnunetv2.utilities.file_io import load_json, save_json
from nnunetv2.utilities.process_pool import map_over_cases

logger = logging.getLogger(__name__)

POSTPROCESSING_FILE = "postprocessing.json"
POSTPROCESSED_FOLDER = "postprocessed"
# nnU-Net v2's name for the one postprocessing function; its pickles reference it in this module
FUNCTION_NAME = "remove_all_but_largest_component_from_segmentation"
_NNUNET_V2_MODULE = "nnunetv2.postprocessing.remove_connected_components"
_FUNCTION_IN_PICKLE = object()


@dataclass
class PostprocessingResult:
    """What determine_postprocessing decided, and the foreground mean Dice before and after."""

    operations: list[Operation]
    dice_before: float
    dice_after: float
    postprocessing_file: Path


def _postprocess_case(job: tuple[Path, Path, list[Operation], str]) -> bool:
    """Postprocess one file; returns whether any voxel changed."""
    from nnunetv2.imageio.base_reader_writer import atomic_image_path
    from nnunetv2.imageio.registry import reader_writer_class_from_name

    input_file, output_file, operations, reader_writer_name = job
    reader_writer = reader_writer_class_from_name(reader_writer_name)()
    seg, properties = reader_writer.read_seg(input_file)
    postprocessed = apply_postprocessing(seg[0], operations)
    with atomic_image_path(output_file) as tmp:
        reader_writer.write_seg(postprocessed, tmp, properties)
    return not np.array_equal(postprocessed, seg[0])


def _postprocess_files(
    files: Sequence[Path],
    output_folder: Path,
    operations: list[Operation],
    reader_writer_name: str,
    num_processes: int,
    progress: str | None = None,
) -> tuple[list[Path], bool]:
    """Postprocess ``files`` into ``output_folder``; returns the outputs and whether any of them changed."""
    output_folder.mkdir(parents=True, exist_ok=True)
    jobs = [(f, output_folder / f.name, operations, reader_writer_name) for f in files]
    changed = map_over_cases(_postprocess_case, jobs, num_processes, progress=progress)
    return [job[1] for job in jobs], any(changed)


def apply_postprocessing_to_folder(
    input_folder: str | os.PathLike,
    output_folder: str | os.PathLike,
    operations: Sequence[Sequence[LabelOrRegion]],
    plans: PlansLike = None,
    dataset_json: DatasetJsonLike = None,
    num_processes: int = 1,
) -> list[Path]:
    """Postprocess every segmentation of ``input_folder`` into ``output_folder``; returns the files written.

    Plans and dataset.json (for the reader-writer and file ending) default to those in ``input_folder``.
    """
    plans, dataset_json = load_plans_and_dataset_json(input_folder, plans, dataset_json)
    files = segmentation_files(input_folder, dataset_json.file_ending)
    if not files:
        raise NnUNetError(f"{input_folder}: no segmentations ending in {dataset_json.file_ending}")
    written, _ = _postprocess_files(
        files,
        Path(output_folder),
        [list(op) for op in operations],
        plans.image_reader_writer,
        num_processes,
        progress="postprocessing",
    )
    logger.info("postprocessed %d segmentation(s) into %s", len(written), output_folder)
    return written


def apply_postprocessing_file_to_folder(
    input_folder: str | os.PathLike,
    output_folder: str | os.PathLike,
    postprocessing_file: str | os.PathLike,
    plans: PlansLike = None,
    dataset_json: DatasetJsonLike = None,
    num_processes: int = 1,
) -> list[Path]:
    """nnUNetv2_apply_postprocessing: apply the operations of a postprocessing file to a folder of predictions."""
    operations = load_postprocessing(postprocessing_file)
    return apply_postprocessing_to_folder(input_folder, output_folder, operations, plans, dataset_json, num_processes)


def _dice(results: dict[str, Any], key: LabelOrRegion | None) -> float:
    value = results["foreground_mean"]["Dice"] if key is None else results["mean"][key]["Dice"]
    return float("nan") if value is None else float(value)


def _summary_part(results: dict[str, Any]) -> dict[str, Any]:
    from nnunetv2.evaluation.evaluate_predictions import label_or_region_to_key

    return {
        "foreground_mean": results["foreground_mean"],
        "mean": {label_or_region_to_key(k): v for k, v in results["mean"].items()},
    }


def determine_postprocessing(
    folder_predictions: str | os.PathLike,
    folder_reference: str | os.PathLike,
    plans: PlansLike = None,
    dataset_json: DatasetJsonLike = None,
    num_processes: int = 1,
    keep_postprocessed_files: bool = True,
) -> PostprocessingResult:
    """Decide the postprocessing for the predictions of ``folder_predictions`` and return the decision.

    Writes ``postprocessing.json`` (and, unless told not to, ``postprocessed/`` with the final
    segmentations and their summary.json) into ``folder_predictions``. Plans and dataset.json
    default to those in ``folder_predictions``.
    """
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder
    from nnunetv2.imageio.registry import reader_writer_class_from_name

    folder_predictions, folder_reference = Path(folder_predictions), Path(folder_reference)
    plans, dataset_json = load_plans_and_dataset_json(folder_predictions, plans, dataset_json)
    label_manager = LabelManager.from_dataset_json(dataset_json)
    entries = label_manager.foreground_labels_or_regions
    names = label_names(dataset_json.labels, entries)
    ending, reader_writer_name = dataset_json.file_ending, plans.image_reader_writer
    reader_writer = reader_writer_class_from_name(reader_writer_name)
    files = segmentation_files(folder_predictions, ending)
    if not files:
        raise NnUNetError(f"{folder_predictions}: no predictions ending in {ending}")
    references = {f.name for f in segmentation_files(folder_reference, ending)}
    unpredicted = references - {f.name for f in files}
    if unpredicted:
        logger.warning(
            "%d of %d reference cases have no prediction in %s; postprocessing should be decided on "
            "the whole cross-validation",
            len(unpredicted),
            len(references),
            folder_predictions,
        )

    def evaluate(folder: Path) -> dict[str, Any]:
        return compute_metrics_on_folder(
            folder_reference,
            folder,
            folder / "summary.json",
            reader_writer,
            ending,
            entries,
            label_manager.ignore_label,
            num_processes,
            chill=True,
        )

    baseline = evaluate(folder_predictions)
    current, operations, stored_kwargs = baseline, [], []
    with tempfile.TemporaryDirectory(dir=folder_predictions, prefix=".postprocessing_trials_") as scratch:
        source_files = files
        # nnU-Net v2 stores all-foreground as a list of labels and a single label or region bare
        all_foreground: Operation = list(label_manager.foreground_labels)
        candidates: list[tuple[Operation, LabelOrRegion | None, Any]] = [(all_foreground, None, all_foreground)]
        if len(entries) > 1:
            candidates += [([entry], entry, list(entry) if isinstance(entry, tuple) else entry) for entry in entries]
        for index, (operation, key, as_stored) in enumerate(candidates):
            what = "all foreground" if key is None else f"label/region {key} ({names[index - 1]})"
            trial_files, changed = _postprocess_files(
                source_files, Path(scratch) / f"trial_{index}", [operation], reader_writer_name, num_processes
            )
            if not changed:  # every case has at most one component: nothing to gain, no need to score it
                logger.info("keep only the largest component of %s: changes no case (not kept)", what)
                continue
            result = evaluate(trial_files[0].parent)
            if key is None:
                keep = _dice(result, None) > _dice(current, None) and not any(
                    _dice(result, e) < _dice(current, e) for e in entries
                )
            else:
                keep = _dice(result, key) > _dice(current, key)
            logger.info(
                "keep only the largest component of %s: Dice %.5f -> %.5f (%s)",
                what,
                _dice(current, key),
                _dice(result, key),
                "kept" if keep else "not kept",
            )
            if keep:
                operations.append(operation)
                stored_kwargs.append({"labels_or_regions": as_stored})
                current, source_files = result, trial_files

        if keep_postprocessed_files:
            evaluate(_publish_postprocessed(folder_predictions, source_files, Path(scratch)))
        elif (folder_predictions / POSTPROCESSED_FOLDER).exists():
            shutil.rmtree(folder_predictions / POSTPROCESSED_FOLDER)

    content = {
        "input_folder": _summary_part(baseline),
        "postprocessed": _summary_part(current),
        "postprocessing_fns": [FUNCTION_NAME] * len(operations),
        "postprocessing_kwargs": stored_kwargs,
    }
    save_json(content, folder_predictions / POSTPROCESSING_FILE)
    logger.info(
        "postprocessing: %d operation(s); foreground mean Dice %.5f -> %.5f",
        len(operations),
        _dice(baseline, None),
        _dice(current, None),
    )
    return PostprocessingResult(
        operations, _dice(baseline, None), _dice(current, None), folder_predictions / POSTPROCESSING_FILE
    )


def _publish_postprocessed(folder_predictions: Path, final_files: list[Path], scratch: Path) -> Path:
    """Move (trial results) or copy (the inputs) the final segmentations into ``postprocessed/``; returns it."""
    staging = scratch / "final"
    staging.mkdir()
    for f in final_files:
        if f.parent.parent == scratch:
            os.replace(f, staging / f.name)
        else:
            shutil.copy2(f, staging / f.name)
    target = folder_predictions / POSTPROCESSED_FOLDER
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    return target


def _normalized_labels_or_regions(value: Any, source: Path) -> Operation:
    """nnU-Net v2 kwargs value (int, region list/tuple, or list of labels/regions) -> an operation."""

    def label(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) and not (hasattr(v, "dtype") and v.dtype.kind in "iu"):
            raise NnUNetError(f"{source}: labels_or_regions must hold integers, found {v!r}")
        return int(v)

    if isinstance(value, (list, tuple)):
        # a list of plain labels and a region select the same voxels, so either reading is right
        return [tuple(label(x) for x in v) if isinstance(v, (list, tuple)) else label(v) for v in value]
    return [label(value)]


def _operations_from_fns_and_kwargs(functions: Any, kwargs: Any, source: Path) -> list[Operation]:
    if (
        not isinstance(functions, (list, tuple))
        or not isinstance(kwargs, (list, tuple))
        or len(functions) != len(kwargs)
    ):
        raise NnUNetError(f"{source}: postprocessing functions and their arguments do not pair up")
    operations = []
    for function, arguments in zip(functions, kwargs):
        if function not in (FUNCTION_NAME, _FUNCTION_IN_PICKLE):
            raise NnUNetError(
                f"{source}: unknown postprocessing function {function!r} (only {FUNCTION_NAME} is supported)"
            )
        if not isinstance(arguments, dict) or "labels_or_regions" not in arguments:
            raise NnUNetError(f"{source}: postprocessing arguments lack 'labels_or_regions'")
        operations.append(_normalized_labels_or_regions(arguments["labels_or_regions"], source))
    return operations


def load_postprocessing(path: str | os.PathLike) -> list[Operation]:
    """Return the operations of a postprocessing.json (ours or nnU-Net v2's) or an nnU-Net v2 postprocessing.pkl."""
    from nnunetv2.utilities.safe_pickle import load_pickle_safely

    path = Path(path)
    if path.suffix == ".pkl":
        content = load_pickle_safely(path, {(_NNUNET_V2_MODULE, FUNCTION_NAME): _FUNCTION_IN_PICKLE})
        if not isinstance(content, (list, tuple)) or len(content) != 2:
            raise NnUNetError(f"{path}: not an nnU-Net postprocessing.pkl (expected (functions, kwargs))")
        return _operations_from_fns_and_kwargs(content[0], content[1], path)
    content = load_json(path)
    if not isinstance(content, dict) or "postprocessing_fns" not in content:
        raise NnUNetError(f"{path}: not a postprocessing file (no 'postprocessing_fns')")
    return _operations_from_fns_and_kwargs(content["postprocessing_fns"], content.get("postprocessing_kwargs"), path)
