import numpy as np
import pytest
import torch

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.exceptions import TrainingError
from nnunetv2.formats.checkpoint_io import unwrap_state_dict
from nnunetv2.training.checkpointing import load_pretrained_weights
from nnunetv2.training.ddp import split_batch
from nnunetv2.training.logger import TrainingCurves
from nnunetv2.training.lr_schedule.poly import PolyLRScheduler, poly_lr
from nnunetv2.training.pseudo_dice import dice_from_counts, hard_tp_fp_fn, mean_foreground_dice
from nnunetv2.training.run_environment import CpuThreadTrial, cpu_threads_beside_workers, cpu_threads_without_workers


def test_poly_schedule_values():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = PolyLRScheduler(optimizer, 1e-2, 1000)
    assert optimizer.param_groups[0]["lr"] == 1e-2  # built at step 0, as nnU-Net v2's
    for epoch, expected in [(500, 1e-2 * 0.5**0.9), (999, 1e-2 * 0.001**0.9), (1000, 0.0), (1200, 0.0)]:
        scheduler.step(epoch)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(expected) and scheduler.get_last_lr() == [
            optimizer.param_groups[0]["lr"]
        ]
    assert poly_lr(5, 0.1, 10, exponent=1.0) == pytest.approx(0.05)


@pytest.mark.parametrize(
    "batch, world, expected",
    [
        (2, 1, [(2, 0.5)]),  # round(2 * 0.67) = 1 sample uniform, 1 oversampled
        (2, 2, [(1, 0.0), (1, 1.0)]),
        (5, 2, [(3, 0.0), (2, 1.0)]),  # samples 3 and 4 of 5 are oversampled
    ],
)
def test_batch_split_keeps_global_oversampling(batch, world, expected):
    assert [split_batch(batch, 0.33, r, world) for r in range(world)] == expected


def test_batch_smaller_than_world_is_an_error():
    with pytest.raises(TrainingError, match="batch size 2 cannot be split over 3 processes"):
        split_batch(2, 0.33, 0, 3)


def test_pseudo_dice_counts_skip_ignored_voxels():
    labels = LabelManager({"background": 0, "a": 1, "b": 2, "ignore": 3})
    target = torch.tensor([[[[0, 1, 1, 2, 3, 3]]]])  # (b, 1, 1, 6)
    predicted = torch.tensor([[[[0, 1, 2, 2, 1, 2]]]])
    logits = torch.nn.functional.one_hot(predicted[:, 0], 3).permute(0, 3, 1, 2).float()
    tp, fp, fn = hard_tp_fp_fn(logits, target, labels)
    assert tp.tolist() == [1, 1] and fp.tolist() == [0, 1] and fn.tolist() == [1, 0]
    dice = dice_from_counts(tp, fp, fn)
    assert dice == pytest.approx([2 / 3, 2 / 3])
    assert np.isnan(dice_from_counts(np.array([0]), np.array([0]), np.array([0]))[0])
    assert mean_foreground_dice(np.array([0.5, np.nan])) == 0.5


def test_pseudo_dice_for_regions_with_ignore_channel():
    regions = LabelManager({"background": 0, "whole": [1, 2], "core": 2, "ignore": 3}, regions_class_order=[1, 2])
    target = torch.tensor([[[[1, 1, 0, 1]], [[0, 1, 0, 0]], [[0, 0, 0, 1]]]]).bool()  # 2 regions + ignore
    logits = torch.tensor([[[[5.0, -5, 5, 5]], [[-5, 5, 5, 5]]]])
    tp, fp, fn = hard_tp_fp_fn(logits, target, regions)
    assert tp.tolist() == [1, 1] and fp.tolist() == [1, 1] and fn.tolist() == [1, 0]


def test_curves_ema_and_summary():
    curves = TrainingCurves()
    for epoch, dice in enumerate([0.5, 1.0]):
        for key, value in (
            ("epoch_start_timestamps", 10.0 * epoch),
            ("lrs", 0.01),
            ("train_losses", -0.1),
            ("val_losses", -0.2),
            ("dice_per_class_or_region", [dice, float("nan")]),
            ("mean_fg_dice", dice),
            ("epoch_end_timestamps", 10.0 * epoch + 2.5),
        ):
            curves.log(key, value, epoch)
    assert curves.values["ema_fg_dice"] == pytest.approx([0.5, 0.55])
    line = curves.epoch_summary(1, 10)
    assert line.startswith("epoch 2/10: train_loss -0.1000, val_loss -0.2000, pseudo Dice [1.0000, nan]")
    assert "lr 1.000e-02, 2.5 s, about 20 s left (until " in line  # 8 epochs of 2.5 s to go
    named = curves.epoch_summary(1, 10, ["blob", "tube"])
    assert "pseudo Dice [blob 1.0000, tube nan]" in named
    from datetime import datetime

    assert (
        curves.run_estimate(1, 1000, now=datetime(2026, 1, 1, 12, 0)) == ", about 42 min left (until 12:41)"
    )  # 998 x 2.5 s
    assert curves.epoch_summary(1, 2).endswith("2.5 s")  # the last epoch: nothing left to estimate
    restored = TrainingCurves()
    restored.load_checkpoint(curves.get_checkpoint(), num_epochs_done=1)
    assert restored.values["mean_fg_dice"] == [0.5]
    with pytest.raises(ValueError, match="'lrs' has no value for epoch 1"):
        restored.log("lrs", 0.1, 2)


