"""Overlay PNGs for every case of a folder or dataset (nnUNetv2_plot_overlay_pngs).

Per case, the slice(s) with most foreground are drawn (``{case}.png`` for the first, as nnU-Net v2
names it; ``{case}_{z|y|x}{index:04d}.png`` for the others), plus the slices a worklist names for
the case. A slice's foreground score is the mean, over the foreground labels present in the case,
of the fraction of that label's voxels lying in the slice, so a small structure weighs as much as
a large one. Optional layers: an uncertainty heat map (second panel), scribbles, worklist boxes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnunetv2.annotation.worklist import AXIS_NAMES, WorklistEntry
from nnunetv2.exceptions import NnUNetError
from nnunetv2.utilities.parameters import check_number, check_numbers
from nnunetv2.visualization.case_layers import CaseLayers, OverlayInputs, image_channel, load_case_layers

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OverlayOptions:
    """How slices are chosen and drawn."""

    channel_idx: int = 0  # image channel shown (0 = _0000)
    overlay_intensity: float = 0.6  # label (and heat map) opacity in [0, 1]
    axis: int = 0  # foreground slices are perpendicular to this array axis
    num_slices: int = 1  # foreground slices per case
    max_worklist_slices: int = 3  # worklist slices per case (in worklist order)
    scale: int | None = None  # output pixels per voxel along the finer in-plane axis; None: >= 256 px short side


@dataclass(frozen=True)
class RenderedSlice:
    """A PNG written for a case."""

    case: str
    axis: int
    slice: int
    file: Path
    worklist_ranks: tuple[int, ...]  # ranks of the worklist entries boxed on it
    most_foreground: bool  # chosen for its foreground (else only for the worklist)
    size: tuple[int, int]  # (height, width) of the figure in pixels
    panel_size: tuple[int, int] = (0, 0)  # (height, width) of each image panel in it


def select_slices(segmentation: np.ndarray, axis: int = 0, count: int = 1, hidden: Sequence[int] = ()) -> list[int]:
    """Return up to ``count`` slice indices along ``axis`` by foreground score (see module docstring), best first;
    the middle slice when there is no foreground."""
    seg = np.moveaxis(np.asarray(segmentation).astype(np.int64), axis, 0)
    seg = np.where(np.isin(seg, list(hidden)) | (seg < 0), 0, seg)
    num_labels = int(seg.max()) + 1
    per_slice = np.bincount(
        (np.arange(seg.shape[0])[:, None] * num_labels + seg.reshape(seg.shape[0], -1)).ravel(),
        minlength=seg.shape[0] * num_labels,
    ).reshape(seg.shape[0], num_labels)[:, 1:]
    totals = per_slice.sum(0)
    present = totals > 0
    if not present.any():
        return [seg.shape[0] // 2]
    score = (per_slice[:, present] / totals[present]).mean(1)
    order = np.argsort(-score, kind="stable")
    return [int(i) for i in order[:count] if score[i] > 0]


def render_case(
    case: str,
    layers: CaseLayers,
    output_folder: str | os.PathLike,
    options: OverlayOptions,
    entries: Sequence[WorklistEntry] = (),
) -> list[RenderedSlice]:
    """Write the PNGs of one case into ``output_folder``; return what was written."""
    from nnunetv2.visualization.overlay import display_window

    output_folder = Path(output_folder)
    if layers.image.shape[0] == 1 and options.axis != 0:
        raise NnUNetError(f"case '{case}' is a 2D image: its only slice is along axis 0, not {options.axis}")
    window = display_window(layers.image)
    planned = [
        (options.axis, s)
        for s in (
            select_slices(layers.segmentation, options.axis, options.num_slices, layers.hidden_labels)
            if layers.segmentation is not None
            else [layers.image.shape[options.axis] // 2]
        )
    ]
    num_foreground = len(planned)
    worklist_slices = list(dict.fromkeys((e.axis, e.slice) for e in entries))[: options.max_worklist_slices]
    planned += [key for key in worklist_slices if key not in planned]
    rendered = []
    for number, (axis, index) in enumerate(planned):
        if index >= layers.image.shape[axis]:
            raise NnUNetError(
                f"case '{case}': slice {index} along axis {axis} is outside the image of shape "
                f"{list(layers.image.shape)}"
            )
        boxed = [e for e in entries if e.axis == axis and e.slice == index]
        picture, panel_size = render_figure(case, layers, axis, index, window, options, boxed)
        name = f"{case}.png" if number == 0 else f"{case}_{AXIS_NAMES[axis]}{index:04d}.png"
        _save_png(picture, output_folder / name)
        rendered.append(
            RenderedSlice(
                case,
                axis,
                index,
                output_folder / name,
                tuple(e.rank for e in boxed),
                number < num_foreground,
                picture.shape[:2],
                panel_size,
            )
        )
    return rendered


def render_figure(
    case: str,
    layers: CaseLayers,
    axis: int,
    index: int,
    window: tuple[float, float],
    options: OverlayOptions,
    boxed: Sequence[WorklistEntry] = (),
) -> tuple[np.ndarray, tuple[int, int]]:
    """Return the uint8 RGB figure of slice ``index`` along ``axis`` (titled panels, header, colour bar, legend,
    the boxed entries' viewer coordinates) and the (height, width) of one panel."""
    from nnunetv2.imageio.geometry import slice_position
    from nnunetv2.visualization.overlay import render_panels
    from nnunetv2.visualization.slice_figure import ColourBar, compose_figure, label_boxes

    in_plane = [a for a in range(3) if a != axis]

    def cut(volume: np.ndarray | None) -> np.ndarray | None:
        return None if volume is None else np.take(volume, index, axis=axis)

    image = np.take(layers.image, index, axis=axis)
    boxes = [(*e.bbox[in_plane[0]], *e.bbox[in_plane[1]]) for e in boxed]
    panels = render_panels(
        image,
        window,
        cut(layers.segmentation),
        overlay_intensity=options.overlay_intensity,
        hidden_labels=layers.hidden_labels,
        reference=cut(layers.reference),
        uncertainty=cut(layers.uncertainty),
        scribbles=cut(layers.scribbles),
        unannotated=layers.unannotated,
        pixel_spacing=[float(layers.spacing[a]) for a in in_plane],
        boxes=boxes,
        scale=options.scale,
        titles={"labels": layers.segmentation_title, "uncertainty": layers.heat_map_name},
    )
    if boxed:
        ranks = [e.rank for e in boxed]
        panels = [type(p)(p.title, label_boxes(p.picture, boxes, ranks, image.shape)) for p in panels]
    shape = layers.image.shape
    header = f"{case}  |  slice {AXIS_NAMES[axis]} = {index} (of {shape[axis]})"
    if shape[0] == 1:
        header = f"{case}  |  2D image"  # its one slice has no position worth naming
    elif layers.properties:
        world_axis, position = slice_position(layers.properties, shape, axis, index)
        header += f"  |  world {world_axis} = {position:.1f} mm"
    spacing = " x ".join(f"{float(layers.spacing[a]):g}" for a in in_plane)
    header += f"  |  pixel {spacing} mm"
    bar = ColourBar(layers.heat_map_name) if layers.uncertainty is not None else None
    notes = [_viewer_note(e) for e in boxed]
    figure = compose_figure(panels, header, _legend(layers, bool(boxed)), bar, notes=notes)
    return figure, panels[0].picture.shape[:2]


def _viewer_note(entry: WorklistEntry) -> str:
    """``#rank  voxel (x, y, z) = (...)  point (...) mm``: where a viewer's cursor goes for a worklist entry."""
    if entry.voxel_xyz is None:
        return f"#{entry.rank}  array box (z, y, x) {[list(pair) for pair in entry.bbox]}"
    text = f"#{entry.rank}  voxel (x, y, z) = ({', '.join(str(v) for v in entry.voxel_xyz)})"
    if entry.point_mm is not None:
        text += f"   point (x, y, z) = ({', '.join(f'{v:.1f}' for v in entry.point_mm)}) mm (LPS)"
    return text


def _legend(layers: CaseLayers, boxed: bool) -> list:
    """The figure's legend: every named label (else every label present), scribble colours, the worklist box."""
    from nnunetv2.visualization.overlay import BACKGROUND_SCRIBBLE_COLOUR, BOX_COLOUR, label_palette
    from nnunetv2.visualization.slice_figure import LegendItem

    names = dict(layers.label_names)
    if not names:
        present = set()
        for volume in (layers.segmentation, layers.reference):
            if volume is not None:
                present |= {int(v) for v in np.unique(volume) if v > 0 and v not in layers.hidden_labels}
        names = {v: f"label {v}" for v in sorted(present)}
    palette = np.round(label_palette(max(names, default=0)) * 255).astype(int)
    items = [LegendItem(f"{v}: {name}", _rgb(palette[v])) for v, name in sorted(names.items())]
    if layers.scribbles is not None:
        white = _rgb(np.round(np.asarray(BACKGROUND_SCRIBBLE_COLOUR) * 255))
        items.append(LegendItem("background scribble (others: their class colour)", white))
    if boxed:
        items.append(LegendItem("worklist region, #rank", BOX_COLOUR, outline=True))
    return items


def _rgb(values: np.ndarray) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in values)
    return r, g, b


