"""nnUNetv2_uncertainty on hand-made checkpoint probabilities: fold selection, outputs, table, errors."""

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunetv2.cli.uncertainty import MEASURE_NAMES, uncertainty_entry
from nnunetv2.exceptions import InferenceError
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
from nnunetv2.uncertainty.ensemble_uncertainty import compute_uncertainty
from nnunetv2.uncertainty.measures import MEASURES
from tests.helpers.tiny_models import DATASET_JSON, DIRECTION, ORIGIN, SPACING_XYZ, tiny_plans, write_image

SHAPE = (4, 6, 8)
OBJECT = (slice(1, 3), slice(1, 5), slice(2, 6))


def _one_hot(labels: np.ndarray, confidence: float = 0.98) -> np.ndarray:
    p = np.full((3, *labels.shape), (1 - confidence) / 2, dtype=np.float32)
    np.put_along_axis(p, labels[None].astype(np.int64), confidence, axis=0)
    return p


def _labels(value: int) -> np.ndarray:
    labels = np.zeros(SHAPE, dtype=np.uint8)
    labels[OBJECT] = value
    return labels


def _members(agree: bool) -> list[np.ndarray]:
    """Three checkpoints: all say label 1 in the object, or they disagree between 1 and 2."""
    return [_one_hot(_labels(1 if agree or k % 2 == 0 else 2)) for k in range(3)]


def _write_run(folder: Path, cases: dict[str, dict[int, list[np.ndarray]]], dataset_json=DATASET_JSON) -> Path:
    """Write a folder laid out like nnUNetv2_predict_checkpoints' output."""
    folder.mkdir(parents=True)
    write_image(np.zeros(SHAPE, dtype=np.float32), folder / "geometry.nii.gz")
    _, properties = SimpleITKIO().read_images([folder / "geometry.nii.gz"])
    (folder / "plans.json").write_text(json.dumps(tiny_plans()))
    (folder / "dataset.json").write_text(json.dumps(dataset_json))
    members = []
    for case_id, folds in cases.items():
        for fold, probabilities in folds.items():
            for k, p in enumerate(probabilities):
                member = f"checkpoints/fold_{fold}/checkpoint_cycle1_epoch{k + 1}"
                (folder / member).mkdir(parents=True, exist_ok=True)
                np.savez_compressed(folder / member / f"{case_id}.npz", probabilities=p.astype(np.float16))
                (folder / member / f"{case_id}.pkl").write_bytes(pickle.dumps(properties))
                if {"fold": fold, "folder": member} not in members:
                    members.append({"fold": fold, "folder": member})
    (folder / "checkpoint_predictions.json").write_text(json.dumps({"cases": list(cases), "members": members}))
    return folder


@pytest.fixture
def run(tmp_path) -> Path:
    # case x: fold 0 agrees, fold 1 does not; case y the other way round
    return _write_run(
        tmp_path / "run", {"x": {0: _members(True), 1: _members(False)}, "y": {0: _members(False), 1: _members(True)}}
    )


def _read(path: Path) -> sitk.Image:
    return sitk.ReadImage(str(path))


def test_fold_selection_keeps_the_least_uncertain_fold(run, tmp_path):
    report = compute_uncertainty(run, tmp_path / "out", select_fold=True, show_progress=False)
    rows = {r["case"]: r for r in report["cases"]}
    assert rows["x"]["fold"] == 0 and rows["y"]["fold"] == 1
    for row in rows.values():
        assert (
            row["score"]
            == min(row["score_fold_0"], row["score_fold_1"])
            < max(row["score_fold_0"], row["score_fold_1"])
        )
        assert row["num_checkpoints"] == 3 and row["score"] == row["score_class_entropy"]
    for case_id in ("x", "y"):
        segmentation = _read(tmp_path / "out" / f"{case_id}.nii.gz")
        np.testing.assert_array_equal(sitk.GetArrayFromImage(segmentation), _labels(1))
        uncertainty = sitk.GetArrayFromImage(_read(tmp_path / "out" / "uncertainty_maps" / f"{case_id}.nii.gz"))
        assert uncertainty.shape == SHAPE
        expected = np.round(1000 * -(2 * 0.01 * np.log(0.01) + 0.98 * np.log(0.98)) / np.log(3))
        assert np.all(np.abs(uncertainty.astype(int) - expected) <= 1)  # same confident answer everywhere
        for image in (segmentation, _read(tmp_path / "out" / "uncertainty_maps" / f"{case_id}.nii.gz")):
            assert np.allclose(image.GetSpacing(), SPACING_XYZ) and np.allclose(image.GetOrigin(), ORIGIN)
            assert np.allclose(image.GetDirection(), DIRECTION)
    with open(tmp_path / "out" / "uncertainty_scores.csv") as f:
        table = list(csv.DictReader(f))
    assert [(r["case"], r["fold"]) for r in table] == [("x", "0"), ("y", "1")]
    saved = json.loads((tmp_path / "out" / "uncertainty_scores.json").read_text())
    assert saved["select_fold"] and saved["cases"][0]["uncertainty_map_file"] == "uncertainty_maps/x.nii.gz"
    assert saved["warnings"] == []  # both folds hold the same number of checkpoints
    assert (tmp_path / "out" / "plans.json").is_file() and (tmp_path / "out" / "dataset.json").is_file()


