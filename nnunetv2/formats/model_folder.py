"""Where a trained model lives: nnUNet_results/DatasetXXX/{trainer}__{plans}__{configuration}/fold_{k}."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from nnunetv2 import paths
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.plans import Plans
from nnunetv2.utilities.file_io import atomic_path, save_json

logger = logging.getLogger(__name__)


def model_folder(dataset_name: str, trainer_name: str, plans_identifier: str, configuration: str) -> Path:
    """Return the model folder that holds the folds of one trainer/plans/configuration."""
    return paths.results_folder() / dataset_name / f"{trainer_name}__{plans_identifier}__{configuration}"


def fold_folder(model_folder_path: str | Path, fold: int | str) -> Path:
    """Return ``fold_{k}`` (or ``fold_all``) inside a model folder."""
    return Path(model_folder_path) / f"fold_{fold}"


def write_model_folder_files(
    model_folder_path: str | Path, plans: Plans, dataset_json: DatasetJson, preprocessed_dataset_folder: str | Path
) -> None:
    """Write plans.json, dataset.json and (when present) dataset_fingerprint.json into a model folder."""
    model_folder_path = Path(model_folder_path)
    save_json(plans.to_dict(), model_folder_path / "plans.json")
    save_json(dataset_json.to_dict(), model_folder_path / "dataset.json")
    fingerprint = Path(preprocessed_dataset_folder) / "dataset_fingerprint.json"
    if fingerprint.is_file():
        with atomic_path(model_folder_path / "dataset_fingerprint.json") as tmp:
            shutil.copyfile(fingerprint, tmp)


def remove_unfinished_writes(folder: str | Path) -> list[Path]:
    """Delete the temporary files (``.<name>.*.tmp``) that a killed run left in a fold folder; return them."""
    leftovers = sorted(Path(folder).glob(".*.tmp"))  # atomic_path's temporary names: the targets are intact
    for path in leftovers:
        path.unlink(missing_ok=True)
    if leftovers:
        logger.info(
            "removed %d unfinished write(s) of an interrupted run from %s: %s",
            len(leftovers),
            folder,
            ", ".join(p.name for p in leftovers),
        )
    return leftovers
