"""Build a network from a plans ``architecture`` block (dotted class path + kwargs)."""

from __future__ import annotations

import importlib
from typing import Any

from nnunetv2.exceptions import PlansError
from nnunetv2.formats.plans import ArchitectureSpec


def import_dotted(path: str) -> Any:
    """Return the object named by a dotted path such as ``torch.nn.Conv3d``."""
    module_name, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError):
        raise PlansError(f"cannot import '{path}' named in the plans' architecture block") from None


def build_network(
    architecture: ArchitectureSpec, num_input_channels: int, num_output_channels: int, deep_supervision: bool = True
):
    """Return the torch module described by ``architecture``."""
    kwargs = dict(architecture.arch_kwargs)
    for key in architecture.kw_requires_import:
        if kwargs.get(key) is not None:
            kwargs[key] = import_dotted(kwargs[key])
    network_class = import_dotted(architecture.network_class_name)
    return network_class(
        input_channels=num_input_channels, num_classes=num_output_channels, deep_supervision=deep_supervision, **kwargs
    )
