"""Training: trainers, losses, learning-rate schedules, checkpoints, logs, splits and DDP."""
