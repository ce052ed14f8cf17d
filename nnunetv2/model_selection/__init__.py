"""Choosing among trained configurations: cross-validation accumulation and the best configuration."""
