"""Small synthetic raw datasets (MR- or CT-like, 2D or 3D) for tests, demos and benchmarks.

Every case has a "body" (an ellipsoid smaller than the image) holding a large blob (label 1),
a thin wavy tube (label 2, harder to segment) and, for more classes, small spots (labels 3+).
Each tissue has its own intensity plus noise. MR-like images are zero outside the body, so
nnU-Net's crop-to-nonzero removes the margin; CT-like images put air (-1000 HU) outside the
body as real scans do, so cropping keeps the whole image there.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nnunetv2.exceptions import DatasetError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.imageio.image_files import write_image
from nnunetv2.utilities.dataset_name import dataset_folders_with_id
from nnunetv2.utilities.file_io import atomic_folder
from nnunetv2.utilities.parameters import check_number, is_valid

logger = logging.getLogger(__name__)

_NATURAL_IMAGE_ENDINGS = (".png", ".bmp")
_MR_CHANNEL_NAMES = ("T1", "T2", "FLAIR", "T1c")
# mean intensity per tissue index: 0 outside the body, 1 body, 2 blob, 3 tube, 4+ spots
_MR_MEANS = np.array([0.0, 100.0, 170.0, 60.0, 220.0, 135.0, 30.0, 200.0])
_CT_MEANS = np.array([-1000.0, 40.0, 100.0, -50.0, 200.0, 300.0, 400.0, 500.0])
_MR_NOISE, _CT_NOISE = 8.0, 20.0


def _coordinate_grids(shape: Sequence[int], spacing: np.ndarray) -> list[np.ndarray]:
    """Voxel-centre coordinates in mm, one broadcastable array per axis."""
    return list(np.meshgrid(*[(np.arange(n) + 0.5) * s for n, s in zip(shape, spacing)], indexing="ij", sparse=True))


def _ellipsoid(grids: list[np.ndarray], centre: np.ndarray, radii: np.ndarray) -> np.ndarray:
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii)) <= 1.0


def _label_map(
    shape: Sequence[int], spacing: np.ndarray, num_foreground_classes: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Return (seg, body mask) for one case; seg holds 0..num_foreground_classes."""
    grids = _coordinate_grids(shape, spacing)
    extent = np.asarray(shape) * spacing
    # radius + offset <= 44% of the extent leaves a margin that nonzero cropping removes
    body_centre = extent * (0.5 + rng.uniform(-0.04, 0.04, len(shape)))
    body_radii = extent * rng.uniform(0.32, 0.40, len(shape))
    body = _ellipsoid(grids, body_centre, body_radii)
    seg = np.zeros(shape, dtype=np.uint8)
    finest = spacing.min()

    blob_centre = body_centre + body_radii * rng.uniform(-0.25, 0.25, len(shape))
    blob_radii = np.maximum(body_radii * rng.uniform(0.45, 0.6, len(shape)), 2 * spacing)
    seg[_ellipsoid(grids, blob_centre, blob_radii) & body] = 1

    if num_foreground_classes >= 2:
        # a tube along axis 0 whose in-plane centre wanders sinusoidally
        t = (grids[0] - body_centre[0]) / body_radii[0]
        radius = rng.uniform(1.2, 2.0) * spacing[1:].min()
        dist2 = 0.0
        for axis in range(1, len(shape)):
            centre = body_centre[axis] + 0.45 * body_radii[axis] * np.sin(
                rng.uniform(1.5, 3.0) * t + rng.uniform(0, 2 * np.pi)
            )
            dist2 = dist2 + (grids[axis] - centre) ** 2
        seg[(dist2 <= radius**2) & (np.abs(t) <= 0.6) & body] = 2

    for label in range(3, num_foreground_classes + 1):
        centre = body_centre + body_radii * rng.uniform(-0.55, 0.55, len(shape))
        radii = np.maximum(body_radii * rng.uniform(0.1, 0.18, len(shape)), 1.5 * finest)
        seg[_ellipsoid(grids, centre, radii) & body] = label
    return seg, body


