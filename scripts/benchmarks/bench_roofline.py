"""Roofline: FLOPs of a training step and a prediction tile, achieved against attainable FLOP/s, ours and nnU-Net v2's.

    python scripts/benchmarks/bench_roofline.py [--reference-bin DIR] [--only 2d|3d] [--iterations 6]
                                                [--repeats 3] [--compile] [--skip-attainable]

For a 2D and a 3D configuration (the generated datasets of bench_training.py, planned and
preprocessed by each tool):

- **FLOPs** of one training step (forward + backward of the plans' network with deep supervision,
  batch of the plans) and of one prediction tile (forward, batch 1), counted by torch's
  FlopCounterMode on the network built from the plans' ``architecture`` (convolutions and
  transposed convolutions; normalisation, activations, loss and optimiser add memory traffic,
  not FLOPs worth counting).
- **Attainable**: each distinct convolution of the network (same input shape, kernel, stride) is
  timed alone, forward + backward for training and forward for prediction, in float32 and
  bfloat16, with 1..all torch threads (median of ``--repeats``); the attainable rate is the
  network's FLOPs over the summed times of its convolutions. That is what the machine sustains on
  these very layer shapes: a step that did nothing but its convolutions would reach it.
- **Achieved**: the FLOPs over the measured seconds of a real training step (each trainer's
  ``train_step`` on batches from its own data pipeline; median of ``--iterations`` after warm-up)
  and of a real sliding-window tile (each predictor on an image of a few tiles, no mirroring).
  ``achieved / attainable`` is the share of the machine's rate the tool reaches; the rest is time
  outside the convolutions (normalisation, activations, loss, optimiser, data hand-over).

Ours is measured in float32 (``--fp32``) and bfloat16 (``--bf16``), and with ``--compile`` also
with ``nnUNet_compile=1`` (torch.compile on the CPU; the warm-up then includes compiling, whose
seconds are shown). With ``--reference-bin`` (the bin/ folder of a venv holding nnU-Net v2) its
trainer and predictor are measured in the same way (float32: its CPU default), each measurement
in a fresh process under that environment's Python, as in the other benchmarks. On a machine
shared with other work the figures are noisy: the 1-minute load average is printed after the
convolution timings and after each achieved row; a fraction means something only when both were
taken at a similar load (a fraction above 1 says the load fell in between).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import plan_and_preprocess_with, print_table, run_checked  # noqa: E402

DATASETS = {
    "2d": dict(dataset_id=821, num_cases=12, shape=(160, 160), file_ending=".png"),
    "3d": dict(dataset_id=822, num_cases=6, shape=(32, 96, 96), spacing=(3.0, 1.0, 1.0)),
}
CONFIGURATION = {"2d": "2d", "3d": "3d_fullres"}
DTYPES = ("float32", "bfloat16")
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "nnUNet_n_proc_DA", "nnUNet_compile", "PYTHONPATH")


# ----- the network of the plans, its FLOPs and its convolutions (ours; pure torch beyond building it) -----


def _network_from_plans(plans_file: Path, configuration: str, num_inputs: int, num_outputs: int, supervision: bool):
    from nnunetv2.architectures.network_builder import build_network
    from nnunetv2.formats.plans import Plans

    plans = Plans.load(plans_file)
    return build_network(plans.configuration(configuration).architecture, num_inputs, num_outputs, supervision)


def _flops(network, x, backward: bool) -> int:
    """FLOPs of one forward (and backward) pass of ``network`` on ``x``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        if backward:
            output = network(x)
            outputs = output if isinstance(output, (list, tuple)) else [output]
            sum(o.float().mean() for o in outputs).backward()
        else:
            with torch.no_grad():
                network(x)
    return int(counter.get_total_flops())


