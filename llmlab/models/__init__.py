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
           "build_model", "build_skeleton"]


def build_skeleton(cfg: ModelConfig) -> TransformerModel:
    """A model of the config whose parameters are not allocated yet (on the meta device):
    the shape to load a checkpoint into, without first making and initialising a copy of
    every weight. Its buffers (RoPE and sinusoid tables) are real, on the CPU.

    >>> build_skeleton(ModelConfig.preset("baby-char")).embed.tok.weight.device
    device(type='meta')
    """
    with torch.device("meta"):
        return FAMILIES[cfg.family](cfg)


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
