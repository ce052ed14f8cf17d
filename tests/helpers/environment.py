"""Point nnU-Net's folder variables at a test's own root, with single-threaded, worker-free training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ENV_VARS = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")


def use_test_folders(root: Path, mp: pytest.MonkeyPatch) -> None:
    """Set nnUNet_raw/_preprocessed/_results below ``root`` (created), no augmentation workers, one thread."""
    for var in ENV_VARS:
        (root / var).mkdir(exist_ok=True)
        mp.setenv(var, str(root / var))
    mp.setenv("nnUNet_n_proc_DA", "0")
    mp.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
