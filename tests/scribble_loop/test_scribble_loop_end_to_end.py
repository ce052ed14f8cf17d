"""nnUNetv2_scribble_loop end to end on a tiny generated 3D dataset: two rounds, interrupted twice and resumed,
the command line on the finished folder, and the one-line errors of bad requests."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from nnunetv2.exceptions import DatasetError, NnUNetError, TrainingError
from nnunetv2.formats.model_folder import model_folder
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
from nnunetv2.scribble_loop.loop import ScribbleLoopRequest, run_scribble_loop
from tests.scribble_loop.loop_setup import prepared_scribble_loop

DATASET = "Dataset993_LoopTest"
UNANNOTATED = 3  # two foreground classes, no ignore label: undrawn voxels hold the number of classes


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """nnU-Net folders with a preprocessed 3-case dataset and a (barely) trained preliminary model on fold 'all';
    a pool of 3 cases with simulated correction scribbles (one case has none) and a test set of 2 cases."""
    root = tmp_path_factory.mktemp("scribble_loop")
    with prepared_scribble_loop(root, 993, "LoopTest", UNANNOTATED, seed=1) as cases:
        yield root, cases


def _request(root: Path, output: str, **overrides) -> ScribbleLoopRequest:
    settings = dict(
        dataset_name_or_id=993,
        configuration="3d_fullres",
        fold="all",
        pool_images=str(root / "pool" / "images"),
        scribbles=str(root / "scribbles"),
        output_folder=str(root / output),
        num_rounds=2,
        epochs_per_round=2,
        iterations_per_epoch=2,
        val_iterations_per_epoch=1,
        save_every=1,
        seed=0,
        num_data_workers=0,
        pool_reference=str(root / "pool" / "labels"),
        test_images=str(root / "test" / "images"),
        test_reference=str(root / "test" / "labels"),
        show_progress=False,
    )
    return ScribbleLoopRequest(**{**settings, **overrides})


def _interrupt_on_call(monkeypatch, owner, name: str, call: int) -> None:
    """Make ``owner.name`` raise KeyboardInterrupt on its ``call``-th call (1-based), as a user's Ctrl+C would."""
    original = getattr(owner, name)
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, interrupted)


