"""The plans and dataset.json that belong to a folder of predictions (copied there by prediction and ensembling)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nnunetv2.exceptions import NnUNetError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.plans import Plans
from nnunetv2.utilities.file_io import list_files

PlansLike = Plans | dict[str, Any] | str | os.PathLike | None
DatasetJsonLike = DatasetJson | dict[str, Any] | str | os.PathLike | None


def load_plans_and_dataset_json(
    folder: str | os.PathLike, plans: PlansLike = None, dataset_json: DatasetJsonLike = None
) -> tuple[Plans, DatasetJson]:
    """Return the plans and dataset.json given (objects, dicts or files), else those inside ``folder``."""
    folder = Path(folder)
    if plans is None:
        plans = folder / "plans.json"
        if not plans.is_file():
            raise NnUNetError(
                f"{plans}: not found; name a plans file explicitly (e.g. -plans_json with the "
                f"plans.json of a model folder)"
            )
    if dataset_json is None:
        dataset_json = folder / "dataset.json"
        if not dataset_json.is_file():
            raise NnUNetError(
                f"{dataset_json}: not found; name a dataset.json explicitly (e.g. -dataset_json "
                f"with the dataset.json of a model folder)"
            )
    if not isinstance(plans, Plans):
        plans = Plans.from_dict(plans) if isinstance(plans, dict) else Plans.load(plans)
    if not isinstance(dataset_json, DatasetJson):
        dataset_json = (
            DatasetJson.from_dict(dataset_json) if isinstance(dataset_json, dict) else DatasetJson.load(dataset_json)
        )
    return plans, dataset_json


def segmentation_files(folder: str | os.PathLike, file_ending: str) -> list[Path]:
    """Return the segmentation files of ``folder`` (sorted; temporary dot-files of unfinished writes skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NnUNetError(f"{folder}: folder not found")
    return list_files(folder, file_ending)
