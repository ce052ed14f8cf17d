"""Overlay rendering (size, colours where the label is, layers) and nnUNetv2_plot_overlay_pngs on folders/datasets."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nnunetv2.annotation.worklist import WorklistEntry
from nnunetv2.cli.visualization import plot_overlay_pngs_entry
from nnunetv2.visualization.overlay import (
    BOX_COLOUR,
    HEAT_BACKGROUND_DIMMING,
    HEAT_FULL_OPACITY,
    heat_colours,
    label_palette,
    render_panels,
    render_slice,
    to_uint8,
)
from nnunetv2.visualization.overlay_pngs import select_slices


def _slice() -> tuple[np.ndarray, np.ndarray]:
    image = np.tile(np.linspace(0.0, 1.0, 30), (20, 1))  # a horizontal ramp, window (0, 1)
    labels = np.zeros((20, 30), dtype=np.uint8)
    labels[4:9, 3:10] = 1
    labels[12:16, 18:27] = 2
    labels[0:2, 0:3] = 3  # the ignore label in the tests below
    return image, labels


def test_colours_are_blended_exactly_where_the_label_is():
    image, labels = _slice()
    picture = render_slice(image, (0.0, 1.0), labels, overlay_intensity=0.6, hidden_labels=[3], scale=1)
    grey = to_uint8(np.repeat(image[..., None], 3, axis=2))
    palette = label_palette(2)
    for label in (1, 2):
        where = labels == label
        expected = to_uint8(0.4 * image[where][:, None] + 0.6 * palette[label])
        assert np.array_equal(picture[where], expected)
    untouched = ~np.isin(labels, [1, 2])  # background and the hidden ignore label stay grey
    assert np.array_equal(picture[untouched], grey[untouched])
    assert not np.array_equal(palette[1], palette[2])


def test_size_scale_aspect_and_heat_map_panel():
    image, labels = _slice()
    # by default the short side gets at least 256 pixels, by a whole factor (13 x 20 = 260)
    assert render_slice(image, (0, 1), labels).shape == (260, 390, 3)
    assert render_slice(image, (0, 1), labels, scale=1).shape == (20, 30, 3)
    assert render_slice(image, (0, 1), labels, scale=3).shape == (60, 90, 3)
    # rows 2 mm apart, columns 1 mm: rows are stretched so pixels are square
    assert render_slice(image, (0, 1), labels, pixel_spacing=(2.0, 1.0), scale=1).shape == (40, 30, 3)
    uncertainty = np.zeros(image.shape)
    uncertainty[5:7, 20:25] = 1.0
    panels = render_panels(image, (0, 1), labels, uncertainty=uncertainty, scale=2, titles={"uncertainty": "u"})
    assert [p.title for p in panels] == ["labels", "u"]
    left, right = panels[0].picture, panels[1].picture
    assert left.shape == right.shape == (40, 60, 3)
    assert np.array_equal(left, render_slice(image, (0, 1), labels, scale=2))
    certain = np.kron(uncertainty == 0, np.ones((2, 2), dtype=bool))
    dimmed = to_uint8(HEAT_BACKGROUND_DIMMING * np.repeat(np.kron(image, np.ones((2, 2)))[..., None], 3, axis=2))
    assert np.array_equal(right[certain], dimmed[certain])  # an uncertainty of 0 never tints the anatomy
    assert np.array_equal(right[~certain][0], to_uint8(heat_colours(np.ones(1)))[0])  # 1: the scale's top, opaque


def test_a_bright_certain_region_is_not_drawn_like_an_uncertain_one():
    image = np.ones((8, 8))  # a bright organ, window (0, 1): white in the label panel
    uncertainty = np.zeros((8, 8))
    uncertainty[:, 4:] = 0.6
    heat = render_panels(image, (0, 1), uncertainty=uncertainty, scale=1)[1].picture
    assert heat[0, 0].max() <= round(255 * HEAT_BACKGROUND_DIMMING)  # dimmed grey, far from any heat colour
    assert np.array_equal(heat[0, 5], to_uint8(heat_colours(np.array([0.6])))[0])
    low = render_panels(image, (0, 1), uncertainty=np.full((8, 8), 0.1 * HEAT_FULL_OPACITY), scale=1)[1].picture
    assert 0 < np.abs(low[0, 0].astype(int) - heat[0, 0]).max() < 40  # faint where the value is low


def test_the_figure_has_titles_colour_bar_legend_and_ranked_boxes():
    from nnunetv2.visualization.slice_figure import ColourBar, LegendItem, compose_figure, label_boxes

    image, labels = _slice()
    uncertainty = np.zeros(image.shape)
    panels = render_panels(image, (0, 1), labels, uncertainty=uncertainty, boxes=[(10, 17, 16, 28)])
    tagged = label_boxes(panels[0].picture, [(10, 17, 16, 28)], [7], image.shape)
    assert not np.array_equal(tagged, panels[0].picture)  # the '#7' tag
    assert np.array_equal(tagged[200:], panels[0].picture[200:])  # only near the box's top-left corner
    orange = tuple(int(v) for v in np.round(label_palette(1)[1] * 255))
    without = compose_figure(panels, "case 1 | slice z = 3", [])
    figure = compose_figure(panels, "case 1 | slice z = 3", [LegendItem("1: blob", orange)], ColourBar("u (t)"))
    assert figure.shape[1] == without.shape[1] and figure.shape[0] > without.shape[0]
    top = to_uint8(heat_colours(np.ones(1)))[0]
    bottom = to_uint8(heat_colours(np.zeros(1)))[0]
    below_panels = figure[without.shape[0] - 20 :]
    for colour in (top, bottom, np.array(orange)):
        assert np.all(below_panels == colour, axis=2).any()  # the bar's two ends and the legend's swatch
    assert not np.all(without == top, axis=2).any()


def test_scribbles_are_opaque_and_boxes_are_outlined():
    image, labels = _slice()
    scribbles = np.full(image.shape, 9, dtype=np.uint8)
    scribbles[6, 4:8] = 2
    scribbles[18, 1:5] = 0
    picture = render_slice(image, (0, 1), labels, scribbles=scribbles, unannotated=9, boxes=[(10, 17, 16, 28)], scale=1)
    assert np.array_equal(picture[6, 4:8], np.tile(to_uint8(label_palette(2)[2]), (4, 1)))
    assert np.array_equal(picture[18, 1:5], np.full((4, 3), 255))  # background scribbles are white
    cyan = np.all(picture == BOX_COLOUR, axis=2)
    assert cyan[9, 15:29].all() and cyan[17, 15:29].all() and cyan[9:18, 15].all() and cyan[9:18, 28].all()
    assert not cyan[10:17, 16:28].any() and cyan.sum() == 2 * 14 + 2 * 7


def test_slice_choice_weighs_every_label_equally():
    seg = np.zeros((6, 10, 10), dtype=np.uint8)
    seg[1, :, :] = 1  # 100 voxels of label 1 in slice 1
    seg[2, :5, :] = 1  # 50 more in slice 2
    seg[2, 5:6, 0:2] = 2  # all of label 2 lies in slice 2
    assert select_slices(seg, count=1) == [2]  # (50/150 + 1) / 2 beats (100/150 + 0) / 2
    assert select_slices(seg, count=3) == [2, 1]  # empty slices are not chosen
    assert select_slices(seg, axis=2, count=1) == [0]
    assert select_slices(np.zeros((7, 3, 3)), count=2) == [3]  # no foreground: the middle slice
    assert select_slices(np.where(seg == 2, 9, seg), hidden=[9]) == [1]


def _predictions(dataset: Path, folder: Path) -> Path:
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    io = SimpleITKIO()
    folder.mkdir()
    for case in ("case_000", "case_001"):
        seg, properties = io.read_seg(dataset / "labelsTr" / f"{case}.nii.gz")
        io.write_seg(seg[0], folder / f"{case}.nii.gz", properties)
    shutil.copy(dataset / "dataset.json", folder / "dataset.json")
    return folder


def test_folder_mode_writes_one_png_per_case_and_worklist_slices(tmp_path: Path, synthetic_dataset_3d: Path, capsys):
    segs = _predictions(synthetic_dataset_3d, tmp_path / "pred")
    entry = WorklistEntry(
        rank=1,
        case="case_001",
        case_rank=1,
        axis=0,
        slice=2,
        slice_rank=1,
        bbox=((2, 3), (4, 9), (5, 12)),
        score=1.0,
        uncertainty_mass=1.0,
        size=9,
        mean_uncertainty=1.0,
    )
    from nnunetv2.annotation.worklist import save_worklist

    save_worklist([entry], tmp_path / "wl", {}, {})
    plot_overlay_pngs_entry(
        [
            "-i",
            str(synthetic_dataset_3d / "imagesTr"),
            "-s",
            str(segs),
            "-o",
            str(tmp_path / "out"),
            "-w",
            str(tmp_path / "wl"),
            "--quiet",
        ]
    )
    assert "wrote 3 PNGs of 2 cases" in capsys.readouterr().out
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["case_000.png", "case_001.png", "case_001_z0002.png"]
    width, height = Image.open(tmp_path / "out" / "case_000.png").size
    assert width >= 256 and height >= 256 + 40  # a 256 x 256 panel ((16, 32, 32) at spacing (3, 1, 1)) and text
    boxed = np.asarray(Image.open(tmp_path / "out" / "case_001_z0002.png").convert("RGB"))
    plain = np.asarray(Image.open(tmp_path / "out" / "case_001.png").convert("RGB"))
    assert np.all(boxed == BOX_COLOUR, axis=2).sum() > 4 * 8 * 5 and not np.all(plain == BOX_COLOUR, axis=2).any()


def test_raw_dataset_mode_and_one_line_errors(tmp_path: Path, synthetic_dataset_3d: Path, nnunet_env, capsys):
    shutil.copytree(synthetic_dataset_3d, nnunet_env["nnUNet_raw"] / "Dataset901_Synthetic3D")
    plot_overlay_pngs_entry(
        ["-d", "901", "--use_raw", "-o", str(tmp_path / "raw"), "--num_slices", "2", "--scale", "2", "--quiet"]
    )
    pngs = sorted((tmp_path / "raw").iterdir())
    assert len(pngs) == 12 and Image.open(pngs[0]).size[0] >= 64

    with pytest.raises(SystemExit) as exit_info:
        plot_overlay_pngs_entry(["-d", "901", "-o", str(tmp_path / "pre"), "--quiet"])
    assert exit_info.value.code == 1
    assert (
        "nnUNetPlans.json: plans not found (run nnUNetv2_plan_and_preprocess, or pass --use_raw)"
        in capsys.readouterr().err
    )
    with pytest.raises(SystemExit) as exit_info:
        plot_overlay_pngs_entry(["-d", "901", "-i", "x", "-o", str(tmp_path / "o")])
    assert exit_info.value.code == 2 and "give either a dataset (-d) or an images folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        plot_overlay_pngs_entry(["-d", "901", "--use_raw", "-o", str(tmp_path / "o"), "-channel_idx", "2", "--quiet"])
    assert "channel 2 requested, but the image has 1 channel(s)" in capsys.readouterr().err


def test_a_segmentation_of_another_shape_is_named(tmp_path: Path, synthetic_dataset_3d: Path, capsys):
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    segs = _predictions(synthetic_dataset_3d, tmp_path / "pred")
    _, properties = SimpleITKIO().read_seg(segs / "case_000.nii.gz")
    SimpleITKIO().write_seg(np.zeros((16, 32, 30), dtype=np.uint8), segs / "case_000.nii.gz", properties)
    with pytest.raises(SystemExit):
        plot_overlay_pngs_entry(
            ["-i", str(synthetic_dataset_3d / "imagesTr"), "-s", str(segs), "-o", str(tmp_path / "out"), "--quiet"]
        )
    assert "case_000.nii.gz: shape [16, 32, 30] differs from the image's [16, 32, 32]" in capsys.readouterr().err


def test_a_2d_png_dataset(tmp_path: Path, synthetic_dataset_2d: Path):
    from nnunetv2.visualization.case_layers import folder_inputs
    from nnunetv2.visualization.overlay_pngs import OverlayOptions, plot_overlays

    inputs = folder_inputs(
        synthetic_dataset_2d / "imagesTr",
        synthetic_dataset_2d / "labelsTr",
        dataset=synthetic_dataset_2d / "dataset.json",
    )
    written = plot_overlays(inputs, tmp_path / "out", OverlayOptions(scale=2), progress=False)
    assert len(written) == 6
    assert written["case_000"][0].panel_size == (96, 96)
    default = plot_overlays(inputs, tmp_path / "default", progress=False)
    assert default["case_000"][0].panel_size == (288, 288)  # 48 x 6 >= 256


def test_preprocessed_mode_draws_every_planned_case(tmp_path: Path, synthetic_dataset_3d: Path, nnunet_env):
    from nnunetv2.experiment_planning.pipeline import plan_and_preprocess

    shutil.copytree(synthetic_dataset_3d, nnunet_env["nnUNet_raw"] / "Dataset901_Synthetic3D")
    plan_and_preprocess(
        [901], configurations=["3d_fullres"], num_processes=1, num_processes_fingerprint=1, show_progress=False
    )
    plot_overlay_pngs_entry(
        ["-d", "Dataset901_Synthetic3D", "-o", str(tmp_path / "pre"), "-c", "3d_fullres", "--quiet"]
    )
    pngs = sorted(p.name for p in (tmp_path / "pre").iterdir())
    assert pngs == [f"case_{i:03d}.png" for i in range(6)]
    picture = np.asarray(Image.open(tmp_path / "pre" / "case_000.png").convert("RGB")).astype(int)
    assert (picture.max(2) - picture.min(2) > 30).any()  # labels are coloured


def test_a_2d_case_has_no_slices_along_other_axes(tmp_path: Path, synthetic_dataset_2d: Path):
    from nnunetv2.exceptions import NnUNetError
    from nnunetv2.visualization.case_layers import folder_inputs
    from nnunetv2.visualization.overlay_pngs import OverlayOptions, plot_overlays

    inputs = folder_inputs(synthetic_dataset_2d / "imagesTr", synthetic_dataset_2d / "labelsTr")
    with pytest.raises(NnUNetError, match="case 'case_000' is a 2D image: its only slice is along axis 0, not 1"):
        plot_overlays(inputs, tmp_path / "out", OverlayOptions(axis=1), progress=False)