def test_two_rounds_resume_after_interruptions(prepared, monkeypatch, caplog, capsys):
    from nnunetv2.scribble_loop import pseudo_label_folder
    from nnunetv2.training.trainers.nnUNetTrainerConfidenceWeighted import nnUNetTrainerConfidenceWeighted

    root, cases = prepared
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(var, str(root / var))
    request = _request(root, "loop")
    loop = root / "loop"
    caplog.set_level(logging.INFO)

    # 1. stopped in the second epoch of round 1: the first epoch's checkpoint_latest stays
    with monkeypatch.context() as patch:
        _interrupt_on_call(patch, nnUNetTrainerConfidenceWeighted, "on_epoch_start", 2)
        with pytest.raises(KeyboardInterrupt):
            run_scribble_loop(request)
    state = json.loads((loop / "loop_state.json").read_text())
    assert state["completed_rounds"] == [0]
    assert (loop / "round_1" / "model" / "fold_all" / "checkpoint_latest.pth").is_file()
    assert (loop / "round_1" / "training_data").is_dir()
    preliminary = model_folder(DATASET, "nnUNetTrainer", "nnUNetPlans", "3d_fullres") / "fold_all"
    assert f"pretrained weights from {preliminary / 'checkpoint_final.pth'}" in caplog.text
    # 2. stopped after round 2's training, while its pseudo labels were being made (calls: round 1, round 2)
    with monkeypatch.context() as patch:
        _interrupt_on_call(patch, pseudo_label_folder, "make_pseudo_labels_for_folder", 2)
        with pytest.raises(KeyboardInterrupt):
            run_scribble_loop(request)
    assert "round 1: continuing training at epoch 1" in caplog.text
    round_1_final = loop / "round_1" / "model" / "fold_all" / "checkpoint_final.pth"
    assert f"pretrained weights from {round_1_final}" in caplog.text  # round 2 starts from round 1's network
    assert json.loads((loop / "loop_state.json").read_text())["completed_rounds"] == [0, 1]
    round_2_checkpoint = loop / "round_2" / "model" / "fold_all" / "checkpoint_final.pth"
    trained_at = round_2_checkpoint.stat().st_mtime_ns
    round_0_metrics_at = (loop / "round_0" / "metrics.json").stat().st_mtime_ns
    # 3. runs to the end without training anything again
    caplog.clear()
    metrics = run_scribble_loop(request)
    assert round_2_checkpoint.stat().st_mtime_ns == trained_at
    assert (loop / "round_0" / "metrics.json").stat().st_mtime_ns == round_0_metrics_at
    assert "pretrained weights" not in caplog.text and "continuing training" not in caplog.text
    assert json.loads((loop / "loop_state.json").read_text())["completed_rounds"] == [0, 1, 2]

    # every round kept its own outputs; the training data was only needed while training
    pool = cases[:3]
    for r in range(3):
        folder = loop / f"round_{r}"
        assert json.loads((folder / "metrics.json").read_text()) == metrics[r] and metrics[r]["round"] == r
        for case in pool:
            assert (folder / "pseudo_labels" / f"{case}.nii.gz").is_file()
            assert (folder / "pseudo_labels" / "confidence" / f"{case}_confidence.nii.gz").is_file()
            assert (folder / "predictions" / f"{case}.npz").is_file()
        assert len(list((folder / "test_predictions").glob("*.nii.gz"))) == 2
        assert not (folder / "training_data").exists()
        assert (r > 0) == (folder / "model" / "fold_all" / "checkpoint_final.pth").is_file()
    for r in (1, 2):
        training = metrics[r]["training"]
        assert training["epochs"] == 2 and np.isfinite(training["final_train_loss"])

    # the metrics are the files' contents
    io = SimpleITKIO()
    scribbled = total = 0
    for case in pool:
        reference, _ = io.read_seg(root / "pool" / "labels" / f"{case}.nii.gz")
        total += reference.size
        scribble_file = root / "scribbles" / f"{case}.nii.gz"
        if scribble_file.is_file():
            scribbles, _ = io.read_seg(scribble_file)
            scribbled += int((scribbles != UNANNOTATED).sum())
            for r in range(3):  # every round's pseudo labels keep the drawn classes
                pseudo, _ = io.read_seg(loop / f"round_{r}" / "pseudo_labels" / f"{case}.nii.gz")
                drawn = scribbles != UNANNOTATED
                assert np.array_equal(pseudo[drawn], scribbles[drawn])
        for r in (1, 2):  # a label changes between rounds only to a class the new network gives >= 0.8
            before, _ = io.read_seg(loop / f"round_{r - 1}" / "pseudo_labels" / f"{case}.nii.gz")
            after, _ = io.read_seg(loop / f"round_{r}" / "pseudo_labels" / f"{case}.nii.gz")
            probabilities = np.load(loop / f"round_{r}" / "predictions" / f"{case}.npz")["probabilities"]
            support = np.take_along_axis(probabilities, after.astype(np.int64), 0)
            assert np.all(support[after != before] >= 0.8 - 1e-6)
    assert metrics[0]["pool"]["kept_previous_voxels"] == 0
    for r in range(3):
        assert metrics[r]["pool"]["scribbled_voxels"] == scribbled and metrics[r]["pool"]["voxels"] == total
        for key in ("prediction_dice", "pseudo_label_dice"):
            assert 0 <= metrics[r]["pool"][key]["mean"] <= 1
        assert set(metrics[r]["test"]["dice"]["per_label"]) == {"1", "2"}

    # 4. the command on the finished folder only reports; other settings are refused in one line
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "nnUNetv2_scribble_loop",
            "-d",
            "993",
            "-c",
            "3d_fullres",
            "-f",
            "all",
            "-i",
            request.pool_images,
            "-s",
            request.scribbles,
            "-o",
            str(loop),
            "-num_epochs",
            "2",
            "-num_iterations_per_epoch",
            "2",
            "-num_val_iterations_per_epoch",
            "1",
            "-save_every",
            "1",
            "-seed",
            "0",
            "--pool_reference",
            request.pool_reference,
            "--quiet",
        ],
    )
    from nnunetv2.cli.scribble_loop import scribble_loop_entry

    scribble_loop_entry()
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in rows] == ["0", "1", "2"]
    assert float(rows[1][2]) == pytest.approx(metrics[1]["pool"]["pseudo_label_dice"]["mean"], abs=1e-4)
    monkeypatch.setattr(sys, "argv", sys.argv[:-1] + ["-num_epochs", "3"])
    with pytest.raises(SystemExit) as exit_info:
        scribble_loop_entry()
    assert exit_info.value.code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "epochs_per_round=2" in error and len(error.splitlines()) == 1


