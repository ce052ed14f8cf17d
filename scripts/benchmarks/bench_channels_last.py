"""Channels-last against contiguous: the whole training step and prediction tile, interleaved, float32 and bfloat16.

    python scripts/benchmarks/bench_channels_last.py [--only 2d|3d] [--dtypes float32 bfloat16]
                                                     [--iterations 8] [--warmup 2] [--tiles 5] [--threads N]

For the 2D and 3D configurations of bench_roofline.py (generated data, planned and preprocessed by
us), one fresh process per (configuration, dtype) builds two trainers with the same seed, one
contiguous and one channels-last (``nnUNetTrainer.channels_last``), and feeds both the same
batches, alternating which goes first: the step times are medians of pairs taken seconds apart,
so a change of load hits both. The loss of every step is kept: the largest difference between the
two runs says whether the layout changes the training (both start from the same weights).
Prediction: the trained contiguous network and a channels-last copy of it predict the same image
(two tiles, no mirroring; ``--mirror`` adds mirroring) alternately; the table gives the median
seconds per tile and the share of voxels whose labels agree. The 1-minute load average is printed
with each row: on a shared machine compare the ratio, not the seconds.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_roofline import CONFIGURATION, DATASETS, _tile_image  # noqa: E402
from common import plan_and_preprocess_with, print_table, run_checked  # noqa: E402

DTYPES = ("float32", "bfloat16")
LAYOUTS = (False, True)  # contiguous, channels-last


def _trainer(dataset: str, configuration: str, bf16: bool, channels_last: bool):
    from nnunetv2.training.run_training import TrainingRequest, build_trainer

    request = TrainingRequest(
        dataset, configuration, 0, device="cpu", disable_checkpointing=True, cpu_bf16=bf16, seed=0, num_data_workers=0
    )
    trainer = build_trainer(request)
    trainer.channels_last = channels_last  # before on_train_start, which builds the network
    trainer.on_train_start()
    trainer.on_train_epoch_start()
    return trainer


def _alternating(run, variants, rounds: int, warmup: int) -> dict:
    """Median seconds per variant of ``run(variant, round)``, the variants' order swapped every round."""
    times: dict = {v: [] for v in variants}
    for index in range(warmup + rounds):
        for variant in variants if index % 2 == 0 else tuple(reversed(variants)):
            start = time.perf_counter()
            run(variant, index)
            if index >= warmup:
                times[variant].append(time.perf_counter() - start)
    return {v: statistics.median(t) for v, t in times.items()}


