"""Exceptions llmlab raises at its boundaries.

Every error names what is wrong and how to fix it. They subclass the built-in exception a
caller would expect (``ValueError``, ``FileNotFoundError``), so generic handlers still work.

>>> from llmlab.errors import ConfigError
>>> issubclass(ConfigError, ValueError)
True
"""

from __future__ import annotations

from collections.abc import Sequence


class LLMLabError(Exception):
    """Base class of every llmlab error."""


class ConfigError(LLMLabError, ValueError):
    """A ``ModelConfig`` (or another config) holds an invalid value.

    ``fields`` names the fields the problem is about, the one at fault first (empty when it
    is about none), so that a form can show the message beside the right field.

    >>> ConfigError("ModelConfig.d_model=100 is not divisible by n_head=12",
    ...             fields=("d_model", "n_head")).fields
    ('d_model', 'n_head')
    """

    def __init__(self, message: str = "", *, fields: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.fields: tuple[str, ...] = tuple(fields)


class TokenizerError(LLMLabError, ValueError):
    """Text or ids a tokenizer cannot handle (unknown characters, ids outside the vocabulary)."""


class DataError(LLMLabError, ValueError):
    """A corpus or data set that is empty, too short, or malformed."""


class InputError(LLMLabError, ValueError):
    """Tensors passed to a model that do not fit it (ids outside the vocabulary, too long)."""


class CheckpointError(LLMLabError, ValueError):
    """A checkpoint that is missing, corrupt, or does not match the model or config."""


class TrainingError(LLMLabError, RuntimeError):
    """Training cannot go on (a NaN loss, a run that cannot be resumed)."""


class RunStoreError(LLMLabError, OSError):
    """A run store or run folder that cannot be used (not a folder, not writable, unreadable)."""


class RunNotFoundError(RunStoreError, FileNotFoundError):
    """No run with the requested id in the store."""


class RunLockedError(RunStoreError):
    """Another process is writing the run (it holds the run's writer lock)."""


class InvalidRunIdError(LLMLabError, ValueError):
    """A string that is not a run id (also what path-traversal attempts get)."""


class InvalidRunFieldError(LLMLabError, ValueError, TypeError):
    """A run's name, step, tags, config or another manifest field of the wrong type or value
    (a ``ValueError`` and a ``TypeError``, so either handler catches it)."""


class RunStoreWarning(UserWarning):
    """A part of a run that readers skipped (truncated or corrupt file)."""


class UnsafeFileError(LLMLabError, OSError):
    """A path that is not a regular file (FIFO, device, socket, folder) or is too large to read."""


class SnapshotError(LLMLabError, ValueError):
    """An attention snapshot that is missing, truncated, corrupt or of an unknown format."""


class FrontendNotBuiltError(LLMLabError, RuntimeError):
    """The inspector's JavaScript (or the libraries bertviz needs) was not built at install."""


class NoModelError(LLMLabError, RuntimeError):
    """A widget was asked to act before its source has a model."""