def test_bad_requests_fail_with_one_line(prepared, monkeypatch, tmp_path):
    root, cases = prepared
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(var, str(root / var))
    checks = [
        (dict(fold=3), TrainingError, "fold_3/checkpoint_final.pth: the preliminary model's checkpoint is not there"),
        (dict(test_reference=None), NnUNetError, "a test set needs both its images and its reference labels"),
        (dict(num_rounds=0), NnUNetError, "num_rounds must be an integer >= 1"),
        (dict(scribble_sample_probability=2.0), NnUNetError, "scribble_sample_probability must be a number in"),
        (dict(scribbles=str(tmp_path / "nowhere")), NnUNetError, "nowhere: folder not found"),
        (dict(pseudo_label_parameters={"treshold": 3.0}), NnUNetError, "unknown pseudo-label parameter"),
        (dict(pseudo_label_parameters={"rule": "paper"}), NnUNetError, "rule must be one of published, network_aware"),
        (
            dict(update_min_probability=-0.5),
            NnUNetError,
            r"update_min_probability must be a number in \[0, 1\], got -0.5",
        ),
        (
            dict(pseudo_label_parameters={"resolved_stroke_agreement": 0.0}),
            NnUNetError,
            r"resolved_stroke_agreement must be a number in \(0, 1\]",
        ),
    ]
    for overrides, error, message in checks:
        with pytest.raises(error, match=message):
            run_scribble_loop(_request(root, "bad_loop", **overrides))
    # a pool case named like a labeled case
    clash = tmp_path / "clash"
    clash.mkdir()
    shutil.copy(root / "pool" / "images" / f"{cases[0]}_0000.nii.gz", clash / "case_000_0000.nii.gz")
    with pytest.raises(DatasetError, match="pool case 'case_000' has the name of a labeled case"):
        run_scribble_loop(_request(root, "bad_loop", pool_images=str(clash)))
    # an output folder that holds something else
    occupied = root / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    with pytest.raises(NnUNetError, match="not empty and holds no loop_state.json"):
        run_scribble_loop(_request(root, "occupied"))
    assert not (root / "bad_loop").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--rule", "paper"], "rule must be one of published, network_aware, got 'paper'"),
        (["--resolved_stroke_agreement", "1.5"], "resolved_stroke_agreement must be a number in (0, 1], got 1.5"),
        (["--update_min_probability", "2"], "update_min_probability must be a number in [0, 1], got 2.0"),
        (["--recalibration_scale", "-1"], "recalibration_scale must be a number > 0, got -1.0"),
    ],
)
def test_bad_rule_flags_of_the_loop_command_fail_with_one_line(prepared, monkeypatch, capsys, tmp_path, flags, message):
    root, _ = prepared
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(var, str(root / var))
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "nnUNetv2_scribble_loop",
            "-d",
            "993",
            "-c",
            "3d_fullres",
            "-f",
            "all",
            "-i",
            str(root / "pool" / "images"),
            "-s",
            str(root / "scribbles"),
            "-o",
            str(tmp_path / "loop"),
            "--quiet",
            *flags,
        ],
    )
    from nnunetv2.cli.scribble_loop import scribble_loop_entry

    with pytest.raises(SystemExit) as exit_info:
        scribble_loop_entry()
    error = capsys.readouterr().err
    assert exit_info.value.code == 1 and error.startswith("error: ") and error.count("\n") == 1
    assert message in error, error
    assert not (tmp_path / "loop").exists()
