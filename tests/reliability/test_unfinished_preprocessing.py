"""A killed preprocessing run is visible: training refuses it (naming what is missing) and writes no splits from it;
an existing split that misses cases gets a warning."""

from __future__ import annotations

import json

import pytest

from nnunetv2.cli.train import train_entry
from nnunetv2.dataset.preprocessed_case import PREPROCESSING_RECORD_NAME, list_complete_preprocessed_cases
from nnunetv2.exceptions import PreprocessingError
from nnunetv2.experiment_planning.pipeline import plan_and_preprocess
from nnunetv2.preprocessing import preprocessor
from nnunetv2.training.splits import train_val_cases
from tests.reliability.conftest import RAW_NAME, assert_one_error_line, run_entry


def _preprocess(**kwargs) -> None:
    plan_and_preprocess([RAW_NAME], configurations=["3d_fullres"], num_processes=1, show_progress=False, **kwargs)


def _killed_after(num_cases: int, monkeypatch):
    """Make preprocessing stop like a killed process after ``num_cases`` cases; return the real case function."""
    original = preprocessor._preprocess_case
    done = []

    def dies_midway(job):
        if len(done) == num_cases:
            raise KeyboardInterrupt  # what Ctrl-C or a kill leaves: no code after this point runs
        done.append(original(job))
        return done[-1]

    monkeypatch.setattr(preprocessor, "_preprocess_case", dies_midway)
    return original


def test_training_refuses_a_killed_preprocessing_and_writes_no_splits(raw_dataset, nnunet_env, monkeypatch, capsys):
    original = _killed_after(2, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        _preprocess()
    preprocessed = nnunet_env["nnUNet_preprocessed"] / RAW_NAME
    data_folder = preprocessed / "nnUNetPlans_3d_fullres"
    record = json.loads((data_folder / PREPROCESSING_RECORD_NAME).read_text())
    assert record["complete"] is False and len(record["cases"]) == 5

    code, stderr = run_entry(monkeypatch, capsys, train_entry, RAW_NAME, "3d_fullres", "0")
    assert_one_error_line(
        code, stderr, "preprocessing is incomplete: 3 of 5 cases are missing (case_002, case_003, case_004)"
    )
    assert not (preprocessed / "splits_final.json").exists()
    assert not (nnunet_env["nnUNet_results"] / RAW_NAME).exists()

    monkeypatch.setattr(preprocessor, "_preprocess_case", original)
    _preprocess()  # rerun to completion: accepted
    assert list_complete_preprocessed_cases(data_folder) == [f"case_{i:03d}" for i in range(5)]


def test_a_deleted_case_after_completion_is_named(raw_dataset, nnunet_env):
    _preprocess()
    data_folder = nnunet_env["nnUNet_preprocessed"] / RAW_NAME / "nnUNetPlans_3d_fullres"
    (data_folder / "case_003.b2nd").unlink()
    with pytest.raises(PreprocessingError, match=r"1 of 5 cases are missing \(case_003\)"):
        list_complete_preprocessed_cases(data_folder)


def test_a_folder_without_record_is_taken_as_it_is(tmp_path):
    # hand-made or older preprocessed folders: no record, the files decide
    (tmp_path / "data").mkdir()
    assert list_complete_preprocessed_cases(tmp_path / "data") == []


def test_a_split_that_misses_cases_is_warned_about(tmp_path, caplog):
    cases = [f"case_{i:03d}" for i in range(16)]
    old_split = [{"train": cases[:5], "val": cases[5:7]}] * 5  # written when only 7 cases existed
    (tmp_path / "splits_final.json").write_text(json.dumps(old_split))
    train, val = train_val_cases(tmp_path, cases, 0)
    assert (train, val) == (cases[:5], cases[5:7])  # the user's split is kept...
    assert "9 of the 16 preprocessed cases are in no fold (case_007, case_008" in caplog.text  # ...but not silently


def test_a_full_disk_during_preprocessing_is_one_line_and_stays_incomplete(raw_dataset, nnunet_env, monkeypatch):
    import blosc2

    calls = []
    real_asarray = blosc2.asarray

    def disk_full_on_fifth(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("Error while writing the chunk")  # what blosc2 says on a full disk
        return real_asarray(*args, **kwargs)

    monkeypatch.setattr(blosc2, "asarray", disk_full_on_fifth)
    with pytest.raises(PreprocessingError, match=r"case 'case_002': .*case_002.b2nd: cannot write the preprocessed"):
        _preprocess()
    data_folder = nnunet_env["nnUNet_preprocessed"] / RAW_NAME / "nnUNetPlans_3d_fullres"
    assert not list(data_folder.glob(".*"))  # no temporary file left
    with pytest.raises(PreprocessingError, match="3 of 5 cases are missing"):
        list_complete_preprocessed_cases(data_folder)
