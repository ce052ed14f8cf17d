"""Pseudo labels on CUDA (geodesic distance, recalibration around the strokes) agree with the CPU's; skipped
without CUDA (scripts/gpu_check.sh runs them)."""

from __future__ import annotations

import numpy as np
import pytest

from nnunetv2.scribble_loop.pseudo_labels import geodesic_pseudo_label

pytestmark = pytest.mark.cuda

UNANNOTATED = 3


def _case():
    rng = np.random.default_rng(0)
    shape = (12, 40, 48)
    image = rng.normal(0, 1, (1, *shape)).astype(np.float32)
    image[0, :, 10:30, 12:36] += 3
    logits = rng.normal(0, 1, (3, *shape)).astype(np.float32)
    logits[1, :, 10:30, 12:36] += 1.5
    probabilities = np.exp(logits) / np.exp(logits).sum(0)
    scribbles = np.full(shape, UNANNOTATED, dtype=np.uint8)
    scribbles[6, 20, 14:34] = 1
    scribbles[3, 5:35, 40] = 0
    scribbles[8, 35, 5:20] = 2
    return image, probabilities.astype(np.float32), scribbles


@pytest.mark.parametrize("recalibration_sigma", [0.0, 6.0])
def test_cuda_pseudo_labels_equal_the_cpu_ones(recalibration_sigma):
    image, probabilities, scribbles = _case()
    results = {
        device: geodesic_pseudo_label(
            image, probabilities, scribbles, [3.0, 1.0, 1.0], UNANNOTATED, device=device,
            recalibration_sigma=recalibration_sigma,
        )
        for device in ("cpu", "cuda")
    }  # fmt: skip
    (cpu_label, cpu_confidence), (cuda_label, cuda_confidence) = results["cpu"], results["cuda"]
    assert (cpu_label == cuda_label).mean() >= 0.999
    assert np.abs(cpu_confidence - cuda_confidence).max() < 1e-3
