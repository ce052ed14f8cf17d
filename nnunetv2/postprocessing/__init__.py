"""Connected-component postprocessing: apply it, and decide it on cross-validation results."""
