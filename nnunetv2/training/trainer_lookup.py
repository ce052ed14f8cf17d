"""Find a trainer class by name (``-tr``): in nnunetv2.training.trainers, in the folders named by
``nnUNet_extTrainer`` (as nnU-Net v2 does), or ``package.module:ClassName``."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import pkgutil
import re
import sys
from pathlib import Path

from nnunetv2.exceptions import TrainingError

logger = logging.getLogger(__name__)

TRAINERS_PACKAGE = "nnunetv2.training.trainers"
EXTERNAL_TRAINERS_VARIABLE = "nnUNet_extTrainer"


def _check_trainer(candidate: object, name: str) -> type:
    from nnunetv2.training.trainers.nnunet_trainer import nnUNetTrainer

    if not (isinstance(candidate, type) and issubclass(candidate, nnUNetTrainer)):
        raise TrainingError(f"'{name}' is not a subclass of nnUNetTrainer")
    return candidate


def _import_file(folder: Path, file: Path):
    """Import ``file`` as the module named by its path below ``folder`` (the folder is put on sys.path while
    importing, so its modules can import each other as nnU-Net v2 allows)."""
    module_name = ".".join(file.relative_to(folder).with_suffix("").parts)
    if module_name in sys.modules and getattr(sys.modules[module_name], "__file__", None) == str(file):
        return sys.modules[module_name]
    added = str(folder) not in sys.path
    if added:
        sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location(module_name, file)
        assert spec is not None and spec.loader is not None, file  # a .py file always has a source loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
        return module
    finally:
        if added:
            sys.path.remove(str(folder))


def find_external_trainer(name: str) -> type | None:
    """Return the class ``name`` from the .py files under the folders in ``nnUNet_extTrainer`` (os.pathsep-separated,
    searched recursively in order), or None."""
    value = os.environ.get(EXTERNAL_TRAINERS_VARIABLE, "")
    defines = re.compile(rf"^\s*class\s+{re.escape(name)}\b", re.MULTILINE)
    for entry in filter(None, (p.strip() for p in value.split(os.pathsep))):
        folder = Path(entry).expanduser().resolve()
        if not folder.is_dir():
            logger.warning("%s: folder %s does not exist", EXTERNAL_TRAINERS_VARIABLE, folder)
            continue
        for file in sorted(folder.rglob("*.py")):
            try:
                if not defines.search(file.read_text(errors="replace")):
                    continue
                module = _import_file(folder, file)
            except Exception as e:  # a broken user file names itself instead of a traceback
                raise TrainingError(
                    f"{file}: cannot import it to find trainer '{name}' ({type(e).__name__}: {e})"
                ) from None
            if isinstance(getattr(module, name, None), type):
                logger.info("trainer %s from %s", name, file)
                return _check_trainer(getattr(module, name), name)
    return None


def find_trainer_class(name: str) -> type:
    """Return the trainer class called ``name``; ``module:Class`` imports the user's own module."""
    if ":" in name:
        module_name, _, class_name = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise TrainingError(f"cannot import module '{module_name}' for trainer '{name}' ({e})") from None
        if not hasattr(module, class_name):
            raise TrainingError(f"module '{module_name}' has no class '{class_name}'")
        return _check_trainer(getattr(module, class_name), name)
    package = importlib.import_module(TRAINERS_PACKAGE)
    # modules are imported one by one until the name turns up; trainer modules must stay light
    # (never timm/torchvision) because any of them may be imported here
    for module_info in pkgutil.walk_packages(package.__path__, prefix=f"{TRAINERS_PACKAGE}."):
        module = importlib.import_module(module_info.name)
        if isinstance(getattr(module, name, None), type):
            return _check_trainer(getattr(module, name), name)
    external = find_external_trainer(name)
    if external is not None:
        return external
    raise TrainingError(
        f"trainer '{name}' not found in {TRAINERS_PACKAGE} nor in the folders of {EXTERNAL_TRAINERS_VARIABLE} "
        f"(for a class of your own set {EXTERNAL_TRAINERS_VARIABLE}=<folder> or use -tr package.module:ClassName)"
    )
