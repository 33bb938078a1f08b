"""Every exception vae_core raises on purpose: one place to learn what can go wrong.

Each message is one human sentence meant for the user, so a caller can show ``str(exc)``
as it is (the CLI prints it and exits with status 2; the app shows it in a dialog).
The old import paths (``vae_core.data.DatasetError``, ``vae_core.latent.Cancelled``, ...)
re-export these classes.
"""

from __future__ import annotations

__all__ = [
    "AdapterError",
    "Cancelled",
    "CheckpointError",
    "CLIError",
    "ConfigError",
    "DatasetError",
    "ExpressionError",
    "ModelExportError",
    "NonFiniteLossError",
    "NotFittedError",
    "OutputError",
    "ResourceError",
    "ShapeMismatchError",
]


class Cancelled(Exception):
    """Raised when a long operation's ``should_stop()`` callback returns True.

    Encoding (:func:`vae_core.latent.encode_dataset`) and projection fitting
    (:mod:`vae_core.projection`) poll the callback between batches or epochs.
    """


class CLIError(Exception):
    """A user-facing command line error.

    The message is one human sentence; the CLI prints it (without a traceback) and exits
    with a non-zero status.
    """


class ConfigError(ValueError):
    """A setting is outside its documented range or of the wrong type.

    Raised where settings enter the library: :class:`~vae_core.training.TrainConfig`,
    model configs (:func:`~vae_core.registry.build_model`), :func:`~vae_core.metrics.evaluate`
    and the export options. The message names the setting, its range and the value given.
    """


class ResourceError(ValueError):
    """An operation would need more memory (or a bigger file) than is possible.

    Raised *before* allocating, with the estimate in the message ("would need 273 GiB"),
    so that the caller can choose a smaller size instead of meeting a MemoryError.
    """


class OutputError(OSError):
    """A file could not be written (read-only folder, disk full, ...).

    The previous file at that path, if any, is left intact. An ``OSError`` so that code
    that already handles file-system errors keeps working.
    """


class DatasetError(ValueError):
    """A dataset could not be loaded; the message is one sentence meant for users."""


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit; the message says why, in one sentence."""


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the model holds the last good weights again."""


class ShapeMismatchError(ValueError):
    """The model cannot read the dataset's images (or labels)."""


class ExpressionError(ValueError):
    """A latent arithmetic expression that cannot be parsed or resolved.

    ``position`` is the 0-based character offset of the problem (or None).
    """

    def __init__(self, message: str, position: int | None = None):
        super().__init__(message)
        self.position = position


class NotFittedError(RuntimeError):
    """The projection must be fitted (or loaded) before this call."""


class AdapterError(ValueError):
    """An adapter (a model written elsewhere) or its weights cannot be used.

    Raised by :mod:`vae_core.adapter` for an adapter that fails to import, declares
    something invalid, returns the wrong shapes, weights that do not fit, or a dataset of
    another image size; the message says what to change.
    """


class ModelExportError(ValueError):
    """An encoder/decoder export (ONNX, TorchScript) failed or its tools are missing."""
