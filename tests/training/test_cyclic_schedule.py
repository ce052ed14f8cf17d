import numpy as np
import pytest

from nnunetv2.exceptions import TrainingError
from nnunetv2.training.lr_schedule.cyclic import cyclic_poly_lr, ensemble_checkpoint_epochs


def test_one_cycle_is_nnunet_poly():
    lrs = [cyclic_poly_lr(e, 1000, 1, 1e-2) for e in range(1000)]
    assert np.allclose(lrs, [1e-2 * (1 - e / 1000) ** 0.9 for e in range(1000)])


@pytest.mark.parametrize("cycles", [2, 3])
def test_restarts(cycles):
    lrs = np.array([cyclic_poly_lr(e, 30, cycles, 1e-2) for e in range(30)])
    length = 30 // cycles
    restarts = np.flatnonzero(np.isclose(lrs, 1e-2))
    assert restarts.tolist() == [i * length for i in range(cycles)]
    for start in restarts:  # strictly decreasing inside a cycle
        assert (np.diff(lrs[start : start + length]) < 0).all()
    assert np.isclose(lrs[length - 1], 1e-2 * (1 / length) ** 0.9)


def test_checkpoint_epochs():
    assert ensemble_checkpoint_epochs(1000, 1, "sparse") == [699, 759, 819, 879, 939, 999]
    assert ensemble_checkpoint_epochs(100, 2, "sparse") == [34, 37, 40, 43, 46, 49, 84, 87, 90, 93, 96, 99]
    assert ensemble_checkpoint_epochs(60, 2, "late") == list(range(20, 30)) + list(range(50, 60))
    assert ensemble_checkpoint_epochs(12, 3, "late") == list(range(12))


def test_bad_schedule_arguments():
    with pytest.raises(TrainingError, match=r"-num_of_cycles must be an integer in \[1, 5\], got 6"):
        ensemble_checkpoint_epochs(5, 6, "late")
    with pytest.raises(TrainingError, match="unknown checkpoint rule 'dense'"):
        ensemble_checkpoint_epochs(10, 1, "dense")
