"""The worklist files (json + csv), and nnUNetv2_suggest_annotations on both uncertainty folder layouts."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nnunetv2.annotation.suggest import suggest_annotations
from nnunetv2.annotation.worklist import (
    CSV_COLUMNS,
    VIEWER_COLUMNS,
    WorklistEntry,
    load_worklist,
    save_worklist,
)
from nnunetv2.cli.annotation import suggest_annotations_entry
from nnunetv2.exceptions import NnUNetError

ENTRY = WorklistEntry(
    rank=1,
    case="case_a",
    case_rank=1,
    axis=1,
    slice=4,
    slice_rank=1,
    bbox=((0, 8), (4, 5), (2, 9)),
    score=12.5,
    uncertainty_mass=20.0,
    size=25,
    mean_uncertainty=0.8,
    distance_to_scribbles=None,
    predicted_label=2,
    voxel_xyz=(5, 4, 3),
    point_mm=(-12.5, 4.0, 30.25),
)


def test_json_and_csv_hold_the_same_entries(tmp_path: Path):
    second = WorklistEntry(
        rank=2,
        case="case_b",
        case_rank=2,
        axis=0,
        slice=0,
        slice_rank=1,
        bbox=((0, 1), (0, 3), (0, 3)),
        score=3.0,
        uncertainty_mass=3.0,
        size=9,
        mean_uncertainty=1 / 3,
        distance_to_scribbles=2.5,
        predicted_label=None,
    )
    json_file, csv_file = save_worklist([ENTRY, second], tmp_path, {"budget": 2}, {"case_a": {"case_rank": 1}})
    content = json.loads(json_file.read_text())
    assert content["format"] == "nnunetv2-annotation-worklist" and content["parameters"] == {"budget": 2}
    assert content["entries"][0]["bbox"] == [[0, 8], [4, 5], [2, 9]]
    with open(csv_file, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [*CSV_COLUMNS, *VIEWER_COLUMNS]
    assert rows[0]["y_start"] == "4" and rows[0]["y_stop"] == "5" and rows[0]["distance_to_scribbles"] == ""
    assert [rows[0][c] for c in VIEWER_COLUMNS] == ["5", "4", "3", "-12.500", "4.000", "30.250"]
    assert content["entries"][0]["voxel_xyz"] == [5, 4, 3] and content["entries"][0]["point_mm"] == [-12.5, 4, 30.25]
    assert load_worklist(json_file) == [ENTRY, second]
    assert load_worklist(tmp_path) == [ENTRY, second]  # a folder means its worklist.json
    from_csv = load_worklist(csv_file)
    assert [
        (e.case, e.bbox, e.predicted_label, e.distance_to_scribbles, e.voxel_xyz, e.point_mm) for e in from_csv
    ] == [
        (e.case, e.bbox, e.predicted_label, e.distance_to_scribbles, e.voxel_xyz, e.point_mm) for e in (ENTRY, second)
    ]
    assert from_csv[1].mean_uncertainty == pytest.approx(1 / 3, rel=1e-5)


def test_a_worklist_without_viewer_columns_still_loads(tmp_path: Path):
    _, csv_file = save_worklist([ENTRY], tmp_path, {}, {})
    with open(csv_file, newline="") as f:
        rows = list(csv.DictReader(f))
    with open(csv_file, "w", newline="") as f:
        writer = csv.DictWriter(f, CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (old,) = load_worklist(csv_file)
    assert old.voxel_xyz is None and old.point_mm is None and old.bbox == ENTRY.bbox


def test_a_reordered_and_trimmed_csv_keeps_its_row_order(tmp_path: Path):
    second = WorklistEntry(**{**ENTRY.__dict__, "rank": 2, "case": "case_b"})
    _, csv_file = save_worklist([ENTRY, second], tmp_path, {}, {})
    header, first, last = csv_file.read_text().splitlines()
    csv_file.write_text("\n".join([header, last]) + "\n")
    assert [e.case for e in load_worklist(csv_file)] == ["case_b"]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda e: e.update(bbox=[[0, 8], [3, 5], [2, 9]]), "does not lie in slice 4 of axis 1"),
        (lambda e: e.update(bbox=[[0, 8], [4, 5]]), "'bbox' must be three"),
        (lambda e: e.update(bbox=[[5, 5], [4, 5], [2, 9]]), "has an empty or negative range"),
        (lambda e: e.update(slice="four"), "'slice' must be an integer"),
        (lambda e: e.update(axis=3), "'axis' must be 0, 1 or 2"),
        (lambda e: e.update(score=None), "'score' must be a finite number"),
        (lambda e: e.pop("case"), "'case' must be a case name"),
        (lambda e: e.update(voxel_xyz=[1, 2]), "'voxel_xyz' must be three numbers"),
        (lambda e: e.update(point_mm=[1, "a", 2]), "'point_mm' must be three finite numbers"),
    ],
)
def test_broken_entries_name_the_file_and_the_entry(tmp_path: Path, change, message):
    entry = ENTRY.to_json()
    change(entry)
    path = tmp_path / "worklist.json"
    path.write_text(json.dumps({"entries": [ENTRY.to_json(), entry]}))
    with pytest.raises(NnUNetError, match=f"worklist.json: entry 2: .*{message}"):
        load_worklist(path)


def test_unusable_worklist_files_are_reported(tmp_path: Path):
    with pytest.raises(NnUNetError, match="worklist not found"):
        load_worklist(tmp_path / "missing.json")
    (tmp_path / "w.csv").write_text("case,slice\nx,1\n")
    with pytest.raises(NnUNetError, match="not a worklist CSV .missing column.s. rank"):
        load_worklist(tmp_path / "w.csv")
    (tmp_path / "w.json").write_text("[1, 2]")
    with pytest.raises(NnUNetError, match="not a worklist"):
        load_worklist(tmp_path / "w.json")


def _pool(dataset: Path, root: Path) -> tuple[Path, np.ndarray]:
    """nnUNetv2_uncertainty-like output for 3 cases: segmentations, integer maps (x1000), score table."""
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    io = SimpleITKIO()
    out = root / "uncertainty_out"
    (out / "uncertainty_maps").mkdir(parents=True)
    shutil.copy(dataset / "dataset.json", out / "dataset.json")
    rows = []
    for index, case in enumerate(["case_000", "case_001", "case_002"]):
        seg, properties = io.read_seg(dataset / "labelsTr" / f"{case}.nii.gz")
        io.write_seg(seg[0], out / f"{case}.nii.gz", properties)
        uncertainty = np.zeros(seg.shape[1:], dtype=np.uint16)
        uncertainty[5, 4:10, 4:10] = 900 - 300 * index  # case_000 is the most uncertain
        uncertainty[9, 20:26, 20:24] = 700
        io.write_seg(uncertainty, out / "uncertainty_maps" / f"{case}.nii.gz", properties)
        rows.append({"case": case, "score": 0.1 * (index + 1)})
    (out / "uncertainty_scores.json").write_text(
        json.dumps({"measure": "class_entropy", "map_scale": 1000, "cases": rows})
    )
    return out, seg[0]


def test_suggest_annotations_reads_the_uncertainty_command_output(tmp_path: Path, synthetic_dataset_3d: Path):
    out, _ = _pool(synthetic_dataset_3d, tmp_path)
    entries = suggest_annotations(out, tmp_path / "wl", budget=4, window_radius=0, progress=False)
    assert len(entries) == 4
    first = entries[0]
    assert (first.case, first.slice, first.bbox) == ("case_000", 5, ((5, 6), (4, 10), (4, 10)))
    assert first.mean_uncertainty == pytest.approx(0.9) and first.size == 36
    assert first.predicted_label is not None
    # viewer terms: the box's centre voxel (5, 6, 6) as ITK index (x, y, z) and its physical point
    import SimpleITK as sitk

    image = sitk.ReadImage(str(out / "uncertainty_maps" / "case_000.nii.gz"))
    assert first.voxel_xyz == (6, 6, 5)
    assert first.point_mm == pytest.approx(image.TransformIndexToPhysicalPoint((6, 6, 5)), abs=1e-3)
    summary = json.loads((tmp_path / "wl" / "worklist.json").read_text())
    assert summary["cases"]["case_000"]["uncertainty_score"] == pytest.approx(0.1)
    assert summary["parameters"]["budget"] == 4 and summary["parameters"]["window_radius"] == 0
    assert summary["parameters"]["exclusion_radius"] == 6.0
    assert len((tmp_path / "wl" / "worklist.csv").read_text().splitlines()) == 5
    # by default an entry is a 3 x 3 stroke window of a region (spacing 3 x 1 x 1: radius 1 in-plane)
    windows = suggest_annotations(out, tmp_path / "wl2", budget=1, progress=False)
    assert windows[0].case == "case_000" and windows[0].size == 9 and windows[0].bbox[0] == (5, 6)


def test_suggest_annotations_with_float_maps_and_existing_scribbles(tmp_path: Path, synthetic_dataset_3d: Path):
    from nnunetv2.imageio.image_files import write_image
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    out, seg = _pool(synthetic_dataset_3d, tmp_path)
    maps = tmp_path / "float_maps"
    maps.mkdir()
    scribbles = tmp_path / "scribbles"
    scribbles.mkdir()
    io = SimpleITKIO()
    _, properties = io.read_seg(out / "case_000.nii.gz")
    u = np.zeros(seg.shape, dtype=np.float32)
    u[5, 4:10, 4:10] = 0.9
    u[5, 20:26, 20:26] = 0.9
    write_image(u, maps / "case_000_uncertainty.nii.gz", properties["spacing"])
    drawn = np.full(seg.shape, 3, dtype=np.uint8)  # 3: the dataset's number of labels = unannotated
    drawn[5, 12, 4:10] = 1  # two voxels below the first region
    io.write_seg(drawn, scribbles / "case_000.nii.gz", properties)
    entries = suggest_annotations(
        maps,
        tmp_path / "wl",
        predictions_folder=out,
        scribbles_folder=scribbles,
        budget=5,
        window_radius=0,
        progress=False,
    )
    assert [e.bbox[1] for e in entries] == [(20, 26), (4, 10)]
    assert entries[1].distance_to_scribbles == pytest.approx(3.0)
    assert entries[1].score < entries[0].score


def test_command_line_writes_the_worklist_and_reports_errors(tmp_path: Path, synthetic_dataset_3d: Path, capsys):
    out, _ = _pool(synthetic_dataset_3d, tmp_path)
    suggest_annotations_entry(
        [
            "-i",
            str(out),
            "-o",
            str(tmp_path / "wl"),
            "--budget",
            "3",
            "--window_radius",
            "0",
            "--exclusion_radius",
            "0",
            "--quiet",
        ]
    )
    assert "wrote 3 entries in 3 cases" in capsys.readouterr().out  # 32.4, 21.6, case_002's 16.8
    assert len(load_worklist(tmp_path / "wl" / "worklist.csv")) == 3
    parameters = json.loads((tmp_path / "wl" / "worklist.json").read_text())["parameters"]
    assert parameters["window_radius"] == 0 and parameters["exclusion_radius"] == 0
    assert [e.size for e in load_worklist(tmp_path / "wl")] == [36, 36, 24]  # whole regions

    with pytest.raises(SystemExit) as exit_info:
        suggest_annotations_entry(["-i", str(tmp_path / "nothing"), "-o", str(tmp_path / "x"), "--quiet"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip().endswith("nothing: uncertainty maps folder not found")

    (out / "case_001.nii.gz").unlink()
    with pytest.raises(SystemExit):
        suggest_annotations_entry(["-i", str(out), "-o", str(tmp_path / "x"), "--quiet"])
    assert "no prediction for case 'case_001'" in capsys.readouterr().err

    scribbles = tmp_path / "scribbles"
    scribbles.mkdir()
    shutil.copy(out / "case_000.nii.gz", scribbles / "case_000.nii.gz")
    with pytest.raises(SystemExit):
        suggest_annotations_entry(
            [
                "-i",
                str(out),
                "-o",
                str(tmp_path / "x"),
                "--predictions",
                str(synthetic_dataset_3d / "labelsTr"),
                "--scribbles",
                str(scribbles),
                "--axis",
                "4",
                "--quiet",
            ]
        )
    assert "axis must be 0, 1 or 2, got 4" in capsys.readouterr().err


def test_case_scores_in_every_accepted_layout(tmp_path: Path):
    from nnunetv2.annotation.case_files import find_uncertainty_maps, load_case_scores
    from nnunetv2.exceptions import DatasetError

    assert load_case_scores(tmp_path) == {}
    (tmp_path / "scores.csv").write_text("case,score\na,0.5\nb,0.25\n")
    assert load_case_scores(tmp_path) == {"a": 0.5, "b": 0.25}
    (tmp_path / "scores.json").write_text(json.dumps({"cases": {"a": {"score": 0.1}, "b": 2}}))
    assert load_case_scores(tmp_path) == {"a": 0.1, "b": 2.0}  # json before csv
    (tmp_path / "uncertainty_scores.json").write_text(json.dumps({"cases": [{"case": "c", "score": "0.3"}]}))
    assert load_case_scores(tmp_path) == {"c": 0.3}  # nnUNetv2_uncertainty's table first
    (tmp_path / "uncertainty_scores.json").write_text(json.dumps({"cases": [{"case": "c", "score": "high"}]}))
    with pytest.raises(DatasetError, match="uncertainty_scores.json: the score of case 'c' is not a number"):
        load_case_scores(tmp_path)
    with pytest.raises(NnUNetError, match="no uncertainty maps .neither uncertainty_maps/CASE.ending"):
        find_uncertainty_maps(tmp_path)
