"""The interface every image reader-writer implements (nnU-Net v2's conventions).

Arrays are 4D for images, ``(c, z, y, x)``, and segmentations are read as ``(1, z, y, x)``;
2D images get a leading axis of size 1 (``(c, 1, y, x)``) and spacing ``[999, sy, sx]``.
``properties['spacing']`` lists the spacing in array axis order; each backend adds what it
needs to write a file back with the exact geometry (e.g. ``sitk_stuff``). Properties hold only
JSON types (lists, floats), because they are saved as JSON later. Images are float32;
segmentations keep the file's data type.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.exceptions import ImageIOError
from nnunetv2.utilities.file_io import atomic_path

Properties = dict[str, Any]


class BaseReaderWriter(ABC):
    """Reads a case's channel files into one array and writes segmentations back."""

    supported_file_endings: tuple[str, ...] = ()

    @abstractmethod
    def read_images(self, image_files: Sequence[str | os.PathLike]) -> tuple[np.ndarray, Properties]:
        """Return the channels stacked as float32 ``(c, z, y, x)`` and their shared properties."""

    @abstractmethod
    def read_seg(self, seg_file: str | os.PathLike) -> tuple[np.ndarray, Properties]:
        """Return a segmentation as ``(1, z, y, x)`` and its properties."""

    @abstractmethod
    def write_seg(self, seg: np.ndarray, output_file: str | os.PathLike, properties: Properties) -> None:
        """Write a ``(z, y, x)`` segmentation with the geometry in ``properties``."""


# nnU-Net's placeholder spacing of the axis a 2D image does not have
SPACING_OF_MISSING_AXIS = 999.0

# nnU-Net compares channel geometry with np.allclose; files written by different tools differ by
# float32 rounding (NIfTI stores geometry in float32), which these tolerances absorb
GEOMETRY_RTOL = 1e-5
GEOMETRY_ATOL = 1e-5


def ensure_file_exists(path: str | os.PathLike) -> Path:
    """Return ``path`` as a Path, raising ImageIOError when it is not an existing file."""
    path = Path(path)
    if not path.is_file():
        raise ImageIOError(f"{path}: file not found")
    return path


