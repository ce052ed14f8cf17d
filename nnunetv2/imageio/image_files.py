"""Write images and voxel maps outside the reader-writers' segmentation path: a new image from an array and its
spacing, and maps (confidence, uncertainty) in the geometry of an image a reader-writer read.

This is the one place besides the reader-writers that knows their ``properties`` layout (``sitk_stuff``,
``nibabel_stuff``); the rest of the package writes images and maps through these functions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.imageio.base_reader_writer import SPACING_OF_MISSING_AXIS, BaseReaderWriter, atomic_image_path

# PNG/BMP hold 8-bit values and no geometry
_NATURAL_IMAGE_ENDINGS = (".png", ".bmp")


def write_image(
    image: np.ndarray,
    path: str | os.PathLike,
    spacing: Sequence[float] | np.ndarray,
    origin: Sequence[float] | np.ndarray | None = None,
    direction: Sequence[float] | None = None,
) -> None:
    """Write one image channel (2D or 3D, array axis order) with its geometry, atomically.

    ``spacing`` is in array axis order; ``origin``/``direction`` in SimpleITK's (x, y, z) order.
    The data type is kept (float64 becomes float32). PNG/BMP files hold 8-bit values and no geometry.
    """
    path = Path(path)
    if str(path).lower().endswith(_NATURAL_IMAGE_ENDINGS):
        from PIL import Image

        with atomic_image_path(path) as tmp:
            Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8)).save(tmp)
        return
    import SimpleITK as sitk

    itk_image = sitk.GetImageFromArray(image.astype(np.float32) if image.dtype == np.float64 else image)
    itk_image.SetSpacing([float(s) for s in spacing[::-1]])
    if origin is not None:
        itk_image.SetOrigin([float(o) for o in origin])
    if direction is not None:
        itk_image.SetDirection([float(d) for d in direction])
    with atomic_image_path(path) as tmp:
        sitk.WriteImage(itk_image, str(tmp), True)


def write_float_map(values: np.ndarray, output_file: str | os.PathLike, properties: dict[str, Any]) -> None:
    """Write a float32 ``(z, y, x)`` map (``(1, y, x)`` for a 2D image) with the geometry in ``properties`` (as any
    reader-writer returned it); the format follows the file name (e.g. .nii.gz), whatever the image's format."""
    import SimpleITK as sitk

    values = _in_file_orientation(np.asarray(values, dtype=np.float32), properties)
    spacing, origin, direction = _itk_geometry(properties, values.shape)
    image = sitk.GetImageFromArray(values[0] if len(spacing) == 2 else values)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    with atomic_image_path(output_file) as tmp:
        sitk.WriteImage(image, str(tmp), True)


def read_float_map(path: str | os.PathLike, image_reader_writer: str | None = None) -> np.ndarray:
    """Return a map written by ``write_float_map`` as float32 ``(1, z, y, x)`` (2D: ``(1, 1, y, x)``), aligned with
    the arrays ``image_reader_writer`` (the dataset's reader-writer name) reads from the images."""
    from nnunetv2.imageio.registry import reader_writer_class_from_name

    reader_class = reader_writer_class_from_name(image_reader_writer or "SimpleITKIO")
    # a reorienting NIfTI reader must reorient the map as it did the image; PNG/TIFF readers cannot read NIfTI
    if ".nii.gz" not in reader_class.supported_file_endings:
        reader_class = reader_writer_class_from_name("SimpleITKIO")
    values, _ = reader_class().read_images([path])
    return values.astype(np.float32, copy=False)


def write_scaled_map(
    values: np.ndarray,
    output_file: str | os.PathLike,
    properties: dict[str, Any],
    reader_writer: BaseReaderWriter,
    scale: int,
) -> None:
    """Write a ``(z, y, x)`` map of values in [0, 1] as the integers ``round(values * scale)`` through the image's
    own reader-writer, so it has the image's format and geometry even where a format holds no floats (PNG)."""
    reader_writer.write_seg(np.round(np.asarray(values) * scale).astype(np.uint16), output_file, properties)


def _in_file_orientation(array: np.ndarray, properties: dict[str, Any]) -> np.ndarray:
    """Undo a reader's reorientation (NibabelIOWithReorient) so the map matches the image file voxel by voxel."""
    stuff = properties.get("nibabel_stuff", {})
    if "reoriented_affine" not in stuff:
        return array
    from nibabel.orientations import apply_orientation, io_orientation, ornt_transform

    back = ornt_transform(
        io_orientation(np.asarray(stuff["reoriented_affine"], dtype=float)),
        io_orientation(np.asarray(stuff["original_affine"], dtype=float)),
    )
    # nibabel orders axes (x, y, z), our arrays (z, y, x)
    return np.ascontiguousarray(apply_orientation(array.transpose(2, 1, 0), back).transpose(2, 1, 0))


def _itk_geometry(properties: dict[str, Any], shape: tuple[int, ...]) -> tuple[list, list, list]:
    """Return SimpleITK's (spacing, origin, direction) for an array read with ``properties``."""
    if "sitk_stuff" in properties:
        geometry = properties["sitk_stuff"]
        return list(geometry["spacing"]), list(geometry["origin"]), list(geometry["direction"])
    if "nibabel_stuff" in properties:
        stuff = properties["nibabel_stuff"]
        affine = np.asarray(stuff["original_affine"], dtype=float)
        dimension = int(stuff.get("spatial_dimensions", 3))
        # nibabel's affine maps voxel indices to RAS coordinates, ITK's geometry maps them to LPS
        lps = np.diag([-1.0, -1.0, 1.0]) @ affine[:3]
        matrix = lps[:dimension, :dimension]
        spacing = np.linalg.norm(matrix, axis=0)
        return spacing.tolist(), lps[:dimension, 3].tolist(), (matrix / spacing).ravel().tolist()
    spacing = [float(s) for s in properties["spacing"]]
    if shape[0] == 1 and spacing[0] == SPACING_OF_MISSING_AXIS:
        spacing = spacing[1:]
    return spacing[::-1], [0.0] * len(spacing), np.eye(len(spacing)).ravel().tolist()
