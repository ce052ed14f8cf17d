"""Mirrored copies of a tile: one forward pass each (nnU-Net v2, ours) against one batched pass, interleaved.

    python scripts/benchmarks/bench_mirror_batching.py [--repeats 4] [--threads 1] [--dtypes float32 bfloat16]

For a 2D tile of 384x384 and a 3D tile of 24x80x80 (U-Nets as nnU-Net v2 plans them for such
patches, random weights), prediction with mirroring on every axis runs 4 / 8 forward passes of
batch 1 per tile; the alternative stacks the copies into one batch. Both are timed alternately in
one process (medians of ``--repeats``); the table gives the ratio and whether the averaged logits
agree (largest absolute difference).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table  # noqa: E402

TILES = {"2d": (384, 384), "3d": (24, 80, 80)}


def _network(dim: int):
    import torch
    from dynamic_network_architectures.architectures.unet import PlainConvUNet

    conv, norm = (torch.nn.Conv2d, torch.nn.InstanceNorm2d) if dim == 2 else (torch.nn.Conv3d, torch.nn.InstanceNorm3d)
    features = [32, 64, 128, 256, 512, 512, 512] if dim == 2 else [32, 64, 128, 256, 320]
    strides = [1] + [2] * 6 if dim == 2 else [1, [1, 2, 2], 2, 2, 2]
    stages = len(features)
    network = PlainConvUNet(
        1, stages, features, conv, 3, strides, [2] * stages, 3, [2] * (stages - 1), True, norm,
        {"eps": 1e-5, "affine": True}, None, None, torch.nn.LeakyReLU, {"inplace": True},
    )  # fmt: skip
    return network.eval()


def _mirrored_logits(network, x, combinations, batched: bool, bf16: bool):
    import torch

    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        if batched:
            out = network(torch.cat([torch.flip(x, c) for c in combinations])).float()
            return sum(torch.flip(out[i : i + 1], c) for i, c in enumerate(combinations)) / len(combinations)
        return sum(torch.flip(network(torch.flip(x, c)).float(), c) for c in combinations) / len(combinations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtypes", nargs="+", choices=["float32", "bfloat16"], default=["float32", "bfloat16"])
    parser.add_argument("--only", choices=sorted(TILES), default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    for key, tile in TILES.items():
        if args.only not in (None, key):
            continue
        network = _network(len(tile))
        x = torch.randn((1, 1, *tile), generator=torch.Generator().manual_seed(0))
        axes = range(2, 2 + len(tile))
        combinations = [c for k in range(len(tile) + 1) for c in itertools.combinations(axes, k)]
        for dtype in args.dtypes:
            bf16 = dtype == "bfloat16"
            difference = float(
                (
                    _mirrored_logits(network, x, combinations, False, bf16)
                    - _mirrored_logits(network, x, combinations, True, bf16)
                )
                .abs()
                .max()
            )
            times: dict[bool, list[float]] = {False: [], True: []}
            for index in range(args.repeats):
                for batched in (False, True) if index % 2 == 0 else (True, False):
                    start = time.perf_counter()
                    _mirrored_logits(network, x, combinations, batched, bf16)
                    times[batched].append(time.perf_counter() - start)
            one_by_one, batched_s = (statistics.median(times[b]) for b in (False, True))
            rows.append(
                [f"{key} {'x'.join(map(str, tile))}", dtype, len(combinations), f"{os.getloadavg()[0]:.1f}",
                 one_by_one, batched_s, batched_s / one_by_one, f"{difference:.1e}"]
            )  # fmt: skip
    print_table(["tile", "dtype", "passes", "load avg", "one by one s", "batched s", "ratio", "max diff"], rows)


if __name__ == "__main__":
    main()
