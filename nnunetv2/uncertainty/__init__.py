"""Checkpoint-ensemble uncertainty: measures, prediction with every checkpoint, maps, scores, fold selection."""
