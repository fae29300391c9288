"""Exceptions llmlab raises at its boundaries.

Every error names what is wrong and how to fix it. They subclass the built-in exception a
caller would expect (``ValueError``, ``FileNotFoundError``), so generic handlers still work.

>>> from llmlab.errors import ConfigError
>>> issubclass(ConfigError, ValueError)
True
"""

from __future__ import annotations


class LLMLabError(Exception):
    """Base class of every llmlab error."""


class ConfigError(LLMLabError, ValueError):
    """A ``ModelConfig`` (or another config) holds an invalid value."""


class TokenizerError(LLMLabError, ValueError):
    """Text or ids a tokenizer cannot handle (unknown characters, ids outside the vocabulary)."""


class DataError(LLMLabError, ValueError):
    """A corpus or data set that is empty, too short, or malformed."""


class InputError(LLMLabError, ValueError):
    """Tensors passed to a model that do not fit it (ids outside the vocabulary, too long)."""


class CheckpointError(LLMLabError, ValueError):
    """A checkpoint that is missing, corrupt, or does not match the model or config."""