def test_the_regional_map_blurs_in_millimetres_of_the_case_spacing(tmp_path, monkeypatch):
    from nnunetv2.uncertainty import measures
    from nnunetv2.uncertainty.measures import class_entropy_regional

    monkeypatch.setattr(measures, "REGIONAL_SIGMA", 1.0)  # a blur the tiny 4 x 6 x 8 case can show
    members = [_one_hot(_labels(1 if k % 2 == 0 else 2)) for k in range(4)]
    run = _write_run(tmp_path / "run", {"z": {0: members}})
    compute_uncertainty(run, tmp_path / "out", measure="class_entropy_regional", show_progress=False)
    written = sitk.GetArrayFromImage(_read(tmp_path / "out" / "uncertainty_maps" / "z.nii.gz")) / 1000
    stacked = np.stack(members).astype(np.float16).astype(np.float32)  # as stored
    expected = class_entropy_regional(stacked, spacing=SPACING_XYZ[::-1])  # array order: 2 mm slices
    assert np.abs(written - expected).max() <= 1e-3
    assert np.abs(written - class_entropy_regional(stacked)).max() > 0.02  # not the same voxels of blur on every axis


def test_one_ensemble_of_all_folds_with_references(run, tmp_path):
    references = tmp_path / "labels"
    references.mkdir()
    write_image(_labels(1), references / "x.nii.gz")
    write_image(_labels(2), references / "y.nii.gz")
    report = compute_uncertainty(
        run, tmp_path / "out", measure="t_test", reference_folder=references, show_progress=False
    )
    rows = {r["case"]: r for r in report["cases"]}
    assert {r["fold"] for r in rows.values()} == {"all_folds"} and rows["x"]["num_checkpoints"] == 6
    assert "score_fold_0" not in rows["x"]
    # in x five of six checkpoints say 1 in the object: the t-test tells the classes apart (p ~ 0.02)
    assert rows["x"]["score"] == rows["x"]["score_t_test"] == 0.0
    assert rows["x"]["dice"] == 1.0 and rows["y"]["dice"] == 0.0
    assert "spearman_dice_vs_score" in report and (tmp_path / "out" / "dice_vs_uncertainty.png").stat().st_size > 0


def test_t_test_flags_the_undecided_object(tmp_path):
    tied = [_one_hot(_labels(1 + k % 2)) for k in range(4)]  # two say 1, two say 2
    report = compute_uncertainty(
        _write_run(tmp_path / "run", {"z": {0: tied}}),
        tmp_path / "out",
        measure="t_test",
        border_width=0,
        show_progress=False,
    )
    assert report["cases"][0]["score"] == 1.0
    flagged = sitk.GetArrayFromImage(_read(tmp_path / "out" / "uncertainty_maps" / "z.nii.gz"))
    assert (flagged[OBJECT] == 1000).all() and flagged.sum() == 1000 * _labels(1).astype(bool).sum()


def test_cli_and_errors(run, tmp_path, capsys):
    uncertainty_entry(["-i", str(run), "-o", str(tmp_path / "cli"), "--select_fold", "--disable_progress_bar"])
    assert "2 case(s), mean class_entropy score" in capsys.readouterr().out
    assert set(MEASURE_NAMES) == set(MEASURES)

    def error_of(argv):
        with pytest.raises(SystemExit) as exit_info:
            uncertainty_entry(argv + ["--disable_progress_bar"])
        assert exit_info.value.code == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and len(err.splitlines()) == 1
        return err

    assert "checkpoint_predictions.json: not found; predict with nnUNetv2_predict_checkpoints first" in error_of(
        ["-i", str(tmp_path), "-o", str(tmp_path / "o")]
    )
    assert "the output folder must differ" in error_of(["-i", str(run), "-o", str(run)])
    assert "reference segmentation of case 'x' not found" in error_of(
        ["-i", str(run), "-o", str(tmp_path / "o"), "--labels", str(tmp_path)]
    )
    assert "the border width must be 0 or more" in error_of(
        ["-i", str(run), "-o", str(tmp_path / "o"), "-border", "-1"]
    )
    (run / "checkpoints" / "fold_1" / "checkpoint_cycle1_epoch2" / "y.npz").unlink()
    assert "y.npz: probabilities of case 'y' not found" in error_of(["-i", str(run), "-o", str(tmp_path / "o")])


def test_regions_are_refused(tmp_path):
    regions = dict(DATASET_JSON, labels={"background": 0, "whole": [1, 2], "core": 2}, regions_class_order=[1, 2])
    run = _write_run(tmp_path / "run", {"x": {0: _members(True)}}, dataset_json=regions)
    with pytest.raises(InferenceError, match="region-based labels have no softmax over classes"):
        compute_uncertainty(run, tmp_path / "out")


def test_unequal_folds_under_fold_selection_are_recorded(tmp_path):
    run = _write_run(tmp_path / "run", {"x": {0: _members(True), 1: _members(False)[:1]}})
    report = compute_uncertainty(run, tmp_path / "out", select_fold=True, show_progress=False)
    saved = json.loads((tmp_path / "out" / "uncertainty_scores.json").read_text())
    assert report["warnings"] == saved["warnings"] and len(saved["warnings"]) == 1
    assert saved["warnings"][0].startswith("--select_fold: the folds have different numbers of checkpoints")
