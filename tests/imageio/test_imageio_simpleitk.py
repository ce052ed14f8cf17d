import json

import numpy as np
import pytest
import SimpleITK as sitk

from nnunetv2.exceptions import ImageIOError
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

ROTATED = (0.8660254037844387, -0.5, 0.0, 0.5, 0.8660254037844387, 0.0, 0.0, 0.0, 1.0)
FLIPPED_PERMUTED = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0)


def _write(path, array, spacing, origin=None, direction=None, vector=False):
    image = sitk.GetImageFromArray(array, isVector=vector)
    image.SetSpacing(spacing)
    if origin is not None:
        image.SetOrigin(origin)
    if direction is not None:
        image.SetDirection(direction)
    sitk.WriteImage(image, str(path))
    return path


# NIfTI stores a rotation as a float32 quaternion, so rotated geometry only round-trips exactly
# in formats that store doubles (.mha); axis permutations and flips are exact everywhere
@pytest.mark.parametrize(
    "ending, direction",
    [(".mha", ROTATED), (".nii.gz", FLIPPED_PERMUTED), (".nrrd", FLIPPED_PERMUTED), (".nii", FLIPPED_PERMUTED)],
)
def test_3d_round_trip_keeps_data_and_geometry(tmp_path, ending, direction):
    rng = np.random.default_rng(0)
    image = rng.random((3, 4, 5)).astype(np.float32)
    path = _write(tmp_path / f"a_0000{ending}", image, (0.7, 0.8, 3.3), (-10.5, 5.25, 7.0), direction)
    io = SimpleITKIO()
    data, properties = io.read_images([path])
    assert data.shape == (1, 3, 4, 5) and data.dtype == np.float32
    np.testing.assert_array_equal(data[0], image)
    np.testing.assert_allclose(properties["spacing"], [3.3, 0.8, 0.7], rtol=1e-6)
    assert properties["sitk_stuff"]["direction"] == list(direction)
    assert json.loads(json.dumps(properties)) == properties

    seg = rng.integers(0, 4, (3, 4, 5))
    io.write_seg(seg, tmp_path / f"a{ending}", properties)
    seg_read, seg_properties = io.read_seg(tmp_path / f"a{ending}")
    assert seg_read.shape == (1, 3, 4, 5)
    np.testing.assert_array_equal(seg_read[0], seg)
    assert seg_properties == properties
    assert sitk.ReadImage(str(tmp_path / f"a{ending}")).GetPixelID() == sitk.sitkUInt8
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_2d_image_reads_as_one_slice_and_writes_back_2d(tmp_path):
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = _write(tmp_path / "a_0000.nii.gz", image, (0.5, 2.0), (1.0, -2.0), (0.0, 1.0, 1.0, 0.0))
    io = SimpleITKIO()
    data, properties = io.read_images([path])
    assert data.shape == (1, 1, 3, 4)
    assert properties["spacing"] == [999.0, 2.0, 0.5]
    assert properties["sitk_stuff"] == {"spacing": [0.5, 2.0], "origin": [1.0, -2.0], "direction": [0.0, 1.0, 1.0, 0.0]}
    seg = np.array([[[0, 1, 2, 3], [1, 1, 0, 0], [2, 2, 2, 2]]])
    io.write_seg(seg, tmp_path / "a.nii.gz", properties)
    assert sitk.ReadImage(str(tmp_path / "a.nii.gz")).GetDimension() == 2
    seg_read, seg_properties = io.read_seg(tmp_path / "a.nii.gz")
    np.testing.assert_array_equal(seg_read[0], seg)
    assert seg_properties == properties


def test_channels_are_stacked_from_files_vector_pixels_and_4th_axis(tmp_path):
    rng = np.random.default_rng(1)
    first, second = rng.random((2, 3, 4, 5)).astype(np.float32)
    files = [_write(tmp_path / f"a_{c:04d}.mha", x, (1.0, 1.0, 2.0)) for c, x in enumerate((first, second))]
    data, _ = SimpleITKIO().read_images(files)
    np.testing.assert_array_equal(data, np.stack([first, second]))

    vector = rng.random((3, 4, 5, 3)).astype(np.float32)  # (z, y, x, components)
    data, properties = SimpleITKIO().read_images([_write(tmp_path / "v.mha", vector, (1.0, 1.0, 2.0), vector=True)])
    np.testing.assert_array_equal(data, np.moveaxis(vector, -1, 0))
    assert properties["spacing"] == [2.0, 1.0, 1.0]

    four_d = rng.random((2, 3, 4, 5)).astype(np.float32)  # (c, z, y, x)
    data, properties = SimpleITKIO().read_images([_write(tmp_path / "f.nii.gz", four_d, (1.0, 1.0, 2.0, 1.0))])
    np.testing.assert_array_equal(data, four_d)
    assert len(properties["sitk_stuff"]["direction"]) == 9


