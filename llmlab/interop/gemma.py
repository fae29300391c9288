"""Gemma, Gemma 2 and Gemma 3 checkpoints (``model_type`` "gemma", "gemma2", "gemma3_text")
-> llmlab ``GPT`` models.

Gemma is Llama with three differences, each a ``ModelConfig`` field or a weight rule: the
feed-forward gate is tanh-GELU (``activation="geglu"``), token embeddings are multiplied by
sqrt(hidden_size) before the first block (``embed_scale``; the tied head uses the table
unscaled), and its RMSNorm weights are stored as offsets from one (the norm multiplies by
``1 + w``), which become plain weights here. Heads are wider than hidden_size / heads
(``head_dim`` 256: ``head_size``).

Gemma 2 adds a norm on each sublayer's output too (``sublayer_norm``: four norms per block),
scores scaled by ``query_pre_attn_scalar ** -0.5`` (``attn_scale``), windowed and full layers
in turn (``sliding_window``, ``window_pattern``), and soft-capped scores and logits
(``attn_softcap``, ``logit_softcap``: ``cap * tanh(x / cap)``). Gemma 3's text models (270M,
1B) drop the caps, normalise each head's queries and keys (``qk_norm``), and have five
windowed layers to one full one, whose RoPE base is 10,000 against the full layers'
1,000,000 (``rope_local_theta``). The image-text ``gemma3`` checkpoints are not supported.

>>> from llmlab.interop import load_hf                 # doctest: +SKIP
>>> model, tok = load_hf("google/gemma-3-270m")         # doctest: +SKIP
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

MODEL_TYPES = ("gemma", "gemma2", "gemma3_text")
# how often a full layer comes, where a config predates ``layer_types``
_FULL_EVERY = {"gemma2": 2, "gemma3_text": 6}
CHECKED = ("logits", "eager attention", "greedy generate (batch 1, left-padded 4)",
           "every llmlab tool")
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
    model_type = hf.get("model_type")
    if model_type in _FULL_EVERY and "layer_types" not in hf:
        as_llama["layer_types"] = _layer_types(hf, _FULL_EVERY[model_type])
    cfg = llama.model_config(as_llama, n_labels=n_labels, name=name)
    cfg = cfg.replace(activation="geglu", embed_scale=math.sqrt(cfg.d_model))
    return _four_norms(hf, cfg) if model_type in _FULL_EVERY else cfg


def _four_norms(hf: dict[str, Any], cfg: ModelConfig) -> ModelConfig:
    """Gemma 2's and Gemma 3's knobs on top of the Gemma config."""
    bad = []
    if hf.get("use_bidirectional_attention", False):
        bad.append("use_bidirectional_attention=True (llmlab needs False: causal attention)")
    local = llama.local_rope_settings(hf)
    if local.get("rope_type", "default") != "default":
        bad.append(f"sliding_attention rope_type={local['rope_type']!r} (llmlab needs "
                   "'default' in the windowed layers)")
    if bad:
        raise CheckpointError(f"this {hf.get('model_type')} variant cannot be loaded into "
                              "llmlab's GPT yet: " + "; ".join(bad) + ".")
    scalar = config_value(hf, "query_pre_attn_scalar", 256, (int, float))
    theta = float(local.get("rope_theta", hf.get("rope_local_base_freq", cfg.rope_theta)))
    windowed = cfg.sliding_window is not None and theta != cfg.rope_theta
    caps = [config_value(hf, key, None, (int, float, type(None)))
            for key in ("attn_logit_softcapping", "final_logit_softcapping")]
    return cfg.replace(
        qk_norm=hf.get("model_type") == "gemma3_text", sublayer_norm=True,
        attn_scale=float(scalar) ** -0.5, rope_local_theta=theta if windowed else None,
        attn_softcap=None if caps[0] is None else float(caps[0]),
        # a classifier's score head is not capped
        logit_softcap=None if caps[1] is None or cfg.n_labels else float(caps[1]))


def _layer_types(hf: dict[str, Any], full_every: int) -> list[str]:
    """Configs written before ``layer_types`` existed: every ``sliding_window_pattern``-th
    layer full, the others windowed (Gemma 2: every second; Gemma 3: five windowed layers,
    then a full one)."""
    key = "sliding_window_pattern" if "sliding_window_pattern" in hf else "_sliding_window_pattern"
    every = config_value(hf, key, full_every, int)
    layers = config_value(hf, "num_hidden_layers", 26, int)
    return ["full_attention" if (i + 1) % every == 0 else "sliding_attention"
            for i in range(layers)]


def headless(hf: dict[str, Any], tensors: dict[str, Any]) -> bool:
    """Whether the checkpoint is a bare ``GemmaModel``: an untied head that is not there
    (Gemma ties its head unless the config says otherwise)."""
    return not hf.get("tie_word_embeddings", True) and "lm_head.weight" not in tensors


def rules(cfg: ModelConfig, *, new_head: bool = False) -> list[Rule]:
    """Llama's rules, with every RMSNorm weight read as ``1 + w``; with Gemma 2's and 3's four
    norms per block, the feed-forward's input norm is ``pre_feedforward_layernorm`` and the two
    output norms are ``post_attention_layernorm`` and ``post_feedforward_layernorm``."""
    out = llama.rules(cfg, new_head=new_head)
    if cfg.sublayer_norm:
        out = [_feedforward_input_norm(rule) for rule in out] + llama.output_norm_rules(cfg)
    return [dataclasses.replace(rule, layout="plus_one") if _is_norm(rule.target) else rule
            for rule in out]


def _feedforward_input_norm(rule: Rule) -> Rule:
    if not rule.target.endswith(".ffn_norm.weight"):
        return rule
    source = rule.sources[0].replace("post_attention_layernorm", "pre_feedforward_layernorm")
    return dataclasses.replace(rule, sources=(source,))


def _is_norm(target: str) -> bool:
    return target.endswith(("attn_norm.weight", "ffn_norm.weight", "decoder.norm.weight",
                            "q_norm.weight", "k_norm.weight", "_out_norm.weight"))
