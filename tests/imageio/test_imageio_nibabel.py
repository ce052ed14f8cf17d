import json

import nibabel
import numpy as np
import pytest
from nibabel.orientations import aff2axcodes

from nnunetv2.exceptions import ImageIOError
from nnunetv2.imageio.nibabel_reader_writer import NibabelIO, NibabelIOWithReorient
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO


def _affine(columns, origin):
    affine = np.eye(4)
    affine[:3, :3] = columns
    affine[:3, 3] = origin
    return affine


# rotated by 30 degrees about z, spacing (0.75, 1.5, 3.0) along the voxel axes i, j, k
ROTATED = _affine(
    np.array([[0.8660254, -0.5, 0.0], [0.5, 0.8660254, 0.0], [0.0, 0.0, 1.0]]) @ np.diag([0.75, 1.5, 3.0]),
    [-20.5, 10.25, 4.0],
)
# voxel axes point L, S, P: reorienting to RAS permutes and flips
OBLIQUE_LSP = _affine([[-0.75, 0.0, 0.0], [0.0, 0.0, -3.0], [0.0, 1.5, 0.0]], [30.0, 12.0, -8.0])


def _write(path, data, affine):
    nibabel.save(nibabel.Nifti1Image(data, affine), str(path))
    return path


def test_3d_round_trip_matches_simpleitk_axes_and_keeps_the_affine(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.random((5, 4, 3)).astype(np.float32)  # nibabel's (x, y, z)
    path = _write(tmp_path / "a_0000.nii.gz", image, ROTATED)
    io = NibabelIO()
    data, properties = io.read_images([path])
    assert data.shape == (1, 3, 4, 5) and data.dtype == np.float32
    np.testing.assert_array_equal(data[0], image.transpose(2, 1, 0))
    np.testing.assert_array_equal(data, SimpleITKIO().read_images([path])[0])
    np.testing.assert_allclose(properties["spacing"], [3.0, 1.5, 0.75], rtol=1e-6)
    assert json.loads(json.dumps(properties)) == properties

    seg = rng.integers(0, 3, (3, 4, 5))
    io.write_seg(seg, tmp_path / "a.nii.gz", properties)
    seg_read, seg_properties = io.read_seg(tmp_path / "a.nii.gz")
    np.testing.assert_array_equal(seg_read[0], seg)
    assert seg_properties == properties
    written = nibabel.load(str(tmp_path / "a.nii.gz"))
    assert written.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(written.affine, properties["nibabel_stuff"]["original_affine"])


def test_2d_image_reads_as_one_slice_and_writes_back_2d(tmp_path):
    image = np.arange(12, dtype=np.float32).reshape(4, 3)  # (x, y)
    affine = _affine(np.diag([0.5, 2.0, 1.0]), [1.0, 2.0, 0.0])
    data, properties = NibabelIO().read_images([_write(tmp_path / "a_0000.nii", image, affine)])
    assert data.shape == (1, 1, 3, 4)
    np.testing.assert_array_equal(data[0, 0], image.T)
    assert properties["spacing"] == [999.0, 2.0, 0.5]
    seg = (data[0] > 5).astype(np.uint8)
    NibabelIO().write_seg(seg, tmp_path / "a.nii", properties)
    assert nibabel.load(str(tmp_path / "a.nii")).ndim == 2
    seg_read, seg_properties = NibabelIO().read_seg(tmp_path / "a.nii")
    np.testing.assert_array_equal(seg_read[0], seg)
    assert seg_properties == properties


def test_reorient_reads_ras_and_writes_back_in_the_file_orientation(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, (5, 4, 3)).astype(np.uint8)
    path = _write(tmp_path / "a.nii.gz", labels, OBLIQUE_LSP)
    io = NibabelIOWithReorient()
    seg, properties = io.read_seg(path)
    assert aff2axcodes(np.array(properties["nibabel_stuff"]["reoriented_affine"])) == ("R", "A", "S")
    # R, A, S are the file's voxel axes i (flipped), k (flipped), j; the array holds them as (S, A, R)
    assert seg.shape == (1, 4, 3, 5)
    np.testing.assert_allclose(properties["spacing"], [1.5, 3.0, 0.75])
    np.testing.assert_array_equal(seg[0], labels[::-1, :, ::-1].transpose(1, 2, 0))
    assert json.loads(json.dumps(properties)) == properties

    io.write_seg(seg[0], tmp_path / "b.nii.gz", properties)
    written = nibabel.load(str(tmp_path / "b.nii.gz"))
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), labels)
    np.testing.assert_array_equal(written.affine, OBLIQUE_LSP)
    assert io.read_seg(tmp_path / "b.nii.gz")[1] == properties


def test_reorient_refuses_2d_images(tmp_path):
    path = _write(tmp_path / "a_0000.nii.gz", np.zeros((4, 3), np.float32), np.eye(4))
    with pytest.raises(ImageIOError, match="a_0000.nii.gz: NibabelIOWithReorient reads 3D images"):
        NibabelIOWithReorient().read_images([path])


def test_channels_with_different_affines_are_refused(tmp_path):
    files = [
        _write(tmp_path / "a_0000.nii.gz", np.zeros((5, 4, 3), np.float32), ROTATED),
        _write(tmp_path / "a_0001.nii.gz", np.zeros((5, 4, 3), np.float32), OBLIQUE_LSP),
    ]
    # same spacing, other orientation and origin; reoriented, the shapes differ too, but the cause is named
    with pytest.raises(ImageIOError, match=r"a_0001.nii.gz: original_affine .* differs from .* of a_0000.nii.gz"):
        NibabelIO().read_images(files)
    with pytest.raises(ImageIOError, match=r"a_0001.nii.gz: original_affine .* differs"):
        NibabelIOWithReorient().read_images(files)
    files[1] = _write(tmp_path / "a_0001.nii.gz", np.zeros((5, 4, 3), np.float32), ROTATED @ np.diag([1, 1, 2, 1]))
    with pytest.raises(ImageIOError, match=r"a_0001.nii.gz: original_affine .* 6.0, 4.0\], .* differs"):
        NibabelIO().read_images(files)


def test_missing_and_unreadable_files_are_named(tmp_path):
    with pytest.raises(ImageIOError, match="nope.nii.gz: file not found"):
        NibabelIO().read_seg(tmp_path / "nope.nii.gz")
    (tmp_path / "bad_0000.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ImageIOError, match=r"bad_0000.nii.gz: nibabel cannot read this file \(") as error:
        NibabelIO().read_images([tmp_path / "bad_0000.nii.gz"])
    assert "\n" not in str(error.value)
