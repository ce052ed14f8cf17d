"""Where an array voxel lies in a viewer: its ITK index (x, y, z) and its physical point in world coordinates (mm).

Arrays are indexed ``(z, y, x)`` (2D images ``(1, y, x)``); ITK-SNAP, 3D Slicer, SimpleITK and
nibabel count voxels ``(x, y, z)``, so the ITK index is the array index reversed. The physical point
is given in ITK's world convention, LPS (x grows to the patient's left, y to the posterior, z to
the superior), whatever reader-writer read the file: SimpleITK's geometry is used as it is,
nibabel's RAS affine is turned to LPS (x and y negated), and readers without a geometry (PNG,
TIFF) place voxel (0, 0, 0) at the origin with the identity direction. 3D Slicer displays RAS,
that is ``(-x, -y, z)`` of this point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

_RAS_TO_LPS = np.array([-1.0, -1.0, 1.0])


def itk_index(array_index: Sequence[float]) -> tuple[float, float, float]:
    """Return the ITK voxel index ``(x, y, z)`` of an array index ``(z, y, x)``."""
    z, y, x = array_index
    return (x, y, z)


def voxel_to_world(properties: Mapping[str, Any], array_index: Sequence[float]) -> tuple[float, float, float]:
    """Return the LPS physical point ``(x, y, z)`` in mm of an array index ``(z, y, x)`` of an image read with
    ``properties`` (see the module docstring)."""
    index_xyz = np.asarray(itk_index(array_index), dtype=float)
    sitk = properties.get("sitk_stuff")
    nib = properties.get("nibabel_stuff")
    if sitk is not None:
        dimension = len(sitk["spacing"])
        direction = np.asarray(sitk["direction"], dtype=float).reshape(dimension, dimension)
        point = np.asarray(sitk["origin"], dtype=float) + direction @ (
            np.asarray(sitk["spacing"], dtype=float) * index_xyz[:dimension]
        )
        point = np.concatenate([point, np.zeros(3 - dimension)])
    elif nib is not None:
        affine = np.asarray(nib.get("reoriented_affine", nib["original_affine"]), dtype=float)
        point = (affine @ np.append(index_xyz, 1.0))[:3] * _RAS_TO_LPS
    else:
        spacing_zyx = np.asarray(properties.get("spacing", (1.0, 1.0, 1.0)), dtype=float)
        point = index_xyz * spacing_zyx[::-1]
    x, y, z = (float(v) for v in point)
    return x, y, z


def slice_position(properties: Mapping[str, Any], shape: Sequence[int], axis: int, index: int) -> tuple[str, float]:
    """Return ``(world axis name, mm)``: where slice ``index`` perpendicular to array ``axis`` lies along the world
    axis most aligned with the slicing direction (measured at the slice's centre voxel)."""
    centre = [(n - 1) / 2 for n in shape]
    centre[axis] = index
    after = list(centre)
    after[axis] = index + 1
    here, there = np.asarray(voxel_to_world(properties, centre)), np.asarray(voxel_to_world(properties, after))
    world_axis = int(np.argmax(np.abs(there - here))) if np.any(there != here) else 2 - axis
    return "xyz"[world_axis], float(here[world_axis])
