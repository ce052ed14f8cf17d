"""Our version satisfies the nnU-Net v2 requirements other packages declare, so pip keeps our nnunetv2.

pip decides from the installed distribution's name and version alone: the check installs, into a
bare virtual environment, a distribution record of ``nnunetv2`` with our version (from
pyproject.toml) and asks pip, offline, what installing a package that requires ``nnunetv2>=2.5``
would do. The control with a version below 2.5 shows what happens otherwise.
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
import tomllib
from packaging.specifiers import SpecifierSet
from packaging.version import Version

import nnunetv2

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_the_version_is_upstreams_release_plus_our_local_label():
    assert nnunetv2.__version__ == VERSION
    version = Version(VERSION)
    assert version.public == "2.8.1" and version.local.startswith("sparse")
    for requirement in (">=2.5", "==2.8.1", ">=2.5,<3", "~=2.8", ">=2.1.1"):
        assert version in SpecifierSet(requirement), requirement


def _bare_venv_with_nnunetv2(folder: Path, version: str) -> Path:
    venv.EnvBuilder(with_pip=False).create(folder)
    python = folder / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    record = Path(site) / f"nnunetv2-{version}.dist-info"
    record.mkdir(parents=True)
    (record / "METADATA").write_text(f"Metadata-Version: 2.1\nName: nnunetv2\nVersion: {version}\n")
    (record / "INSTALLER").write_text("pip\n")
    (record / "RECORD").write_text("")
    return python


def _wheel_requiring_nnunetv2(folder: Path) -> Path:
    wheel = folder / "needs_nnunet-0.1-py3-none-any.whl"
    info = "needs_nnunet-0.1.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("needs_nnunet.py", "")
        archive.writestr(
            f"{info}/METADATA",
            "Metadata-Version: 2.1\nName: needs-nnunet\nVersion: 0.1\nRequires-Dist: nnunetv2>=2.5\n",
        )
        archive.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{info}/RECORD", "")
    return wheel


def _pip_dry_run(python: Path, wheel: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pip", "--python", str(python), "install", "--dry-run", "--no-index"]
    return subprocess.run([*command, "--report", "-", "--quiet", str(wheel)], capture_output=True, text=True)


@pytest.mark.parametrize("installed", [VERSION, "0.1.0"])
def test_pip_keeps_our_nnunetv2_for_a_package_requiring_nnunetv2_2_5(tmp_path, installed):
    python = _bare_venv_with_nnunetv2(tmp_path / "venv", installed)
    result = _pip_dry_run(python, _wheel_requiring_nnunetv2(tmp_path))
    if installed == VERSION:
        assert result.returncode == 0, result.stderr
        to_install = [item["metadata"]["name"] for item in json.loads(result.stdout)["install"]]
        assert to_install == ["needs-nnunet"]  # nnunetv2 stays as it is
    else:  # the control: pip would have to replace it (and, offline, cannot)
        assert result.returncode != 0 and "nnunetv2>=2.5" in result.stderr
