"""llmlab: a notebook-native laboratory for transformer language models.

>>> import llmlab
>>> cfg = llmlab.ModelConfig.preset("baby-char")
>>> model = llmlab.build_model(cfg)

Public names are imported lazily, so ``import llmlab`` stays fast (torch is only imported
when a name that needs it is first used).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from llmlab._version import __version__

# public name -> module that defines it
_EXPORTS = {
    "ModelConfig": "llmlab.config",
    "Estimate": "llmlab.estimate",
    "build_model": "llmlab.models",
    "ModelOutput": "llmlab.models",
    "CharTokenizer": "llmlab.tokenizers",
    "ByteTokenizer": "llmlab.tokenizers",
    "BPETokenizer": "llmlab.tokenizers",
    "HFTokenizer": "llmlab.tokenizers",
    "load_tokenizer": "llmlab.tokenizers",
    "save": "llmlab.checkpoint",
    "load": "llmlab.checkpoint",
    "generate": "llmlab.generation",
    "score": "llmlab.generation",
    "Generation": "llmlab.generation",
    "TokenEvent": "llmlab.generation",
    "Score": "llmlab.generation",
    "evaluate": "llmlab.metrics",
    "PromptClassifier": "llmlab.prompting",
    "inspect": "llmlab.attention",
    "Capture": "llmlab.attention",
    "load_snapshot": "llmlab.attention",
    "Trainer": "llmlab.train",
    "TrainConfig": "llmlab.train",
    "Lab": "llmlab.widgets.lab",
    "sweep": "llmlab.tradeoff",
    "plot_tradeoff": "llmlab.tradeoff",
    "pareto_front": "llmlab.tradeoff",
    # Jupyter discovers the server and lab extensions through these two hooks
    "_jupyter_server_extension_points": "llmlab.server",
    "_jupyter_labextension_paths": "llmlab.server",
}
_SUBMODULES = {"attention", "calibrate", "checkpoint", "config", "data", "errors", "estimate",
               "generation", "interop", "metrics", "models", "prompting", "runs", "server",
               "tokenizers", "train", "widgets", "compress", "tradeoff"}

__all__ = [
    "Generation", "Score", "TokenEvent", "generate", "generation", "score",
    "Capture", "PromptClassifier", "attention", "calibrate", "evaluate", "inspect",
    "load_snapshot", "metrics", "prompting",
    "BPETokenizer", "ByteTokenizer", "CharTokenizer", "Estimate", "HFTokenizer", "ModelConfig",
    "ModelOutput", "__version__", "build_model", "checkpoint", "config", "data", "errors",
    "estimate", "interop", "load", "load_tokenizer", "models", "runs", "save", "server",
    "tokenizers", "train", "Trainer", "TrainConfig", "Lab", "widgets",
    "compress", "tradeoff", "sweep", "plot_tradeoff", "pareto_front",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from llmlab.attention import Capture, inspect, load_snapshot
    from llmlab.checkpoint import load, save
    from llmlab.config import ModelConfig
    from llmlab.estimate import Estimate
    from llmlab.generation import Generation, Score, TokenEvent, generate, score
    from llmlab.metrics import evaluate
    from llmlab.models import ModelOutput, build_model
    from llmlab.prompting import PromptClassifier
    from llmlab.tokenizers import (
        BPETokenizer,
        ByteTokenizer,
        CharTokenizer,
        HFTokenizer,
        load_tokenizer,
    )
    from llmlab.tradeoff import pareto_front, plot_tradeoff, sweep
    from llmlab.train import TrainConfig, Trainer
    from llmlab.widgets.lab import Lab


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"llmlab.{name}")
    else:
        raise AttributeError(f"module 'llmlab' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
