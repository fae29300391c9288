"""Transformer models built from a :class:`~llmlab.config.ModelConfig`.

>>> from llmlab import ModelConfig, build_model
>>> type(build_model(ModelConfig.preset("bert-mini"))).__name__
'Bert'
"""

from __future__ import annotations

import torch

from llmlab.config import ModelConfig
from llmlab.errors import ConfigError
from llmlab.models.base import ModelOutput, TransformerModel
from llmlab.models.bert import Bert
from llmlab.models.cache import KVCache
from llmlab.models.gpt import GPT
from llmlab.models.seq2seq import Seq2Seq

FAMILIES: dict[str, type[TransformerModel]] = {"gpt": GPT, "bert": Bert, "seq2seq": Seq2Seq}

__all__ = ["FAMILIES", "GPT", "Bert", "KVCache", "ModelOutput", "Seq2Seq", "TransformerModel",
           "build_model"]


def build_model(
    cfg: ModelConfig,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    seed: int | None = None,
) -> TransformerModel:
    """A freshly initialised model of the config's family.

    >>> model = build_model(ModelConfig.preset("baby-char"), seed=0)
    >>> model.num_params() == ModelConfig.preset("baby-char").estimate().params
    True
    """
    if not isinstance(cfg, ModelConfig):
        raise ConfigError(
            f"build_model needs a ModelConfig, got {type(cfg).__name__}; "
            "use ModelConfig(...) or ModelConfig.preset(name)."
        )
    if seed is not None:
        torch.manual_seed(seed)
    model = FAMILIES[cfg.family](cfg)
    if device is not None or dtype is not None:
        model = model.to(device=device, dtype=dtype)
    return model
