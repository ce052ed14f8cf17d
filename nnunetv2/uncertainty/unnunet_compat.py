"""UnnUNet's two inference commands on our checkpoint-ensemble implementation.

``UnnUnet_predict_from_folder`` predicts a folder with every ensemble checkpoint of one fold and
writes one folder per checkpoint (UnnUNet's layout: ``OUT/{checkpoint}/CASE.npz``);
``UnnUnet_run_uncertainty_on_fold`` turns that folder into a segmentation, an uncertainty map
and a score per case (with Dice against ``--labels``), using UnnUNet's definitions: its
``t_test`` map holds p-values and its case score is the edge-ring score.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from nnunetv2.exceptions import InferenceError

logger = logging.getLogger(__name__)

CYCLIC_TRAINER = "nnUNetTrainerCyclicLR"
PLAIN_TRAINER = "nnUNetTrainer"
RULES = ("sparse", "late", "both")
# UnnUNet's --score_type -> our measure (its t_test map holds the p-values, not our binary map)
SCORE_TYPES = {"class_entropy": "class_entropy", "total_entropy": "total_entropy", "t_test": "t_test_p_value"}
DEFAULT_OUTPUT_SUBFOLDER = "unnunet_pred"


def find_ensemble_model_folder(
    dataset_name_or_id: str | int,
    fold: int | str,
    configuration: str = "2d",
    trainer_name: str | None = None,
    plans_identifier: str = "nnUNetPlans",
) -> Path:
    """Return the model folder whose ``fold`` holds a checkpoint ensemble (cyclic trainer first, then nnUNetTrainer)."""
    from nnunetv2.formats.checkpoint_index import CHECKPOINT_INDEX_FILE
    from nnunetv2.formats.folds import parse_fold
    from nnunetv2.formats.model_folder import fold_folder, model_folder
    from nnunetv2.utilities.dataset_name import convert_id_to_dataset_name

    dataset_name = convert_id_to_dataset_name(dataset_name_or_id)
    candidates = [trainer_name] if trainer_name else [CYCLIC_TRAINER, PLAIN_TRAINER]
    folders = [model_folder(dataset_name, t, plans_identifier, configuration) for t in candidates]
    for folder in folders:
        if (fold_folder(folder, parse_fold(fold)) / CHECKPOINT_INDEX_FILE).is_file():
            return folder
    raise InferenceError(
        f"{fold_folder(folders[0], parse_fold(fold))}: no checkpoint ensemble ({CHECKPOINT_INDEX_FILE}); train "
        f"this fold with -num_of_cycles and -checkpoints first"
    )


def _check_rule(fold_folder: Path, rule: str) -> None:
    """A rule other than 'both' must be the one the fold was trained with (only its checkpoints exist)."""
    from nnunetv2.formats.checkpoint_index import load_checkpoint_index

    if rule not in RULES:
        raise InferenceError(f"unknown rule '{rule}' (use {', '.join(RULES)})")
    trained = load_checkpoint_index(fold_folder).get("checkpoint_rule")
    if rule != "both" and trained != rule:
        raise InferenceError(
            f"{fold_folder}: trained with -checkpoints {trained}, so it has no '{rule}' checkpoints "
            f"(use -rule {trained} or both)"
        )


def predict_from_folder(
    dataset_name_or_id: str | int,
    fold: int | str,
    input_folder: str | os.PathLike,
    output_folder: str | os.PathLike,
    rule: str = "both",
    configuration: str = "2d",
    trainer_name: str | None = None,
    plans_identifier: str = "nnUNetPlans",
    device: str | None = None,
    show_progress: bool = True,
) -> Path:
    """Predict ``input_folder`` with every ensemble checkpoint of ``fold``, one folder per checkpoint; return the index.

    ``rule`` (UnnUNet's ``-rule``): ``sparse`` or ``late`` must match the training's ``-checkpoints``;
    ``both`` takes whatever the fold saved.
    """
    from nnunetv2.formats.folds import parse_fold
    from nnunetv2.formats.model_folder import fold_folder
    from nnunetv2.uncertainty.checkpoint_prediction import predict_checkpoint_ensemble

    folder = find_ensemble_model_folder(dataset_name_or_id, fold, configuration, trainer_name, plans_identifier)
    _check_rule(fold_folder(folder, parse_fold(fold)), rule)
    return predict_checkpoint_ensemble(
        input_folder,
        output_folder,
        folder,
        folds=[fold],
        device=device,
        show_progress=show_progress,
        flat_member_folders=True,
    )


def _check_raw_cases(prediction_folder: Path, raw_folder: Path) -> None:
    """Every case of ``raw_folder`` must have been predicted into ``prediction_folder``."""
    from nnunetv2.dataset.cases import group_images_by_case
    from nnunetv2.exceptions import NnUNetError
    from nnunetv2.formats.prediction_folder import load_plans_and_dataset_json
    from nnunetv2.uncertainty.checkpoint_prediction import RUN_INDEX_FILE
    from nnunetv2.utilities.file_io import load_json

    if not raw_folder.is_dir():
        raise InferenceError(f"{raw_folder}: --raw_path folder not found")
    index_file = prediction_folder / RUN_INDEX_FILE
    if not index_file.is_file():
        raise InferenceError(f"{index_file}: not found; run UnnUnet_predict_from_folder first")
    _, dataset_json = load_plans_and_dataset_json(prediction_folder)
    try:
        raw_cases = group_images_by_case(raw_folder, dataset_json.file_ending, dataset_json.num_channels)
    except NnUNetError as e:
        raise InferenceError(f"--raw_path: {e}") from None
    predicted = set(load_json(index_file).get("cases", []))
    missing = sorted(set(raw_cases) - predicted)
    if missing:
        raise InferenceError(
            f"case '{missing[0]}' of {raw_folder} has no checkpoint predictions in {prediction_folder}"
        )


def run_uncertainty_on_fold(
    proba_dir: str | os.PathLike,
    raw_path: str | os.PathLike,
    score_type: str = "class_entropy",
    labels: str | os.PathLike | None = None,
    output_folder: str | os.PathLike | None = None,
    num_processes: int = 1,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Write segmentation, uncertainty map and edge-ring score per case (Dice with ``labels``); return the table.

    ``output_folder`` defaults to ``proba_dir/unnunet_pred`` as in UnnUNet.
    """
    from nnunetv2.uncertainty.ensemble_uncertainty import compute_uncertainty

    if score_type not in SCORE_TYPES:
        raise InferenceError(f"unknown --score_type '{score_type}' (use {', '.join(SCORE_TYPES)})")
    proba_dir = Path(proba_dir)
    _check_raw_cases(proba_dir, Path(raw_path))
    output = Path(output_folder) if output_folder else proba_dir / DEFAULT_OUTPUT_SUBFOLDER
    return compute_uncertainty(
        proba_dir,
        output,
        SCORE_TYPES[score_type],
        reference_folder=labels or None,
        num_processes=num_processes,
        show_progress=show_progress,
        score_definition="edge_ring",
    )
