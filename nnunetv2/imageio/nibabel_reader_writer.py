"""NibabelIO and NibabelIOWithReorient: NIfTI files through nibabel, in SimpleITK's axis order.

nibabel indexes voxels (x, y, z); like nnU-Net v2 we transpose to (z, y, x) so that arrays and
spacings match what SimpleITKIO gives for the same file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nnunetv2.exceptions import ImageIOError
from nnunetv2.imageio.base_reader_writer import (
    SPACING_OF_MISSING_AXIS,
    FileByFileReaderWriter,
    Properties,
    atomic_image_path,
    label_array_for_writing,
    unreadable,
)


def _load(path: Path):
    """Return the nibabel image and its voxel data (scaled by the header's slope and intercept)."""
    import nibabel

    try:
        image = nibabel.load(str(path))
        return image, np.asanyarray(image.dataobj)  # type: ignore[attr-defined]
    except Exception as e:  # nibabel and gzip raise many types for a damaged or foreign file
        raise unreadable(path, "nibabel", e) from None


def _to_array_order(data: np.ndarray, path: Path) -> np.ndarray:
    """Return nibabel's (x, y[, z[, c]]) data as (c, z, y, x), or (c, 1, y, x) for 2D."""
    if data.ndim == 2:
        return data.T[None, None]
    if data.ndim == 3:
        return data.transpose(2, 1, 0)[None]
    if data.ndim == 4:
        return data.transpose(3, 2, 1, 0)
    raise ImageIOError(f"{path}: {data.ndim}D images are not supported (2D, 3D or 4D with channels along the 4th axis)")


def _spacing_in_array_order(affine: np.ndarray, spatial_dimensions: int) -> list[float]:
    """Return the voxel spacing (column norms of the affine) in array axis order."""
    norms = [float(n) for n in np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)]
    if spatial_dimensions == 2:
        return [SPACING_OF_MISSING_AXIS, norms[1], norms[0]]
    return norms[2::-1]


def _seg_in_nibabel_order(seg: np.ndarray, spatial_dimensions: int, output_file) -> np.ndarray:
    """Return a (z, y, x) segmentation, or (1, y, x) for a 2D image, in nibabel's (x, y[, z]) order."""
    if seg.ndim != 3:
        raise ImageIOError(f"{output_file}: expected a (z, y, x) segmentation, got shape {list(seg.shape)}")
    if spatial_dimensions == 2:
        if seg.shape[0] != 1:
            raise ImageIOError(f"{output_file}: the image is 2D but the segmentation has shape {list(seg.shape)}")
        return seg[0].T
    return seg.transpose(2, 1, 0)


def _save_nifti(data: np.ndarray, affine: np.ndarray, output_file: str | os.PathLike) -> None:
    import nibabel

    image = nibabel.Nifti1Image(label_array_for_writing(data, output_file), np.asarray(affine, dtype=float))
    with atomic_image_path(output_file) as tmp:
        nibabel.save(image, str(tmp))


class NibabelIO(FileByFileReaderWriter):
    """Reads and writes NIfTI with nibabel, keeping the file's affine in ``properties['nibabel_stuff']``."""

    supported_file_endings = (".nii.gz", ".nii")

    def read_file(self, path: Path, is_seg: bool) -> tuple[np.ndarray, Properties]:
        """Return the file's channels as ``(c, z, y, x)`` (2D: ``(c, 1, y, x)``) and its properties."""
        image, data = _load(path)
        spatial_dimensions = min(data.ndim, 3)
        array = _to_array_order(data, path)
        return array, {
            "spacing": _spacing_in_array_order(image.affine, spatial_dimensions),
            "nibabel_stuff": {"original_affine": image.affine.tolist(), "spatial_dimensions": spatial_dimensions},
        }

    def write_seg(self, seg: np.ndarray, output_file: str | os.PathLike, properties: Properties) -> None:
        """Write a ``(z, y, x)`` segmentation (``(1, y, x)`` for 2D files) with the original affine."""
        stuff = properties["nibabel_stuff"]
        data = _seg_in_nibabel_order(seg, stuff.get("spatial_dimensions", 3), output_file)
        _save_nifti(data, stuff["original_affine"], output_file)


class NibabelIOWithReorient(FileByFileReaderWriter):
    """NibabelIO that reorients 3D images to RAS on reading and back to the file's orientation on writing."""

    supported_file_endings = (".nii.gz", ".nii")

    def read_file(self, path: Path, is_seg: bool) -> tuple[np.ndarray, Properties]:
        """Return the file's channels reoriented to RAS as ``(c, z, y, x)`` and its properties."""
        from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation

        image, data = _load(path)
        if data.ndim not in (3, 4):
            raise ImageIOError(
                f"{path}: NibabelIOWithReorient reads 3D images (or 4D with channels along "
                f"the 4th axis), this one is {data.ndim}D; use NibabelIO or SimpleITKIO"
            )
        to_ras = io_orientation(image.affine)
        reoriented_affine = image.affine @ inv_ornt_aff(to_ras, data.shape[:3])
        array = _to_array_order(apply_orientation(data, to_ras), path)
        return array, {
            "spacing": _spacing_in_array_order(reoriented_affine, 3),
            "nibabel_stuff": {
                "original_affine": image.affine.tolist(),
                "reoriented_affine": reoriented_affine.tolist(),
            },
        }

    def write_seg(self, seg: np.ndarray, output_file: str | os.PathLike, properties: Properties) -> None:
        """Write a ``(z, y, x)`` RAS segmentation back in the orientation of the original file."""
        from nibabel.orientations import apply_orientation, io_orientation, ornt_transform

        stuff = properties["nibabel_stuff"]
        original_affine = np.asarray(stuff["original_affine"], dtype=float)
        back = ornt_transform(
            io_orientation(np.asarray(stuff["reoriented_affine"], dtype=float)), io_orientation(original_affine)
        )
        data = apply_orientation(_seg_in_nibabel_order(seg, 3, output_file), back)
        _save_nifti(data, original_affine, output_file)
