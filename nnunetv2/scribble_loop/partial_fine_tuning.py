"""Partial fine-tuning of a U-Net (the published method's ``retrain_layer`` / ``reinit``): freeze the encoder,
re-initialise the last decoder stages.

Works on dynamic-network-architectures' U-Nets (``network.encoder``, ``network.decoder.stages``,
``.transpconvs``, ``.seg_layers``; the decoder's stages run from the coarsest to the finest). A frozen
parameter gets no gradient, so SGD leaves it (and its weight decay) alone; freezing is not stored in
checkpoints and is applied again when a stopped round resumes.
"""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from nnunetv2.exceptions import TrainingError

logger = logging.getLogger(__name__)


def _decoder(network: nn.Module) -> Any:
    # dynamic-network-architectures' decoders are plain Modules: their parts are looked up by name
    decoder: Any = getattr(network, "decoder", None)
    if decoder is None or not hasattr(network, "encoder") or not hasattr(decoder, "stages"):
        raise TrainingError(
            f"partial fine-tuning needs a U-Net with an encoder and decoder stages; {type(network).__name__} has none"
        )
    return decoder


def num_decoder_stages(network: nn.Module) -> int:
    """Return the number of decoder stages of a dynamic-network-architectures U-Net."""
    return len(_decoder(network).stages)


def check_reinit_decoder_stages(value: int, network: nn.Module | None = None) -> None:
    """A bad number of stages to re-initialise is a TrainingError (one line)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TrainingError(f"reinit_decoder_stages must be a whole number >= 0, got {value!r}")
    if network is not None and value > num_decoder_stages(network):
        raise TrainingError(
            f"reinit_decoder_stages is {value}, but the network has only {num_decoder_stages(network)} decoder stages"
        )


def freeze_encoder(network: nn.Module) -> int:
    """Stop gradients into the encoder; return the number of frozen parameters (elements)."""
    _decoder(network)
    frozen = 0
    encoder: Any = network.encoder
    for parameter in encoder.parameters():
        parameter.requires_grad_(False)
        frozen += parameter.numel()
    return frozen


def reinitialise_last_decoder_stages(network: nn.Module, num_stages: int) -> int:
    """Re-initialise the ``num_stages`` finest decoder stages (with their upsampling and output layers) as the
    network initialises itself (He init); return the number of re-initialised parameters (elements)."""
    check_reinit_decoder_stages(num_stages, network)
    decoder = _decoder(network)
    initialise = getattr(network, "initialize", None)
    if initialise is None:
        raise TrainingError(f"{type(network).__name__} has no initialize(); cannot re-initialise decoder stages")
    total = len(decoder.stages)
    count = 0
    for index in range(total - num_stages, total):
        for part in ("stages", "transpconvs", "seg_layers"):
            modules = getattr(decoder, part, None)
            if modules is not None and index < len(modules):
                modules[index].apply(initialise)
                count += sum(p.numel() for p in modules[index].parameters())
    return count


def apply_partial_fine_tuning(
    network: nn.Module, freeze: bool, reinit_stages: int, reinitialise: bool = True
) -> dict[str, int]:
    """Re-initialise (when ``reinitialise``) and freeze as asked; return what was changed, for the log."""
    changed = {"frozen_parameters": 0, "reinitialised_parameters": 0}
    if reinit_stages and reinitialise:
        changed["reinitialised_parameters"] = reinitialise_last_decoder_stages(network, reinit_stages)
    elif reinit_stages:
        check_reinit_decoder_stages(reinit_stages, network)
    if freeze:
        changed["frozen_parameters"] = freeze_encoder(network)
    if any(changed.values()):
        logger.info(
            "partial fine-tuning: %d encoder parameters frozen, %d decoder parameters re-initialised",
            changed["frozen_parameters"],
            changed["reinitialised_parameters"],
        )
    return changed