def test_large_labels_are_written_as_uint16(tmp_path):
    _, properties = SimpleITKIO().read_images(
        [_write(tmp_path / "a_0000.nrrd", np.zeros((2, 3, 4), np.float32), (1.0, 1.0, 1.0))]
    )
    seg = np.full((2, 3, 4), 300)
    SimpleITKIO().write_seg(seg, tmp_path / "a.nrrd", properties)
    assert sitk.ReadImage(str(tmp_path / "a.nrrd")).GetPixelID() == sitk.sitkUInt16
    np.testing.assert_array_equal(SimpleITKIO().read_seg(tmp_path / "a.nrrd")[0][0], seg)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(shape=(3, 4, 6)), r"shape \[3, 4, 6\] differs from \[3, 4, 5\] of a_0000.nii.gz"),
        (dict(spacing=(1.0, 1.0, 2.5)), r"spacing .* differs"),
        (dict(origin=(0.0, 0.0, 1.0)), r"origin \(x, y, z\) \[0.0, 0.0, 1.0\] differs from \[0.0, 0.0, 0.0\]"),
        (dict(direction=FLIPPED_PERMUTED), r"direction .* differs"),
    ],
)
def test_channels_with_different_geometry_are_refused(tmp_path, change, message):
    geometry = dict(
        shape=(3, 4, 5),
        spacing=(1.0, 1.0, 2.0),
        origin=(0.0, 0.0, 0.0),
        direction=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
    )
    files = []
    for c, g in enumerate((geometry, {**geometry, **change})):
        files.append(
            _write(
                tmp_path / f"a_{c:04d}.nii.gz",
                np.zeros(g["shape"], np.float32),
                g["spacing"],
                g["origin"],
                g["direction"],
            )
        )
    with pytest.raises(ImageIOError, match=f"a_0001.nii.gz: {message}") as error:
        SimpleITKIO().read_images(files)
    assert "\n" not in str(error.value)


def test_geometry_differing_by_float32_rounding_is_accepted(tmp_path):
    files = [
        _write(tmp_path / f"a_{c:04d}.mha", np.zeros((2, 3, 4), np.float32), (0.7 + c * 1e-7, 1.0, 1.0))
        for c in range(2)
    ]
    assert SimpleITKIO().read_images(files)[0].shape == (2, 2, 3, 4)


def test_missing_and_unreadable_files_are_named(tmp_path):
    with pytest.raises(ImageIOError, match=r"nope_0000.nii.gz: file not found"):
        SimpleITKIO().read_images([tmp_path / "nope_0000.nii.gz"])
    (tmp_path / "bad.nii.gz").write_bytes(b"not an image")
    with pytest.raises(ImageIOError, match=r"bad.nii.gz: SimpleITK cannot read this file \(") as error:
        SimpleITKIO().read_seg(tmp_path / "bad.nii.gz")
    assert "\n" not in str(error.value)


def test_seg_with_several_channels_and_bad_labels_are_refused(tmp_path):
    vector = _write(tmp_path / "v.mha", np.zeros((2, 3, 4, 2), np.uint8), (1.0, 1.0, 1.0), vector=True)
    with pytest.raises(ImageIOError, match="v.mha: a segmentation must have one channel, this file has 2"):
        SimpleITKIO().read_seg(vector)
    _, properties = SimpleITKIO().read_images(
        [_write(tmp_path / "a_0000.mha", np.zeros((2, 3, 4), np.float32), (1.0, 1.0, 1.0))]
    )
    with pytest.raises(ImageIOError, match="out.mha: segmentation contains the negative value -1"):
        SimpleITKIO().write_seg(np.full((2, 3, 4), -1), tmp_path / "out.mha", properties)
    with pytest.raises(ImageIOError, match="out.mha: segmentation values must be whole numbers"):
        SimpleITKIO().write_seg(np.full((2, 3, 4), 0.5), tmp_path / "out.mha", properties)
    assert not (tmp_path / "out.mha").exists()


def test_truncated_gzipped_nifti_is_refused_not_zero_filled(tmp_path):
    rng = np.random.default_rng(2)
    for dims in ((6, 7, 8), (6, 7)):
        path = _write(tmp_path / "a_0000.nii.gz", rng.random(dims).astype(np.float32), (1.0,) * len(dims))
        assert SimpleITKIO().read_images([path])[0].shape[2:] == dims[-2:]  # complete files pass the check
    vector = _write(tmp_path / "v.nii.gz", rng.random((4, 5, 6, 3)).astype(np.float32), (1.0,) * 3, vector=True)
    assert SimpleITKIO().read_images([vector])[0].shape == (3, 4, 5, 6)
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(
        ImageIOError,
        match=r"a_0000.nii.gz: the file is truncated or damaged \(its gzip trailer "
        r"records \d+ bytes, the NIfTI header needs 520\)",
    ):
        SimpleITKIO().read_images([path])
