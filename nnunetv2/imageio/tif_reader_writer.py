"""Tiff3DIO: 3D TIFF stacks through tifffile, with the spacing in a json sidecar (nnU-Net v2's convention).

TIFF has no standard place for voxel spacing, so, as in nnU-Net v2, each case has a json file next
to its images, named like the case without channel suffix and ending (``case_0000.tif`` ->
``case.json``; segmentation ``case.tif`` -> ``case.json``), holding ``{"spacing": [sz, sy, sx]}``
in array axis order.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from nnunetv2.exceptions import ImageIOError, NnUNetError
from nnunetv2.imageio.base_reader_writer import (
    FileByFileReaderWriter,
    Properties,
    atomic_image_path,
    label_array_for_writing,
    unreadable,
)
from nnunetv2.utilities.file_io import load_json, save_json

_CHANNEL_SUFFIX = re.compile(r"_\d{4}$")


def _name_without_ending(path: Path) -> str:
    return path.name[: -len(path.suffix)] if path.suffix else path.name


def image_spacing_sidecar(image_file: str | os.PathLike) -> Path:
    """Return the sidecar json of a channel file: ``case_0000.tif`` -> ``case.json``."""
    image_file = Path(image_file)
    return image_file.with_name(_CHANNEL_SUFFIX.sub("", _name_without_ending(image_file)) + ".json")


def seg_spacing_sidecar(seg_file: str | os.PathLike) -> Path:
    """Return the sidecar json of a segmentation: ``case.tif`` -> ``case.json``."""
    seg_file = Path(seg_file)
    return seg_file.with_name(_name_without_ending(seg_file) + ".json")


def has_spacing_sidecar(example_file: str | os.PathLike) -> bool:
    """Return whether an image or segmentation file has a spacing sidecar json (so it is a 3D stack)."""
    return image_spacing_sidecar(example_file).is_file() or seg_spacing_sidecar(example_file).is_file()


def _read_spacing(sidecar: Path, data_file: Path) -> list[float]:
    """Return the 3 positive spacings stored in ``sidecar`` for ``data_file``."""
    if not sidecar.is_file():
        raise ImageIOError(
            f'{data_file}: spacing sidecar {sidecar} not found; Tiff3DIO needs it to hold {{"spacing": [sz, sy, sx]}}'
        )
    try:
        content = load_json(sidecar)
    except NnUNetError as e:
        raise ImageIOError(str(e)) from None
    spacing = content.get("spacing") if isinstance(content, dict) else None
    valid = (
        isinstance(spacing, list)
        and len(spacing) == 3
        and all(isinstance(s, (int, float)) and not isinstance(s, bool) and s > 0 for s in spacing)
    )
    if not valid or spacing is None:
        raise ImageIOError(
            f'{sidecar}: expected {{"spacing": [sz, sy, sx]}} with 3 positive numbers, found {content!r:.100}'
        )
    return [float(s) for s in spacing]


class Tiff3DIO(FileByFileReaderWriter):
    """Reads and writes 3D TIFF stacks ``(z, y, x)``; spacing comes from the case's sidecar json."""

    supported_file_endings = (".tif", ".tiff")

    def read_file(self, path: Path, is_seg: bool) -> tuple[np.ndarray, Properties]:
        """Return the stack as ``(1, z, y, x)`` and its spacing from the sidecar json."""
        import tifffile

        try:
            stack = tifffile.imread(path)
        except Exception as e:  # tifffile raises its own error types besides OSError and ValueError
            raise unreadable(path, "tifffile", e) from None
        if stack.ndim != 3:
            raise ImageIOError(f"{path}: Tiff3DIO reads 3D stacks (z, y, x), this file has shape {list(stack.shape)}")
        sidecar = seg_spacing_sidecar(path) if is_seg else image_spacing_sidecar(path)
        return stack[None], {"spacing": _read_spacing(sidecar, path)}

    def write_seg(self, seg: np.ndarray, output_file: str | os.PathLike, properties: Properties) -> None:
        """Write a ``(z, y, x)`` segmentation stack and its spacing sidecar json."""
        import tifffile

        if seg.ndim != 3:
            raise ImageIOError(f"{output_file}: expected a (z, y, x) segmentation, got shape {list(seg.shape)}")
        data = label_array_for_writing(seg, output_file)
        with atomic_image_path(output_file) as tmp:
            # minisblack: without it tifffile stores a stack of 3 or 4 slices as one colour page
            tifffile.imwrite(tmp, data, photometric="minisblack", compression="zlib")
            # inside the block: if the sidecar cannot be written, the stack is not kept either
            save_json({"spacing": [float(s) for s in properties["spacing"]]}, seg_spacing_sidecar(output_file))
