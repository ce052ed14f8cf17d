"""nnUNetv2_download_pretrained_model_by_url: from a local HTTP server and from a file:// URL."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from nnunetv2.exceptions import NnUNetError
from nnunetv2.model_sharing.model_download import download_and_install_from_url

BIN = Path(sys.executable).parent
MODEL = "Dataset994_Download/nnUNetTrainer__nnUNetPlans__3d_fullres"
CONTENTS = {
    f"{MODEL}/plans.json": b"{}",
    f"{MODEL}/dataset.json": b"{}",
    f"{MODEL}/fold_0/checkpoint_final.pth": bytes(range(256)) * 64,
}


@pytest.fixture
def model_zip(tmp_path) -> Path:
    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / "model.zip", "w") as archive:
        for name, data in CONTENTS.items():
            archive.writestr(name, data)
    return served / "model.zip"


@pytest.fixture
def http_url(model_zip):
    """A URL of the zip on an HTTP server on 127.0.0.1, in a thread of this process."""
    handler = functools.partial(QuietHandler, directory=str(model_zip.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


def _installed(results: Path) -> dict[str, bytes]:
    return {p.relative_to(results).as_posix(): p.read_bytes() for p in results.rglob("*") if p.is_file()}


def test_download_over_http_installs_the_model_and_leaves_no_temporary_file(http_url, nnunet_env):
    written = download_and_install_from_url(f"{http_url}/model.zip", show_progress=False)
    assert len(written) == 3
    assert _installed(nnunet_env["nnUNet_results"]) == CONTENTS  # nothing else left in nnUNet_results


def test_the_command_takes_a_file_url(model_zip, nnunet_env):
    env = {**os.environ, **{k: str(v) for k, v in nnunet_env.items()}}
    result = subprocess.run(
        [str(BIN / "nnUNetv2_download_pretrained_model_by_url"), model_zip.as_uri()],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "installed 3 file(s)" in result.stdout
    assert _installed(nnunet_env["nnUNet_results"]) == CONTENTS


def test_a_missing_url_or_a_non_zip_is_one_error_line(http_url, nnunet_env, model_zip):
    with pytest.raises(NnUNetError, match=r"model2.zip: download failed \(HTTP 404 "):
        download_and_install_from_url(f"{http_url}/model2.zip", show_progress=False)
    (model_zip.parent / "page.html").write_text("<html></html>")
    with pytest.raises(NnUNetError, match="not a zip file"):
        download_and_install_from_url(f"{http_url}/page.html", show_progress=False)
    env = {**os.environ, **{k: str(v) for k, v in nnunet_env.items()}}
    result = subprocess.run(
        [str(BIN / "nnUNetv2_download_pretrained_model_by_url"), "file:///no/such/model.zip"],
        env=env,
        capture_output=True,
        text=True,
    )
    last_line = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1 and last_line.startswith("error: file:///no/such/model.zip: download failed")
    assert _installed(nnunet_env["nnUNet_results"]) == {}
