"""image_file_ending: the one file ending of a folder of images."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnunetv2.exceptions import DatasetError
from nnunetv2.imageio.registry import image_file_ending


def test_the_ending_as_spelled_in_the_folder_bookkeeping_files_skipped(tmp_path: Path) -> None:
    for name in ("a_0000.NII.GZ", "b_0000.NII.GZ", "dataset.json", "a.npz", ".b_0000.nii.gz"):
        (tmp_path / name).write_text("x")
    assert image_file_ending(tmp_path) == ".NII.GZ"


def test_two_endings_or_none_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no image files"):
        image_file_ending(tmp_path)
    (tmp_path / "a_0000.png").write_text("x")
    (tmp_path / "b_0000.nii.gz").write_text("x")
    with pytest.raises(DatasetError, match=r"\.nii\.gz, \.png"):
        image_file_ending(tmp_path)
    with pytest.raises(DatasetError, match="not found"):
        image_file_ending(tmp_path / "missing")
