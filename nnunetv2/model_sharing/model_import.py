"""Install a model zip (from nnUNetv2_export_model_to_zip, ours or nnU-Net v2's) into nnUNet_results.

Every member is checked before anything is written: a member with an absolute path, a ``..``
component, a symbolic link, or a path outside a ``DatasetXXX_Name/`` folder refuses the whole
archive, so a malicious zip cannot write anywhere else ("zip slip").
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from nnunetv2 import paths
from nnunetv2.exceptions import NnUNetError
from nnunetv2.utilities.file_io import atomic_path

logger = logging.getLogger(__name__)

_DATASET_FOLDER = re.compile(r"^Dataset\d{3}_.+$")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


def _unsafe_reason(member: zipfile.ZipInfo) -> str | None:
    """Why a member must not be extracted, or None when it is safe.

    A relative path without '..' that is no link stays inside the target folder by construction.
    """
    name = member.filename.replace("\\", "/")  # Windows tools may write either separator
    if name.startswith("/") or _WINDOWS_DRIVE.match(name):
        return "has an absolute path"
    parts = PurePosixPath(name).parts
    if ".." in parts:
        return "would be written outside the target folder ('..' in its path)"
    if stat.S_ISLNK(member.external_attr >> 16):
        return "is a symbolic link"
    if not parts or not _DATASET_FOLDER.match(parts[0]):
        return "is not inside a DatasetXXX_Name folder; this is not an nnU-Net model archive"
    return None


def _checked_members(archive: zipfile.ZipFile, zip_file: Path) -> list[zipfile.ZipInfo]:
    """All members, once each is known to be safe and intact; otherwise one error and nothing written."""
    members = archive.infolist()
    if not members:
        raise NnUNetError(f"{zip_file}: the archive is empty")
    for member in members:
        reason = _unsafe_reason(member)
        if reason is not None:
            raise NnUNetError(f"{zip_file}: member '{member.filename}' {reason}; nothing was installed")
    # read every member once (CRC check) so a damaged archive is refused before anything is written
    try:
        damaged = archive.testzip()
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise NnUNetError(f"{zip_file}: the archive is damaged ({e}); nothing was installed") from None
    if damaged is not None:
        raise NnUNetError(f"{zip_file}: member '{damaged}' is damaged (CRC mismatch); nothing was installed")
    return members


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the ones created, outermost first."""
    missing = [p for p in [folder, *folder.parents] if not p.exists()][::-1]
    for path in missing:
        path.mkdir(exist_ok=True)
    return missing


def install_model_from_zip_file(
    zip_file: str | os.PathLike, target_folder: str | os.PathLike | None = None
) -> list[Path]:
    """Extract a model zip into ``target_folder`` (default nnUNet_results); returns the files written.

    Existing files of the same name are replaced, as a reinstall should.
    """
    zip_file = Path(zip_file)
    target = Path(target_folder) if target_folder is not None else paths.results_folder()
    if not zip_file.is_file():
        raise NnUNetError(f"{zip_file}: file not found")
    try:
        archive = zipfile.ZipFile(zip_file)
    except zipfile.BadZipFile:
        raise NnUNetError(f"{zip_file}: not a zip file") from None
    written: list[Path] = []
    added: list[Path] = []  # files that did not exist before
    created: list[Path] = []  # folders this install made, removed again if it fails
    try:
        with archive:
            members = _checked_members(archive, zip_file)
            for member in members:
                destination = target / member.filename.replace("\\", "/")
                folder = destination if member.is_dir() else destination.parent
                created += _make_folders(folder)
                if member.is_dir():
                    continue
                existed = destination.exists()
                # each file appears complete or not at all, even if the copy is interrupted
                with archive.open(member) as source, atomic_path(destination) as tmp:
                    with open(tmp, "wb") as out:
                        shutil.copyfileobj(source, out)
                written.append(destination)
                if not existed:
                    added.append(destination)
    except BaseException:
        # a full disk or Ctrl-C: take back what this install added (files it replaced stay replaced)
        for path in reversed(added):
            path.unlink(missing_ok=True)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty
        raise
    logger.info("installed %d file(s) from %s into %s", len(written), zip_file, target)
    return written
