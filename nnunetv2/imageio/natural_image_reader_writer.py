"""NaturalImage2DIO: 2D PNG, BMP and TIFF images through Pillow; colour channels come from one file."""

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

# modes whose pixel values are not intensities; images in them are converted to RGB(A)
_CONVERT_TO_RGB = ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV")


def _pixels(path: Path, is_seg: bool) -> np.ndarray:
    """Return the pixels as (y, x) or (y, x, c); palette labels stay palette indices."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            pages = getattr(image, "n_frames", 1)
            if not is_seg and image.mode in _CONVERT_TO_RGB:
                has_alpha = image.mode == "PA" or "transparency" in image.info
                image = image.convert("RGBA" if has_alpha else "RGB")
            pixels = np.asarray(image)
    except (OSError, ValueError, UnidentifiedImageError) as e:
        raise unreadable(path, "Pillow", e) from None
    if pages > 1:
        raise ImageIOError(
            f"{path}: has {pages} pages; NaturalImage2DIO reads 2D images, 3D TIFF stacks "
            f"need Tiff3DIO and a spacing sidecar json"
        )
    # Pillow gives bilevel images as bool
    return pixels.astype(np.uint8) if pixels.dtype == bool else pixels


def _single_label_channel(pixels: np.ndarray, path: Path) -> np.ndarray:
    """Return a gray (y, x) label map; labels saved as gray RGB(A) are accepted, alpha is ignored."""
    if pixels.ndim == 2:
        return pixels
    colour = pixels[..., :3] if pixels.shape[-1] >= 3 else pixels[..., :1]
    if not (colour == colour[..., :1]).all():
        raise ImageIOError(
            f"{path}: a segmentation must be a gray or palette image, this one has "
            f"{colour.shape[-1]} different colour channels"
        )
    return colour[..., 0]


class NaturalImage2DIO(FileByFileReaderWriter):
    """Reads 2D natural images as ``(c, 1, y, x)`` with spacing ``[999, 1, 1]`` (gray: 1, RGB: 3, RGBA: 4)."""

    supported_file_endings = (".png", ".bmp", ".tif")

    def read_file(self, path: Path, is_seg: bool) -> tuple[np.ndarray, Properties]:
        """Return the image's channels as ``(c, 1, y, x)`` and its properties."""
        pixels = _pixels(path, is_seg)
        if is_seg:
            pixels = _single_label_channel(pixels, path)
        array = pixels[None, None] if pixels.ndim == 2 else np.moveaxis(pixels, -1, 0)[:, None]
        return array, {"spacing": [SPACING_OF_MISSING_AXIS, 1.0, 1.0]}

    def write_seg(self, seg: np.ndarray, output_file: str | os.PathLike, properties: Properties) -> None:
        """Write a ``(1, y, x)`` segmentation as an 8 bit (16 bit when needed) gray image."""
        from PIL import Image

        if seg.ndim != 3 or seg.shape[0] != 1:
            raise ImageIOError(
                f"{output_file}: expected a (1, y, x) segmentation of a 2D image, got shape {list(seg.shape)}"
            )
        max_value = 255 if str(output_file).lower().endswith(".bmp") else 65535
        image = Image.fromarray(label_array_for_writing(seg[0], output_file, max_value))
        with atomic_image_path(output_file) as tmp:
            image.save(tmp)