def unreadable(path: str | os.PathLike, backend: str, error: BaseException) -> ImageIOError:
    """Return the ImageIOError for a file a backend failed to read, its reason shortened to one line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    # ITK puts the useful part of its message on the last line, after an "sitk::ERROR:" tag
    reason = re.sub(r"^\w*::ERROR:\s*", "", lines[-1]) if lines else type(error).__name__
    if len(reason) > 200:
        reason = reason[:197] + "..."
    return ImageIOError(f"{path}: {backend} cannot read this file ({reason})")


def atomic_image_path(output_file: str | os.PathLike) -> ContextManager[Path]:
    """Return ``atomic_path`` for an image: its temporary name keeps the ending the writer needs."""
    output_file = Path(output_file)
    return atomic_path(output_file, suffix="".join(output_file.suffixes))


def label_array_for_writing(seg: np.ndarray, output_file: str | os.PathLike, max_value: int = 2**32 - 1) -> np.ndarray:
    """Return ``seg`` as the smallest unsigned integer type holding it (uint8, uint16 or uint32).

    Raises ImageIOError for fractional or negative values and for values above ``max_value``
    (the largest label the file format can hold, at most 2^32 - 1).
    """
    seg = np.asarray(seg)
    if seg.size == 0:
        raise ImageIOError(f"{output_file}: cannot write an empty segmentation")
    if seg.dtype == bool:
        seg = seg.view(np.uint8)
    elif not np.issubdtype(seg.dtype, np.integer) and not np.array_equal(seg, np.round(seg)):
        raise ImageIOError(f"{output_file}: segmentation values must be whole numbers")
    low, high = seg.min(), seg.max()
    if low < 0:
        raise ImageIOError(f"{output_file}: segmentation contains the negative value {low:g}")
    if high > max_value:
        raise ImageIOError(f"{output_file}: label {high:g} exceeds {max_value}, the largest this file format can store")
    dtype = np.uint8 if high <= 255 else np.uint16 if high <= 65535 else np.uint32
    return seg.astype(dtype, copy=False)


def _numeric_leaves(properties: Properties, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
    for key, value in properties.items():
        if isinstance(value, dict):
            yield from _numeric_leaves(value, f"{prefix}{key}.")
            continue
        array = np.asarray(value)
        if array.dtype.kind in "biuf":
            yield f"{prefix}{key}", array


def _rounded(values: np.ndarray) -> list:
    return np.round(values.astype(float), 6).tolist()


def geometry_difference(
    properties: Properties, reference: Properties, rtol: float = GEOMETRY_RTOL, atol: float = GEOMETRY_ATOL
) -> str | None:
    """Describe the first geometry entry of ``properties`` that differs from ``reference``, or return None.

    The backend's own geometry (nested, e.g. SimpleITK's x-first spacing or a NIfTI affine) is compared
    first: it is the root cause when derived values (array-order spacing) differ too. The message names
    the axis order, so a spacing reads the same way in every message.
    """
    reference_leaves = dict(_numeric_leaves(reference))
    for key, value in sorted(_numeric_leaves(properties), key=lambda leaf: "." not in leaf[0]):
        expected = reference_leaves.get(key)
        if expected is None:
            continue
        if value.shape != expected.shape or not np.allclose(value, expected, rtol=rtol, atol=atol):
            name = key.rsplit(".", 1)[-1]
            if name in ("spacing", "origin") and len(value) in (2, 3):
                name += " (x, y, z)" if "." in key else " (z, y, x)"
            return f"{name} {_rounded(value)} differs from {_rounded(expected)}"
    return None


def check_channels_match(files: Sequence[Path], arrays: Sequence[np.ndarray], properties: Sequence[Properties]) -> None:
    """Raise ImageIOError naming the first channel file whose geometry or shape differs from the first."""
    for file, array, props in zip(files[1:], arrays[1:], properties[1:]):
        difference = geometry_difference(props, properties[0])
        if difference:
            raise ImageIOError(
                f"{file}: {difference} of {files[0].name}; the channels of a case must share one geometry"
            )
        if array.shape[1:] != arrays[0].shape[1:]:
            raise ImageIOError(
                f"{file}: shape {list(array.shape[1:])} differs from "
                f"{list(arrays[0].shape[1:])} of {files[0].name}; the channels of a "
                f"case must share one geometry"
            )


class FileByFileReaderWriter(BaseReaderWriter):
    """A reader-writer that reads each file on its own; channels are checked and stacked here."""

    @abstractmethod
    def read_file(self, path: Path, is_seg: bool) -> tuple[np.ndarray, Properties]:
        """Return one existing file's channels as ``(c, z, y, x)`` in the file's dtype, and its properties."""

    def read_images(self, image_files: Sequence[str | os.PathLike]) -> tuple[np.ndarray, Properties]:
        """Return the channels of all files stacked as float32 ``(c, z, y, x)`` and the first file's properties."""
        if isinstance(image_files, (str, os.PathLike)) or len(image_files) == 0:
            raise ImageIOError(f"read_images needs a list of channel files, got {image_files!r}")
        files = [ensure_file_exists(f) for f in image_files]
        arrays, properties = zip(*(self.read_file(f, is_seg=False) for f in files))
        check_channels_match(files, arrays, properties)
        return np.concatenate(arrays, axis=0, dtype=np.float32), properties[0]

    def read_seg(self, seg_file: str | os.PathLike) -> tuple[np.ndarray, Properties]:
        """Return a segmentation as ``(1, z, y, x)`` in the file's dtype, and its properties."""
        path = ensure_file_exists(seg_file)
        seg, properties = self.read_file(path, is_seg=True)
        if seg.shape[0] != 1:
            raise ImageIOError(f"{path}: a segmentation must have one channel, this file has {seg.shape[0]}")
        return seg, properties
