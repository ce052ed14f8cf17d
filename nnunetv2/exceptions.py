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


def reason_of(error: BaseException, last: bool = False, limit: int = 200) -> str:
    """Return one line of an exception's message (its first, or ``last``), shortened; its type name if empty."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    line = lines[-1] if last else lines[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."
