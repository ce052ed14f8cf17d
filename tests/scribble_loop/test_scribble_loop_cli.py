"""nnUNetv2_scribble_loop builds its request with the request's own defaults."""

from __future__ import annotations

import sys

import pytest

from nnunetv2.cli.scribble_loop import scribble_loop_entry
from nnunetv2.scribble_loop import loop
from nnunetv2.scribble_loop.loop_state import ScribbleLoopRequest


def test_flags_left_out_give_the_request_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    requests: list[ScribbleLoopRequest] = []
    monkeypatch.setattr(loop, "run_scribble_loop", lambda request: requests.append(request) or [])
    required = ["-d", "4", "-c", "2d", "-i", "pool", "-s", "scribbles", "-o", "out"]
    monkeypatch.setattr(sys, "argv", ["nnUNetv2_scribble_loop", *required])
    scribble_loop_entry()
    expected = ScribbleLoopRequest("4", "2d", "0", "pool", "scribbles", "out")
    assert requests == [expected]


def test_a_given_flag_overrides_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    requests: list[ScribbleLoopRequest] = []
    monkeypatch.setattr(loop, "run_scribble_loop", lambda request: requests.append(request) or [])
    argv = ["-d", "4", "-c", "2d", "-i", "p", "-s", "s", "-o", "o", "-num_rounds", "5", "--threshold", "7"]
    argv += ["--recalibration_scale", "1.5"]
    monkeypatch.setattr(sys, "argv", ["nnUNetv2_scribble_loop", *argv])
    scribble_loop_entry()
    assert requests[0].num_rounds == 5
    assert requests[0].pseudo_label_parameters == {"threshold": 7.0, "recalibration_scale": 1.5}
    assert requests[0].epochs_per_round == ScribbleLoopRequest.epochs_per_round
