"""Gemma checkpoints (``model_type`` "gemma") -> llmlab ``GPT`` models.

Gemma is Llama with three differences, each a ``ModelConfig`` field or a weight rule: the
feed-forward gate is tanh-GELU (``activation="geglu"``), token embeddings are multiplied by
sqrt(hidden_size) before the first block (``embed_scale``; the tied head uses the table
unscaled), and its RMSNorm weights are stored as offsets from one (the norm multiplies by
``1 + w``), which become plain weights here. Heads are wider than hidden_size / heads
(``head_dim`` 256: ``head_size``). Gemma 2 and 3 (soft-capping, extra norms, alternating
windows) are not supported.

>>> from llmlab.interop import load_hf                 # doctest: +SKIP
>>> model, tok = load_hf("google/gemma-2b")             # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from llmlab.config import ModelConfig
from llmlab.errors import CheckpointError
from llmlab.interop import llama
from llmlab.interop._hf import Rule, config_value
from llmlab.interop.llama import canonical_names, ignorable, mismatch_hint

MODEL_TYPE = "gemma"
CHECKED = ("logits", "eager attention", "greedy generate (batch 1, left-padded 4)")
__all__ = ["canonical_names", "headless", "ignorable", "mismatch_hint", "model_config", "rules"]
_GATES = ("gelu_pytorch_tanh", "gelu_tanh", "gelu")  # Gemma's configs name the tanh GELU so


def model_config(hf: dict[str, Any], *, n_labels: int, name: str) -> ModelConfig:
    """The llmlab config of a Gemma ``config.json`` (``n_labels`` classes, 0 = LM)."""
    act = hf.get("hidden_activation") or config_value(hf, "hidden_act", "gelu_pytorch_tanh", str)
    if act not in _GATES:
        raise CheckpointError(f"config.json has hidden_act={act!r}; llmlab's Gemma needs one of "
                              f"{', '.join(map(repr, _GATES))} (the tanh-GELU gate).")
    as_llama = {**hf, "hidden_act": "silu", "tie_word_embeddings":
                hf.get("tie_word_embeddings", True)}
    cfg = llama.model_config(as_llama, n_labels=n_labels, name=name)
    return cfg.replace(activation="geglu", embed_scale=math.sqrt(cfg.d_model))


def headless(hf: dict[str, Any], tensors: dict[str, Any]) -> bool:
    """Whether the checkpoint is a bare ``GemmaModel``: an untied head that is not there
    (Gemma ties its head unless the config says otherwise)."""
    return not hf.get("tie_word_embeddings", True) and "lm_head.weight" not in tensors


def rules(cfg: ModelConfig, *, new_head: bool = False) -> list[Rule]:
    """Llama's rules, with every RMSNorm weight read as ``1 + w``."""
    return [dataclasses.replace(rule, layout="plus_one") if _is_norm(rule.target) else rule
            for rule in llama.rules(cfg, new_head=new_head)]


def _is_norm(target: str) -> bool:
    return target.endswith(("attn_norm.weight", "ffn_norm.weight", "decoder.norm.weight",
                            "q_norm.weight", "k_norm.weight"))
