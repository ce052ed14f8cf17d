"""Scribble-loop options from the published method: partial fine-tuning and per-class geodesic distance maps."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet

from nnunetv2.exceptions import TrainingError
from nnunetv2.formats.checkpoint_io import load_checkpoint
from nnunetv2.scribble_loop.loop import run_scribble_loop
from nnunetv2.scribble_loop.loop_state import ScribbleLoopRequest
from nnunetv2.scribble_loop.partial_fine_tuning import (
    apply_partial_fine_tuning,
    freeze_encoder,
    reinitialise_last_decoder_stages,
)
from nnunetv2.scribble_loop.pseudo_labels import pseudo_label_parameters
from tests.scribble_loop.loop_setup import prepared_scribble_loop, use_nnunet_folders

UNANNOTATED = 3


def _unet() -> PlainConvUNet:
    torch.manual_seed(0)
    return PlainConvUNet(
        1, 3, [4, 8, 16], torch.nn.Conv2d, 3, [1, 2, 2], [1, 1, 1], 3, [1, 1], True, torch.nn.InstanceNorm2d,
        {"eps": 1e-5, "affine": True}, None, None, torch.nn.LeakyReLU, {"inplace": True}, deep_supervision=True,
    )  # fmt: skip


def test_freeze_encoder_stops_its_gradients_only():
    network = _unet()
    frozen = freeze_encoder(network)
    assert frozen == sum(p.numel() for p in network.encoder.parameters()) > 0
    assert not any(p.requires_grad for p in network.encoder.parameters())
    assert all(p.requires_grad for p in network.decoder.stages.parameters())
    network(torch.rand(2, 1, 16, 16))[0].sum().backward()
    assert all(p.grad is None for p in network.encoder.parameters())
    assert all(p.grad is not None for p in network.decoder.seg_layers[-1].parameters())


def test_reinit_touches_only_the_finest_decoder_stages():
    network = _unet()
    with torch.no_grad():
        for p in network.parameters():
            p.fill_(0.5)
    reinitialise_last_decoder_stages(network, 1)
    finest, coarser = network.decoder.stages[-1], network.decoder.stages[0]
    assert not torch.all(finest.convs[0].conv.weight == 0.5)
    assert not torch.all(network.decoder.seg_layers[-1].weight == 0.5)
    assert torch.all(network.decoder.seg_layers[0].weight == 0.5)
    assert all(torch.all(p == 0.5) for p in coarser.parameters())
    assert all(torch.all(p == 0.5) for p in network.encoder.parameters())


@pytest.mark.parametrize(
    "stages, message",
    [(-1, "reinit_decoder_stages must be a whole number >= 0, got -1"), (3, "the network has only 2 decoder stages")],
)
def test_bad_numbers_of_stages_are_one_line(stages, message):
    with pytest.raises(TrainingError, match=message):
        apply_partial_fine_tuning(_unet(), freeze=False, reinit_stages=stages)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop_options")
    with prepared_scribble_loop(root, 994, "LoopOptions", UNANNOTATED, seed=1) as cases:
        yield root, cases


def test_frozen_encoder_round_keeps_the_preliminary_encoder_and_writes_distance_maps(prepared, monkeypatch):
    root, cases = prepared
    use_nnunet_folders(monkeypatch, root)
    request = ScribbleLoopRequest(
        dataset_name_or_id=994,
        configuration="3d_fullres",
        fold="all",
        pool_images=str(root / "pool" / "images"),
        scribbles=str(root / "scribbles"),
        output_folder=str(root / "loop"),
        num_rounds=1,
        epochs_per_round=1,
        iterations_per_epoch=2,
        val_iterations_per_epoch=1,
        seed=0,
        num_data_workers=0,
        show_progress=False,
        freeze_encoder=True,
        reinit_decoder_stages=1,
        save_distance_maps=True,
    )
    run_scribble_loop(request)
    preliminary = root / "nnUNet_results" / "Dataset994_LoopOptions" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    before = load_checkpoint(preliminary / "fold_all" / "checkpoint_final.pth")["network_weights"]
    after = load_checkpoint(root / "loop" / "round_1" / "model" / "fold_all" / "checkpoint_final.pth")
    after = after["network_weights"]
    encoder = [k for k in before if k.startswith("encoder.")]
    assert encoder and all(torch.equal(before[k], after[k]) for k in encoder)
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith("decoder.seg_layers"))
    defaults = pseudo_label_parameters()
    for round_index in (0, 1):
        maps = sorted((root / "loop" / f"round_{round_index}" / "pseudo_labels" / "distance_maps").glob("*.nii.gz"))
        assert maps and all(m.name.startswith(tuple(cases[:2])) for m in maps)
        distance = sitk.GetArrayFromImage(sitk.ReadImage(str(maps[0])))
        image = sitk.ReadImage(str(root / "pool" / "images" / f"{maps[0].name.split('_class')[0]}_0000.nii.gz"))
        assert distance.shape == sitk.GetArrayFromImage(image).shape
        cap = max(defaults["threshold"], defaults["supported_threshold"])  # the larger reach of the two stroke kinds
        assert distance.min() == 0 and distance.max() <= cap + 1e-6 and np.isfinite(distance).all()


def test_in_run_refresh_renews_pseudo_labels_with_one_learning_rate_decay(prepared, monkeypatch):
    root, cases = prepared
    use_nnunet_folders(monkeypatch, root)
    request = ScribbleLoopRequest(
        dataset_name_or_id=994,
        configuration="3d_fullres",
        fold="all",
        pool_images=str(root / "pool" / "images"),
        scribbles=str(root / "scribbles"),
        output_folder=str(root / "refresh_loop"),
        num_rounds=1,
        epochs_per_round=3,
        iterations_per_epoch=1,
        val_iterations_per_epoch=1,
        seed=0,
        num_data_workers=0,
        show_progress=False,
        refresh_every=1,
    )
    metrics = run_scribble_loop(request)
    round_1 = root / "refresh_loop" / "round_1"
    for epoch in (1, 2):
        refresh = round_1 / f"refresh_after_epoch_{epoch}"
        assert sorted(p.name for p in (refresh / "predictions").glob("*.npz")) == [f"{c}.npz" for c in cases[:3]]
        assert (refresh / "pseudo_labels" / "summary.json").is_file()
        assert not (refresh / "training_data").exists()
    summary = json.loads((round_1 / "pseudo_labels" / "summary.json").read_text())
    assert summary["parameters"]["previous_pseudo_labels"] == str(round_1 / "refresh_after_epoch_2" / "pseudo_labels")
    final = load_checkpoint(round_1 / "model" / "fold_all" / "checkpoint_final.pth")
    assert final["current_epoch"] == 3
    np.testing.assert_allclose(final["logging"]["lrs"], [1e-2 * (1 - e / 3) ** 0.9 for e in range(3)])
    assert [m["round"] for m in metrics] == [0, 1]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["-refresh_every", "0"], "refresh_every must lie between 1 and epochs_per_round - 1 (0), got 0"),
        (["--reinit_decoder_stages", "-1"], "reinit_decoder_stages must be a whole number >= 0, got -1"),
        (["--reinit_decoder_stages", "9"], "reinit_decoder_stages is 9, but the network has only"),
        (["--save_distance_maps=yes"], "ignored explicit argument 'yes'"),
        (["--freeze_encoder=no"], "ignored explicit argument 'no'"),
    ],
)
def test_bad_option_values_of_the_loop_command_are_one_line(prepared, monkeypatch, capsys, tmp_path, flags, message):
    from nnunetv2.cli.scribble_loop import scribble_loop_entry

    root, _ = prepared
    use_nnunet_folders(monkeypatch, root)
    argv = ["nnUNetv2_scribble_loop", "-d", "994", "-c", "3d_fullres", "-f", "all", "-i", str(root / "pool" / "images")]
    argv += ["-s", str(root / "scribbles"), "-o", str(tmp_path / "loop"), "--quiet", "-num_epochs", "1"]
    argv += ["-num_iterations_per_epoch", "1", "-num_val_iterations_per_epoch", "1", "-num_rounds", "1", *flags]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit):
        scribble_loop_entry()
    error = capsys.readouterr().err.strip().splitlines()
    assert message in error[-1]
    assert not (tmp_path / "loop" / "round_1" / "model" / "fold_all" / "checkpoint_final.pth").exists()


def test_pseudolabel_command_rejects_a_value_for_the_distance_map_flag(monkeypatch, capsys, tmp_path):
    from nnunetv2.cli.scribble_loop import scribble_pseudolabels_entry

    argv = ["nnUNetv2_scribble_pseudolabels", "-i", "a", "-p", "b", "-s", "c", "-o", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", [*argv, "--save_distance_maps=1"])
    with pytest.raises(SystemExit) as exit_info:
        scribble_pseudolabels_entry()
    assert exit_info.value.code == 2
    assert "ignored explicit argument '1'" in capsys.readouterr().err.strip().splitlines()[-1]