def measure(dataset: str, configuration: str, dtype: str, args) -> dict:
    """Interleaved step and tile times of both layouts in this process, the loss difference and label agreement."""
    import numpy as np
    import torch

    from nnunetv2.inference.sliding_window import sliding_window_predict

    torch.set_num_threads(args.threads)
    bf16 = dtype == "bfloat16"
    trainers = {layout: _trainer(dataset, configuration, bf16, layout) for layout in LAYOUTS}
    assert [t.channels_last for t in trainers.values()] == list(LAYOUTS)
    losses: dict = {layout: [] for layout in LAYOUTS}
    batches: list = []

    def step(layout: bool, index: int) -> None:
        if len(batches) <= index:
            batches.append(next(trainers[False].dataloader_train))  # the same batch for both layouts
        losses[layout].append(float(np.mean(trainers[layout].train_step(batches[index])["loss"])))

    try:
        steps = _alternating(step, LAYOUTS, args.iterations, args.warmup)
    finally:
        for trainer in trainers.values():
            trainer._close_dataloaders()
    difference = max(abs(a - b) for a, b in zip(losses[False], losses[True]))

    reference = trainers[False]
    reference.set_deep_supervision_enabled(False)
    networks = {False: reference.network, True: copy.deepcopy(reference.network)}
    for network in networks.values():
        network.eval()
    patch = tuple(reference.configuration_manager.patch_size)
    image, tiles = _tile_image(patch, reference.typed_dataset_json.num_channels)
    heads = reference.label_manager.num_segmentation_heads
    mirror_axes = tuple(range(len(patch))) if args.mirror else None
    logits: dict = {}

    def tile(layout: bool, index: int) -> None:
        logits[layout] = sliding_window_predict(
            networks[layout], image, patch, heads, mirror_axes=mirror_axes, cpu_bf16=bf16, channels_last=layout
        )

    tile_seconds = _alternating(tile, LAYOUTS, args.tiles, 1)
    agreement = float((logits[False].argmax(0) == logits[True].argmax(0)).float().mean())
    return {
        "threads": torch.get_num_threads(),
        "step": [steps[layout] for layout in LAYOUTS],
        "tile": [tile_seconds[layout] / tiles for layout in LAYOUTS],
        "loss_first_last": [losses[False][0], losses[False][-1]],
        "loss_max_difference": difference,
        "label_agreement": agreement,
        "load": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(DATASETS), default=None)
    parser.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    parser.add_argument("--iterations", type=int, default=8, help="timed training steps per layout")
    parser.add_argument("--warmup", type=int, default=2, help="untimed training steps per layout first")
    parser.add_argument("--tiles", type=int, default=5, help="timed sliding-window runs per layout")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all)")
    parser.add_argument("--mirror", action="store_true", help="predict with mirroring (4 / 8 passes per tile)")
    parser.add_argument("--measure", nargs=3, metavar=("DATASET", "CONFIGURATION", "DTYPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure, args)))
        return

    from nnunetv2.dataset.synthetic import generate_synthetic_dataset

    print(f"machine: {os.cpu_count()} CPU core(s), load average {os.getloadavg()[0]:.1f}")
    work = Path(tempfile.mkdtemp(prefix="bench_channels_last_"))
    rows = []
    try:
        for key in DATASETS:
            if args.only not in (None, key):
                continue
            spec = dict(DATASETS[key])
            dataset_id = spec.pop("dataset_id")
            dataset = f"Dataset{dataset_id}_BenchRoofline{key.upper()}"
            generate_synthetic_dataset(work / "raw" / dataset, **spec)
            env = plan_and_preprocess_with(
                Path(sys.executable).parent, work / "ours", work / "raw", dataset_id, CONFIGURATION[key]
            )
            env = {k: v for k, v in env.items() if k not in ("OMP_NUM_THREADS", "nnUNet_channels_last")}
            plans = json.loads((Path(env["nnUNet_preprocessed"]) / dataset / "nnUNetPlans.json").read_text())
            plan = plans["configurations"][CONFIGURATION[key]]
            label = f"{key} {'x'.join(map(str, plan['patch_size']))} x{plan['batch_size']}"
            for dtype in args.dtypes:
                command = [sys.executable, str(Path(__file__).resolve()), "--measure", dataset, CONFIGURATION[key]]
                command += [dtype, "--iterations", str(args.iterations), "--warmup", str(args.warmup)]
                command += ["--tiles", str(args.tiles), "--threads", str(args.threads)]
                command += ["--mirror"] if args.mirror else []
                m = json.loads(run_checked(command, env).strip().splitlines()[-1])
                (step_c, step_l), (tile_c, tile_l) = m["step"], m["tile"]
                rows.append(
                    [label, dtype, m["threads"], f"{m['load']:.1f}", f"{step_c:.3f}", f"{step_l:.3f}",
                     f"{step_l / step_c:.2f}", f"{tile_c:.4f}", f"{tile_l:.4f}", f"{tile_l / tile_c:.2f}",
                     f"{m['loss_first_last'][0]:.3f} -> {m['loss_first_last'][1]:.3f}",
                     f"{m['loss_max_difference']:.4f}", f"{m['label_agreement'] * 100:.3f}%"]
                )  # fmt: skip
                print("  " + "  ".join(map(str, rows[-1])), file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(
        ["config", "dtype", "threads", "load avg", "step s contiguous", "step s channels-last", "ratio",
         "tile s contiguous", "tile s channels-last", "ratio", "loss (contiguous)", "max loss diff", "labels equal"],
        rows,
    )  # fmt: skip
    print(f"load average at the end {os.getloadavg()[0]:.1f}; ratio = channels-last / contiguous (< 1: faster)")


if __name__ == "__main__":
    main()