def test_pretrained_weights_load_compatible_layers(tmp_path):
    source = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Conv2d(4, 3, 1))
    torch.save({"network_weights": {f"module.{k}": v for k, v in source.state_dict().items()}}, tmp_path / "w.pth")
    target = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Conv2d(4, 5, 1))
    loaded, skipped = load_pretrained_weights(target, tmp_path / "w.pth")
    assert loaded == ["0.bias", "0.weight"] and skipped == ["1.bias", "1.weight"]
    assert torch.equal(target[0].weight, source[0].weight)
    unrelated = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(TrainingError, match="no layer of these pretrained weights fits the network"):
        load_pretrained_weights(unrelated, tmp_path / "w.pth")
    with pytest.raises(TrainingError, match="checkpoint not found"):
        load_pretrained_weights(target, tmp_path / "missing.pth")
    assert list(unwrap_state_dict({"module._orig_mod.a": 1})) == ["a"]


DDP_DICE_SCRIPT = """
import sys, torch, torch.distributed as dist, torch.multiprocessing as mp
from nnunetv2.training.loss.dice import soft_dice_loss

def worker(rank, world, rendezvous_file):
    dist.init_process_group("gloo", init_method=f"file://{rendezvous_file}", rank=rank, world_size=world)
    torch.manual_seed(0)
    p, y = torch.rand(2, 3, 4, 4), (torch.rand(2, 3, 4, 4) > 0.5).float()
    full = p.clone().requires_grad_(True)
    whole_batch = soft_dice_loss(full, y, batch_dice=True)
    whole_batch.backward()
    local = p[rank:rank + 1].clone().requires_grad_(True)
    loss = soft_dice_loss(local, y[rank:rank + 1], batch_dice=True, across_ranks=True)
    loss.backward()
    # DDP averages gradients over ranks, so each rank must hold world x its share of the true gradient
    same = torch.allclose(loss, whole_batch) and torch.allclose(local.grad, world * full.grad[rank:rank + 1])
    print(f"rank {rank} ok {same}", flush=True)
    dist.destroy_process_group()

if __name__ == "__main__":
    mp.spawn(worker, args=(2, sys.argv[1]), nprocs=2)
"""


def test_batch_dice_over_ddp_ranks_equals_the_global_batch(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "ddp_dice.py"
    script.write_text(DDP_DICE_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "rendezvous")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "rank 0 ok True" in result.stdout and "rank 1 ok True" in result.stdout, result.stdout + result.stderr


def test_cpu_threads_leave_room_for_workers_and_busy_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr("os.getloadavg", lambda: (0.2, 0.0, 0.0))
    assert cpu_threads_beside_workers(2) == (6, "8 core(s), load 0")
    assert cpu_threads_beside_workers(2, world_size=2)[0] == 2
    assert cpu_threads_beside_workers(12)[0] == 1
    monkeypatch.setattr("os.getloadavg", lambda: (5.7, 0.0, 0.0))
    assert cpu_threads_beside_workers(1) == (2, "8 core(s), load 6")
    assert cpu_threads_beside_workers(1, consider_load=False) == (7, "8 core(s)")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads_beside_workers(1)[1] == "from OMP_NUM_THREADS"


def test_cpu_threads_without_workers_take_every_core(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr("os.getloadavg", lambda: (6.6, 0.0, 0.0))  # the trial measures, so the load does not count
    assert cpu_threads_without_workers() == 8
    assert cpu_threads_without_workers(world_size=3) == 2


def test_cpu_thread_trial_alternates_the_candidates_and_keeps_the_fastest():
    before = torch.get_num_threads()
    try:
        trial = CpuThreadTrial([1, 2], iterations_each=2, warmup=1)
        seconds_per_threads = {1: 5.0, 2: 3.0}
        used, decision = [], None
        torch.set_num_threads(1)
        while decision is None:
            trial.before_iteration()
            used.append(torch.get_num_threads())
            decision = trial.after_iteration(seconds_per_threads[torch.get_num_threads()])
        assert used == [1, 1, 2, 1, 2]  # one warm-up iteration (untimed), then turns
        assert trial.chosen == 2 and torch.get_num_threads() == 2
        assert "1 thread(s) 5.000 s/it" in decision and "2 thread(s) 3.000 s/it" in decision
        assert decision.endswith("using 2")
        trial.before_iteration()
        assert trial.after_iteration(100.0) is None and torch.get_num_threads() == 2  # the choice stays

        slower_with_more = CpuThreadTrial([1, 2], iterations_each=1, warmup=0)
        for _ in range(2):
            slower_with_more.before_iteration()
            slower_with_more.after_iteration({1: 2.0, 2: 4.0}[torch.get_num_threads()])
        assert slower_with_more.chosen == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
