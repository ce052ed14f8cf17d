"""Fixtures shared by the whole suite: nnU-Net folders in tmp dirs and tiny synthetic datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnunetv2.dataset.synthetic import generate_synthetic_dataset


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``cuda`` when no CUDA device is present (they run in scripts/gpu_check.sh)."""
    marked = [item for item in items if item.get_closest_marker("cuda") is not None]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in marked:
        item.add_marker(skip)


@pytest.fixture
def nnunet_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Point nnUNet_raw / nnUNet_preprocessed / nnUNet_results at fresh folders under tmp_path."""
    folders = {}
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        folders[var] = tmp_path / var
        folders[var].mkdir()
        monkeypatch.setenv(var, str(folders[var]))
    return folders


@pytest.fixture(scope="session")
def synthetic_dataset_3d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only raw dataset folder: 6 MR-like 3D cases (16, 32, 32) at spacing (3, 1, 1), 2 classes.

    Shared by the session: copy it (shutil.copytree) before changing anything in it.
    """
    folder = tmp_path_factory.mktemp("shared_raw") / "Dataset901_Synthetic3D"
    generate_synthetic_dataset(folder, num_cases=6, shape=(16, 32, 32), spacing=(3.0, 1.0, 1.0))
    return folder


@pytest.fixture(scope="session")
def synthetic_dataset_2d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only raw dataset folder: 6 MR-like 2D PNG cases (48, 48), 2 classes. Copy before changing."""
    folder = tmp_path_factory.mktemp("shared_raw") / "Dataset902_Synthetic2D"
    generate_synthetic_dataset(folder, num_cases=6, shape=(48, 48), file_ending=".png")
    return folder