def _conv_calls(network, x) -> list[dict]:
    """Every convolution the forward pass runs: module, input shape, and whether the input needs a gradient."""
    import torch

    calls: list[dict] = []
    handles = [
        module.register_forward_pre_hook(
            lambda module, inputs: calls.append(
                {"module": module, "shape": tuple(inputs[0].shape), "first": inputs[0] is x}
            )
        )
        for module in network.modules()
        if isinstance(module, (torch.nn.modules.conv._ConvNd,))
    ]
    try:
        with torch.no_grad():
            network(x)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _time_call(function, repeats: int) -> float:
    function()  # warm-up: allocations, oneDNN primitive creation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _conv_seconds(
    calls: list[dict], dtype_name: str, backward: bool, repeats: int, channels_last: bool = False
) -> tuple[float, int]:
    """Summed median seconds of every convolution timed alone (distinct shapes timed once) and their FLOPs."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    dtype = getattr(torch, dtype_name)
    groups: dict[tuple, list[dict]] = {}
    for call in calls:
        module = call["module"]
        key = (type(module).__name__, call["shape"], tuple(module.weight.shape), module.stride, call["first"])
        groups.setdefault(key, []).append(call)
    total_seconds, total_flops = 0.0, 0
    for members in groups.values():
        module, shape, first = members[0]["module"], members[0]["shape"], members[0]["first"]
        layer = type(module)(
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            module.stride,
            module.padding,
            bias=module.bias is not None,
        ).to(dtype)
        x = torch.randn(shape, dtype=dtype)
        if channels_last:
            memory_format = torch.channels_last_3d if x.ndim == 5 else torch.channels_last
            layer = layer.to(memory_format=memory_format)
            x = x.contiguous(memory_format=memory_format)
        x.requires_grad_(backward and not first)

        def run(layer=layer, x=x):
            if backward:
                y = layer(x)
                y.backward(torch.ones_like(y))
            else:
                with torch.inference_mode():
                    layer(x)

        counter = FlopCounterMode(display=False)
        with counter:
            run()
        total_flops += int(counter.get_total_flops()) * len(members)
        total_seconds += _time_call(run, repeats) * len(members)
    return total_seconds, total_flops


def architecture_figures(
    plans_file: Path,
    configuration: str,
    num_inputs: int,
    num_outputs: int,
    threads: list[int],
    repeats: int,
    skip: bool,
    channels_last: bool = False,
) -> dict:
    """FLOPs per training step and per tile, and the attainable GFLOP/s per (purpose, dtype, threads)."""
    import torch

    from nnunetv2.formats.plans import Plans

    plan = Plans.load(plans_file).configuration(configuration)
    patch, batch = tuple(plan.patch_size), plan.batch_size
    figures = {"flops": {}, "attainable": {}, "conv_share": {}}
    for purpose, batch_size, supervision in (("training", batch, True), ("prediction", 1, False)):
        network = _network_from_plans(plans_file, configuration, num_inputs, num_outputs, supervision)
        x = torch.randn((batch_size, num_inputs, *patch))
        figures["flops"][purpose] = _flops(network, x, backward=purpose == "training")
        if skip:
            continue
        calls = _conv_calls(network, x)
        layouts = (False, True) if channels_last else (False,)
        for dtype_name, count, layout in itertools.product(DTYPES, threads, layouts):
            torch.set_num_threads(count)
            seconds, conv_flops = _conv_seconds(calls, dtype_name, purpose == "training", repeats, layout)
            key = f"{purpose}/{dtype_name}/{count}" + ("/channels_last" if layout else "")
            figures["attainable"][key] = conv_flops / seconds / 1e9
            figures["conv_share"][purpose] = conv_flops / figures["flops"][purpose]
            print(f"  attainable {key}: {conv_flops / seconds / 1e9:.1f} GFLOP/s", file=sys.stderr, flush=True)
    figures["load"] = os.getloadavg()[0]  # at the end of the timings: the attainable rates depend on it
    return figures


# ----- achieved (runs in a fresh process, under our package or nnU-Net v2's) -----


def _median_step(trainer_step, next_batch, warmup: int, iterations: int) -> dict:
    loads, steps = [], []
    start = time.perf_counter()
    for _ in range(warmup):
        trainer_step(next_batch())
    warmup_s = time.perf_counter() - start
    for _ in range(iterations):
        start = time.perf_counter()
        batch = next_batch()
        loaded = time.perf_counter()
        trainer_step(batch)
        loads.append(loaded - start)
        steps.append(time.perf_counter() - loaded)
    return {
        "step_s": statistics.median(steps),
        "load_share": sum(loads) / (sum(loads) + sum(steps)),
        "warmup_s": warmup_s,
    }


def _tile_image(patch: tuple[int, ...], channels: int):
    """An image 1.5 patches long on the first axis: two tiles at step 0.5 in both tools."""
    import torch

    shape = (channels, int(patch[0] * 1.5), *patch[1:])
    return torch.randn(shape, generator=torch.Generator().manual_seed(0)), 2


def measure_ours(dataset: str, configuration: str, precision: str, warmup: int, iterations: int) -> dict:
    """Time our trainer's step and our sliding window per tile (threads as nnUNetv2_train picks them)."""
    import torch

    from nnunetv2.inference.sliding_window import sliding_window_predict
    from nnunetv2.training.run_training import TrainingRequest, build_trainer, prepare_run_environment
    from nnunetv2.utilities.compile import compile_network, is_compiled

    bf16 = precision == "bfloat16"
    trainer = build_trainer(
        TrainingRequest(dataset, configuration, 0, device="cpu", disable_checkpointing=True, cpu_bf16=bf16)
    )
    prepare_run_environment(trainer, seed=None)  # threads as nnUNetv2_train picks them (with its trial)
    trainer.on_train_start()
    trainer.on_train_epoch_start()
    try:
        start = time.perf_counter()
        while trainer.iteration_timer is not None:  # the thread trial; compiling happens here too
            trainer._next_train_step()
        trial_s = time.perf_counter() - start
        result = _median_step(trainer.train_step, lambda: next(trainer.dataloader_train), warmup, iterations)
    finally:
        trainer._close_dataloaders()
    result["warmup_s"] += trial_s  # warm-up = thread trial + warm-up iterations (compiling included)
    result["compiled"] = is_compiled(trainer.network)
    result["threads"] = torch.get_num_threads()

    # prediction: a fresh inference network, as the predictor loads it (compiled when nnUNet_compile says so)
    network = trainer.build_network_architecture(
        trainer.plans_manager,
        trainer.configuration_manager,
        trainer.num_input_channels,
        trainer.label_manager.num_segmentation_heads,
        enable_deep_supervision=False,
    )
    network.eval()
    compile_network(network, torch.device("cpu"), "prediction")
    patch = tuple(trainer.configuration_manager.patch_size)
    image, tiles = _tile_image(patch, trainer.typed_dataset_json.num_channels)
    outputs = trainer.label_manager.num_segmentation_heads
    start = time.perf_counter()
    sliding_window_predict(network, image, patch, outputs, device="cpu", cpu_bf16=bf16)
    result["tile_warmup_s"] = time.perf_counter() - start
    result["tile_s"] = (
        _time_call(lambda: sliding_window_predict(network, image, patch, outputs, device="cpu", cpu_bf16=bf16), 3)
        / tiles
    )
    return result


