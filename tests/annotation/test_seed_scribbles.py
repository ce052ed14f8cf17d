"""AnatomySketch .seed scribbles: the reader, world-to-voxel mapping, the converter command, and its errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunetv2.annotation.seed_scribbles import convert_seed_scribbles
from nnunetv2.cli.seed_scribbles import convert_seed_scribbles_entry
from nnunetv2.exceptions import DatasetError
from nnunetv2.formats.anatomysketch_seed import read_seed_file

SPACING, ORIGIN = (0.5, 0.8, 2.0), (-10.0, 20.0, 5.0)
SHAPE_XYZ = (12, 10, 6)


def seed_text(
    data_lists: list[tuple[str, int, list[list[tuple[float, float, float]]]]], end: str | None = "#END"
) -> str:
    """An AnatomySketch seed file: per data list (name, label, strokes of world points)."""
    lines = ["#Anatomy Sketch Seed File", "#NUMBER OF DATA:", str(len(data_lists)), "#DATA LIST DEFINITION:"]
    for i, (name, label, strokes) in enumerate(data_lists):
        lines += [f"#DATA LIST NUMBER {i} DEFINITION:", f"{i} # data_list_index", f"{name} # data_name"]
        lines += ["255 0 0 # r_color g_color b_color", f"{label} # data_label", f"{len(strokes)} # number_of_Line"]
        for j, points in enumerate(strokes):
            lines += [f"#Line LIST NUMBER {j} DEFINITION:", f"{j} # line_index", "2 # line_ViewLabel"]
            lines += [f"{points[0][2]} # line_dLayer", f"{j} # line_nSerial", "#START_POINTS_POS"]
            lines += [f"{x} {y} {z}" for x, y, z in points]
            if end is not None:
                lines.append(end)
    return "\n".join(lines) + "\n"


def world(index_xyz, direction=(1, 1, 1)) -> tuple[float, float, float]:
    """World point of voxel (x, y, z) for a diagonal direction."""
    return tuple(o + d * i * s for o, d, i, s in zip(ORIGIN, direction, index_xyz, SPACING))


def write_reference(path: Path, direction=(1, 1, 1)) -> None:
    image = sitk.GetImageFromArray(np.zeros(SHAPE_XYZ[::-1], dtype=np.float32))
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    image.SetDirection(tuple(float(v) for v in np.diag(direction).ravel()))
    sitk.WriteImage(image, str(path))


@pytest.fixture
def folders(tmp_path) -> tuple[Path, Path, Path]:
    seeds, references = tmp_path / "seeds", tmp_path / "images"
    seeds.mkdir()
    references.mkdir()
    return seeds, references, tmp_path / "scribbles"


def test_reader_returns_labels_strokes_and_point_lines(tmp_path):
    path = tmp_path / "a.seed"
    path.write_text(seed_text([("liver", 1, [[(0, 0, 0), (1, 2, 3)]]), ("bg", 0, [[(4, 5, 6)], [(7, 8, 9)]])]))
    data_lists = read_seed_file(path)
    assert [(d.name, d.label, len(d.strokes)) for d in data_lists] == [("liver", 1, 1), ("bg", 0, 2)]
    stroke = data_lists[0].strokes[0]
    np.testing.assert_array_equal(stroke.points, [[0, 0, 0], [1, 2, 3]])
    assert stroke.point_lines == (17, 18) and stroke.layer == 0.0 and stroke.view == 2


@pytest.mark.parametrize("end", ["#END", "", None])
def test_point_lists_end_at_a_terminator_a_blank_line_or_the_next_list(tmp_path, end):
    path = tmp_path / "a.seed"
    path.write_text(seed_text([("x", 1, [[(0, 0, 0)], [(1, 1, 1)]]), ("y", 2, [[(2, 2, 2)]])], end=end))
    assert [len(s.points) for d in read_seed_file(path) for s in d.strokes] == [1, 1, 1]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace("#Anatomy Sketch Seed File", "#Other File"), "line 1: expected '#Anatomy Sketch Seed"),
        (lambda t: t.replace("1 # data_label", "one # data_label"), "line 9: expected an integer before '# data_l"),
        (lambda t: t.replace("0 # line_index", "3 # line_index"), "line 12: expected '0 # line_index'"),
        (lambda t: t.replace("1.0 2.0 3.0", "1.0 2.0"), "line 18: expected a point 'x y z' or the end"),
        (lambda t: t.replace("1.0 2.0 3.0", "1.0 2.0 z"), "line 18: expected a point 'x y z' of three numbers"),
        (lambda t: t.replace("#START_POINTS_POS\n", ""), "line 16: expected '#START_POINTS_POS'"),
        (lambda t: t.replace("2\n#DATA LIST DEF", "3\n#DATA LIST DEF"), "line 34: expected '#DATA LIST NUMBER 2 DEF"),
        (lambda t: t + "stray\n", "line 34: expected the end of the file after 2 data list(s), found 'stray'"),
    ],
)
def test_malformed_files_name_the_line_and_what_was_expected(tmp_path, edit, message):
    path = tmp_path / "bad.seed"
    path.write_text(edit(seed_text([("a", 1, [[(0.0, 0.0, 0.0), (1.0, 2.0, 3.0)]]), ("b", 0, [[(4.0, 5.0, 6.0)]])])))
    with pytest.raises(DatasetError) as error:
        read_seed_file(path)
    assert str(error.value).startswith(f"{path}, ") and message in str(error.value)
    assert len(str(error.value).splitlines()) == 1


@pytest.mark.parametrize("direction", [(1, 1, 1), (-1, 1, -1)])
def test_points_land_on_their_voxels_and_strokes_are_joined(folders, direction):
    seeds, references, out = folders
    write_reference(references / "case1_0000.nii.gz", direction)
    stroke = [world((2, 3, 1), direction), world((6, 3, 1), direction)]  # joined through x = 3, 4, 5
    single = [world((9, 8, 5), direction)]
    (seeds / "case1_scribble.seed").write_text(seed_text([("organ", 2, [stroke]), ("bg", 0, [single])]))
    scribbled = convert_seed_scribbles(seeds, references, out, unannotated_value=3)
    assert scribbled == {"case1": 6}
    label = sitk.ReadImage(str(out / "case1.nii.gz"))
    assert label.GetSpacing() == pytest.approx(SPACING) and label.GetOrigin() == pytest.approx(ORIGIN)
    array = sitk.GetArrayFromImage(label)  # (z, y, x)
    expected = np.full(SHAPE_XYZ[::-1], 3, dtype=np.uint8)
    expected[1, 3, 2:7] = 2
    expected[5, 8, 9] = 0
    np.testing.assert_array_equal(array, expected)


def test_converted_scribbles_feed_the_pseudo_label_rule(folders):
    """The converted map uses the scribble-file convention nnUNetv2_scribble_pseudolabels reads."""
    from nnunetv2.scribble_loop.pseudo_labels import geodesic_pseudo_label

    seeds, references, out = folders
    write_reference(references / "c_0000.nii.gz")
    (seeds / "c.seed").write_text(seed_text([("organ", 1, [[world((2, 2, 2)), world((5, 2, 2))]])]))
    convert_seed_scribbles(seeds, references, out, unannotated_value=2)
    scribbles = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "c.nii.gz")))
    image = np.random.default_rng(0).normal(size=(1, *scribbles.shape)).astype(np.float32)
    probabilities = np.stack([np.full(scribbles.shape, 0.9), np.full(scribbles.shape, 0.1)]).astype(np.float32)
    label, _ = geodesic_pseudo_label(image, probabilities, scribbles, SPACING[::-1], unannotated_value=2)
    assert (label[scribbles == 1] == 1).all()


def test_command_errors_are_one_line(folders, capsys):
    seeds, references, out = folders
    write_reference(references / "case1_0000.nii.gz")
    (seeds / "case1.seed").write_text(seed_text([("organ", 1, [[world((0, 0, 0)), (1000.0, 0.0, 0.0)]])]))
    with pytest.raises(SystemExit) as exit_info:
        convert_seed_scribbles_entry(["-i", str(seeds), "-r", str(references), "-o", str(out), "--unannotated", "2"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {seeds / 'case1.seed'}, line 18: point (1000 0 0) lies outside the reference")
    assert len(err.splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--unannotated", "-1"], "the unannotated value must be 0 or more (a label map value), got -1"),
        (["--unannotated", "1"], "data list 0 has label 1, the unannotated value"),
        ([], "cannot tell scribbled from unannotated voxels; pass the unannotated value (--unannotated)"),
    ],
)
def test_bad_unannotated_values_are_one_line(folders, capsys, flags, message):
    seeds, references, out = folders
    write_reference(references / "case1_0000.nii.gz")
    (seeds / "case1.seed").write_text(seed_text([("organ", 1, [[world((0, 0, 0))]])]))
    with pytest.raises(SystemExit):
        convert_seed_scribbles_entry(["-i", str(seeds), "-r", str(references), "-o", str(out), *flags])
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


def test_console_script_is_installed():
    assert (Path(sys.executable).parent / "nnUNetv2_convert_seed_scribbles").is_file()
