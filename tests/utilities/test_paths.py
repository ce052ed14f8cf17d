import logging

from nnunetv2 import paths


def test_env_vars_win(monkeypatch, tmp_path):
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    assert paths.raw_folder() == tmp_path / "raw"


def test_default_under_home_is_announced_once(monkeypatch, tmp_path, caplog):
    monkeypatch.delenv("nnUNet_results", raising=False)
    monkeypatch.setenv("NNUNET_DEFAULT_ROOT", str(tmp_path))
    monkeypatch.setattr(paths, "_announced", set())
    with caplog.at_level(logging.WARNING):
        assert paths.results_folder() == tmp_path / "nnUNet_results"
        assert paths.results_folder() == tmp_path / "nnUNet_results"
    assert sum("nnUNet_results is not set" in r.message for r in caplog.records) == 1
