"""nnU-Net v2's ``nnunetv2.configuration``: its module constants, read as nnU-Net v2 reads them."""

from __future__ import annotations

import os

from nnunetv2.preprocessing.resampling import ANISOTROPY_THRESHOLD
from nnunetv2.training.dataloading.background_loader import default_num_workers

default_num_processes = int(os.environ.get("nnUNet_def_n_proc", 8))

# a spacing counts as anisotropic when its largest axis is this many times the next one
ANISO_THRESHOLD = ANISOTROPY_THRESHOLD

# augmentation workers: nnUNet_n_proc_DA, else what our trainer chooses for this machine
default_n_proc_DA = default_num_workers()
