"""Collect the validation predictions of a model's folds into one folder and evaluate them together.

``nnUNet_results/DatasetXXX/{trainer}__{plans}__{configuration}/crossval_results_folds_0_1_2_3_4/``
gets every fold's ``validation/`` segmentations, the model's plans.json and dataset.json, and a
summary.json scored against ``nnUNet_preprocessed/DatasetXXX/gt_segmentations`` (or the raw
``labelsTr`` when that is missing).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nnunetv2 import paths
from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.exceptions import EvaluationError
from nnunetv2.formats.prediction_folder import load_plans_and_dataset_json, segmentation_files
from nnunetv2.utilities.file_io import atomic_folder

logger = logging.getLogger(__name__)

VALIDATION_FOLDER = "validation"
DEFAULT_FOLDS = (0, 1, 2, 3, 4)


def folds_to_string(folds: Sequence[int | str]) -> str:
    """``(0, 1, 2)`` -> ``"0_1_2"``, as nnU-Net v2 names cross-validation and ensemble folders."""
    return "_".join(str(f) for f in folds)


def crossval_results_folder(model_folder: str | os.PathLike, folds: Sequence[int | str]) -> Path:
    """Return ``model_folder/crossval_results_folds_{folds}``."""
    return Path(model_folder) / f"crossval_results_folds_{folds_to_string(folds)}"


def reference_folder_for_dataset(dataset_name: str) -> Path:
    """Return the reference segmentations of a dataset: preprocessed gt_segmentations, else raw labelsTr."""
    candidates = [
        paths.preprocessed_folder() / dataset_name / "gt_segmentations",
        paths.raw_folder() / dataset_name / "labelsTr",
    ]
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise EvaluationError(
        f"no reference segmentations for {dataset_name}: neither {candidates[0]} nor {candidates[1]} exists"
    )


def _validation_files(model_folder: Path, folds: Sequence[int], file_ending: str) -> dict[str, Path]:
    """File name -> validation prediction, over all folds; each case may come from one fold only."""
    found: dict[str, Path] = {}
    for fold in folds:
        validation = model_folder / f"fold_{fold}" / VALIDATION_FOLDER
        if not validation.is_dir():
            raise EvaluationError(
                f"{validation}: not found; train fold {fold} of this model (or rerun its "
                f"validation with nnUNetv2_train ... --val)"
            )
        files = segmentation_files(validation, file_ending)
        if not files:
            raise EvaluationError(f"{validation}: no predictions ending in {file_ending}")
        for f in files:
            if f.name in found:
                raise EvaluationError(
                    f"{model_folder}: case {f.name} was predicted by more than one fold "
                    f"({found[f.name].parent.parent.name}, fold_{fold}); the folds do not "
                    f"form one cross-validation"
                )
            found[f.name] = f
    return found


def accumulate_cv_results(
    model_folder: str | os.PathLike,
    merged_output_folder: str | os.PathLike,
    folds: Sequence[int] = DEFAULT_FOLDS,
    num_processes: int = 1,
    overwrite: bool = True,
    reference_folder: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Merge the folds' validation predictions into ``merged_output_folder``, evaluate, return the summary.

    Without ``overwrite`` an existing merged folder holding exactly these cases and a summary.json
    is reused. ``reference_folder`` defaults to the dataset's gt_segmentations.
    """
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder, load_summary_json
    from nnunetv2.imageio.registry import reader_writer_class_from_name

    model_folder, merged = Path(model_folder), Path(merged_output_folder)
    if not model_folder.is_dir():
        raise EvaluationError(f"{model_folder}: model folder not found")
    plans, dataset_json = load_plans_and_dataset_json(model_folder)
    ending = dataset_json.file_ending
    predictions = _validation_files(model_folder, folds, ending)
    summary_file = merged / "summary.json"
    if (
        not overwrite
        and summary_file.is_file()
        and {f.name for f in segmentation_files(merged, ending)} == set(predictions)
    ):
        logger.info("reusing %s", merged)
        return load_summary_json(summary_file)

    # assemble next to the target and swap it in, so a failure never leaves a half-filled folder
    with atomic_folder(merged) as staging:
        for name, source in predictions.items():
            shutil.copy2(source, staging / name)
        for name in ("plans.json", "dataset.json"):
            shutil.copy2(model_folder / name, staging / name)

    if reference_folder is None:
        reference_folder = reference_folder_for_dataset(model_folder.parent.name)
    label_manager = LabelManager.from_dataset_json(dataset_json)
    references = segmentation_files(reference_folder, ending)
    if len(references) > len(predictions):
        logger.info(
            "%s: %d of %d reference cases are covered by folds %s",
            model_folder.name,
            len(predictions),
            len(references),
            folds_to_string(folds),
        )
    # chill: the references hold every training case, the requested folds may cover only some
    return compute_metrics_on_folder(
        reference_folder,
        merged,
        summary_file,
        reader_writer_class_from_name(plans.image_reader_writer),
        ending,
        label_manager.foreground_labels_or_regions,
        label_manager.ignore_label,
        num_processes,
        chill=True,
    )


def accumulate_crossval_results_for_model(
    dataset_name_or_id: str | int,
    configuration: str,
    trainer_name: str = "nnUNetTrainer",
    plans_identifier: str = "nnUNetPlans",
    folds: Sequence[int] = DEFAULT_FOLDS,
    output_folder: str | os.PathLike | None = None,
    num_processes: int = 1,
) -> Path:
    """nnUNetv2_accumulate_crossval_results: merge and evaluate one trained model's folds; returns the folder.

    The default output is ``crossval_results_folds_{folds}`` inside the model folder; an explicit
    ``output_folder`` must be empty or absent.
    """
    from nnunetv2.formats.model_folder import model_folder
    from nnunetv2.utilities.dataset_name import convert_id_to_dataset_name

    folder = model_folder(convert_id_to_dataset_name(dataset_name_or_id), trainer_name, plans_identifier, configuration)
    if output_folder is None:
        output_folder = crossval_results_folder(folder, folds)
    else:
        output_folder = Path(output_folder)
        if output_folder.is_dir() and any(output_folder.iterdir()):
            raise EvaluationError(f"{output_folder}: exists and is not empty; choose an empty output folder")
    summary = accumulate_cv_results(folder, output_folder, folds, num_processes)
    logger.info("cross-validation foreground mean Dice of %s: %.5f", folder.name, summary["foreground_mean"]["Dice"])
    return output_folder
