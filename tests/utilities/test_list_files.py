"""list_files: the one folder listing that skips the dot-files of unfinished writes."""

from __future__ import annotations

from pathlib import Path

from nnunetv2.utilities.file_io import list_files


def test_lists_regular_files_with_the_ending_sorted_without_dot_files(tmp_path: Path) -> None:
    for name in ("b.nii.gz", "a.nii.gz", ".a.nii.gz.tmp.nii.gz", "c.json"):
        (tmp_path / name).write_text("x")
    (tmp_path / "d.nii.gz").mkdir()
    assert [p.name for p in list_files(tmp_path, ".nii.gz")] == ["a.nii.gz", "b.nii.gz"]
    assert [p.name for p in list_files(tmp_path)] == ["a.nii.gz", "b.nii.gz", "c.json"]
