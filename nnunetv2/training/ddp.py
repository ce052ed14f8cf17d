"""Distributed data parallel plumbing: process groups (spawned or torchrun), batch split, reductions."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from nnunetv2.exceptions import TrainingError


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a DDP run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_distributed(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the process that writes files (rank 0)."""
        return self.rank == 0

    @classmethod
    def current(cls) -> DistributedContext:
        """Return the context of the initialised process group, or the single-process one."""
        if not (dist.is_available() and dist.is_initialized()):
            return cls()
        rank = dist.get_rank()
        return cls(rank, dist.get_world_size(), int(os.environ.get("LOCAL_RANK", rank)))

    def barrier(self) -> None:
        """Wait for every rank (no-op without DDP)."""
        if self.is_distributed:
            dist.barrier()

    def sum_over_ranks(self, values: np.ndarray) -> np.ndarray:
        """Return the element-wise sum of ``values`` over all ranks."""
        if not self.is_distributed:
            return values
        tensor = torch.as_tensor(np.asarray(values, dtype=np.float64))
        if dist.get_backend() == "nccl":
            tensor = tensor.cuda()
        dist.all_reduce(tensor)
        return tensor.cpu().numpy()

    def mean_over_ranks(self, value: float) -> float:
        """Return the mean of a scalar over all ranks."""
        return float(self.sum_over_ranks(np.array([value]))[0] / self.world_size)

    def gather_objects(self, obj: Any) -> list[Any]:
        """Return ``obj`` of every rank, in rank order."""
        if not self.is_distributed:
            return [obj]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered


def split_batch(global_batch_size: int, oversample_percent: float, rank: int, world_size: int) -> tuple[int, float]:
    """Return (batch size, foreground oversampling fraction) of ``rank``.

    The global batch is cut into consecutive per-rank parts (the first ranks take the remainder);
    the last ``round(b * p)`` samples of the global batch are oversampled, as with one process, so
    each rank gets the fraction of its part that falls there.
    """
    if global_batch_size < world_size:
        raise TrainingError(
            f"batch size {global_batch_size} cannot be split over {world_size} processes "
            f"(use at most {global_batch_size} with -num_gpus)"
        )
    sizes = [global_batch_size // world_size + (r < global_batch_size % world_size) for r in range(world_size)]
    start = sum(sizes[:rank])
    first_oversampled = round(global_batch_size * (1 - oversample_percent))
    oversampled = len(set(range(start, start + sizes[rank])) & set(range(first_oversampled, global_batch_size)))
    return sizes[rank], oversampled / sizes[rank]


def torchrun_context() -> DistributedContext | None:
    """Return the context torchrun announces through RANK / WORLD_SIZE / LOCAL_RANK, if any."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or "RANK" not in os.environ:
        return None
    return DistributedContext(
        int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    )


def init_process_group(context: DistributedContext, device_type: str) -> None:
    """Join the process group: NCCL for CUDA, Gloo otherwise; MASTER_ADDR/PORT come from the env."""
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(context.local_rank)
    dist.init_process_group(backend, rank=context.rank, world_size=context.world_size)


def free_port() -> int:
    """Return a TCP port that is free on this machine right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_processes(worker: Callable[..., None], world_size: int, args: tuple) -> None:
    """Run ``worker(rank, world_size, *args)`` in ``world_size`` new processes and wait for all of them."""
    import torch.multiprocessing as mp

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(free_port())
    try:
        mp.spawn(worker, args=(world_size, *args), nprocs=world_size, join=True)
    except (mp.ProcessRaisedException, mp.ProcessExitedException) as e:
        # the worker's traceback is in the message; its last line names the actual error
        last_line = str(e).strip().splitlines()[-1]
        raise TrainingError(f"a DDP worker process failed: {last_line}") from None


class _AllGatherWithGrad(torch.autograd.Function):
    """all_gather that lets gradients flow back to each rank's own slice."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        gathered = [torch.zeros_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, tensor.contiguous())
        return torch.stack(gathered)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        # every rank holds the same loss, so the true gradient of a slice is the sum over ranks of
        # theirs; DDP then averages parameter gradients, which this sum compensates
        grad_output = grad_output.contiguous()
        dist.all_reduce(grad_output)
        return grad_output[dist.get_rank()]


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Return (world_size, *tensor.shape): every rank's ``tensor``, differentiable w.r.t. this rank's."""
    return _AllGatherWithGrad.apply(tensor)