def measure_reference(dataset: str, configuration: str, precision: str, warmup: int, iterations: int) -> dict:
    """Time nnU-Net v2's trainer step and its predictor per tile (threads as its nnUNetv2_train -device cpu)."""
    import multiprocessing

    import torch

    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.run.run_training import get_trainer_from_args

    torch.set_num_threads(multiprocessing.cpu_count())
    trainer = get_trainer_from_args(dataset, configuration, 0, device=torch.device("cpu"))
    trainer.disable_checkpointing = True
    trainer.on_train_start()
    trainer.on_train_epoch_start()
    try:
        result = _median_step(trainer.train_step, lambda: next(trainer.dataloader_train), warmup, iterations)
    finally:
        for loader in (trainer.dataloader_train, trainer.dataloader_val):
            if hasattr(loader, "_finish"):
                loader._finish()
    result["compiled"] = False
    result["threads"] = torch.get_num_threads()

    trainer.set_deep_supervision_enabled(False)
    predictor = nnUNetPredictor(
        tile_step_size=0.5,
        use_mirroring=False,
        perform_everything_on_device=False,
        device=torch.device("cpu"),
        allow_tqdm=False,
    )
    predictor.manual_initialization(
        trainer.network,
        trainer.plans_manager,
        trainer.configuration_manager,
        None,
        trainer.dataset_json,
        type(trainer).__name__,
        None,
    )
    patch = tuple(trainer.configuration_manager.patch_size)
    image, tiles = _tile_image(patch, trainer.num_input_channels)
    if len(patch) == 2:
        image = image[:, None]  # its predictor takes 2D images as (c, 1, x, y)
    start = time.perf_counter()
    predictor.predict_sliding_window_return_logits(image)
    result["tile_warmup_s"] = time.perf_counter() - start
    result["tile_s"] = _time_call(lambda: predictor.predict_sliding_window_return_logits(image), 3) / tiles
    return result


