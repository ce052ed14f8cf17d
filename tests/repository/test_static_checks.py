"""The static checks CI relies on, run as tests so the README's one test command covers them: ruff (lint and
format), the import-layer contract of .importlinter, and mypy over the package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            pytest.fail(
                f"{name} is not installed beside {sys.executable}; install the test extras: pip install -e .[test]"
            )
        return found
    return str(path)


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True)


def test_ruff_lint_passes():
    result = _run(_tool("ruff"), "check", "nnunetv2", "tests", "scripts")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied():
    result = _run(_tool("ruff"), "format", "--check", "nnunetv2", "tests", "scripts")
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_layers_hold():
    result = _run(_tool("lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_passes():
    result = _run(_tool("mypy"))
    assert result.returncode == 0, result.stdout + result.stderr
