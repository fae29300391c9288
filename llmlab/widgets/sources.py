"""Where a widget finds the model it works on: passed objects, not copied state.

A *model source* is anything with ``.model`` and ``.tokenizer`` attributes (a
``TrainerWidget``, a ``ModelBuilder`` once built, your own object), a
``(model, tokenizer)`` pair, or the name of a model for :func:`llmlab.load` (a Hub name such as
``"HuggingFaceTB/SmolLM2-135M"`` or a folder; loaded once and kept). Widgets resolve it each
time they act, so they always use the source's current model.

>>> import llmlab
>>> cfg = llmlab.ModelConfig.preset("baby-char").replace(vocab_size=4)
>>> tok = llmlab.CharTokenizer.train("abcd")
>>> model, _ = resolve_model((llmlab.build_model(cfg), tok))
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from llmlab.errors import NoModelError


def resolve_model(source: Any, *, need_tokenizer: bool = True) -> tuple[Any, Any]:
    """The (model, tokenizer) a source holds now; a clear error when there is none yet."""
    if isinstance(source, (str, os.PathLike)):
        model, tokenizer = _loaded(os.fspath(source))
    elif isinstance(source, tuple) and len(source) == 2:
        model, tokenizer = source
    elif hasattr(source, "model"):
        model, tokenizer = source.model, getattr(source, "tokenizer", None)
    else:
        raise TypeError(
            f"a model source must be a (model, tokenizer) pair, a model name or folder for "
            f"llmlab.load, or have .model and .tokenizer (a ModelBuilder or TrainerWidget), "
            f"got {type(source).__name__}")
    if model is None:
        raise NoModelError("there is no model yet: build one in the ModelBuilder or train one "
                           "in the TrainerWidget first")
    if need_tokenizer and tokenizer is None:
        raise NoModelError("the model has no tokenizer yet: pass (model, tokenizer) or give "
                           "the source a data set with a tokenizer")
    return model, tokenizer


@lru_cache(maxsize=4)
def _loaded(name: str) -> tuple[Any, Any]:
    """``llmlab.load(name)``, once per name: widgets resolve their source on every action."""
    import llmlab

    return llmlab.load(name)
