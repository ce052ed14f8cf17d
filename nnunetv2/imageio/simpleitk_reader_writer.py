"""SimpleITKIO: NIfTI, NRRD, MetaImage and GIPL files through SimpleITK (nnU-Net v2's default for 3D)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nnunetv2.exceptions import ImageIOError, reason_of
from nnunetv2.imageio.base_reader_writer import (
    SPACING_OF_MISSING_AXIS,
    FileByFileReaderWriter,
    Properties,
    atomic_image_path,
    label_array_for_writing,
    unreadable,
)


def _geometry(image, dimension: int) -> tuple[list[float], list[float], list[float]]:
    """Return (spacing, origin, direction) of the first ``dimension`` axes, in SimpleITK order."""
    full = image.GetDimension()
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(full, full)[:dimension, :dimension]
    return (
        [float(s) for s in image.GetSpacing()[:dimension]],
        [float(o) for o in image.GetOrigin()[:dimension]],
        [float(d) for d in direction.ravel()],
    )


def _check_gzipped_nifti_complete(path: Path, image) -> None:
    """Raise ImageIOError when a .nii.gz file is shorter than its header says.

    ITK fills the missing part of a truncated gzip stream with zeros without any error, so we
    compare the uncompressed size in the gzip trailer (the last 4 bytes, modulo 2^32) with the
    size the NIfTI header announces; reading 4 bytes costs nothing, a second decompression would.
    """
    keys = ("vox_offset", "bitpix", "dim[0]")
    if not path.name.lower().endswith(".gz") or not all(image.HasMetaDataKey(k) for k in keys):
        return
    num_dims = int(image.GetMetaData("dim[0]"))
    voxels = int(np.prod([int(image.GetMetaData(f"dim[{i}]")) for i in range(1, num_dims + 1)]))
    expected = int(float(image.GetMetaData("vox_offset"))) + voxels * int(image.GetMetaData("bitpix")) // 8
    with open(path, "rb") as f:
        f.seek(-4, os.SEEK_END)
        stored = int.from_bytes(f.read(4), "little")
    if stored != expected % 2**32:
        raise ImageIOError(
            f"{path}: the file is truncated or damaged (its gzip trailer records {stored} "
            f"bytes, the NIfTI header needs {expected})"
        )


class SimpleITKIO(FileByFileReaderWriter):
    """Reads and writes medical images with SimpleITK; arrays are in SimpleITK's (z, y, x) order.

    Multi-component (vector) pixels and the 4th axis of a 4D file count as channels; the geometry
    of the spatial axes is kept in ``properties['sitk_stuff']`` (SimpleITK order) for writing.
    """

    supported_file_endings = (".nii.gz", ".nii", ".nrrd", ".mha", ".gipl")

    def read_file(self, path: Path, is_seg: bool) -> tuple[np.ndarray, Properties]:
        """Return the file's channels as ``(c, z, y, x)`` (2D: ``(c, 1, y, x)``) and its properties."""
        import SimpleITK as sitk

        try:
            image = sitk.ReadImage(str(path))
            array = sitk.GetArrayFromImage(image)
        except RuntimeError as e:
            raise unreadable(path, "SimpleITK", e) from None
        _check_gzipped_nifti_complete(path, image)
        dimension = image.GetDimension()
        if image.GetNumberOfComponentsPerPixel() > 1:
            # vector pixels come last in the array: (z, y, x, c) -> (c, z, y, x)
            array = np.moveaxis(array, -1, 0)
        elif dimension == 4:
            dimension = 3  # the 4th axis holds the channels and is already first: (c, z, y, x)
        else:
            array = array[None]
        if dimension == 2:
            array = array[:, None]
        elif dimension != 3:
            raise ImageIOError(
                f"{path}: {image.GetDimension()}D images are not supported (2D, 3D or 4D "
                f"with channels along the 4th axis)"
            )
        spacing, origin, direction = _geometry(image, dimension)
        array_spacing = spacing[::-1] if dimension == 3 else [SPACING_OF_MISSING_AXIS] + spacing[::-1]
        return array, {
            "spacing": array_spacing,
            "sitk_stuff": {"spacing": spacing, "origin": origin, "direction": direction},
        }

    def write_seg(self, seg: np.ndarray, output_file: str | os.PathLike, properties: Properties) -> None:
        """Write a ``(z, y, x)`` segmentation (``(1, y, x)`` for 2D files) with the geometry it was read with."""
        import SimpleITK as sitk

        if seg.ndim != 3:
            raise ImageIOError(f"{output_file}: expected a (z, y, x) segmentation, got shape {list(seg.shape)}")
        geometry = properties["sitk_stuff"]
        if len(geometry["spacing"]) == 2:
            if seg.shape[0] != 1:
                raise ImageIOError(f"{output_file}: the image is 2D but the segmentation has shape {list(seg.shape)}")
            seg = seg[0]
        image = sitk.GetImageFromArray(label_array_for_writing(seg, output_file))
        image.SetSpacing(geometry["spacing"])
        image.SetOrigin(geometry["origin"])
        image.SetDirection(geometry["direction"])
        with atomic_image_path(output_file) as tmp:
            try:
                sitk.WriteImage(image, str(tmp), True)
            except RuntimeError as e:  # ITK reports a full disk or a lost mount as RuntimeError
                raise ImageIOError(f"{output_file}: cannot write the file ({reason_of(e, last=True)})") from None
