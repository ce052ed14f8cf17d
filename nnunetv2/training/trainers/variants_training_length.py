"""nnU-Net v2's training-length variants (e.g. ``-tr nnUNetTrainer_5epochs``), also without mirroring."""

from __future__ import annotations

from nnunetv2.training.trainers.nnunet_trainer import nnUNetTrainer
from nnunetv2.training.trainers.variants_data_augmentation import nnUNetTrainerNoMirroring


class nnUNetTrainer_1epoch(nnUNetTrainer):
    """Trains 1 epoch."""

    num_epochs = 1


class nnUNetTrainer_5epochs(nnUNetTrainer):
    """Trains 5 epochs."""

    num_epochs = 5


class nnUNetTrainer_10epochs(nnUNetTrainer):
    """Trains 10 epochs."""

    num_epochs = 10


class nnUNetTrainer_20epochs(nnUNetTrainer):
    """Trains 20 epochs."""

    num_epochs = 20


class nnUNetTrainer_50epochs(nnUNetTrainer):
    """Trains 50 epochs."""

    num_epochs = 50


class nnUNetTrainer_100epochs(nnUNetTrainer):
    """Trains 100 epochs."""

    num_epochs = 100


class nnUNetTrainer_250epochs(nnUNetTrainer):
    """Trains 250 epochs."""

    num_epochs = 250


class nnUNetTrainer_500epochs(nnUNetTrainer):
    """Trains 500 epochs."""

    num_epochs = 500


class nnUNetTrainer_750epochs(nnUNetTrainer):
    """Trains 750 epochs."""

    num_epochs = 750


class nnUNetTrainer_2000epochs(nnUNetTrainer):
    """Trains 2000 epochs."""

    num_epochs = 2000


class nnUNetTrainer_4000epochs(nnUNetTrainer):
    """Trains 4000 epochs."""

    num_epochs = 4000


class nnUNetTrainer_8000epochs(nnUNetTrainer):
    """Trains 8000 epochs."""

    num_epochs = 8000


class nnUNetTrainer_250epochs_NoMirroring(nnUNetTrainerNoMirroring):
    """Trains 250 epochs without mirroring."""

    num_epochs = 250


class nnUNetTrainer_2000epochs_NoMirroring(nnUNetTrainerNoMirroring):
    """Trains 2000 epochs without mirroring."""

    num_epochs = 2000


class nnUNetTrainer_4000epochs_NoMirroring(nnUNetTrainerNoMirroring):
    """Trains 4000 epochs without mirroring."""

    num_epochs = 4000


class nnUNetTrainer_8000epochs_NoMirroring(nnUNetTrainerNoMirroring):
    """Trains 8000 epochs without mirroring."""

    num_epochs = 8000