def _save_png(picture: np.ndarray, path: Path) -> None:
    from PIL import Image

    from nnunetv2.utilities.file_io import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(picture).save(tmp, format="PNG")


def check_options(options: OverlayOptions) -> None:
    """Raise NnUNetError for options out of range."""
    check_number("overlay intensity", options.overlay_intensity, "[0, 1]")
    if options.axis not in (0, 1, 2):
        raise NnUNetError(f"axis must be 0, 1 or 2, got {options.axis}")
    # num_slices and scale: None picks them from the image
    check_numbers(
        {"num_slices": "integer >= 1", "scale": "integer >= 1"},
        {"num_slices": options.num_slices, "scale": options.scale},
        optional=True,
    )
    check_numbers(
        {"max_worklist_slices": "integer >= 0", "channel_idx": "integer >= 0"},
        {"max_worklist_slices": options.max_worklist_slices, "channel_idx": options.channel_idx},
    )


def plot_overlays(
    inputs: OverlayInputs,
    output_folder: str | os.PathLike,
    options: OverlayOptions = OverlayOptions(),
    worklist: Sequence[WorklistEntry] | str | os.PathLike | None = None,
    progress: bool = True,
) -> dict[str, list[RenderedSlice]]:
    """Write the PNGs of every case of ``inputs`` (see case_layers.folder_inputs / raw_dataset_inputs) into
    ``output_folder``; return ``case -> slices written``. worklist: entries or a worklist file, whose
    slices are drawn too, with their regions boxed."""
    from nnunetv2.annotation.worklist import load_worklist
    from nnunetv2.utilities.progress import progress_bar

    check_options(options)
    entries = load_worklist(worklist) if isinstance(worklist, (str, os.PathLike)) else list(worklist or [])
    unknown = sorted({e.case for e in entries} - set(inputs.cases))
    if unknown:
        logger.info("the worklist names %d case(s) without images here (first: %s)", len(unknown), unknown[0])
    result = {}
    for case in progress_bar(inputs.cases, desc="overlays", unit="case", disable=not progress):
        layers = load_case_layers(inputs, case, options.channel_idx)
        result[case] = render_case(case, layers, output_folder, options, [e for e in entries if e.case == case])
    return result


