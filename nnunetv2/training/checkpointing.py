"""Checkpoint files in nnU-Net v2's format: atomic saves, key checks, and pretrained-weight loading."""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from torch import nn

from nnunetv2.exceptions import NnUNetError, TrainingError, reason_of
from nnunetv2.formats.checkpoint_io import load_checkpoint, unwrap_state_dict
from nnunetv2.utilities.file_io import atomic_path

logger = logging.getLogger(__name__)

CHECKPOINT_KEYS = (
    "network_weights",
    "optimizer_state",
    "grad_scaler_state",
    "logging",
    "_best_ema",
    "current_epoch",
    "init_args",
    "trainer_name",
    "inference_allowed_mirroring_axes",
)


def save_checkpoint_file(checkpoint: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``checkpoint`` to ``path`` atomically; every nnU-Net v2 key must be present.

    A run killed at any moment leaves either the previous file or the complete new one (the data
    reaches the disk before the rename, so this holds after a power cut too).
    """
    missing = [k for k in CHECKPOINT_KEYS if k not in checkpoint]
    assert not missing, f"checkpoint lacks {missing}"
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
    except (RuntimeError, OSError) as e:  # torch reports a full disk as RuntimeError ("file write failed")
        reason = e.strerror if isinstance(e, OSError) and e.strerror else reason_of(e)
        raise TrainingError(f"{path}: cannot write the checkpoint ({reason}); the previous one is kept") from None


def read_training_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Return a checkpoint that has every key needed to continue training from it."""
    try:
        checkpoint = load_checkpoint(path, map_location=map_location)
    except NnUNetError as e:
        raise TrainingError(str(e)) from None
    missing = [k for k in CHECKPOINT_KEYS if k not in checkpoint]
    if missing:
        raise TrainingError(f"{path}: checkpoint lacks '{missing[0]}', so training cannot continue from it")
    return checkpoint


def load_pretrained_weights(network: nn.Module, path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Copy every shape-compatible tensor of a checkpoint into ``network``; return (loaded, skipped) names.

    Skipped are tensors the network lacks, whose shape differs (e.g. another number of classes or
    input channels), and network tensors the checkpoint lacks. Loading nothing is an error.
    """
    try:
        pretrained = unwrap_state_dict(load_checkpoint(path)["network_weights"])
    except NnUNetError as e:
        raise TrainingError(str(e)) from None
    own = network.state_dict()
    compatible = {k: v for k, v in pretrained.items() if k in own and own[k].shape == v.shape}
    if not compatible:
        raise TrainingError(f"{path}: no layer of these pretrained weights fits the network")
    skipped = sorted(set(pretrained) - set(compatible)) + sorted(set(own) - set(pretrained))
    own.update(compatible)
    network.load_state_dict(own)
    logger.info(
        "pretrained weights from %s: loaded %d tensors, skipped %d%s",
        path,
        len(compatible),
        len(skipped),
        f" ({', '.join(skipped)})" if skipped else "",
    )
    return sorted(compatible), skipped
