"""Convert an nnU-Net v1 raw dataset (``TaskXXX_Name`` with a v1 dataset.json) into a v2 raw dataset.

v1 already stores one file per channel (``CASE_0000.nii.gz``) with labels as in v2, so the image
folders are copied as they are; only dataset.json changes: ``modality`` becomes ``channel_names``,
``labels`` is inverted (v1: ``{"0": "background"}``, v2: ``{"background": 0}``), the case lists
(``training``, ``test``) and counts go, and ``file_ending`` is ``.nii.gz``.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from nnunetv2.exceptions import DatasetError, NnUNetError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.utilities.dataset_name import dataset_folders_with_id, dataset_id_from_name
from nnunetv2.utilities.file_io import atomic_folder, load_json

logger = logging.getLogger(__name__)

# the folders nnU-Net v2 copies from a v1 task
COPIED_FOLDERS = ("imagesTr", "labelsTr", "imagesTs", "labelsTs", "imagesVal", "labelsVal")
_DROPPED_KEYS = ("tensorImageSize", "numTest", "training", "test", "modality")
_V1_ENDING = ".nii.gz"


def v2_dataset_json(v1: dict, source: str = "dataset.json") -> DatasetJson:
    """The v2 dataset.json of a v1 one (see the module's description)."""
    modality, labels = v1.get("modality"), v1.get("labels")
    if not isinstance(modality, dict) or not modality:
        raise DatasetError(f"{source}: v1 key 'modality' is missing or not a mapping")
    if not isinstance(labels, dict) or not labels:
        raise DatasetError(f"{source}: v1 key 'labels' is missing or not a mapping")
    try:
        label_dict = {str(name): int(value) for value, name in labels.items()}
    except ValueError:
        raise DatasetError(f"{source}: v1 'labels' must map integer strings to names") from None
    if len(label_dict) != len(labels):
        raise DatasetError(f"{source}: v1 'labels' uses a name twice")
    num_training = v1.get("numTraining")
    if not isinstance(num_training, int):
        num_training = len(v1.get("training") or [])
    return DatasetJson(
        channel_names={str(k): str(v) for k, v in modality.items()},
        labels=dict(sorted(label_dict.items(), key=lambda item: item[1])),
        num_training=num_training,
        file_ending=_V1_ENDING,
        extra={
            k: v
            for k, v in v1.items()
            if k not in _DROPPED_KEYS and k not in ("labels", "numTraining", "file_ending", "channel_names")
        },
    )


def convert_v1_dataset(source_folder: str | os.PathLike, target_dataset_name: str) -> Path:
    """Copy a v1 task folder into ``nnUNet_raw/<target_dataset_name>`` (DatasetXXX_Name) with a v2 dataset.json.

    Refuses an existing target or an id another dataset uses; the target appears only once complete.
    """
    from nnunetv2 import paths

    source = Path(source_folder)
    if not source.is_dir():
        raise DatasetError(f"{source}: folder not found (give the path of the v1 TaskXXX_Name folder)")
    dataset_id = dataset_id_from_name(target_dataset_name)
    target = paths.raw_folder() / target_dataset_name
    if target.exists():
        raise DatasetError(f"{target}: already exists; remove it or choose another name")
    others = dataset_folders_with_id(dataset_id, paths.raw_folder())
    if others:
        raise DatasetError(f"dataset id {dataset_id:03d} is already used by {others[0]}")
    json_path = source / "dataset.json"
    try:
        v1 = load_json(json_path)
    except NnUNetError as e:
        raise DatasetError(str(e)) from None
    if not isinstance(v1, dict):
        raise DatasetError(f"{json_path}: expected a JSON object")
    dataset_json = v2_dataset_json(v1, str(json_path))
    for required in ("imagesTr", "labelsTr"):
        if not (source / required).is_dir():
            raise DatasetError(f"{source / required}: folder not found; is this an nnU-Net v1 raw task?")
    with atomic_folder(target) as staging:
        for name in COPIED_FOLDERS:
            if (source / name).is_dir():
                shutil.copytree(source / name, staging / name)
        dataset_json.save(staging / "dataset.json")
    logger.info("converted %s to %s", source, target)
    return target
