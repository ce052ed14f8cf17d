"""Tiny preprocessed cases written the way the preprocessor stores them (blosc2 + class locations)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from nnunetv2.dataset.preprocessed_case import sample_class_locations, save_preprocessed_case


@pytest.fixture
def write_case(tmp_path: Path) -> Callable[..., Path]:
    """Return ``write(case_id, seg, keys, channels=1)``: stores random data beside ``seg`` (1, z, y, x)."""
    folder = tmp_path / "preprocessed"

    def write(case_id: str, seg: np.ndarray, keys: Sequence, channels: int = 1, data: np.ndarray | None = None) -> Path:
        if data is None:
            data = np.random.default_rng(len(case_id)).normal(size=(channels, *seg.shape[1:])).astype(np.float32)
        save_preprocessed_case(
            folder, case_id, data, seg.astype(np.int16), {"spacing": [1.0] * 3}, sample_class_locations(seg, list(keys))
        )
        return folder

    return write
