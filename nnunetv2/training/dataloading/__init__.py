"""Patch sampling from preprocessed cases and background workers that keep batches coming."""
