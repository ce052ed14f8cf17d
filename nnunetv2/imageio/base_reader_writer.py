"""The interface every image reader-writer implements (nnU-Net v2's conventions).

Arrays are 4D for images, ``(c, z, y, x)``, and segmentations are read as ``(1, z, y, x)``;
2D images get a leading axis of size 1 (``(c, 1, y, x)``) and spacing ``[999, sy, sx]``.
``properties['spacing']`` lists the spacing in array axis order; each backend adds what it
needs to write a file back with the exact geometry (e.g. ``sitk_stuff``).
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any, Sequence

import numpy as np

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
