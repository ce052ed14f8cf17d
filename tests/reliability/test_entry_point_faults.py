"""OS faults at every entry point: one ``error:`` line with the path and the OS's reason, non-zero exit.

Read-only folders are made with chmod only when the tests do not run as root (root ignores the mode);
a full disk is simulated in-process by raising the OS's ENOSPC where a write happens.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from nnunetv2.cli.common import run_cli
from nnunetv2.cli.model_sharing import install_from_zip_entry
from nnunetv2.cli.predict import predict_from_modelfolder_entry
from nnunetv2.exceptions import NnUNetError, TrainingError
from nnunetv2.formats.checkpoint_io import load_checkpoint
from nnunetv2.training.checkpointing import save_checkpoint_file
from nnunetv2.utilities.process_pool import spawn_executor
from tests.reliability.conftest import assert_one_error_line, can_use_permissions, run_entry


def _run(main, capsys) -> tuple[int, str]:
    try:
        run_cli(main)
    except SystemExit as e:
        return e.code, capsys.readouterr().err
    return 0, capsys.readouterr().err


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            PermissionError(errno.EACCES, "Permission denied", "/results/Dataset1"),
            "/results/Dataset1: Permission denied",
        ),
        (FileExistsError(errno.EEXIST, "File exists", "/out"), "/out: File exists"),
        (OSError(errno.ENOSPC, "No space left on device", "/out/a.nii.gz"), "/out/a.nii.gz: No space left on device"),
        (OSError(errno.EXDEV, "Invalid cross-device link", "/a", None, "/b"), "/a -> /b: Invalid cross-device link"),
    ],
)
def test_os_errors_become_one_line(capsys, error, expected):
    def main():
        raise error

    code, stderr = _run(main, capsys)
    assert_one_error_line(code, stderr, expected)


def test_ctrl_c_is_one_line_and_exit_130(capsys):
    def main():
        raise KeyboardInterrupt

    code, stderr = _run(main, capsys)
    assert code == 130 and stderr.strip() == "interrupted"


def test_worker_processes_leave_ctrl_c_to_the_parent():
    # a worker that also got SIGINT printed its own traceback (about 95 lines for plan_and_preprocess)
    with spawn_executor(1) as pool:
        assert pool.submit(signal.getsignal, signal.SIGINT).result() == signal.SIG_IGN


def test_an_output_below_a_file_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("x")
    (tmp_path / "in").mkdir()
    code, stderr = run_entry(
        monkeypatch, capsys, predict_from_modelfolder_entry, "-i", str(tmp_path / "in"), "-o",
        str(tmp_path / "file" / "out"), "-m", str(tmp_path / "no_model"),
    )  # fmt: skip
    assert code == 1 and "Traceback" not in stderr and stderr.startswith("error:")


@pytest.mark.skipif(not can_use_permissions(), reason="root ignores folder permissions")
def test_a_read_only_output_folder_is_one_line(tmp_path, capsys):
    from nnunetv2.utilities.file_io import save_json

    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, stderr = _run(lambda: save_json({}, folder / "x.json"), capsys)
    finally:
        folder.chmod(0o755)
    assert_one_error_line(code, stderr, str(folder), "Permission denied")


def test_an_empty_checkpoint_is_named_as_empty(tmp_path):
    (tmp_path / "checkpoint_final.pth").write_bytes(b"")
    with pytest.raises(NnUNetError, match=r"checkpoint_final.pth: not a readable checkpoint \(the file is empty\)"):
        load_checkpoint(tmp_path / "checkpoint_final.pth")


def test_random_bytes_are_not_called_a_refused_type(tmp_path):
    (tmp_path / "checkpoint_final.pth").write_bytes(os.urandom(4096))
    with pytest.raises(NnUNetError, match="not a readable checkpoint") as info:
        load_checkpoint(tmp_path / "checkpoint_final.pth")
    assert "not allowed" not in str(info.value)


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    from nnunetv2.training import checkpointing

    checkpoint = {key: None for key in checkpointing.CHECKPOINT_KEYS} | {"network_weights": {}}
    path = tmp_path / "checkpoint_latest.pth"
    save_checkpoint_file(checkpoint, path)
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file data/0")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(
        TrainingError, match="checkpoint_latest.pth: cannot write the checkpoint .*previous one is kept"
    ):
        save_checkpoint_file(checkpoint, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_latest.pth"]


def test_a_full_disk_during_install_leaves_no_empty_folders(tmp_path, monkeypatch, capsys):
    from nnunetv2.model_sharing import model_import

    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name in ("Dataset001_A/tr__p__3d/plans.json", "Dataset001_A/tr__p__3d/fold_0/checkpoint_final.pth"):
            z.writestr(name, "{}")
    results = tmp_path / "results"
    (results / "Dataset009_Kept").mkdir(parents=True)
    monkeypatch.setenv("nnUNet_results", str(results))
    real_copy = model_import.shutil.copyfileobj
    copies = []

    def disk_full_on_second(source, target, *args):
        copies.append(1)
        if len(copies) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_copy(source, target, *args)

    monkeypatch.setattr(model_import.shutil, "copyfileobj", disk_full_on_second)
    code, stderr = run_entry(monkeypatch, capsys, install_from_zip_entry, str(archive))
    assert_one_error_line(code, stderr, "No space left on device")
    assert sorted(p.relative_to(results).as_posix() for p in results.rglob("*")) == ["Dataset009_Kept"]


@pytest.mark.skipif(sys.platform != "linux", reason="process groups and SIGINT as on Linux")
def test_ctrl_c_during_preprocessing_prints_no_worker_tracebacks(nnunet_env, tmp_path):
    from nnunetv2.dataset.synthetic import generate_synthetic_dataset

    generate_synthetic_dataset(nnunet_env["nnUNet_raw"] / "Dataset703_Interrupt", num_cases=12, shape=(16, 48, 48))
    command = [str(Path(sys.executable).parent / "nnUNetv2_plan_and_preprocess"), "-d", "703", "-c", "3d_fullres"]
    stderr_file = tmp_path / "stderr.txt"
    with open(stderr_file, "wb") as stderr:
        # Ctrl-C reaches the whole process group; a shell's background job would ignore it, so restore it
        process = subprocess.Popen(
            [*command, "-np", "2", "-npfp", "2"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        # waits for events, not durations: the fingerprint's worker processes exist (the parent's children are
        # the resource tracker and the two workers)
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
        while process.poll() is None and not (
            "Extracting dataset fingerprint" in stderr_file.read_text(errors="replace")
            and children.exists()
            and len(children.read_text().split()) >= 3
        ):
            time.sleep(0.05)
        if process.poll() is not None:
            pytest.skip("preprocessing ended before it could be interrupted")
        os.killpg(process.pid, signal.SIGINT)
        code = process.wait(timeout=300)
    text = stderr_file.read_text(errors="replace")
    if code == 0:
        pytest.skip("preprocessing finished before the signal arrived")
    assert code == 130 and "Traceback" not in text, text
    assert text.rstrip().endswith("interrupted")
