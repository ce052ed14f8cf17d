"""List the cases of a raw dataset folder (training) or of any image folder (prediction)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from nnunetv2.exceptions import DatasetError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.utilities.file_io import list_files

_CHANNEL_SUFFIX = re.compile(r"^(.+)_(\d{4})$")


def group_images_by_case(
    folder: str | os.PathLike, file_ending: str, num_channels: int | None = None
) -> dict[str, list[Path]]:
    """Return ``case -> [channel files]`` for ``{case}_{channel:04d}{ending}`` files in a folder.

    Every case must have the channels 0..n-1 with the same n; with ``num_channels`` given, n is
    that number, or 1 when a single file holds all channels (e.g. RGB).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: folder not found")
    channels: dict[str, dict[int, Path]] = {}
    for f in list_files(folder, file_ending):
        match = _CHANNEL_SUFFIX.match(f.name[: -len(file_ending)])
        if not match:
            raise DatasetError(f"{f}: image files must be named CASE_XXXX{file_ending} (XXXX = 4-digit channel index)")
        channels.setdefault(match.group(1), {})[int(match.group(2))] = f
    # one file may hold several channels (RGB images); the channel count is then checked on read
    files_per_case = max((len(found) for found in channels.values()), default=0)
    if num_channels is not None and files_per_case not in (1, num_channels):
        case = next(c for c, found in sorted(channels.items()) if len(found) == files_per_case)
        raise DatasetError(
            f"{folder}: case '{case}' has {files_per_case} channel files, but the dataset has {num_channels} channel(s)"
        )
    result = {}
    for case in sorted(channels):
        found = channels[case]
        missing = next((c for c in range(files_per_case) if c not in found), None)
        if missing is not None:
            raise DatasetError(
                f"{folder / (case + f'_{missing:04d}' + file_ending)}: channel {missing} of case '{case}' is missing"
            )
        result[case] = [found[c] for c in range(len(found))]
    return result


def list_training_cases(
    raw_dataset_folder: str | os.PathLike, dataset_json: DatasetJson | None = None
) -> dict[str, dict]:
    """Return ``case -> {'images': [Path, ...], 'label': Path}`` for a raw dataset.

    Uses the explicit ``dataset`` file lists of dataset.json when present, else imagesTr/labelsTr.
    """
    folder = Path(raw_dataset_folder)
    if dataset_json is None:
        dataset_json = DatasetJson.load(folder / "dataset.json")
    if dataset_json.dataset is not None:
        cases: dict[str, dict[str, Any]] = {}
        for case, entry in dataset_json.dataset.items():
            images = [Path(p) if os.path.isabs(p) else folder / p for p in entry["images"]]
            label = Path(entry["label"])
            cases[case] = {"images": images, "label": label if label.is_absolute() else folder / label}
        return dict(sorted(cases.items()))
    grouped = group_images_by_case(folder / "imagesTr", dataset_json.file_ending, dataset_json.num_channels)
    return {
        case: {"images": files, "label": folder / "labelsTr" / f"{case}{dataset_json.file_ending}"}
        for case, files in grouped.items()
    }