def _bias_field(shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """A smooth multiplicative field (about +-25%) like an MR coil's, different per case."""
    unit = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij", sparse=True)
    exponent = sum(rng.uniform(-0.2, 0.2) * u for u in unit) + rng.uniform(-0.1, 0.1) * unit[0] * unit[-1]
    return np.exp(exponent) * rng.uniform(0.8, 1.2)


def _channel_means(intensity: str, channel: int, num_tissues: int) -> np.ndarray:
    """Mean per tissue index for a channel; extra channels have a different contrast."""
    base = _MR_MEANS if intensity == "mr" else _CT_MEANS
    means = np.resize(base[1:], num_tissues - 1)
    if intensity == "mr":
        if channel % 2 == 1:
            means = 280.0 - means  # inverted contrast, like T2 next to T1
        means = means * (1.0 + 0.25 * channel)
        return np.concatenate([[0.0], means])
    # contrast phases: foreground enhances, soft tissue a little, air not at all
    means = means + np.concatenate([[10.0 * channel], np.full(num_tissues - 2, 60.0 * channel)])
    return np.concatenate([[base[0]], means])


def _images(
    seg: np.ndarray,
    body: np.ndarray,
    num_channels: int,
    num_foreground_classes: int,
    intensity: str,
    rng: np.random.Generator,
) -> np.ndarray:
    """Return float32 images (c, *shape) for a case's label map."""
    tissue = np.where(body, seg.astype(np.int64) + 1, 0)
    num_tissues = num_foreground_classes + 2
    bias = _bias_field(seg.shape, rng) if intensity == "mr" else 1.0
    images = np.empty((num_channels,) + seg.shape, dtype=np.float32)
    for c in range(num_channels):
        means = _channel_means(intensity, c, num_tissues)
        noise = _MR_NOISE if intensity == "mr" else _CT_NOISE
        image = means[tissue] + rng.normal(0.0, noise * (1 + 0.25 * c), seg.shape)
        if intensity == "mr":
            # exactly zero outside the body, strictly positive inside
            image = np.where(body, np.maximum(image * bias, 1.0), 0.0)
        images[c] = image
    return images


def _labels(
    num_foreground_classes: int, regions: bool, ignore_label: bool
) -> tuple[dict[str, int | list[int]], list[int] | None]:
    labels: dict[str, int | list[int]] = {"background": 0}
    if regions:
        # nested regions: region i holds labels i..K, painted in order 1..K (BraTS style)
        top = num_foreground_classes
        for i in range(1, top + 1):
            name = {1: "whole", 2: "core"}.get(i, f"inner_{i}")
            labels[name] = list(range(i, top + 1))
        order = list(range(1, top + 1))
    else:
        for i in range(1, num_foreground_classes + 1):
            labels[{1: "blob", 2: "tube"}.get(i, f"spot_{i}")] = i
        order = None
    if ignore_label:
        labels["ignore"] = num_foreground_classes + 1
    return labels, order


def _channel_names(intensity: str, num_channels: int) -> dict[str, str]:
    if intensity == "ct":
        return {str(c): "CT" for c in range(num_channels)}
    return {str(c): (_MR_CHANNEL_NAMES[c] if c < len(_MR_CHANNEL_NAMES) else f"MR{c}") for c in range(num_channels)}


def _check_arguments(
    shape, spacing, num_cases, num_channels, num_foreground_classes, intensity, regions, file_ending
) -> None:
    problem = None
    if len(shape) not in (2, 3) or min(shape) < 4:
        problem = f"shape must have 2 or 3 axes of at least 4 voxels, got {tuple(shape)}"
    elif len(spacing) != len(shape) or min(spacing) <= 0:
        problem = f"spacing {tuple(spacing)} must be positive with one value per axis of {tuple(shape)}"
    elif intensity not in ("mr", "ct"):
        problem = f"intensity must be 'mr' or 'ct', got {intensity!r}"
    elif not all(is_valid(n, "integer >= 1") for n in (num_cases, num_channels, num_foreground_classes)):
        problem = "num_cases, num_channels and num_foreground_classes must be integers >= 1"
    elif regions and num_foreground_classes < 2:
        problem = "regions need at least 2 foreground classes"
    elif file_ending.lower() in _NATURAL_IMAGE_ENDINGS and len(shape) != 2:
        problem = f"{file_ending} files are 2D; use a 2D shape"
    elif file_ending.lower() in _NATURAL_IMAGE_ENDINGS and intensity != "mr":
        problem = f"{file_ending} stores 8-bit natural images; use intensity 'mr'"
    if problem:
        raise DatasetError(f"cannot generate the synthetic dataset: {problem}")
    from nnunetv2.imageio.registry import reader_writer_for_ending

    reader_writer_for_ending(file_ending)  # an unsupported ending fails before anything is written


def _write_case(
    folder: Path,
    images_dir: str,
    labels_dir: str,
    case: str,
    images: np.ndarray,
    seg: np.ndarray,
    spacing: np.ndarray,
    origin: np.ndarray,
    file_ending: str,
) -> None:
    from nnunetv2.imageio.registry import reader_writer_for_ending

    image_files = []
    for c, image in enumerate(images):
        image_files.append(folder / images_dir / f"{case}_{c:04d}{file_ending}")
        write_image(image, image_files[-1], spacing, origin)
    # the label is written by the dataset's own reader-writer, with the geometry it reads back
    reader_writer = reader_writer_for_ending(file_ending, str(image_files[0]))()
    _, properties = reader_writer.read_images(image_files[:1])
    seg_3d = seg[None] if seg.ndim == 2 else seg
    reader_writer.write_seg(seg_3d, folder / labels_dir / f"{case}{file_ending}", properties)


def generate_synthetic_dataset(
    dataset_folder: str | os.PathLike,
    num_cases: int = 8,
    shape: Sequence[int] = (24, 40, 40),
    spacing: Sequence[float] | None = None,
    num_channels: int = 1,
    num_foreground_classes: int = 2,
    intensity: str = "mr",
    regions: bool = False,
    ignore_label: bool = False,
    file_ending: str = ".nii.gz",
    num_test_cases: int = 0,
    seed: int = 0,
    overwrite: bool = False,
) -> DatasetJson:
    """Write a synthetic raw dataset into ``dataset_folder`` (DatasetXXX_Name) and return its dataset.json.

    ``spacing`` defaults to (3, 1, 1) for 3D and (1, 1) for 2D shapes. The folder must not exist
    or be empty unless ``overwrite``; it appears complete or not at all.
    """
    shape = tuple(int(s) for s in shape)
    spacing_arr = np.asarray(spacing if spacing is not None else (3.0, 1.0, 1.0)[-len(shape) :], dtype=float)
    _check_arguments(
        shape, spacing_arr, num_cases, num_channels, num_foreground_classes, intensity, regions, file_ending
    )
    dataset_folder = Path(dataset_folder)
    if dataset_folder.exists() and any(dataset_folder.iterdir()) and not overwrite:
        raise DatasetError(f"{dataset_folder}: already exists and is not empty (overwrite to replace it)")

    labels, regions_class_order = _labels(num_foreground_classes, regions, ignore_label)
    dataset_json = DatasetJson(
        channel_names=_channel_names(intensity, num_channels),
        labels=labels,
        num_training=num_cases,
        file_ending=file_ending,
        regions_class_order=regions_class_order,
        extra={
            "name": dataset_folder.name,
            "description": f"synthetic {intensity.upper()}-like {len(shape)}D dataset, seed {seed}",
        },
    )

    with atomic_folder(dataset_folder) as staging:
        subsets = [("imagesTr", "labelsTr", range(num_cases))]
        if num_test_cases > 0:
            subsets.append(("imagesTs", "labelsTs", range(num_cases, num_cases + num_test_cases)))
        for images_dir, labels_dir, indices in subsets:
            (staging / images_dir).mkdir()
            (staging / labels_dir).mkdir()
            for index in indices:
                rng = np.random.default_rng([seed, index])
                seg, body = _label_map(shape, spacing_arr, num_foreground_classes, rng)
                images = _images(seg, body, num_channels, num_foreground_classes, intensity, rng)
                if ignore_label:
                    thickness = max(1, shape[0] // 4)
                    start = rng.integers(0, shape[0] - thickness + 1)
                    seg[start : start + thickness] = num_foreground_classes + 1
                origin = np.round(rng.uniform(-50, 50, len(shape)), 1)
                _write_case(
                    staging, images_dir, labels_dir, f"case_{index:03d}", images, seg, spacing_arr, origin, file_ending
                )
        dataset_json.save(staging / "dataset.json")
    logger.debug("wrote %d training and %d test cases to %s", num_cases, num_test_cases, dataset_folder)
    return dataset_json


def generate_synthetic_dataset_in_raw(dataset_id: int, name: str, overwrite: bool = False, **generator_kwargs) -> Path:
    """Generate ``nnUNet_raw/DatasetXXX_name``; refuse when the id is taken unless ``overwrite``."""
    from nnunetv2 import paths

    check_number("dataset id", dataset_id, "integer [1, 999]", error=DatasetError)
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
        raise DatasetError(f"dataset name '{name}' may only contain letters, digits, '_' and '-'")
    target = paths.raw_folder() / f"Dataset{dataset_id:03d}_{name}"
    taken = dataset_folders_with_id(dataset_id, paths.raw_folder())
    if taken and not overwrite:
        raise DatasetError(
            f"dataset id {dataset_id:03d} is already used by {taken[0]} (pass --overwrite to replace it)"
        )
    generate_synthetic_dataset(target, overwrite=True, **generator_kwargs)
    for other in taken:
        if other != target:
            shutil.rmtree(other)
            logger.info("removed %s (same dataset id)", other)
    return target
