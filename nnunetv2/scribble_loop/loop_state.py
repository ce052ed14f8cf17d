"""What a scribble loop is asked for (``ScribbleLoopRequest``) and what its rounds share once resolved."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.plans import ConfigurationPlans, Plans


@dataclass(frozen=True)
class ScribbleLoopRequest:
    """Everything ``nnUNetv2_scribble_loop`` can be asked for."""

    dataset_name_or_id: str | int
    configuration: str
    fold: int | str  # fold of the preliminary model
    pool_images: str  # CASE_XXXX{ending} files of the pool
    scribbles: str  # CASE{ending} correction scribbles (cases without one: the network's labels)
    output_folder: str  # the loop folder
    num_rounds: int = 2
    epochs_per_round: int = 50
    iterations_per_epoch: int = 250
    val_iterations_per_epoch: int = 50
    trainer_name: str = "nnUNetTrainer"  # trainer of the preliminary model
    plans_identifier: str = "nnUNetPlans"
    checkpoint_name: str = "checkpoint_final.pth"
    initial_lr: float = 1e-2
    scribble_sample_probability: float = 0.5
    unannotated_value: int | None = None
    pseudo_label_parameters: dict[str, Any] = field(default_factory=dict)
    update_min_probability: float | None = None  # rounds >= 1 (None: DEFAULT_UPDATE_MIN_PROBABILITY; 0: always renew)
    save_every: int | None = None  # checkpoint_latest interval within a round (None: the trainer's 50)
    seed: int | None = None
    pool_reference: str | None = None  # reference labels of the pool, for metrics only
    test_images: str | None = None  # a test set, for metrics only (needs test_reference)
    test_reference: str | None = None
    device: str | None = None
    num_data_workers: int | None = None
    show_progress: bool = True
    # partial fine-tuning (the published method's retrain_layer / reinit)
    freeze_encoder: bool = False
    reinit_decoder_stages: int = 0  # the finest decoder stages re-initialised before each round's fine-tuning
    save_distance_maps: bool = False  # per-class geodesic distance maps next to each round's pseudo labels
    refresh_every: int | None = None  # renew the pseudo labels every N epochs within a round (None: per round only)


@dataclass
class ResolvedLoop:
    """What every round needs, resolved once."""

    request: ScribbleLoopRequest
    folder: Path
    preliminary_model: Path
    labeled_data_folder: Path
    plans_dict: dict[str, Any]
    plans: Plans
    configuration: ConfigurationPlans
    dataset_json: DatasetJson
    pool_cases: dict[str, list[Path]]  # case -> channel files

    def round_folder(self, round_index: int) -> Path:
        """Return ``LOOP/round_{round_index}``."""
        return self.folder / f"round_{round_index}"
