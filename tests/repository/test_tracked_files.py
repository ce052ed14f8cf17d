"""Tracked files must work on any machine: no absolute path of the machine that wrote them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# home and work folders of a particular machine (a virtual environment, a checkout, a user's data)
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|root|home/\w+|Users/\w+)/[\w.-]+")


def _tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = [ROOT / line for line in out.splitlines()]
    return [f for f in files if f.is_file() and f.suffix not in {".png", ".zip", ".pth", ".gz", ".b2nd", ".npz"}]


def test_no_tracked_file_names_an_absolute_machine_path():
    offenders = []
    for path in _tracked_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if MACHINE_PATH.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not offenders, "absolute machine paths in tracked files:\n" + "\n".join(offenders)


def test_the_pattern_catches_a_virtual_environment_path():
    assert MACHINE_PATH.search('BIN = Path("' + "/wor" + 'k/venv/bin")')
    assert MACHINE_PATH.search("/ho" + "me/alice/nnUNet_raw")
    assert not MACHINE_PATH.search("nnUNet_raw/Dataset001_X/imagesTr")
