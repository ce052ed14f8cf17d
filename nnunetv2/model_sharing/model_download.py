"""Download a model zip from a URL and install it (nnUNetv2_download_pretrained_model_by_url).

nnU-Net v2's module path and function names. Any URL ``urllib`` opens works (``https://``,
``http://``, ``file://``). The download goes to a temporary file beside nnUNet_results and is
installed with the same code as nnUNetv2_install_pretrained_model_from_zip, then removed.
"""

from __future__ import annotations

import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from nnunetv2 import paths
from nnunetv2.exceptions import NnUNetError
from nnunetv2.model_sharing.model_import import install_model_from_zip_file

logger = logging.getLogger(__name__)

_TIMEOUT_SECONDS = 100


def download_file(url: str, local_filename: str | os.PathLike, chunk_size: int = 8192 * 16, show_progress: bool = True):
    """Stream ``url`` into ``local_filename``; return its path."""
    from tqdm import tqdm

    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_SECONDS) as response:
            total = response.headers.get("Content-Length")
            with (
                open(local_filename, "wb") as out,
                tqdm(
                    total=int(total) if total else None, unit="B", unit_scale=True, disable=not show_progress
                ) as progress,
            ):
                while chunk := response.read(chunk_size):
                    out.write(chunk)
                    progress.update(len(chunk))
    except urllib.error.HTTPError as e:
        raise NnUNetError(f"{url}: download failed (HTTP {e.code} {e.reason})") from None
    except (urllib.error.URLError, ValueError, OSError) as e:
        raise NnUNetError(f"{url}: download failed ({getattr(e, 'reason', e)})") from None
    return str(local_filename)


def download_and_install_from_url(url: str, show_progress: bool = True) -> list[Path]:
    """Download the model zip at ``url`` and install it into nnUNet_results; return the files written."""
    results = paths.results_folder()
    results.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".nnunetdownload_", suffix=".zip", dir=results)
    os.close(handle)
    try:
        logger.info("downloading %s", url)
        download_file(url, temporary, show_progress=show_progress)
        return install_model_from_zip_file(temporary)
    finally:
        Path(temporary).unlink(missing_ok=True)


__all__ = ["download_and_install_from_url", "download_file"]