def plot_preprocessed_overlays(
    dataset: str | os.PathLike,
    output_folder: str | os.PathLike,
    plans_identifier: str = "nnUNetPlans",
    configuration: str | None = None,
    options: OverlayOptions = OverlayOptions(),
    progress: bool = True,
) -> dict[str, list[RenderedSlice]]:
    """Write overlays of a dataset's preprocessed cases (nnU-Net v2's default mode); return what was written.

    configuration: default 3d_fullres when the plans have it, else 2d. Voxels outside the crop (-1)
    are drawn as background.
    """
    from nnunetv2 import paths
    from nnunetv2.dataset.preprocessed_case import list_preprocessed_cases, load_preprocessed_case
    from nnunetv2.formats.plans import Plans
    from nnunetv2.utilities.dataset_name import convert_id_to_dataset_name
    from nnunetv2.utilities.progress import progress_bar

    check_options(options)
    name = convert_id_to_dataset_name(str(dataset))
    plans_file = paths.preprocessed_folder() / name / f"{plans_identifier}.json"
    if not plans_file.is_file():
        raise NnUNetError(f"{plans_file}: plans not found (run nnUNetv2_plan_and_preprocess, or pass --use_raw)")
    plans = Plans.load(plans_file)
    if configuration is None:
        configuration = "3d_fullres" if "3d_fullres" in plans.configurations else "2d"
    if configuration not in plans.configurations:
        raise NnUNetError(
            f"{plans_file}: no configuration '{configuration}' (available: {', '.join(plans.available_configurations)})"
        )
    plan = plans.configuration(configuration)
    data_folder = paths.preprocessed_folder() / name / plan.data_identifier
    cases = list_preprocessed_cases(data_folder)
    if not cases:
        raise NnUNetError(f"{data_folder}: no preprocessed cases (run nnUNetv2_preprocess -c {configuration})")
    # 2D configurations list only the in-plane spacing; the slice axis does not change the in-plane aspect
    spacing = plan.spacing if len(plan.spacing) == 3 else [1.0, *plan.spacing]
    hidden = _ignore_label_of(paths.preprocessed_folder() / name / "dataset.json")
    result = {}
    for case in progress_bar(cases, desc="overlays", unit="case", disable=not progress):
        data, seg, _ = load_preprocessed_case(data_folder, case)
        layers = CaseLayers(
            image_channel(data, options.channel_idx, data_folder / f"{case}.b2nd"),
            spacing,
            np.maximum(seg[0], 0),
            hidden_labels=hidden,
        )
        result[case] = render_case(case, layers, output_folder, options)
    return result


def _ignore_label_of(dataset_json_file: Path) -> tuple[int, ...]:
    """``(ignore label,)`` of a dataset.json, ``()`` when it has none or the file is missing."""
    if not dataset_json_file.is_file():
        return ()
    from nnunetv2.dataset.label_manager import LabelManager
    from nnunetv2.formats.dataset_json import DatasetJson

    ignore = LabelManager.from_dataset_json(DatasetJson.load(dataset_json_file)).ignore_label
    return () if ignore is None else (ignore,)
