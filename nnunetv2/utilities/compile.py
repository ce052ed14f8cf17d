"""torch.compile of the network, as nnU-Net v2 decides it (``nnUNet_compile``), with a fallback to eager mode.

nnU-Net v2 compiles the training network by default on CUDA and never on the CPU; its predictor
compiles only when ``nnUNet_compile`` is set to true. We follow it, with one difference: an
explicit ``nnUNet_compile=1`` is honoured on the CPU too (inductor generates C++ there; see
documentation/training.md for when it pays off). A compilation that fails falls back to the
uncompiled network with one log line instead of stopping the run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from nnunetv2.exceptions import NnUNetError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

COMPILE_VARIABLE = "nnUNet_compile"
_TRUE = ("true", "1", "t", "yes", "y")
_FALSE = ("false", "0", "f", "no", "n", "")
Purpose = Literal["training", "prediction"]


def compile_requested(device: torch.device, purpose: Purpose) -> tuple[bool, str]:
    """Return (compile or not, why) for a network on ``device`` from ``nnUNet_compile`` and the defaults."""
    value = os.environ.get(COMPILE_VARIABLE)
    if value is not None and value.strip().lower() not in _TRUE + _FALSE:
        raise NnUNetError(f"{COMPILE_VARIABLE}={value!r} is not understood: use 1/true or 0/false")
    wanted = None if value is None else value.strip().lower() in _TRUE
    if device.type not in ("cuda", "cpu"):
        return False, f"torch.compile is not used on {device.type}"
    if os.name == "nt":
        return False, "torch.compile is not used on Windows (no inductor toolchain by default)"
    if wanted is not None:
        return wanted, f"{COMPILE_VARIABLE}={value}"
    # nnU-Net v2's defaults: training on CUDA compiles; the CPU and prediction only on request
    if purpose == "training" and device.type == "cuda":
        return True, f"default on CUDA ({COMPILE_VARIABLE}=0 turns it off)"
    return False, f"default for {purpose} on {device.type} ({COMPILE_VARIABLE}=1 turns it on)"


def _compile_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean 'compiling failed', not 'the network failed'."""
    from torch._dynamo.exc import TorchDynamoException

    errors: list[type[BaseException]] = [TorchDynamoException]
    try:
        from torch._inductor import exc as inductor_exc

        for name in ("OperatorIssue", "InvalidCxxCompiler", "CppCompileError", "SubgraphLoweringException"):
            if hasattr(inductor_exc, name):
                errors.append(getattr(inductor_exc, name))
    except ImportError:  # inductor missing from this build: dynamo's errors cover the rest
        pass
    return tuple(errors)


class _EagerOnFailure:
    """The compiled call of a module; the first compile error switches the module back to eager mode for good."""

    def __init__(self, module: torch.nn.Module, compiled: Callable, log: Callable[[str], None]):
        self.module = module
        self.compiled = compiled
        self.log = log
        self.errors = _compile_errors()

    def __call__(self, *args, **kwargs):
        try:
            return self.compiled(*args, **kwargs)
        except self.errors as error:
            self.module._compiled_call_impl = None
            result = self.module._call_impl(*args, **kwargs)  # a real fault of the network raises here, uncompiled
            first_line = (str(error).strip().splitlines() or [""])[0][:200]
            self.log(
                f"torch.compile failed ({type(error).__name__}: {first_line}); the network runs uncompiled "
                f"({COMPILE_VARIABLE}=0 skips compiling)"
            )
            return result


def compile_network(
    network: torch.nn.Module,
    device: torch.device,
    purpose: Purpose,
    log: Callable[[str], None] | None = None,
) -> bool:
    """Compile ``network`` in place when ``compile_requested`` says so; return whether it was compiled.

    In place (``nn.Module.compile``), so the module keeps its type and state-dict keys: checkpoints
    and DDP see the plain network. Compiling happens at the first call; if it fails, that call and
    every later one run uncompiled and ``log`` gets one line saying why.
    """
    import torch

    log = log or logger.info
    wanted, reason = compile_requested(device, purpose)
    if not wanted:
        logger.debug("torch.compile off: %s", reason)
        return False
    if not hasattr(network, "_compiled_call_impl"):
        log(f"torch.compile skipped: this torch {torch.__version__} cannot compile a module in place")
        return False
    if purpose == "training":
        # compile the backward pass with the forward one, so its failure is caught by the fallback too
        from torch._functorch import config as functorch_config

        if hasattr(functorch_config, "force_non_lazy_backward_lowering"):
            functorch_config.force_non_lazy_backward_lowering = True
    network.compile(dynamic=False)  # fixed patch shapes: one graph per batch shape, no dynamic-shape code
    compiled = network._compiled_call_impl
    assert compiled is not None  # set by nn.Module.compile
    network._compiled_call_impl = _EagerOnFailure(network, compiled, log)
    log(f"torch.compile on ({reason}); the first iterations include compiling")
    return True


def is_compiled(network: torch.nn.Module) -> bool:
    """Return whether ``network`` currently runs through torch.compile."""
    return getattr(network, "_compiled_call_impl", None) is not None
