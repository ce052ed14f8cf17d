"""nnU-Net v2's loss variants: cross-entropy only, Dice only, Dice + CE without smoothing, top-k CE."""

from __future__ import annotations

from torch import nn

from nnunetv2.exceptions import TrainingError
from nnunetv2.training.loss.compound_losses import DC_and_BCE_loss, DC_and_CE_loss, DC_and_topk_loss
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss
from nnunetv2.training.loss.robust_ce_loss import RobustCrossEntropyLoss, TopKLoss
from nnunetv2.training.trainers.nnunet_trainer import nnUNetTrainer


def _labels_only(trainer: nnUNetTrainer) -> None:
    if trainer.label_manager.has_regions:
        raise TrainingError(f"{type(trainer).__name__} does not support region-based training")


def _ignore_index(trainer: nnUNetTrainer) -> int:
    ignore_label = trainer.label_manager.ignore_label
    return -100 if ignore_label is None else ignore_label


class nnUNetTrainerCELoss(nnUNetTrainer):
    """Cross-entropy alone (labels only)."""

    def _build_loss(self) -> nn.Module:
        """Return cross-entropy (ignore label skipped), wrapped for deep supervision."""
        _labels_only(self)
        return self._wrap_for_deep_supervision(RobustCrossEntropyLoss(ignore_index=_ignore_index(self)))


class nnUNetTrainerCELoss_5epochs(nnUNetTrainerCELoss):
    """nnUNetTrainerCELoss for 5 epochs."""

    num_epochs = 5


class nnUNetTrainerDiceLoss(nnUNetTrainer):
    """Soft Dice alone (without background for labels, over all regions for regions); the ignore label is masked."""

    def _build_loss(self) -> nn.Module:
        """Return soft Dice (smooth 1e-5), wrapped for deep supervision."""
        dice = {"batch_dice": self.configuration_manager.batch_dice, "smooth": 1e-5, "ddp": self.is_ddp}
        if self.label_manager.has_regions:
            loss: nn.Module = DC_and_BCE_loss(
                {}, dict(dice, do_bg=True), weight_ce=0, use_ignore_label=self.label_manager.has_ignore_label
            )
        else:
            loss = DC_and_CE_loss(
                dict(dice, do_bg=False), {}, weight_ce=0, ignore_label=self.label_manager.ignore_label,
                dice_class=MemoryEfficientSoftDiceLoss,
            )  # fmt: skip
        return self._wrap_for_deep_supervision(loss)


class nnUNetTrainerDiceCELoss_noSmooth(nnUNetTrainer):
    """nnUNetTrainer's Dice + (B)CE with Dice smoothing 0."""

    def _build_loss(self) -> nn.Module:
        """Return Dice + (B)CE with smooth 0, wrapped for deep supervision."""
        dice = {"batch_dice": self.configuration_manager.batch_dice, "smooth": 0, "ddp": self.is_ddp}
        if self.label_manager.has_regions:
            loss: nn.Module = DC_and_BCE_loss(
                {}, dict(dice, do_bg=True), use_ignore_label=self.label_manager.has_ignore_label
            )
        else:
            loss = DC_and_CE_loss(
                dict(dice, do_bg=False), {}, ignore_label=self.label_manager.ignore_label,
                dice_class=MemoryEfficientSoftDiceLoss,
            )  # fmt: skip
        return self._wrap_for_deep_supervision(loss)


class nnUNetTrainerTopk10Loss(nnUNetTrainer):
    """Cross-entropy of the hardest 10% of voxels (labels only)."""

    label_smoothing = 0.0

    def _build_loss(self) -> nn.Module:
        """Return top-10% cross-entropy, wrapped for deep supervision."""
        _labels_only(self)
        loss = TopKLoss(ignore_index=_ignore_index(self), k=10, label_smoothing=self.label_smoothing)
        return self._wrap_for_deep_supervision(loss)


class nnUNetTrainerTopk10LossLS01(nnUNetTrainerTopk10Loss):
    """nnUNetTrainerTopk10Loss with label smoothing 0.1."""

    label_smoothing = 0.1


class nnUNetTrainerDiceTopK10Loss(nnUNetTrainer):
    """Soft Dice + top-10% cross-entropy (labels only)."""

    def _build_loss(self) -> nn.Module:
        """Return Dice + top-10% cross-entropy, wrapped for deep supervision."""
        _labels_only(self)
        loss = DC_and_topk_loss(
            {"batch_dice": self.configuration_manager.batch_dice, "smooth": 1e-5, "do_bg": False, "ddp": self.is_ddp},
            {"k": 10, "label_smoothing": 0.0},
            ignore_label=self.label_manager.ignore_label,
        )
        return self._wrap_for_deep_supervision(loss)
