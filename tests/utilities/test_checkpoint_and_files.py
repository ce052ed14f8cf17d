import numpy as np
import pytest
import torch

from nnunetv2.exceptions import NnUNetError
from nnunetv2.formats.checkpoint_io import load_checkpoint
from nnunetv2.utilities.device import resolve_device
from nnunetv2.utilities.file_io import atomic_path, load_json, save_json, save_npz_compressed


class _Executes:
    def __reduce__(self):
        return (exec, ("import sys; sys.exit(99)",))


def test_checkpoint_with_nnunet_v2_types_loads(tmp_path):
    checkpoint = {
        "network_weights": {"w": torch.ones(2)},
        "logging": {"loss": [np.float64(0.5)]},
        "init_args": {"device": torch.device("cpu")},
        "inference_allowed_mirroring_axes": (0, 1),
        "array": np.arange(3),
    }
    torch.save(checkpoint, tmp_path / "c.pth")
    loaded = load_checkpoint(tmp_path / "c.pth")
    assert loaded["logging"]["loss"][0] == 0.5 and loaded["inference_allowed_mirroring_axes"] == (0, 1)


def test_checkpoint_with_arbitrary_objects_is_refused(tmp_path):
    torch.save({"network_weights": {}, "payload": _Executes()}, tmp_path / "evil.pth")
    with pytest.raises(NnUNetError, match="evil.pth: checkpoint holds types that are not allowed"):
        load_checkpoint(tmp_path / "evil.pth")


def test_bad_checkpoint_files(tmp_path):
    with pytest.raises(NnUNetError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(NnUNetError, match="junk.pth: not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pth")
    torch.save({"weights": 1}, tmp_path / "other.pth")
    with pytest.raises(NnUNetError, match="no 'network_weights'"):
        load_checkpoint(tmp_path / "other.pth")


def test_json_round_trip_with_numpy(tmp_path):
    save_json({"a": np.float32(1.5), "b": np.arange(2), "c": (1, 2)}, tmp_path / "x.json")
    assert load_json(tmp_path / "x.json") == {"a": 1.5, "b": [0, 1], "c": [1, 2]}


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_device_choice():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(NnUNetError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(NnUNetError, match="no CUDA device"):
            resolve_device("cuda")


def test_atomic_writes_follow_the_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        save_json({"a": 1}, tmp_path / "x.json")
    finally:
        os.umask(old)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o644


def test_fast_npz_reads_like_numpys_and_is_compressed(tmp_path):
    rng = np.random.default_rng(0)
    smooth = np.repeat(rng.random((3, 4, 5, 1), dtype=np.float32), 64, axis=3)  # compressible
    view = smooth.transpose(0, 3, 2, 1)  # non-contiguous, like the exported probabilities
    save_npz_compressed(tmp_path / "case.npz", probabilities=view, other=np.arange(4, dtype=np.int16))
    with np.load(tmp_path / "case.npz") as loaded:
        assert sorted(loaded.files) == ["other", "probabilities"]
        np.testing.assert_array_equal(loaded["probabilities"], view)
        assert loaded["other"].dtype == np.int16
    assert (tmp_path / "case.npz").stat().st_size < view.nbytes / 4
    assert [p.name for p in tmp_path.iterdir()] == ["case.npz"]  # no temporary file left
    with pytest.raises(ValueError):  # object arrays are refused, nothing is written
        save_npz_compressed(tmp_path / "bad.npz", probabilities=np.array([{}], dtype=object))
    assert not (tmp_path / "bad.npz").exists()


def test_npz_of_incompressible_noise_is_stored_and_still_loads(tmp_path):
    import zipfile

    noise = np.random.default_rng(1).normal(size=(2, 64, 64, 32)).astype(np.float32).transpose(0, 3, 2, 1)
    save_npz_compressed(tmp_path / "noise.npz", probabilities=noise)
    with zipfile.ZipFile(tmp_path / "noise.npz") as archive:
        assert archive.getinfo("probabilities.npy").compress_type == zipfile.ZIP_STORED
    with np.load(tmp_path / "noise.npz") as loaded:
        np.testing.assert_array_equal(loaded["probabilities"], noise)
    smooth = np.zeros((2, 64, 64, 32), dtype=np.float32)
    save_npz_compressed(tmp_path / "smooth.npz", probabilities=smooth)
    with zipfile.ZipFile(tmp_path / "smooth.npz") as archive:
        assert archive.getinfo("probabilities.npy").compress_type == zipfile.ZIP_DEFLATED
