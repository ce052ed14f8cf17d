"""UnnUNet's README flow as typed (nnUNetv2_train with cycles, UnnUnet_predict_from_folder,
UnnUnet_run_uncertainty_on_fold) and UnnUNet's definitions (p-value t-test map, edge-ring case score)
as options of nnUNetv2_uncertainty."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from nnunetv2.cli.train import train_entry
from nnunetv2.cli.uncertainty import uncertainty_entry
from nnunetv2.cli.unnunet import predict_from_folder_entry, run_uncertainty_on_fold_entry
from nnunetv2.dataset.synthetic import generate_synthetic_dataset_in_raw
from nnunetv2.experiment_planning.pipeline import plan_and_preprocess
from nnunetv2.uncertainty.measures import edge_ring, edge_ring_score, t_test_p_values
from tests.helpers.environment import use_test_folders

DATASET = "Dataset973_UnnUNetFlow"


@pytest.fixture(scope="module")
def predicted(tmp_path_factory) -> Path:
    """Fold 0 trained as UnnUNet's README says (2 cycles, 'late'), then its test images predicted per checkpoint."""
    root = tmp_path_factory.mktemp("unnunet")
    with pytest.MonkeyPatch.context() as mp:
        use_test_folders(root, mp)
        generate_synthetic_dataset_in_raw(
            973, "UnnUNetFlow", num_cases=5, shape=(32, 32), file_ending=".png", num_test_cases=2
        )
        plan_and_preprocess([973], ["2d"], num_processes=1, num_processes_fingerprint=1, show_progress=False)
        train_entry(
            [DATASET, "2d", "0", "--npz", "-device", "cpu", "-num_epochs", "4", "-num_of_cycles", "2"]
            + ["-checkpoints", "late", "-num_iterations_per_epoch", "2", "-num_val_iterations_per_epoch", "1"]
            + ["-seed", "0"]
        )
        raw = root / "nnUNet_raw" / DATASET
        predict_from_folder_entry(
            ["-dataset", "973", "-fold", "0", "-input_folder", str(raw / "imagesTs")]
            + ["-output_folder", str(root / "proba"), "-rule", "late", "-device", "cpu", "--disable_progress_bar"]
        )
    return root


@pytest.fixture
def env(predicted, monkeypatch) -> Path:
    use_test_folders(predicted, monkeypatch)
    return predicted


def test_predict_from_folder_writes_a_folder_per_checkpoint(env):
    folders = sorted(p.name for p in (env / "proba").iterdir() if p.is_dir() and not p.name.startswith("."))
    assert folders == [f"checkpoint_cycle{c}_epoch{e}" for c, e in [(1, 1), (1, 2), (2, 3), (2, 4)]]
    for folder in folders:
        assert sorted(p.name for p in (env / "proba" / folder).glob("*.npz")) == ["case_005.npz", "case_006.npz"]


