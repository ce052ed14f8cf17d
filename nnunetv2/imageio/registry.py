"""Find the reader-writer for a dataset: by dataset.json override, else by file ending."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from nnunetv2.exceptions import DatasetError, ImageIOError
from nnunetv2.imageio.base_reader_writer import BaseReaderWriter
from nnunetv2.utilities.file_io import list_files

# name -> "module:Class"; imported lazily so listing names costs nothing
READER_WRITERS = {
    "SimpleITKIO": "nnunetv2.imageio.simpleitk_reader_writer:SimpleITKIO",
    "NibabelIO": "nnunetv2.imageio.nibabel_reader_writer:NibabelIO",
    "NibabelIOWithReorient": "nnunetv2.imageio.nibabel_reader_writer:NibabelIOWithReorient",
    "NaturalImage2DIO": "nnunetv2.imageio.natural_image_reader_writer:NaturalImage2DIO",
    "Tiff3DIO": "nnunetv2.imageio.tif_reader_writer:Tiff3DIO",
}

# first match wins; .tif/.tiff default to 2D natural images unless a spacing sidecar exists
_PREFERENCE = ("SimpleITKIO", "NibabelIO", "NaturalImage2DIO", "Tiff3DIO")


def reader_writer_class_from_name(name: str) -> type[BaseReaderWriter]:
    """Return the reader-writer class registered under ``name`` (nnU-Net v2's class names)."""
    if name not in READER_WRITERS:
        raise ImageIOError(f"unknown image reader-writer '{name}' (known: {', '.join(READER_WRITERS)})")
    module_name, class_name = READER_WRITERS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def file_ending_of(path: str) -> str:
    """Return the ending used to pick a reader (``.nii.gz`` counts as one ending)."""
    name = str(path).lower()
    for double in (".nii.gz",):
        if name.endswith(double):
            return double
    dot = name.rfind(".")
    return name[dot:] if dot >= 0 else ""


# files that sit next to images and segmentations but are not images (summaries, probabilities, plans, reports)
NOT_IMAGE_ENDINGS = (".json", ".csv", ".npz", ".npy", ".pkl", ".txt", ".html", ".md", ".pth", ".log")


def is_image_file_name(name: str) -> bool:
    """Whether a file name may be an image (bookkeeping files such as .json or .npz are not)."""
    return not name.lower().endswith(NOT_IMAGE_ENDINGS)


def image_file_ending(folder: str | os.PathLike) -> str:
    """Return the one file ending of the images in ``folder``, as spelled there (e.g. ``.nii.gz``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: images folder not found")
    endings = {
        f.name[len(f.name) - len(file_ending_of(f.name)) :] for f in list_files(folder) if is_image_file_name(f.name)
    }
    if len(endings) != 1:
        found = f"files ending in {', '.join(sorted(endings))}" if endings else "no image files"
        raise DatasetError(f"{folder}: expected images of one file ending, found {found}; name the dataset (-d)")
    return endings.pop()


def reader_writer_for_ending(file_ending: str, example_file: str | None = None) -> type[BaseReaderWriter]:
    """Return the first reader-writer supporting ``file_ending``; a .tif(f) ``example_file`` with a
    spacing sidecar json selects Tiff3DIO."""
    ending = file_ending.lower()
    candidates = []
    for name in _PREFERENCE:
        cls = reader_writer_class_from_name(name)
        if ending in cls.supported_file_endings:
            candidates.append(cls)
    if not candidates:
        raise ImageIOError(f"no image reader-writer supports files ending in '{file_ending}'")
    if example_file is not None and ending in (".tif", ".tiff"):
        # a 3D TIFF stack announces itself with a spacing sidecar json next to it
        from nnunetv2.imageio.tif_reader_writer import has_spacing_sidecar

        if has_spacing_sidecar(example_file):
            return reader_writer_class_from_name("Tiff3DIO")
    return candidates[0]


def reader_writer_for_dataset(dataset_json, example_file: str | None = None) -> type[BaseReaderWriter]:
    """Return the reader-writer class for a dataset (``overwrite_image_reader_writer`` wins)."""
    if dataset_json.overwrite_image_reader_writer:
        return reader_writer_class_from_name(dataset_json.overwrite_image_reader_writer)
    return reader_writer_for_ending(dataset_json.file_ending, example_file)
