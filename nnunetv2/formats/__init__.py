"""On-disk formats every stage shares: plans, dataset.json, model and prediction folders, folds, checkpoints."""