@pytest.mark.parametrize("flag", ["--outpot_pred_path", "--output_pred_path"])
def test_run_uncertainty_on_fold_as_typed(env, flag, tmp_path):
    raw = env / "nnUNet_raw" / DATASET
    out = tmp_path / "out"
    run_uncertainty_on_fold_entry(
        ["--proba_dir", str(env / "proba"), "--raw_path", str(raw / "imagesTs"), "--labels", str(raw / "labelsTs")]
        + ["--score_type", "t_test", flag, str(out), "--disable_progress_bar"]
    )
    for case in ("case_005", "case_006"):
        assert (out / f"{case}.png").is_file() and (out / "uncertainty_maps" / f"{case}.png").is_file()
    report = json.loads((out / "uncertainty_scores.json").read_text())
    assert (report["measure"], report["case_score"], report["num_checkpoints"]) == ("t_test_p_value", "edge_ring", 4)
    with open(out / "uncertainty_scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["case_score"] for r in rows] == ["edge_ring", "edge_ring"]
    assert all(float(r["score"]) >= 0 and 0 <= float(r["dice"]) <= 1 for r in rows)


def test_default_output_folder_is_inside_proba_dir(env):
    raw = env / "nnUNet_raw" / DATASET
    run_uncertainty_on_fold_entry(
        ["--proba_dir", str(env / "proba"), "--raw_path", str(raw / "imagesTs"), "--disable_progress_bar"]
    )
    assert (env / "proba" / "unnunet_pred" / "uncertainty_scores.csv").is_file()


def test_rule_must_match_the_training(env, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        predict_from_folder_entry(
            ["-dataset", DATASET, "-fold", "0", "-input_folder", str(tmp_path), "-output_folder", str(tmp_path / "o")]
            + ["-rule", "spars"]
        )
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert "trained with -checkpoints late, so it has no 'sparse' checkpoints" in err and len(err.splitlines()) == 1


def test_unknown_rule_is_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        predict_from_folder_entry(
            ["-dataset", "1", "-fold", "0", "-input_folder", str(tmp_path), "-output_folder", str(tmp_path / "o")]
            + ["-rule", "early"]
        )
    assert exit_info.value.code == 2
    assert "invalid choice: 'early'" in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--score_type", "entropy"], "invalid choice: 'entropy'"),
        (["--raw_path", "missing_folder"], "missing_folder: --raw_path folder not found"),
    ],
)
def test_bad_uncertainty_flags_are_one_line(env, capsys, argv, message):
    args = {"--proba_dir": str(env / "proba"), "--raw_path": str(env / "nnUNet_raw" / DATASET / "imagesTs")}
    args.update(dict(zip(argv[::2], argv[1::2])))
    with pytest.raises(SystemExit):
        run_uncertainty_on_fold_entry([x for kv in args.items() for x in kv])
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]


def test_bad_case_score_is_one_line(env, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        uncertainty_entry(["-i", str(env / "proba"), "-o", str(tmp_path), "-case_score", "ring"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'ring'" in capsys.readouterr().err.strip().splitlines()[-1]


def test_case_score_option_of_nnunetv2_uncertainty(env, tmp_path):
    uncertainty_entry(["-i", str(env / "proba"), "-o", str(tmp_path / "a"), "--disable_progress_bar"])
    uncertainty_entry(
        ["-i", str(env / "proba"), "-o", str(tmp_path / "b"), "-case_score", "edge_ring", "--disable_progress_bar"]
    )
    ours, theirs = (json.loads((tmp_path / x / "uncertainty_scores.json").read_text()) for x in "ab")
    assert (ours["case_score"], theirs["case_score"]) == ("foreground_mean", "edge_ring")
    assert "edge" in theirs["case_score_definition"]
    assert all(0 <= r["score"] <= 1 for r in ours["cases"])
    assert "score_t_test_p_value" in ours["cases"][0]


def test_edge_ring_score_definition():
    segmentation = np.zeros((1, 7, 7), dtype=np.uint8)
    segmentation[0, 2:5, 2:5] = 1
    ring = edge_ring(segmentation)
    assert ring.sum() == 16 and not (ring & (segmentation > 0)).any()
    uncertainty = np.zeros((1, 7, 7), dtype=np.float32)
    uncertainty[0, 0, 0] = 0.5  # outside the ring too: UnnUNet sums the whole map
    uncertainty[0, 3, 3] = 0.3
    assert edge_ring_score(uncertainty, segmentation) == pytest.approx(100 * 0.8 / 16)
    assert edge_ring_score(uncertainty, np.zeros_like(segmentation)) == pytest.approx(100 * 0.8)


def test_p_value_map_matches_welch_t_test():
    from scipy import stats

    rng = np.random.default_rng(0)
    foreground = rng.uniform(0.3, 0.7, size=(5, 4, 4))
    probabilities = np.stack([1 - foreground, foreground], axis=1)  # (T, C, y, x)
    expected = stats.ttest_ind(probabilities[:, 0], probabilities[:, 1], axis=0, equal_var=False).pvalue
    np.testing.assert_allclose(t_test_p_values(probabilities), expected, rtol=1e-4, atol=1e-6)


def test_console_scripts_are_installed():
    bin_folder = Path(sys.executable).parent
    assert (bin_folder / "UnnUnet_predict_from_folder").is_file()
    assert (bin_folder / "UnnUnet_run_uncertainty_on_fold").is_file()
