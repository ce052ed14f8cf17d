"""Export trained models of a dataset as one zip file laid out as nnU-Net v2 does.

Members are named relative to nnUNet_results (``DatasetXXX_Name/{trainer}__{plans}__{config}/...``),
so installing the zip into another nnUNet_results (ours or nnU-Net v2's) recreates the folders.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

from nnunetv2 import paths
from nnunetv2.exceptions import NnUNetError
from nnunetv2.utilities.file_io import atomic_path

logger = logging.getLogger(__name__)

DEFAULT_FOLDS = (0, 1, 2, 3, 4)
_FOLD_EXTRAS = ("debug.json", "progress.png", "network_architecture.pdf")
_RESULT_FILES = ("summary.json", "postprocessing.pkl", "postprocessing.json")
_MODEL_FILES = ("plans.json", "dataset.json", "dataset_fingerprint.json")
_DATASET_FILES = ("inference_information.json", "inference_instructions.txt")


def _files_of(folder: Path, exclude_suffixes: Sequence[str] = ()) -> list[Path]:
    return (
        sorted(p for p in folder.iterdir() if p.is_file() and p.suffix not in exclude_suffixes)
        if folder.is_dir()
        else []
    )


def _model_configurations(dataset_folder: Path, trainer: str, plans_identifier: str) -> list[str]:
    prefix = f"{trainer}__{plans_identifier}__"
    return sorted(p.name[len(prefix) :] for p in dataset_folder.glob(f"{prefix}*") if p.is_dir())


def _checkpoint_ensemble_files(fold_folder: Path) -> list[Path]:
    """A fold's checkpoint_ensemble.json and the checkpoints it lists (none when the fold has no ensemble)."""
    from nnunetv2.formats.checkpoint_index import CHECKPOINT_INDEX_FILE, ensemble_checkpoint_files

    if not (fold_folder / CHECKPOINT_INDEX_FILE).is_file():
        return []
    files = [fold_folder / name for name in ensemble_checkpoint_files(fold_folder)]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise NnUNetError(f"{missing[0]}: listed in {fold_folder / CHECKPOINT_INDEX_FILE} but not found")
    return [fold_folder / CHECKPOINT_INDEX_FILE] + files


def _model_files(
    model_folder: Path,
    folds: Sequence[int | str],
    checkpoints: Sequence[str],
    strict: bool,
    crossval_predictions: bool,
    checkpoint_ensemble: bool,
) -> list[Path]:
    """The files of one model folder to export; a missing fold or checkpoint is an error when ``strict``."""
    for name in ("plans.json", "dataset.json"):
        if not (model_folder / name).is_file():
            raise NnUNetError(f"{model_folder / name}: not found; is this a trained model folder?")
    files: list[Path] = []
    exported_folds = []
    for fold in folds:
        fold_folder = model_folder / f"fold_{fold}"
        missing = [c for c in checkpoints if not (fold_folder / c).is_file()]
        if missing:
            if strict:
                raise NnUNetError(
                    f"{fold_folder / missing[0]}: not found (use --not_strict to skip folds that lack a checkpoint)"
                )
            logger.warning("skipping %s: no %s", fold_folder, missing[0])
            continue
        exported_folds.append(fold)
        files += [fold_folder / c for c in checkpoints]
        files += [fold_folder / n for n in _FOLD_EXTRAS if (fold_folder / n).is_file()]
        if checkpoint_ensemble:
            files += [f for f in _checkpoint_ensemble_files(fold_folder) if f not in files]
        validation = fold_folder / "validation"
        if crossval_predictions:
            files += _files_of(validation, exclude_suffixes=(".npz", ".pkl"))
        elif (validation / "summary.json").is_file():
            files.append(validation / "summary.json")
    if not exported_folds:
        raise NnUNetError(
            f"{model_folder}: none of the folds {', '.join(map(str, folds))} has {', '.join(checkpoints)}"
        )
    for crossval in sorted(model_folder.glob("crossval_results_folds_*")):
        files += (
            _files_of(crossval)
            if crossval_predictions
            else [crossval / n for n in _RESULT_FILES if (crossval / n).is_file()]
        )
    files += [model_folder / n for n in _MODEL_FILES if (model_folder / n).is_file()]
    return files


def _ensemble_files(dataset_folder: Path, exported_models: set[str], crossval_predictions: bool) -> list[Path]:
    """Files of the ensembles whose members are all among the exported models."""
    files: list[Path] = []
    for ensemble in sorted((dataset_folder / "ensembles").glob("ensemble___*")):
        members = ensemble.name.split("___")[1:-1]
        if not ensemble.is_dir() or not members or not set(members) <= exported_models:
            continue
        files += (
            _files_of(ensemble)
            if crossval_predictions
            else [ensemble / n for n in _RESULT_FILES + ("plans.json", "dataset.json") if (ensemble / n).is_file()]
        )
    return files


def export_pretrained_model(
    dataset_name_or_id: str | int,
    output_file: str | os.PathLike,
    configurations: Sequence[str] | None = None,
    trainer: str = "nnUNetTrainer",
    plans_identifier: str = "nnUNetPlans",
    folds: Sequence[int | str] = DEFAULT_FOLDS,
    strict: bool = True,
    save_checkpoints: Sequence[str] = ("checkpoint_final.pth",),
    export_crossval_predictions: bool = False,
    checkpoint_ensemble: bool = False,
) -> list[str]:
    """Write the dataset's trained models (and matching ensembles) to ``output_file``; returns the member names.

    ``configurations`` None exports every configuration trained with ``trainer`` and
    ``plans_identifier``. With ``strict`` a missing configuration, fold or checkpoint is an error;
    otherwise it is skipped with a warning. ``checkpoint_ensemble`` adds each fold's
    checkpoint_ensemble.json and its checkpoints (cyclic-LR training), for nnUNetv2_predict_checkpoints.
    """
    from nnunetv2.utilities.dataset_name import convert_id_to_dataset_name

    results = paths.results_folder()
    dataset_name = convert_id_to_dataset_name(dataset_name_or_id)
    dataset_folder = results / dataset_name
    if configurations is None:
        configurations = _model_configurations(dataset_folder, trainer, plans_identifier)
        if not configurations:
            raise NnUNetError(f"{dataset_folder}: no model trained with {trainer} and {plans_identifier}")
    files: list[Path] = []
    exported: set[str] = set()
    for configuration in configurations:
        identifier = f"{trainer}__{plans_identifier}__{configuration}"
        model_folder = dataset_folder / identifier
        if not model_folder.is_dir():
            if strict:
                raise NnUNetError(
                    f"{model_folder}: not found; train configuration {configuration} or use --not_strict to skip it"
                )
            logger.warning("skipping configuration %s: %s not found", configuration, model_folder)
            continue
        files += _model_files(
            model_folder, folds, save_checkpoints, strict, export_crossval_predictions, checkpoint_ensemble
        )
        exported.add(identifier)
    if not exported:
        raise NnUNetError(f"{dataset_folder}: none of the configurations {', '.join(configurations)} is trained")
    files += _ensemble_files(dataset_folder, exported, export_crossval_predictions)
    files += [dataset_folder / n for n in _DATASET_FILES if (dataset_folder / n).is_file()]

    names = [f.relative_to(results).as_posix() for f in files]
    with atomic_path(output_file, suffix=".zip") as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for path, name in zip(files, names):
                archive.write(path, name)
    logger.info("wrote %d file(s) of %s to %s", len(names), ", ".join(sorted(exported)), output_file)
    return names
