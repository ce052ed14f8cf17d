"""The scribble-loop test helper works for generator seeds whose planned patch the tiny U-Net cannot halve."""

from __future__ import annotations

from tests.scribble_loop.loop_setup import prepared_scribble_loop


def test_prepared_loop_fits_the_tiny_unet_to_an_odd_planned_patch(tmp_path):
    # seed 2 plans a 7-slice patch with no pooling along z; the helper's U-Net pools every axis
    with prepared_scribble_loop(tmp_path, 992, "LoopSetup", 4, seed=2) as cases:
        assert len(cases) == 5
        predicted = sorted(p.name for p in (tmp_path / "preliminary").glob("*.nii.gz"))
        assert predicted == [f"{case}.nii.gz" for case in cases[:3]]
        assert len(list((tmp_path / "scribbles").glob("*.nii.gz"))) == 2
