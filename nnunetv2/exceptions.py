"""Exception types for problems a user can cause; the CLI turns them into one-line errors."""


class NnUNetError(Exception):
    """Base class of every user-facing error: its message is shown as is, without a traceback."""


class DatasetError(NnUNetError):
    """A raw dataset (dataset.json, images, labels) is missing, malformed or inconsistent."""


class DatasetNotFoundError(DatasetError):
    """A dataset id or name matches no dataset folder, or more than one."""


class ImageIOError(NnUNetError):
    """An image file cannot be read or written (unknown ending, bad geometry, unreadable)."""


class PlansError(NnUNetError):
    """Plans are missing, malformed, or do not contain the requested configuration."""


class PreprocessingError(NnUNetError):
    """Preprocessed data is missing or inconsistent with the plans."""


class TrainingError(NnUNetError):
    """A training run cannot start or continue (bad fold, unknown trainer, missing checkpoint)."""


class InferenceError(NnUNetError):
    """Prediction inputs or model folders are unusable."""


class EvaluationError(NnUNetError):
    """Predictions and references cannot be compared (missing files, shape mismatch, no labels)."""
