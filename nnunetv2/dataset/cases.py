"""List the cases of a raw dataset folder (training) or of any image folder (prediction)."""
from __future__ import annotations

import os
import re
from pathlib import Path

from nnunetv2.dataset.dataset_json import DatasetJson
from nnunetv2.exceptions import DatasetError

_CHANNEL_SUFFIX = re.compile(r"^(.+)_(\d{4})$")


def group_images_by_case(folder: str | os.PathLike, file_ending: str,
                         num_channels: int | None = None) -> dict[str, list[Path]]:
    """Return ``case -> [channel files]`` for ``{case}_{channel:04d}{ending}`` files in a folder.

    Channel indices must run from 0 without gaps. With ``num_channels`` given, a case has that
    many files, or a single file holding all channels (e.g. RGB); without it, all cases must
    have the same number of files.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: folder not found")
    channels: dict[str, dict[int, Path]] = {}
    for f in folder.iterdir():
        if not f.name.endswith(file_ending) or f.name.startswith("."):
            continue
        match = _CHANNEL_SUFFIX.match(f.name[: -len(file_ending)])
        if not match:
            raise DatasetError(f"{f}: image files must be named CASE_XXXX{file_ending} "
                               f"(XXXX = 4-digit channel index)")
        channels.setdefault(match.group(1), {})[int(match.group(2))] = f
    counts = {case: len(found) for case, found in channels.items()}
    expected = num_channels if num_channels is not None else max(counts.values(), default=0)
    result = {}
    for case in sorted(channels):
        found = channels[case]
        gap = next((c for c in range(len(found)) if c not in found), None)
        if gap is not None:
            raise DatasetError(f"{folder / (case + f'_{gap:04d}' + file_ending)}: channel {gap} of "
                               f"case '{case}' is missing")
        # one file may hold several channels (RGB images); the channel count is then checked on read
        if len(found) != expected and not (len(found) == 1 and num_channels is not None):
            if len(found) < expected:
                raise DatasetError(f"{folder / (case + f'_{len(found):04d}' + file_ending)}: channel "
                                   f"{len(found)} of case '{case}' is missing")
            raise DatasetError(f"case '{case}' in {folder} has {len(found)} channel files, "
                               f"but the dataset has {expected} channel(s)")
        result[case] = [found[c] for c in range(len(found))]
    return result


def list_training_cases(raw_dataset_folder: str | os.PathLike,
                        dataset_json: DatasetJson | None = None) -> dict[str, dict]:
    """Return ``case -> {'images': [Path, ...], 'label': Path}`` for a raw dataset.

    Uses the explicit ``dataset`` file lists of dataset.json when present, else imagesTr/labelsTr.
    """
    folder = Path(raw_dataset_folder)
    if dataset_json is None:
        dataset_json = DatasetJson.load(folder / "dataset.json")
    if dataset_json.dataset is not None:
        cases = {}
        for case, entry in dataset_json.dataset.items():
            images = [Path(p) if os.path.isabs(p) else folder / p for p in entry["images"]]
            label = Path(entry["label"])
            cases[case] = {"images": images, "label": label if label.is_absolute() else folder / label}
        return dict(sorted(cases.items()))
    images = group_images_by_case(folder / "imagesTr", dataset_json.file_ending, dataset_json.num_channels)
    return {case: {"images": files, "label": folder / "labelsTr" / f"{case}{dataset_json.file_ending}"}
            for case, files in images.items()}
