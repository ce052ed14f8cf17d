import json

import numpy as np
import pytest
import tifffile
from PIL import Image

from nnunetv2.exceptions import ImageIOError
from nnunetv2.imageio.natural_image_reader_writer import NaturalImage2DIO
from nnunetv2.imageio.tif_reader_writer import Tiff3DIO, has_spacing_sidecar


def _pixels(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


@pytest.mark.parametrize("channels, mode", [(1, "L"), (3, "RGB"), (4, "RGBA")])
def test_natural_image_channels_come_from_one_file(tmp_path, channels, mode):
    pixels = _pixels((6, 7, channels)).squeeze(-1) if channels == 1 else _pixels((6, 7, channels))
    Image.fromarray(pixels, mode).save(tmp_path / "a_0000.png")
    data, properties = NaturalImage2DIO().read_images([tmp_path / "a_0000.png"])
    assert data.shape == (channels, 1, 6, 7) and data.dtype == np.float32
    expected = pixels[None] if channels == 1 else np.moveaxis(pixels, -1, 0)
    np.testing.assert_array_equal(data[:, 0], expected)
    assert properties == {"spacing": [999.0, 1.0, 1.0]}


def test_palette_image_becomes_rgb_but_palette_labels_stay_indices(tmp_path):
    image = Image.fromarray(np.array([[0, 1], [2, 1]], np.uint8), "P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    image.save(tmp_path / "a.png")
    data, _ = NaturalImage2DIO().read_images([tmp_path / "a.png"])
    assert data.shape == (3, 1, 2, 2)
    np.testing.assert_array_equal(data[:, 0, 1, 0], [0, 255, 0])
    seg, _ = NaturalImage2DIO().read_seg(tmp_path / "a.png")
    np.testing.assert_array_equal(seg[0, 0], [[0, 1], [2, 1]])


@pytest.mark.parametrize(
    "ending, value, dtype",
    [(".png", 3, np.uint8), (".png", 300, np.uint16), (".bmp", 3, np.uint8), (".tif", 300, np.uint16)],
)
def test_natural_image_seg_round_trip(tmp_path, ending, value, dtype):
    Image.fromarray(_pixels((5, 4))).save(tmp_path / f"a_0000{ending}")
    io = NaturalImage2DIO()
    _, properties = io.read_images([tmp_path / f"a_0000{ending}"])
    seg = np.zeros((1, 5, 4), np.int64)
    seg[0, 1:3, 1:] = value
    io.write_seg(seg, tmp_path / f"a{ending}", properties)
    seg_read, seg_properties = io.read_seg(tmp_path / f"a{ending}")
    assert seg_read.shape == (1, 1, 5, 4) and seg_read.dtype == dtype
    np.testing.assert_array_equal(seg_read[0], seg)
    assert seg_properties == properties


def test_gray_labels_saved_as_rgb_are_accepted_but_coloured_ones_refused(tmp_path):
    gray = np.repeat(np.array([[0, 1], [2, 0]], np.uint8)[..., None], 3, axis=-1)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    np.testing.assert_array_equal(NaturalImage2DIO().read_seg(tmp_path / "gray.png")[0][0, 0], gray[..., 0])
    Image.fromarray(_pixels((2, 2, 3))).save(tmp_path / "colour.png")
    with pytest.raises(
        ImageIOError,
        match="colour.png: a segmentation must be a gray or palette image, this one has 3 different colour channels",
    ):
        NaturalImage2DIO().read_seg(tmp_path / "colour.png")


def test_natural_image_errors(tmp_path):
    with pytest.raises(ImageIOError, match="a_0000.png: file not found"):
        NaturalImage2DIO().read_images([tmp_path / "a_0000.png"])
    (tmp_path / "bad_0000.png").write_bytes(b"no png")
    with pytest.raises(ImageIOError, match=r"bad_0000.png: Pillow cannot read this file \("):
        NaturalImage2DIO().read_images([tmp_path / "bad_0000.png"])
    Image.fromarray(_pixels((4, 4))).save(tmp_path / "a_0000.png")
    Image.fromarray(_pixels((4, 5))).save(tmp_path / "a_0001.png")
    with pytest.raises(ImageIOError, match=r"a_0001.png: shape \[1, 4, 5\] differs from \[1, 4, 4\] of a_0000.png"):
        NaturalImage2DIO().read_images([tmp_path / "a_0000.png", tmp_path / "a_0001.png"])
    tifffile.imwrite(tmp_path / "stack_0000.tif", _pixels((3, 4, 4)), photometric="minisblack")
    with pytest.raises(ImageIOError, match="stack_0000.tif: has 3 pages; NaturalImage2DIO reads 2D images"):
        NaturalImage2DIO().read_images([tmp_path / "stack_0000.tif"])
    with pytest.raises(ImageIOError, match="big.bmp: label 300 exceeds 255"):
        NaturalImage2DIO().write_seg(np.full((1, 2, 2), 300), tmp_path / "big.bmp", {"spacing": [999, 1, 1]})
    with pytest.raises(ImageIOError, match=r"s.png: expected a \(1, y, x\) segmentation"):
        NaturalImage2DIO().write_seg(np.zeros((2, 2, 2)), tmp_path / "s.png", {"spacing": [999, 1, 1]})


def _tiff_case(folder, name="a", shape=(3, 4, 5), spacing=(4.0, 0.5, 0.25), channels=1):
    stacks = [np.random.default_rng(c).random(shape).astype(np.float32) for c in range(channels)]
    files = []
    for c, stack in enumerate(stacks):
        files.append(folder / f"{name}_{c:04d}.tif")
        tifffile.imwrite(files[-1], stack, photometric="minisblack")
    (folder / f"{name}.json").write_text(json.dumps({"spacing": list(spacing)}))
    return files, stacks


def test_tiff_3d_round_trip_with_spacing_sidecar(tmp_path):
    files, stacks = _tiff_case(tmp_path, channels=2)
    io = Tiff3DIO()
    data, properties = io.read_images(files)
    np.testing.assert_array_equal(data, np.stack(stacks))
    assert properties == {"spacing": [4.0, 0.5, 0.25]}
    seg = (stacks[0] > 0.5).astype(np.int64) * 2
    io.write_seg(seg, tmp_path / "out" / "a.tif", properties)
    assert json.loads((tmp_path / "out" / "a.json").read_text()) == {"spacing": [4.0, 0.5, 0.25]}
    seg_read, seg_properties = io.read_seg(tmp_path / "out" / "a.tif")
    assert seg_read.shape == (1, 3, 4, 5) and seg_read.dtype == np.uint8
    np.testing.assert_array_equal(seg_read[0], seg)
    assert seg_properties == properties
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.json", "a.tif"]
    assert len(tifffile.TiffFile(tmp_path / "out" / "a.tif").pages) == 3  # one gray page per slice


def test_spacing_sidecar_detection(tmp_path):
    files, _ = _tiff_case(tmp_path)
    assert has_spacing_sidecar(files[0])
    tifffile.imwrite(tmp_path / "b_0000.tif", np.zeros((3, 4, 5), np.uint8), photometric="minisblack")
    assert not has_spacing_sidecar(tmp_path / "b_0000.tif")
    (tmp_path / "b_0000.json").write_text(json.dumps({"spacing": [1, 1, 1]}))
    assert has_spacing_sidecar(tmp_path / "b_0000.tif")


def test_tiff_errors(tmp_path):
    tifffile.imwrite(tmp_path / "a_0000.tif", np.zeros((3, 4, 5), np.uint8), photometric="minisblack")
    with pytest.raises(
        ImageIOError,
        match=r"a_0000.tif: spacing sidecar .*a.json not found; Tiff3DIO needs it "
        r"to hold \{\"spacing\": \[sz, sy, sx\]\}",
    ):
        Tiff3DIO().read_images([tmp_path / "a_0000.tif"])
    for bad in ({"spacing": [1, 2]}, {"spacing": [1, 0, 1]}, {"pixel_size": [1, 1, 1]}):
        (tmp_path / "a.json").write_text(json.dumps(bad))
        with pytest.raises(ImageIOError, match=r"a.json: expected \{\"spacing\": \[sz, sy, sx\]\} with 3 positive"):
            Tiff3DIO().read_images([tmp_path / "a_0000.tif"])
    (tmp_path / "a.json").write_text("{broken")
    with pytest.raises(ImageIOError, match="a.json: not valid JSON"):
        Tiff3DIO().read_images([tmp_path / "a_0000.tif"])
    tifffile.imwrite(tmp_path / "flat.tif", np.zeros((4, 5), np.uint8))
    with pytest.raises(
        ImageIOError,
        match=r"flat.tif: Tiff3DIO reads 3D stacks \(z, y, x\), this file has "
        r"shape \[4, 5\]",
    ):
        Tiff3DIO().read_seg(tmp_path / "flat.tif")
    (tmp_path / "bad.tif").write_bytes(b"II* broken")
    with pytest.raises(ImageIOError, match=r"bad.tif: tifffile cannot read this file \(") as error:
        Tiff3DIO().read_seg(tmp_path / "bad.tif")
    assert "\n" not in str(error.value)
    with pytest.raises(ImageIOError, match="missing.tif: file not found"):
        Tiff3DIO().read_seg(tmp_path / "missing.tif")
