import json

import pytest

from nnunetv2.exceptions import TrainingError
from nnunetv2.formats.folds import parse_fold
from nnunetv2.training.splits import generate_crossval_split, load_or_create_splits, train_val_cases

CASES = [f"case_{i:02d}" for i in range(7)]


def test_split_is_nnunet_v2_kfold():
    splits = generate_crossval_split(list(reversed(CASES)))
    # sklearn KFold(5, shuffle=True, random_state=12345) permutes 7 indices to [6, 3, 4, 0, 1, 5, 2]
    assert [s["val"] for s in splits] == [
        ["case_03", "case_06"],
        ["case_00", "case_04"],
        ["case_01"],
        ["case_05"],
        ["case_02"],
    ]
    for s in splits:
        assert s["train"] == sorted(set(CASES) - set(s["val"]))
    assert generate_crossval_split(CASES) == splits


def test_splits_file_created_once_and_reused(tmp_path):
    first = load_or_create_splits(tmp_path, CASES)
    assert json.loads((tmp_path / "splits_final.json").read_text()) == first
    custom = [{"train": ["case_00"], "val": ["case_01"]}]
    (tmp_path / "splits_final.json").write_text(json.dumps(custom))
    assert load_or_create_splits(tmp_path, CASES) == custom
    assert train_val_cases(tmp_path, CASES, 0) == (["case_00"], ["case_01"])


def test_fold_all_uses_every_case_for_both(tmp_path):
    assert train_val_cases(tmp_path, CASES, "all") == (CASES, CASES)
    assert not (tmp_path / "splits_final.json").exists()


def test_split_errors(tmp_path):
    with pytest.raises(TrainingError, match=r"4 training case\(s\) are too few for 5-fold cross-validation"):
        train_val_cases(tmp_path, CASES[:4], 0)
    with pytest.raises(TrainingError, match=r"fold 5 is out of range: .*splits_final.json has 5 folds \(0-4\)"):
        train_val_cases(tmp_path, CASES, 5)
    with pytest.raises(TrainingError, match="fold must be an integer or 'all', got 'first'"):
        parse_fold("first")
    (tmp_path / "splits_final.json").write_text(json.dumps([{"train": ["nope"], "val": ["case_00"]}]))
    with pytest.raises(TrainingError, match="names case 'nope' which is not preprocessed"):
        train_val_cases(tmp_path, CASES, 0)
    (tmp_path / "splits_final.json").write_text(json.dumps({"train": []}))
    with pytest.raises(TrainingError, match="expected a list of"):
        train_val_cases(tmp_path, CASES, 0)
    assert parse_fold("3") == 3 and parse_fold("all") == "all"
