"""Helpers of the reliability suite: feed one fault, expect one clear line, a non-zero exit, earlier outputs intact."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunetv2.dataset.synthetic import generate_synthetic_dataset

RAW_NAME = "Dataset701_Reliability"


def rewrite(path: Path, change_array: Callable[[np.ndarray], np.ndarray] | None = None, **geometry) -> None:
    """Rewrite an image file with a changed array and/or spacing/origin/direction (ITK's x-first order)."""
    image = sitk.ReadImage(str(path))
    array = sitk.GetArrayFromImage(image)
    new = sitk.GetImageFromArray(change_array(array) if change_array else array)
    if new.GetDimension() == image.GetDimension():
        for name in ("Spacing", "Origin", "Direction"):
            getattr(new, f"Set{name}")(geometry.get(name.lower(), getattr(image, f"Get{name}")()))
    sitk.WriteImage(new, str(path))


def make_raw_dataset(folder: Path, **kwargs) -> Path:
    """A tiny 3D raw dataset in NRRD (which keeps NaN and inf, unlike ITK's NIfTI reader)."""
    options = dict(num_cases=5, shape=(6, 12, 12), file_ending=".nrrd") | kwargs
    generate_synthetic_dataset(folder, **options)
    return folder


def run_entry(monkeypatch: pytest.MonkeyPatch, capsys, entry: Callable[[], None], *argv: str) -> tuple[int, str]:
    """Run a console entry point in-process; return (exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["nnUNetv2_x", *argv])
    code = 0
    try:
        entry()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    return code, capsys.readouterr().err


def assert_one_error_line(code: int, stderr: str, *fragments: str, expected_code: int = 1) -> str:
    """Assert a non-zero exit with exactly one ``error:`` line (holding every fragment) and no traceback."""
    assert code == expected_code, stderr
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def can_use_permissions() -> bool:
    """chmod makes a folder read-only only for users other than root."""
    return hasattr(os, "geteuid") and os.geteuid() != 0


@pytest.fixture
def raw_dataset(nnunet_env) -> Path:
    """nnUNet_raw/Dataset701_Reliability: 5 small 3D NRRD cases, labels 0-2."""
    return make_raw_dataset(nnunet_env["nnUNet_raw"] / RAW_NAME)
