"""Viewer coordinates: the ITK index and the LPS physical point agree with SimpleITK for every reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnunetv2.imageio.geometry import itk_index, slice_position, voxel_to_world


def _oblique_image(path: Path) -> object:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.zeros((5, 6, 7), dtype=np.int16))  # array (z, y, x)
    image.SetSpacing((0.8, 1.2, 3.0))
    image.SetOrigin((-20.0, 15.5, 7.0))
    angle = np.deg2rad(20)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    image.SetDirection(tuple(rotation.ravel()))
    sitk.WriteImage(image, str(path))
    return image


@pytest.mark.parametrize("reader", ["SimpleITKIO", "NibabelIO"])
def test_points_match_simpleitk_for_an_oblique_image(tmp_path: Path, reader: str):
    from nnunetv2.imageio.registry import reader_writer_class_from_name

    image = _oblique_image(tmp_path / "case.nii.gz")
    _, properties = reader_writer_class_from_name(reader)().read_images([tmp_path / "case.nii.gz"])
    for index_zyx in [(0, 0, 0), (4, 5, 6), (2, 1, 3)]:
        assert itk_index(index_zyx) == index_zyx[::-1]
        expected = image.TransformIndexToPhysicalPoint(tuple(int(v) for v in index_zyx[::-1]))
        # NIfTI stores float32 geometry
        assert np.allclose(voxel_to_world(properties, index_zyx), expected, atol=1e-3)


def test_images_without_geometry_and_the_slice_position(tmp_path: Path):
    properties = {"spacing": [999.0, 0.5, 0.25]}  # a 2D PNG: (1, y, x)
    assert voxel_to_world(properties, (0, 4, 8)) == (2.0, 2.0, 0.0)
    sitk_like = {
        "sitk_stuff": {"spacing": [1.0, 1.0, 3.0], "origin": [0.0, 0.0, 10.0], "direction": list(np.eye(3).ravel())}
    }
    assert slice_position(sitk_like, (16, 32, 32), 0, 5) == ("z", 25.0)
    assert slice_position(sitk_like, (16, 32, 32), 2, 4) == ("x", 4.0)
