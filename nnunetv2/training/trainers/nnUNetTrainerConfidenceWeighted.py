"""nnUNetTrainerConfidenceWeighted: fine-tuning on fully labeled plus pseudo-labeled cases, each voxel
weighted by the confidence of its label. It overrides only the loss and data loader hooks
(``_build_loss``, ``get_dataloaders``), ``validation_step`` and ``on_train_start``.

The confidence of a pseudo-labeled case is stored next to it in the preprocessed folder
(``nnunetv2.dataset.preprocessed_confidence``); cases without one (the fully labeled cases) have
confidence 1. ``ConfidenceDataLoader`` adds it to every patch as a last segmentation channel, so
augmentation moves it with the label (a region-based dataset's region conversion keeps it after the
region and ignore channels), and the loss weights cross-entropy (BCE for regions) per voxel and the
Dice terms (TP, FP, FN) by it (``nnunetv2.training.loss.confidence_weighted``). Part of the patches of
a case with stored scribbles is centred on them (``scribble_sample_probability``). Validation during
training scores the pseudo labels (their regions) unweighted.

``nnUNetv2_scribble_loop`` builds such a preprocessed folder per round and starts this trainer from
the previous model's weights (folders and settings given as ``TrainerOptions``); with
``nnUNetv2_train -tr nnUNetTrainerConfidenceWeighted -pretrained_weights ...`` it trains on any
preprocessed dataset that holds confidence maps.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from torch import nn

from nnunetv2.dataset.preprocessed_confidence import CONFIDENCE_SUFFIX, SCRIBBLES_SUFFIX
from nnunetv2.exceptions import TrainingError
from nnunetv2.training.dataloading.confidence_data_loader import ConfidenceDataLoader
from nnunetv2.training.loss.confidence_weighted import build_confidence_weighted_loss
from nnunetv2.training.loss.deep_supervision import deep_supervision_weights
from nnunetv2.training.trainers.nnunet_trainer import nnUNetTrainer


class nnUNetTrainerConfidenceWeighted(nnUNetTrainer):
    """nnUNetTrainer whose Dice + CE (Dice + BCE for regions) weights every voxel by the stored confidence of its
    (pseudo) label."""

    scribble_sample_probability = 0.5

    def __init__(self, plans: dict, configuration: str, fold: int | str, dataset_json: dict, device=None):
        super().__init__(plans, configuration, fold, dataset_json, device)
        if self.is_cascaded:
            raise TrainingError(
                f"{type(self).__name__}: configuration '{configuration}' is a cascade stage, which "
                f"this trainer does not support"
            )

    def _build_loss(self) -> nn.Module:
        """Return the confidence-weighted Dice + CE (Dice + BCE for regions), wrapped for deep supervision."""
        scales = self._get_deep_supervision_scales()
        weights = None if scales is None else deep_supervision_weights(len(scales), self.is_ddp)
        return build_confidence_weighted_loss(
            self.label_manager, self.configuration_manager.batch_dice, weights, distributed=self.is_ddp
        )

    def get_dataloaders(self) -> tuple[Any, Any]:
        """Return batch iterators whose targets are (label, confidence) pairs."""
        return self._make_dataloaders(
            functools.partial(ConfidenceDataLoader, scribble_sample_probability=self.scribble_sample_probability)
        )

    def on_train_start(self) -> None:
        """Prepare the run as nnUNetTrainer does and log how many cases carry confidence maps and scribbles."""
        super().on_train_start()
        names = os.listdir(self.preprocessed_dataset_folder)
        with_confidence = sum(n.endswith(CONFIDENCE_SUFFIX) for n in names)
        with_scribbles = sum(n.endswith(SCRIBBLES_SUFFIX) for n in names)
        self.print_to_log_file(
            f"confidence-weighted loss: {with_confidence} case(s) with a confidence map (the others "
            f"count as fully labeled), {with_scribbles} with scribbles, sampled near them with "
            f"probability {self.scribble_sample_probability}"
        )

    def validation_step(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Return nnUNetTrainer's validation dict against the pseudo labels (or their regions), unweighted (the
        confidence channel dropped)."""
        target = batch["target"]
        labels = [t[:, :-1] for t in target] if isinstance(target, (list, tuple)) else target[:, :-1]
        return super().validation_step(dict(batch, target=labels))
