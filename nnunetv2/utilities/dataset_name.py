"""Turn a dataset id (``4``, ``"004"``) or name (``Dataset004_Hippocampus``) into its folder name."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from nnunetv2.exceptions import DatasetNotFoundError

_DATASET_FOLDER = re.compile(r"^Dataset(\d{3})_(.+)$")


def dataset_id_from_name(name: str) -> int:
    """Return the integer id of a ``DatasetXXX_Name`` folder name."""
    match = _DATASET_FOLDER.match(name)
    if not match:
        raise DatasetNotFoundError(f"'{name}' is not a dataset name of the form DatasetXXX_Name")
    return int(match.group(1))


def dataset_folders_with_id(dataset_id: int, folder: Path) -> list[Path]:
    """Return the ``DatasetXXX_*`` folders directly inside ``folder`` whose id is ``dataset_id``."""
    if not folder.is_dir():
        return []
    return sorted(
        child
        for child in folder.iterdir()
        if child.is_dir() and (match := _DATASET_FOLDER.match(child.name)) and int(match.group(1)) == dataset_id
    )


def resolve_dataset_name(id_or_name: str | int, search_folders: Iterable[Path]) -> str:
    """Return the unique ``DatasetXXX_Name`` among ``search_folders`` that matches an id or name."""
    text = str(id_or_name)
    folders = [Path(f) for f in search_folders]
    if text.startswith("Dataset"):
        dataset_id_from_name(text)  # validates the form
        return text
    if not text.isdigit():
        raise DatasetNotFoundError(f"'{text}' is neither a dataset id nor a DatasetXXX_Name")
    wanted = int(text)
    found = {f.name for folder in folders for f in dataset_folders_with_id(wanted, folder)}
    where = ", ".join(str(f) for f in folders)
    if not found:
        raise DatasetNotFoundError(f"no dataset with id {wanted:03d} in {where}")
    if len(found) > 1:
        raise DatasetNotFoundError(f"dataset id {wanted:03d} matches several folders: {', '.join(sorted(found))}")
    return found.pop()


def convert_id_to_dataset_name(id_or_name: str | int) -> str:
    """Resolve an id or name against the raw, preprocessed and results folders."""
    from nnunetv2 import paths

    return resolve_dataset_name(id_or_name, [paths.raw_folder(), paths.preprocessed_folder(), paths.results_folder()])
