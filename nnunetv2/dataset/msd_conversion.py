"""Convert a Medical Segmentation Decathlon task (TaskXX_Name) into an nnU-Net v2 raw dataset.

MSD stores all channels of a case in one 4D NIfTI (x, y, z, c); nnU-Net wants one 3D file per
channel (``{case}_{c:04d}.nii.gz``) and a v2 dataset.json. Labels are copied unchanged.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np

from nnunetv2.exceptions import DatasetError, NnUNetError, reason_of
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.imageio.image_files import write_image
from nnunetv2.utilities.dataset_name import dataset_folders_with_id
from nnunetv2.utilities.file_io import atomic_folder, list_files, load_json
from nnunetv2.utilities.parameters import check_number
from nnunetv2.utilities.process_pool import ignore_interrupts, spawn_context

logger = logging.getLogger(__name__)

_TASK_FOLDER = re.compile(r"^Task(\d+)_(.+)$")
_MSD_ENDING = ".nii.gz"
# copying metadata that describes the dataset rather than its files
_KEPT_MSD_KEYS = ("name", "description", "reference", "licence", "release", "tensorImageSize")
_MIN_FILES_FOR_POOL = 8


def _image_files(folder: Path) -> list[Path]:
    """NIfTI files of a folder, without macOS' hidden '._' companions."""
    if not folder.is_dir():
        return []
    return [f for f in list_files(folder, _MSD_ENDING) if not f.name.startswith("_")]


def split_4d_nifti(
    source: str | os.PathLike, output_folder: str | os.PathLike, case: str, expected_channels: int
) -> None:
    """Write ``{case}_{c:04d}.nii.gz`` per channel of a 3D or 4D NIfTI, keeping the 3D geometry."""
    import SimpleITK as sitk

    source, output_folder = Path(source), Path(output_folder)
    try:
        image = sitk.ReadImage(str(source))
    except RuntimeError as e:
        raise DatasetError(f"{source}: cannot read ({reason_of(e, last=True)})") from None
    num_channels = image.GetSize()[3] if image.GetDimension() == 4 else 1
    if image.GetDimension() not in (3, 4) or num_channels != expected_channels:
        raise DatasetError(
            f"{source}: has {num_channels} channel(s) in {image.GetDimension()}D but "
            f"dataset.json 'modality' lists {expected_channels}"
        )
    if image.GetDimension() == 3:
        shutil.copyfile(source, output_folder / f"{case}_0000{_MSD_ENDING}")
        return
    array = sitk.GetArrayFromImage(image)  # (c, z, y, x)
    direction = np.asarray(image.GetDirection()).reshape(4, 4)[:3, :3].ravel()
    spacing = image.GetSpacing()[:3][::-1]  # write_image takes the spacing in array axis order
    for c in range(num_channels):
        path = output_folder / f"{case}_{c:04d}{_MSD_ENDING}"
        write_image(array[c], path, spacing, image.GetOrigin()[:3], direction.tolist())


def _split_job(arguments: tuple) -> None:
    split_4d_nifti(*arguments)


def _target_folder(task_folder: Path, overwrite_id: int | None) -> Path:
    from nnunetv2 import paths

    match = _TASK_FOLDER.match(task_folder.name)
    if not match:
        raise DatasetError(f"{task_folder}: an MSD task folder must be named TaskXX_Name")
    dataset_id = overwrite_id if overwrite_id is not None else int(match.group(1))
    check_number("dataset id", dataset_id, "integer [1, 999]", error=DatasetError)
    target = paths.raw_folder() / f"Dataset{dataset_id:03d}_{match.group(2)}"
    for other in dataset_folders_with_id(dataset_id, paths.raw_folder()):
        if other != target:
            raise DatasetError(
                f"dataset id {dataset_id:03d} is already used by {other} (choose another with -overwrite_id)"
            )
    return target


def _v2_dataset_json(msd: dict, source: Path, num_training: int) -> DatasetJson:
    modality, labels = msd.get("modality"), msd.get("labels")
    if not isinstance(modality, dict) or not modality:
        raise DatasetError(f"{source}: MSD key 'modality' is missing or not a mapping")
    if not isinstance(labels, dict) or not labels:
        raise DatasetError(f"{source}: MSD key 'labels' is missing or not a mapping")
    try:
        label_dict = {str(name): int(value) for value, name in labels.items()}
    except ValueError:
        raise DatasetError(f"{source}: MSD 'labels' must map integer strings to names") from None
    if len(label_dict) != len(labels):
        raise DatasetError(f"{source}: MSD 'labels' uses a name twice")
    return DatasetJson(
        channel_names={str(k): str(v) for k, v in modality.items()},
        labels=dict(sorted(label_dict.items(), key=lambda item: item[1])),
        num_training=num_training,
        file_ending=_MSD_ENDING,
        extra={k: msd[k] for k in _KEPT_MSD_KEYS if k in msd},
    )


def convert_msd_dataset(
    task_folder: str | os.PathLike, overwrite_id: int | None = None, num_processes: int = 1
) -> Path:
    """Convert an MSD TaskXX_Name folder into nnUNet_raw/DatasetXXX_Name and return that folder."""
    task_folder = Path(task_folder).resolve()
    if not task_folder.is_dir():
        raise DatasetError(f"{task_folder}: folder not found")
    json_path = task_folder / "dataset.json"
    try:
        msd = load_json(json_path)
    except NnUNetError as e:
        raise DatasetError(str(e)) from None
    if not isinstance(msd, dict):
        raise DatasetError(f"{json_path}: expected a JSON object")
    target = _target_folder(task_folder, overwrite_id)

    training = _image_files(task_folder / "imagesTr")
    if not training:
        raise DatasetError(f"{task_folder / 'imagesTr'}: no {_MSD_ENDING} training images")
    labels = []
    for image in training:
        label = task_folder / "labelsTr" / image.name
        if not label.is_file():
            raise DatasetError(f"{label}: label of training image {image.name} not found")
        labels.append(label)
    dataset_json = _v2_dataset_json(msd, json_path, len(training))

    with atomic_folder(target) as staging:
        jobs = []
        for source_dir, out_dir in (("imagesTr", "imagesTr"), ("imagesTs", "imagesTs")):
            files = training if source_dir == "imagesTr" else _image_files(task_folder / source_dir)
            if files:
                (staging / out_dir).mkdir()
            jobs += [(f, staging / out_dir, f.name[: -len(_MSD_ENDING)], dataset_json.num_channels) for f in files]
        (staging / "labelsTr").mkdir()
        for label in labels:
            shutil.copyfile(label, staging / "labelsTr" / label.name)
        if num_processes > 1 and len(jobs) >= _MIN_FILES_FOR_POOL:
            with spawn_context().Pool(min(num_processes, len(jobs)), ignore_interrupts) as pool:
                pool.map(_split_job, jobs)
        else:
            for job in jobs:
                _split_job(job)
        dataset_json.save(staging / "dataset.json")
    logger.debug("converted %s (%d training cases) to %s", task_folder.name, len(training), target)
    return target
