"""Background loading: in-process and worker processes, seeds, error reporting, shutdown, worker count."""

from __future__ import annotations

import logging
import os
import signal

import numpy as np
import pytest
import torch

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.exceptions import PreprocessingError, TrainingError
from nnunetv2.training.augmentation import pipelines
from nnunetv2.training.dataloading.background_loader import (
    DataLoaderWorkerError,
    default_num_workers,
    make_background_loader,
)
from nnunetv2.training.dataloading.data_loader import NnUNetDataLoader

LABELS = LabelManager({"background": 0, "organ": 1})
PATCH = (6, 10, 10)


@pytest.fixture
def folder(write_case):
    for case_id in ("a", "b"):
        seg = np.zeros((1, 8, 16, 16), dtype=np.int16)
        seg[0, 2:5, 4:9, 4:9] = 1
        result = write_case(case_id, seg, [1], channels=2)
    return result


def _loader(folder, transforms="training"):
    if transforms == "training":
        rotation, dummy_2d, initial, mirror = pipelines.configure_rotation_dummy_da_mirroring_and_initial_patch_size(
            PATCH
        )
        transforms = pipelines.get_training_transforms(PATCH, rotation, [[1, 1, 1], [0.5, 0.5, 0.5]], mirror, dummy_2d)
        return NnUNetDataLoader(folder, ["a", "b"], 2, initial, PATCH, LABELS, transforms=transforms)
    return NnUNetDataLoader(folder, ["a", "b"], 2, PATCH, PATCH, LABELS, transforms=transforms)


def _assert_batch(batch):
    assert batch["data"].shape == (2, 2, *PATCH) and batch["data"].dtype == torch.float32
    assert [tuple(t.shape) for t in batch["target"]] == [(2, 1, 6, 10, 10), (2, 1, 3, 5, 5)]


def test_in_process_and_one_worker_give_the_same_seeded_batches(folder):
    with make_background_loader(_loader(folder), 0, seed=11) as in_process:
        expected = [next(in_process) for _ in range(3)]
    with make_background_loader(_loader(folder), 1, seed=11) as background:
        received = [next(background) for _ in range(3)]
    for a, b in zip(expected, received):
        _assert_batch(b)
        assert a["keys"] == b["keys"] and torch.equal(a["data"], b["data"])
        assert all(torch.equal(x, y) for x, y in zip(a["target"], b["target"]))


def test_two_workers_give_batches_and_shut_down_cleanly(folder):
    background = make_background_loader(_loader(folder), 2, seed=0)
    batches = [next(background) for _ in range(4)]
    workers = list(background._workers)
    assert all(w.is_alive() for w in workers)
    background.close()
    for batch in batches:
        _assert_batch(batch)
    assert not torch.equal(batches[0]["data"], batches[1]["data"])  # the workers draw different streams
    assert all(w.exitcode is not None for w in workers)  # joined: no zombies left behind
    background.close()  # closing twice is harmless


def test_spawned_worker_gives_batches(folder):
    # spawn pickles the loader with its transforms and imports everything afresh in the worker
    with make_background_loader(_loader(folder), 1, seed=0, start_method="spawn") as background:
        _assert_batch(next(background))


def _explode_during_augmentation(**data_dict):
    raise ValueError("augmentation exploded on purpose")


@pytest.mark.parametrize("num_workers", [0, 2])
def test_worker_exception_surfaces_with_its_type_message_and_traceback(folder, num_workers):
    background = make_background_loader(_loader(folder, _explode_during_augmentation), num_workers)
    expected = ValueError if num_workers == 0 else DataLoaderWorkerError
    with pytest.raises(expected) as raised:
        next(background)
    background.close()
    if num_workers:
        message = str(raised.value)
        assert "ValueError: augmentation exploded on purpose" in message
        assert "Traceback (most recent call last)" in message and "_explode_during_augmentation" in message
        assert all(w.exitcode is not None for w in background._workers)


def test_user_errors_from_workers_keep_their_type_and_one_line_message(folder):
    (folder / "b_locations.npz").unlink()
    (folder / "a_locations.npz").unlink()
    loader = NnUNetDataLoader(folder, ["a", "b"], 2, PATCH, PATCH, LABELS, oversample_foreground_percent=1.0)
    with make_background_loader(loader, 1) as background:
        with pytest.raises(PreprocessingError, match=r"_locations.npz\); run nnUNetv2_preprocess again$"):
            next(background)


def test_killed_worker_is_reported_instead_of_hanging(folder):
    with make_background_loader(_loader(folder, None), 1) as background:
        next(background)
        os.kill(background._workers[0].pid, signal.SIGKILL)
        background._workers[0].join()
        with pytest.raises(DataLoaderWorkerError, match="died with exit code -9"):
            for _ in range(5):  # batches already queued may still arrive first
                next(background)


def test_default_num_workers(monkeypatch, caplog):
    monkeypatch.setenv("nnUNet_n_proc_DA", "3")
    assert default_num_workers() == 3
    monkeypatch.setenv("nnUNet_n_proc_DA", "many")
    with pytest.raises(TrainingError, match="nnUNet_n_proc_DA must be a non-negative integer, got 'many'"):
        default_num_workers()
    monkeypatch.delenv("nnUNet_n_proc_DA")
    with caplog.at_level(logging.INFO, logger="nnunetv2.training.dataloading.background_loader"):
        chosen = default_num_workers()
    assert 1 <= chosen <= 12 and f"augmentation workers: {chosen} for" in caplog.text
