"""nnU-Net v2's ``nnunetv2.utilities.dataset_name_id_conversion``: an alias of ``nnunetv2.utilities.dataset_name``."""

from __future__ import annotations

from nnunetv2 import paths
from nnunetv2.utilities.dataset_name import convert_id_to_dataset_name, dataset_folders_with_id, dataset_id_from_name

__all__ = [
    "convert_dataset_name_to_id",
    "convert_id_to_dataset_name",
    "find_candidate_datasets",
    "maybe_convert_to_dataset_name",
]


def find_candidate_datasets(dataset_id: int) -> list[str]:
    """Names of the DatasetXXX_* folders with this id in the raw, preprocessed and results folders."""
    folders = (paths.raw_folder(), paths.preprocessed_folder(), paths.results_folder())
    return sorted({f.name for folder in folders for f in dataset_folders_with_id(int(dataset_id), folder)})


def convert_dataset_name_to_id(dataset_name: str) -> int:
    """``Dataset004_Hippocampus`` -> 4."""
    return dataset_id_from_name(dataset_name)


def maybe_convert_to_dataset_name(dataset_name_or_id: int | str) -> str:
    """A dataset name as it is, an id resolved to its DatasetXXX_Name."""
    return convert_id_to_dataset_name(dataset_name_or_id)
