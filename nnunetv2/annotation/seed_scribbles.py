"""Turn AnatomySketch ``.seed`` scribbles into scribble label maps in their image's geometry.

A world point p maps to the voxel index ``round(D^-1 (p - origin) / spacing)`` of the reference
image (ITK physical space: spacing, origin, direction D of the image file). Consecutive points of a
stroke are joined by a straight voxel line, so a stroke stays connected however sparsely it was
sampled. Voxels take the stroke's ``data_label``; later strokes overwrite earlier ones; every other
voxel holds the unannotated value (the scribble-file convention of ``nnUNetv2_scribble_pseudolabels``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.exceptions import DatasetError
from nnunetv2.formats.anatomysketch_seed import SEED_FILE_ENDING, SeedDataList, read_seed_file

logger = logging.getLogger(__name__)

SEED_NAME_SUFFIX = "_scribble"  # the geodesic method names its files CASE_scribble.seed


@dataclass(frozen=True)
class WorldGeometry:
    """An image's voxel grid in ITK physical space (x, y, z order) and its array shape (z, y, x order)."""

    spacing: np.ndarray
    origin: np.ndarray
    direction: np.ndarray  # (dim, dim)
    shape: tuple[int, ...]

    def world_to_array_index(self, points: np.ndarray) -> np.ndarray:
        """Return the nearest array indices (n, array dims) of world points (n, 3); a 2D image ignores z."""
        dim = len(self.spacing)
        continuous = np.linalg.solve(self.direction, (points[:, :dim] - self.origin).T).T / self.spacing
        index_xyz = np.rint(continuous).astype(np.int64)
        return index_xyz[:, ::-1]  # array order (z, y, x)


def case_id_of_seed_file(path: Path) -> str:
    """``CASE.seed`` or ``CASE_scribble.seed`` -> ``CASE``."""
    stem = path.name[: -len(SEED_FILE_ENDING)]
    return (
        stem[: -len(SEED_NAME_SUFFIX)]
        if stem.endswith(SEED_NAME_SUFFIX) and len(stem) > len(SEED_NAME_SUFFIX)
        else stem
    )


def _stroke_voxels(indices: np.ndarray) -> np.ndarray:
    """The voxels of a polyline through ``indices`` (n, d): every point plus a straight line to the next one."""
    if len(indices) < 2:
        return indices
    parts = [indices[:1]]
    for start, end in zip(indices[:-1], indices[1:]):
        steps = int(np.abs(end - start).max())
        if steps:
            t = np.arange(1, steps + 1)[:, None] / steps
            parts.append(np.rint(start + t * (end - start)).astype(np.int64))
    return np.concatenate(parts)


def seed_voxels(
    data_lists: list[SeedDataList], geometry: WorldGeometry, seed_file: str | os.PathLike
) -> list[tuple[int, np.ndarray]]:
    """Return ``(label, voxel indices (n, array dims))`` per stroke; a point outside the image is a DatasetError."""
    shape = np.asarray(geometry.shape)
    strokes = []
    for data_list in data_lists:
        for stroke in data_list.strokes:
            if not len(stroke.points):
                continue
            indices = geometry.world_to_array_index(stroke.points)
            outside = np.flatnonzero(np.any((indices < 0) | (indices >= shape), axis=1))
            if len(outside):
                i = int(outside[0])
                point = " ".join(f"{c:g}" for c in stroke.points[i])
                raise DatasetError(
                    f"{seed_file}, line {stroke.point_lines[i]}: point ({point}) lies outside the reference "
                    f"image (voxel {indices[i][::-1].tolist()} in x, y, z of size {shape[::-1].tolist()})"
                )
            strokes.append((data_list.label, _stroke_voxels(indices)))
    return strokes


def _read_geometry(image_file: Path) -> tuple[WorldGeometry, dict[str, Any]]:
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    images, properties = SimpleITKIO().read_images([image_file])
    geometry = properties.get("sitk_stuff")
    if geometry is None:
        raise DatasetError(f"{image_file}: the reference image has no world geometry")
    dim = len(geometry["spacing"])
    shape = tuple(images.shape[1:]) if dim == 3 else tuple(images.shape[2:])
    return (
        WorldGeometry(
            np.asarray(geometry["spacing"], dtype=float),
            np.asarray(geometry["origin"], dtype=float),
            np.asarray(geometry["direction"], dtype=float).reshape(dim, dim),
            shape,
        ),
        properties,
    )