# ----- orchestration -----


def _measure(python: Path, role: str, env: dict, dataset: str, configuration: str, variant: str, args) -> dict:
    env = {k: v for k, v in env.items() if k not in _THREAD_VARIABLES}
    precision, _, compiled = variant.partition("+")
    env["nnUNet_compile"] = "1" if compiled else "0"
    command = [str(python), str(Path(__file__).resolve()), "--measure", role, "--dataset", dataset]
    command += ["--configuration", configuration, "--precision", precision]
    command += ["--warmup", str(args.warmup), "--iterations", str(args.iterations)]
    measured = json.loads(run_checked(command, env).strip().splitlines()[-1])
    print(
        f"  {dataset} {role} {variant}: step {measured['step_s']:.3f} s, tile {measured['tile_s']:.3f} s "
        f"({measured['threads']} threads)",
        file=sys.stderr,
        flush=True,
    )
    return measured


def _attainable_rows(label: str, attainable: dict, threads: list[int]) -> list[list]:
    """One row per (purpose, dtype, layout): attainable GFLOP/s for each thread count."""
    rows = []
    for key in attainable:
        purpose, dtype, count, *layout = key.split("/")
        if int(count) != threads[0]:
            continue
        stem = "/".join([purpose, dtype])
        suffix = "/" + layout[0] if layout else ""
        rows.append(
            [label, purpose, dtype, layout[0] if layout else "contiguous"]
            + [attainable.get(f"{stem}/{t}{suffix}", "-") for t in threads]
        )
    return rows


