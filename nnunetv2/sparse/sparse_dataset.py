"""Make a sparsely annotated copy of a densely labeled raw dataset (for studying sparse training)."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.dataset.cases import list_training_cases
from nnunetv2.dataset.label_manager import IGNORE_LABEL_NAME, LabelManager
from nnunetv2.exceptions import DatasetError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.sparse import simulate
from nnunetv2.sparse.expand import DEFAULT_METHOD, check_expansion_options, expand_scribbles
from nnunetv2.utilities.file_io import atomic_folder
from nnunetv2.utilities.parameters import check_number, check_numbers

logger = logging.getLogger(__name__)

MODES: dict[str, Callable[..., np.ndarray]] = {
    "scribble": simulate.simulate_scribbles,
    "slices": simulate.simulate_slices,
    "patches": simulate.simulate_patches,
}


def _place_file(source: Path, target: Path, copy: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():
        target.unlink()
    if copy:
        shutil.copy2(source, target)
    else:
        os.symlink(source.resolve(), target)


def _place_test_folders(source_folder: Path, staging: Path, copy: bool) -> None:
    """Link or copy imagesTs and labelsTs unchanged: the dense test set of a sparse dataset."""
    for extra in ("imagesTs", "labelsTs"):
        if (source_folder / extra).is_dir():
            for f in sorted((source_folder / extra).iterdir()):
                _place_file(f, staging / extra / f.name, copy)


def _check_axes_fit(mode: str, mode_options: dict[str, Any], shape: tuple[int, ...], label_file: Path) -> None:
    """Refuse slice axes that would annotate everything or nothing sensible (2D images: one slice along 0)."""
    if mode == "slices":
        axes = list(mode_options.get("axes", (0,)))
    elif mode == "scribble":
        axes = [mode_options.get("axis", 0)]
    else:
        return
    for axis in axes:
        if not -len(shape) <= axis < len(shape):
            raise DatasetError(f"{label_file}: axis {axis} does not exist in a label map of shape {shape}")
    if shape[0] == 1 and mode == "slices" and 0 in [a % len(shape) for a in axes]:
        raise DatasetError(
            f"{label_file}: a 2D image is a single slice along axis 0, so --mode slices would keep "
            f"it whole; use --axes 1 and/or 2 (rows / columns)"
        )
    if shape[0] == 1 and mode == "scribble" and axes[0] % len(shape) != 0:
        raise DatasetError(f"{label_file}: a 2D image is scribbled as one slice; use --axis 0")


# the numbers each mode takes (nnunetv2.utilities.parameters rules); axes are checked against the images
_MODE_OPTION_RULES = {
    "scribble": {"slice_fraction": "(0, 1]", "thickness": "integer >= 1", "axis": "integer"},
    "slices": {"fraction": "(0, 1]"},
    "patches": {"num_patches": "integer >= 1", "patch_size": "integer >= 1"},
}


def check_simulation_options(mode: str, seed: Any, mode_options: dict[str, Any]) -> None:
    """Raise DatasetError (one line) for an unknown mode or an option outside its range."""
    if mode not in MODES:
        raise DatasetError(f"unknown sparse annotation mode '{mode}' (use {', '.join(MODES)})")
    check_number("seed", seed, "integer >= 0", where="sparse annotation", error=DatasetError)
    rules = _MODE_OPTION_RULES[mode]
    numbers = {k: v for k, v in mode_options.items() if k in rules}
    check_numbers(rules, numbers, where=f"sparse annotation ({mode})", error=DatasetError)
    for axis in mode_options.get("axes", ()):
        check_number("axes", axis, "integer", where=f"sparse annotation ({mode})", error=DatasetError)


def simulate_sparse_dataset(
    source_folder: Path, target_folder: Path, mode: str, seed: int = 0, copy_images: bool = False, **mode_options: Any
) -> dict[str, float]:
    """Write ``target_folder`` as a sparse version of the raw dataset ``source_folder``.

    Images (and imagesTs/labelsTs) are linked or copied, training labels rewritten with a new
    ``ignore`` label. Returns the annotated fraction per class name over the whole dataset.
    """
    check_simulation_options(mode, seed, mode_options)
    source_folder, target_folder = Path(source_folder), Path(target_folder)
    dataset_json = DatasetJson.load(source_folder / "dataset.json")
    label_manager = LabelManager.from_dataset_json(dataset_json)
    if label_manager.has_ignore_label:
        raise DatasetError(f"{source_folder}: already has an ignore label; start from dense labels")
    from nnunetv2.imageio.registry import reader_writer_for_dataset

    cases = list_training_cases(source_folder, dataset_json)
    if not cases:
        raise DatasetError(f"{source_folder}: no training cases found")
    first = next(iter(cases.values()))
    io = reader_writer_for_dataset(dataset_json, str(first["images"][0]))()
    ignore_label = max(label_manager.all_labels) + 1

    # staged next to the target: an error (a missing label, a bad axis) leaves no half-written dataset
    with atomic_folder(target_folder) as staging:
        kept = np.zeros(ignore_label, dtype=np.int64)
        total = np.zeros(ignore_label, dtype=np.int64)
        for index, (case, files) in enumerate(cases.items()):
            if not files["label"].is_file():
                raise DatasetError(f"{files['label']}: label file of case '{case}' is missing")
            dense, properties = io.read_seg(files["label"])
            dense = dense[0].astype(np.int16)
            _check_axes_fit(mode, mode_options, dense.shape, files["label"])
            # each case its own seed so adding cases does not change the others' annotation
            sparse = MODES[mode](dense, ignore_label, seed=seed + index, **mode_options)
            total += np.bincount(dense.ravel(), minlength=ignore_label)[:ignore_label]
            kept += np.bincount(dense[sparse != ignore_label].ravel(), minlength=ignore_label)[:ignore_label]
            io.write_seg(sparse, staging / "labelsTr" / files["label"].name, properties)
            for image in files["images"]:
                _place_file(image, staging / "imagesTr" / image.name, copy_images)
        _place_test_folders(source_folder, staging, copy_images)

        labels = dict(dataset_json.labels)
        labels[IGNORE_LABEL_NAME] = ignore_label
        sparse_json = DatasetJson(
            dataset_json.channel_names,
            labels,
            len(cases),
            dataset_json.file_ending,
            dataset_json.regions_class_order,
            dataset_json.overwrite_image_reader_writer,
            None,
            dict(dataset_json.extra),
        )
        # the new dataset is named after its own folder, not the source's (its dataset.json copied the name)
        sparse_json.extra["name"] = target_folder.name
        if "description" in sparse_json.extra:
            sparse_json.extra["description"] = f"{mode} annotation simulated from {source_folder.name}"
        sparse_json.extra["sparse_annotation"] = {
            "source": source_folder.name,
            "mode": mode,
            "seed": seed,
            **{k: v for k, v in mode_options.items()},
        }
        sparse_json.save(staging / "dataset.json")
        if kept.sum() == 0:
            raise DatasetError(f"{source_folder}: these {mode} options leave no voxel annotated in any case")

    names = {v: k for k, v in dataset_json.labels.items() if isinstance(v, int)}
    fractions = {names.get(c, str(c)): float(kept[c] / total[c]) for c in range(ignore_label) if total[c]}
    fractions["all voxels"] = float(kept.sum() / total.sum())
    return fractions


def simulate_sparse_dataset_by_id(
    source: str | int,
    target_id: int,
    mode: str,
    name: str | None = None,
    seed: int = 0,
    copy_images: bool = False,
    overwrite: bool = False,
    **mode_options: Any,
) -> tuple[Path, dict[str, float]]:
    """Resolve dataset ids in nnUNet_raw, then run :func:`simulate_sparse_dataset`."""
    from nnunetv2 import paths
    from nnunetv2.utilities.dataset_name import dataset_id_from_name, resolve_dataset_name

    check_simulation_options(mode, seed, mode_options)
    check_number("the target id", target_id, "integer [1, 999]", error=DatasetError)
    raw = paths.raw_folder()
    source_name = resolve_dataset_name(source, [raw])
    target_name = f"Dataset{target_id:03d}_{name or source_name.split('_', 1)[1] + '_' + mode}"
    if dataset_id_from_name(source_name) == target_id:
        raise DatasetError(f"the target id {target_id} is the source dataset's id; choose another")
    existing = [p for p in raw.glob(f"Dataset{target_id:03d}_*") if p.is_dir()]
    if existing and not overwrite:
        raise DatasetError(f"{existing[0]} already exists (use --overwrite to replace it)")
    target = raw / target_name
    fractions = simulate_sparse_dataset(
        raw / source_name, target, mode, seed=seed, copy_images=copy_images, **mode_options
    )
    # only now: a refused or failed simulation leaves the dataset it would have replaced as it was
    for folder in existing:
        if folder != target:
            shutil.rmtree(folder)
    return target, fractions


def expand_sparse_dataset(
    source_folder: Path,
    target_folder: Path,
    method: str = DEFAULT_METHOD,
    axis: int | None = 0,
    copy_images: bool = False,
    **options: float,
) -> dict[str, float]:
    """Write ``target_folder`` as ``source_folder`` (a sparse raw dataset) with its labels grown by a random walker.

    See :mod:`nnunetv2.sparse.expand` for ``method``, ``axis`` and ``options``. Returns the annotated
    fraction of all voxels before and after.
    """
    check_expansion_options(method, axis, **options)
    source_folder, target_folder = Path(source_folder), Path(target_folder)
    dataset_json = DatasetJson.load(source_folder / "dataset.json")
    label_manager = LabelManager.from_dataset_json(dataset_json)
    if not label_manager.has_ignore_label:
        raise DatasetError(f"{source_folder}: has no ignore label, so there is nothing to expand")
    if label_manager.has_regions:
        raise DatasetError(f"{source_folder}: scribble expansion needs plain labels, not regions")
    from nnunetv2.imageio.registry import reader_writer_for_dataset

    cases = list_training_cases(source_folder, dataset_json)
    if not cases:
        raise DatasetError(f"{source_folder}: no training cases found")
    io = reader_writer_for_dataset(dataset_json, str(next(iter(cases.values()))["images"][0]))()
    ignore_label = label_manager.ignore_label
    assert ignore_label is not None  # has_ignore_label was checked above
    annotated = np.zeros(2, dtype=np.int64)
    total = 0
    with atomic_folder(target_folder) as staging:
        for case, files in cases.items():
            if not files["label"].is_file():
                raise DatasetError(f"{files['label']}: label file of case '{case}' is missing")
            sparse, properties = io.read_seg(files["label"])
            image, _ = io.read_images([str(f) for f in files["images"]])
            grown = expand_scribbles(image, sparse[0], ignore_label, properties.get("spacing"), axis, method, **options)
            annotated += [(sparse != ignore_label).sum(), (grown != ignore_label).sum()]
            total += sparse.size
            io.write_seg(grown.astype(sparse.dtype), staging / "labelsTr" / files["label"].name, properties)
            for image_file in files["images"]:
                _place_file(image_file, staging / "imagesTr" / image_file.name, copy_images)
        _place_test_folders(source_folder, staging, copy_images)
        expanded_json = DatasetJson.load(source_folder / "dataset.json")
        expanded_json.extra["name"] = target_folder.name
        record = {"source": source_folder.name, "method": method, "axis": axis, **options}
        expanded_json.extra["scribble_expansion"] = record
        expanded_json.save(staging / "dataset.json")
    return {"annotated before": float(annotated[0] / total), "annotated after": float(annotated[1] / total)}


def expand_sparse_dataset_by_id(
    source: str | int,
    target_id: int,
    name: str | None = None,
    overwrite: bool = False,
    method: str = DEFAULT_METHOD,
    axis: int | None = 0,
    copy_images: bool = False,
    **options: float,
) -> tuple[Path, dict[str, float]]:
    """Resolve dataset ids in nnUNet_raw, then run :func:`expand_sparse_dataset`."""
    from nnunetv2 import paths
    from nnunetv2.utilities.dataset_name import dataset_id_from_name, resolve_dataset_name

    check_expansion_options(method, axis, **options)
    check_number("the target id", target_id, "integer [1, 999]", error=DatasetError)
    raw = paths.raw_folder()
    source_name = resolve_dataset_name(source, [raw])
    if dataset_id_from_name(source_name) == target_id:
        raise DatasetError(f"the target id {target_id} is the source dataset's id; choose another")
    target = raw / f"Dataset{target_id:03d}_{name or source_name.split('_', 1)[1] + '_expanded'}"
    existing = [p for p in raw.glob(f"Dataset{target_id:03d}_*") if p.is_dir()]
    if existing and not overwrite:
        raise DatasetError(f"{existing[0]} already exists (use --overwrite to replace it)")
    fractions = expand_sparse_dataset(raw / source_name, target, method, axis, copy_images, **options)
    for folder in existing:
        if folder != target:
            shutil.rmtree(folder)
    return target, fractions