def _reference_image(folder: Path, case_id: str, file_ending: str) -> Path:
    for name in (f"{case_id}_0000{file_ending}", f"{case_id}{file_ending}"):
        if (folder / name).is_file():
            return folder / name
    raise DatasetError(f"{folder / (case_id + '_0000' + file_ending)}: no reference image for seed file of '{case_id}'")


def convert_seed_scribbles(
    seed_folder: str | os.PathLike,
    reference_folder: str | os.PathLike,
    output_folder: str | os.PathLike,
    dataset: str | os.PathLike | None = None,
    unannotated_value: int | None = None,
) -> dict[str, int]:
    """Write ``OUT/CASE{ending}`` for every ``.seed`` file of ``seed_folder``; return the scribbled voxels per case.

    ``reference_folder`` holds each case's image (``CASE_0000{ending}`` or ``CASE{ending}``), whose
    geometry the scribble map takes. ``dataset`` (id, name or dataset.json) gives the file ending,
    the valid labels and the default unannotated value; every file is checked before anything is written.
    """
    from nnunetv2.annotation.case_files import dataset_json_for, unannotated_value_for
    from nnunetv2.dataset.label_manager import LabelManager
    from nnunetv2.imageio.registry import image_file_ending
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    seed_folder, reference_folder, output_folder = Path(seed_folder), Path(reference_folder), Path(output_folder)
    if not seed_folder.is_dir():
        raise DatasetError(f"{seed_folder}: seed folder not found")
    seed_files = sorted(p for p in seed_folder.iterdir() if p.name.endswith(SEED_FILE_ENDING))
    if not seed_files:
        raise DatasetError(f"{seed_folder}: no {SEED_FILE_ENDING} files")
    dataset_json = dataset_json_for(dataset)
    file_ending = dataset_json.file_ending if dataset_json is not None else image_file_ending(reference_folder)
    unannotated = unannotated_value_for(unannotated_value, dataset_json, seed_folder)
    if unannotated < 0:
        raise DatasetError(f"the unannotated value must be 0 or more (a label map value), got {unannotated}")
    classes = None
    if dataset_json is not None:
        labels = LabelManager.from_dataset_json(dataset_json)
        classes = {int(v) for v in labels.all_labels if v != labels.ignore_label}

    prepared = []
    for seed_file in seed_files:
        case_id = case_id_of_seed_file(seed_file)
        data_lists = read_seed_file(seed_file)
        for data_list in data_lists:
            if data_list.label == unannotated or (classes is not None and data_list.label not in classes):
                what = f"not a class of the dataset ({sorted(classes)})" if classes else "the unannotated value"
                raise DatasetError(f"{seed_file}: data list {data_list.index} has label {data_list.label}, {what}")
        geometry, properties = _read_geometry(_reference_image(reference_folder, case_id, file_ending))
        prepared.append((case_id, seed_voxels(data_lists, geometry, seed_file), geometry, properties))

    output_folder.mkdir(parents=True, exist_ok=True)
    writer = SimpleITKIO()
    scribbled = {}
    for case_id, strokes, geometry, properties in prepared:
        dtype = np.uint8 if max([unannotated] + [label for label, _ in strokes]) < 256 else np.int32
        scribbles = np.full(geometry.shape, unannotated, dtype=dtype)
        for label, voxels in strokes:
            scribbles[tuple(voxels.T)] = label
        if len(geometry.shape) == 2:
            scribbles = scribbles[None]
        writer.write_seg(scribbles, output_folder / f"{case_id}{file_ending}", properties)
        scribbled[case_id] = int((scribbles != unannotated).sum())
        logger.info("%s: %d scribbled voxel(s) from %d stroke(s)", case_id, scribbled[case_id], len(strokes))
    return scribbled
