"""nnUNetv2_simulate_correction_scribbles: scribble files from predictions and references, every placement, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nnunetv2.annotation.simulated_scribble_files import SUMMARY_FILE, write_simulated_correction_scribbles
from nnunetv2.annotation.worklist import WorklistEntry, save_worklist
from nnunetv2.cli.annotation import simulate_correction_scribbles_entry

CASES = ("case_000", "case_001", "case_002")
UNANNOTATED = 3  # the dataset has 3 labels (background + 2 classes) and no ignore label


def _pool(dataset: Path, root: Path) -> tuple[Path, Path]:
    """Predictions (the labels with class 1 erased in slices 5-7 and a false class-2 square in slice 10) and
    references (labelsTr) for 3 cases."""
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    io = SimpleITKIO()
    predictions, references = root / "pred", root / "ref"
    predictions.mkdir()
    references.mkdir()
    shutil.copy(dataset / "dataset.json", predictions / "dataset.json")
    for case in CASES:
        seg, properties = io.read_seg(dataset / "labelsTr" / f"{case}.nii.gz")
        shutil.copy(dataset / "labelsTr" / f"{case}.nii.gz", references)
        wrong = seg[0].copy()
        wrong[5:8][wrong[5:8] == 1] = 0
        wrong[10, 2:8, 2:8] = 2
        io.write_seg(wrong, predictions / f"{case}.nii.gz", properties)
    return predictions, references


def _read(path: Path) -> tuple[np.ndarray, dict]:
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    seg, properties = SimpleITKIO().read_seg(path)
    return seg[0], properties


@pytest.mark.parametrize("placement", ["largest", "random", "random_slices"])
def test_scribble_files_lie_on_wrong_voxels_in_the_image_geometry(
    tmp_path: Path, synthetic_dataset_3d: Path, placement: str
):
    predictions, references = _pool(synthetic_dataset_3d, tmp_path)
    out = tmp_path / "scribbles"
    summary = write_simulated_correction_scribbles(
        predictions, references, out, budget=300, placement=placement, seed=1
    )
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{c}.nii.gz" for c in CASES] + [SUMMARY_FILE])
    total = 0
    for case in CASES:
        scribbles, properties = _read(out / f"{case}.nii.gz")
        prediction, prediction_properties = _read(predictions / f"{case}.nii.gz")
        reference, _ = _read(references / f"{case}.nii.gz")
        assert scribbles.shape == prediction.shape
        assert np.allclose(properties["spacing"], prediction_properties["spacing"])
        assert np.allclose(properties["sitk_stuff"]["origin"], prediction_properties["sitk_stuff"]["origin"])
        drawn = scribbles != UNANNOTATED
        assert np.array_equal(scribbles[drawn], reference[drawn]) and np.all(prediction[drawn] != reference[drawn])
        assert summary["cases"][case]["scribbled_voxels"] == int(drawn.sum())
        total += int(drawn.sum())
    assert 0 < total <= 300 and summary["scribbled_voxels"] == total and summary["budget_voxels"] == 300
    assert json.loads((out / SUMMARY_FILE).read_text())["placement"] == placement
    # the same seed draws the same strokes
    again = write_simulated_correction_scribbles(
        predictions, references, tmp_path / "again", budget=300, placement=placement, seed=1
    )
    assert again["cases"] == summary["cases"]
    for case in CASES:
        assert np.array_equal(_read(out / f"{case}.nii.gz")[0], _read(tmp_path / "again" / f"{case}.nii.gz")[0])


def test_a_fractional_budget_counts_the_pools_wrong_voxels(tmp_path: Path, synthetic_dataset_3d: Path):
    predictions, references = _pool(synthetic_dataset_3d, tmp_path)
    summary = write_simulated_correction_scribbles(predictions, references, tmp_path / "s", budget=0.1)
    assert summary["budget_voxels"] == int(np.floor(0.1 * summary["wrong_voxels"]))
    assert 0 < summary["scribbled_voxels"] <= summary["budget_voxels"]


def test_guided_placement_draws_inside_the_worklist_boxes_only(tmp_path: Path, synthetic_dataset_3d: Path):
    predictions, references = _pool(synthetic_dataset_3d, tmp_path)
    box = ((10, 11), (0, 10), (0, 10))  # the false class-2 square of case_001
    entry = WorklistEntry(
        rank=1,
        case="case_001",
        case_rank=1,
        axis=0,
        slice=10,
        slice_rank=1,
        bbox=box,
        score=5.0,
        uncertainty_mass=5.0,
        size=36,
        mean_uncertainty=0.8,
    )
    save_worklist([entry], tmp_path / "wl", {}, {})
    summary = write_simulated_correction_scribbles(
        predictions,
        references,
        tmp_path / "s",
        budget=1000,
        placement="guided",
        worklist=tmp_path / "wl" / "worklist.csv",
    )
    assert summary["cases"]["case_000"]["scribbled_voxels"] == 0
    scribbles, _ = _read(tmp_path / "s" / "case_001.nii.gz")
    drawn = scribbles != UNANNOTATED
    assert drawn.sum() == drawn[10, 0:10, 0:10].sum() > 0 and set(np.unique(scribbles[drawn])) == {0}
    # the one entry is done: the summary says why the rest of the budget stayed unspent
    assert summary["scribbled_voxels"] < 1000
    assert summary["unspent_budget_reasons"][-1].startswith("all 1 worklist entries were visited")


def test_unspent_budget_names_the_region_size_limit(tmp_path: Path, synthetic_dataset_3d: Path, capsys):
    predictions, references = _pool(synthetic_dataset_3d, tmp_path)
    arguments = ["-i", str(predictions), "-r", str(references), "-o", str(tmp_path / "s"), "--budget", "100000"]
    simulate_correction_scribbles_entry([*arguments, "--min_region_size", "10000"])  # every error region too small
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "s" / SUMMARY_FILE).read_text())
    assert summary["scribbled_voxels"] == 0
    reasons = summary["unspent_budget_reasons"]
    assert reasons[0] == (
        f"{summary['wrong_voxels']} of the {summary['wrong_voxels']} wrong voxels lie in error regions under "
        f"--min_region_size 10000 voxels, which get no stroke"
    )
    assert f"100000 budget voxels left unspent: {reasons[0]}" in printed and "--strokes_per_region 1" in printed


def test_the_command_line_writes_the_files_and_prints_a_summary(tmp_path: Path, synthetic_dataset_3d: Path, capsys):
    predictions, references = _pool(synthetic_dataset_3d, tmp_path)
    simulate_correction_scribbles_entry(
        [
            "-i",
            str(predictions),
            "-r",
            str(references),
            "-o",
            str(tmp_path / "s"),
            "--budget",
            "120",
            "--placement",
            "random",
            "--seed",
            "3",
        ]
    )
    printed = capsys.readouterr().out
    assert printed.startswith("random: scribbled ") and "of 120 budget voxels" in printed
    assert len(list((tmp_path / "s").glob("*.nii.gz"))) == 3


def _error_of(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        simulate_correction_scribbles_entry(argv)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_inputs_end_with_one_line_and_write_nothing(tmp_path: Path, synthetic_dataset_3d: Path, capsys):
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    predictions, references = _pool(synthetic_dataset_3d, tmp_path)
    out = tmp_path / "out"
    base = ["-i", str(predictions), "-r", str(references), "-o", str(out)]
    assert "placement 'guided' needs a worklist" in _error_of(base + ["--placement", "guided"], capsys)
    save_worklist([], tmp_path / "wl", {}, {})
    assert "only used with placement 'guided', not 'largest'" in _error_of(base + ["-w", str(tmp_path / "wl")], capsys)
    assert "fraction of the wrong voxels in (0, 1], got 1.5" in _error_of(base + ["--budget", "1.5"], capsys)
    assert "budget must be a voxel count" in _error_of(base + ["--budget", "-3"], capsys)
    assert "axis must be 0, 1 or 2, got 3" in _error_of(base + ["--axis", "3"], capsys)
    assert "the output folder must differ from the prediction folder" in _error_of(
        base[:4] + ["-o", str(predictions)], capsys
    )
    assert "missing: predictions folder not found" in _error_of(
        ["-i", str(tmp_path / "missing"), "-r", str(references), "-o", str(out)], capsys
    )

    stranger = WorklistEntry(
        rank=1,
        case="case_999",
        case_rank=1,
        axis=0,
        slice=1,
        slice_rank=1,
        bbox=((1, 2), (0, 4), (0, 4)),
        score=1.0,
        uncertainty_mass=1.0,
        size=16,
        mean_uncertainty=1.0,
    )
    save_worklist([stranger], tmp_path / "wl", {}, {})
    err = _error_of(base + ["--placement", "guided", "-w", str(tmp_path / "wl")], capsys)
    assert "worklist names case 'case_999', which is not in the pool" in err and "wl" in err

    io = SimpleITKIO()
    seg, properties = io.read_seg(references / "case_002.nii.gz")
    moved = tmp_path / "moved"
    shutil.copytree(references, moved)
    (moved / "case_002.nii.gz").unlink()
    assert "no reference for case 'case_002'" in _error_of(base[:2] + ["-r", str(moved), "-o", str(out)], capsys)
    io.write_seg(seg[0, :8], moved / "case_002.nii.gz", properties)
    assert "case_002.nii.gz: shape [8, 32, 32] differs from the prediction's [16, 32, 32]" in _error_of(
        base[:2] + ["-r", str(moved), "-o", str(out)], capsys
    )
    strange = seg[0].copy()
    strange[0, 0, 0] = 7
    io.write_seg(strange, moved / "case_002.nii.gz", properties)
    assert "value 7 is neither a label of the dataset nor the unannotated value 3" in _error_of(
        base[:2] + ["-r", str(moved), "-o", str(out)], capsys
    )

    held = seg[0].copy()
    held[0, 0, 0] = UNANNOTATED
    io.write_seg(held, predictions / "case_002.nii.gz", properties)
    assert "case_002.nii.gz: holds the unannotated value 3" in _error_of(base, capsys)
    assert not out.exists()  # nothing was written by any failed run

    shutil.copy(references / "case_000.nii.gz", predictions / "case_002.nii.gz")
    out.mkdir()
    shutil.copy(references / "case_000.nii.gz", out / "case_777.nii.gz")
    assert "holds case_777.nii.gz, a file of no case in the predictions" in _error_of(base, capsys)
    assert sorted(p.name for p in out.iterdir()) == ["case_777.nii.gz"]