def _rows(key: str, tools: dict, work: Path, args) -> tuple[list[list], list[list]]:
    from nnunetv2.dataset.synthetic import generate_synthetic_dataset
    from nnunetv2.formats.dataset_json import DatasetJson

    spec = dict(DATASETS[key])
    dataset_id = spec.pop("dataset_id")
    configuration = CONFIGURATION[key]
    dataset = f"Dataset{dataset_id}_BenchRoofline{key.upper()}"
    generate_synthetic_dataset(work / "raw" / dataset, **spec)
    envs = {
        role: plan_and_preprocess_with(tool_bin, work / role, work / "raw", dataset_id, configuration)
        for tool_bin, role, _ in tools.values()
    }
    dataset_json = DatasetJson.load(work / "raw" / dataset / "dataset.json")
    from nnunetv2.dataset.label_manager import LabelManager

    num_outputs = LabelManager.from_dataset_json(dataset_json).num_segmentation_heads
    threads = list(range(1, (os.cpu_count() or 1) + 1))
    figures = {}
    for role in envs:
        plans_file = Path(envs[role]["nnUNet_preprocessed"]) / dataset / "nnUNetPlans.json"
        figures[role] = architecture_figures(
            plans_file,
            configuration,
            dataset_json.num_channels,
            num_outputs,
            threads,
            args.repeats,
            skip=args.skip_attainable or (role == "reference" and "ours" in figures),
            channels_last=args.channels_last,
        )
    if "reference" in figures and figures["reference"]["flops"] != figures["ours"]["flops"]:
        print(
            f"{key}: WARNING the plans' networks differ: {figures['reference']['flops']} vs {figures['ours']['flops']}"
        )
    attainable = figures["ours"]["attainable"]
    plans = json.loads((Path(envs["ours"]["nnUNet_preprocessed"]) / dataset / "nnUNetPlans.json").read_text())
    plan = plans["configurations"][configuration]
    label = f"{key} {'x'.join(map(str, plan['patch_size']))} x{plan['batch_size']}"
    rows, reference_step = [], None
    for name, (tool_bin, role, variant) in tools.items():
        measured = [
            _measure(tool_bin / "python", role, envs[role], dataset, configuration, variant, args)
            for _ in range(args.repeats_achieved)
        ]
        step = statistics.median(m["step_s"] for m in measured)
        tile = statistics.median(m["tile_s"] for m in measured)
        count = measured[0]["threads"]
        flops = figures[role]["flops"]
        dtype = variant.partition("+")[0]
        row = [label, name, f"{os.getloadavg()[0]:.1f}", count, f"{measured[0]['load_share'] * 100:.0f}%"]
        for purpose, seconds in (("training", step), ("prediction", tile)):
            achieved = flops[purpose] / seconds / 1e9
            peak = attainable.get(f"{purpose}/{dtype}/{count}")
            row += [
                flops[purpose] / 1e9,
                seconds,
                achieved,
                peak if peak is not None else "-",
                f"{achieved / peak:.2f}" if peak else "-",
            ]
        row.append(f"{measured[0]['warmup_s']:.0f}/{measured[0]['tile_warmup_s']:.0f}")
        if role == "reference":
            reference_step = (step, tile)
        rows.append(row)
    if reference_step is not None:
        for row in rows:
            row.append(f"{row[6] / reference_step[0]:.2f} / {row[11] / reference_step[1]:.2f}")
    return rows, _attainable_rows(f"{label} (load {figures['ours']['load']:.1f})", attainable, threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-bin", type=Path, default=None, help="bin/ of an nnU-Net v2 venv")
    parser.add_argument("--only", choices=sorted(DATASETS), default=None)
    parser.add_argument("--iterations", type=int, default=6, help="timed training iterations per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first (compiling included)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per convolution shape (median)")
    parser.add_argument("--repeats-achieved", type=int, default=1, help="fresh processes per achieved row (median)")
    parser.add_argument("--compile", action="store_true", help="also measure ours with nnUNet_compile=1")
    parser.add_argument("--skip-attainable", action="store_true", help="count FLOPs and time the tools only")
    parser.add_argument("--channels-last", action="store_true", help="also time the convolutions channels-last")
    parser.add_argument("--measure", choices=["ours", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--configuration", help=argparse.SUPPRESS)
    parser.add_argument("--precision", choices=DTYPES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure = measure_reference if args.measure == "reference" else measure_ours
        print(json.dumps(measure(args.dataset, args.configuration, args.precision, args.warmup, args.iterations)))
        return

    from nnunetv2.utilities.precision import cpu_has_native_bf16

    ours_bin = Path(sys.executable).parent
    tools = {"ours --fp32": (ours_bin, "ours", "float32"), "ours --bf16": (ours_bin, "ours", "bfloat16")}
    if args.compile:
        tools["ours --fp32 compiled"] = (ours_bin, "ours", "float32+compile")
        tools["ours --bf16 compiled"] = (ours_bin, "ours", "bfloat16+compile")
    if args.reference_bin:
        tools["nnU-Net v2"] = (args.reference_bin, "reference", "float32")
    print(
        f"machine: {os.cpu_count()} CPU core(s), native bfloat16: {cpu_has_native_bf16()}, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    work = Path(tempfile.mkdtemp(prefix="bench_roofline_"))
    try:
        results = [_rows(key, tools, work, args) for key in DATASETS if args.only in (None, key)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [row for result in results for row in result[0]]
    if not args.skip_attainable:
        threads = list(range(1, (os.cpu_count() or 1) + 1))
        print_table(
            ["config", "purpose", "dtype", "layout"] + [f"{t} thread(s) GFLOP/s" for t in threads],
            [row for result in results for row in result[1]],
        )
        print()
    header = ["config", "implementation", "load avg", "threads", "load wait"]
    for purpose in ("train", "tile"):
        header += [f"{purpose} GFLOP", f"{purpose} s", f"{purpose} GFLOP/s", "attainable", "fraction"]
    header.append("warm-up s")
    if args.reference_bin:
        header.append("time vs nnU-Net v2 (train / tile)")
    print_table(header, rows)
    print(f"load average at the end {os.getloadavg()[0]:.1f} (other processes share the cores: figures are noisy)")


if __name__ == "__main__":
    main()
