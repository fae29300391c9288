"""GPT-Neo checkpoints (``model_type`` "gpt_neo": the TinyStories models, GPT-Neo 125M-2.7B)
-> llmlab ``GPT`` models.

GPT-Neo is GPT-2 with three differences llmlab's config names: its attention scores are
*not* scaled by 1/sqrt(head size) (``attn_scale=1``), its layers alternate between full
attention and a local window of ``window_size`` tokens (``sliding_window`` with a
``window_pattern`` such as ``"fw"``), and only the output projection of attention has a bias
(``qkv_bias=False``). Its linear layers are ``nn.Linear`` (no transpose, unlike GPT-2's
``Conv1D``) with q, k and v kept apart, which become llmlab's fused ``qkv``.

>>> from llmlab.interop import load_hf                             # doctest: +SKIP
>>> model, tok = load_hf("roneneldan/TinyStories-33M")              # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from llmlab.config import ModelConfig
from llmlab.errors import CheckpointError
from llmlab.interop._hf import Rule, config_value, window_fields
from llmlab.interop.gpt2 import (
    ACTIVATIONS,
    PREFIX,
    canonical_names,
    embedding_rules,
    headless,
    tail_rules,
)

MODEL_TYPE = "gpt_neo"
__all__ = ["canonical_names", "headless", "ignorable", "mismatch_hint", "model_config",
           "rules"]
CHECKED = ("logits", "eager attention", "greedy generate (batch 1, left-padded 4)",
           "sequence classifier", "every llmlab tool")
# GPT-Neo's names for its two kinds of layer -> llmlab's window_pattern letters
_KINDS = {"global": "f", "local": "w"}

# llmlab block module -> GPT-Neo block module (weight and bias each)
_LAYER = (
    ("attn_norm", "ln_1"),
    ("attn.proj", "attn.attention.out_proj"),
    ("ffn_norm", "ln_2"),
    ("ffn.fc", "mlp.c_fc"),
    ("ffn.proj", "mlp.c_proj"),
)


def model_config(hf: dict[str, Any], *, n_labels: int, name: str) -> ModelConfig:
    """The llmlab config of a GPT-Neo ``config.json`` (``n_labels`` classes, 0 = LM)."""
    activation = config_value(hf, "activation_function", "gelu_new", str)
    if activation not in ACTIVATIONS:
        raise CheckpointError(
            f"this GPT-Neo variant cannot be loaded into llmlab's GPT yet: activation_function="
            f"{activation!r} (llmlab supports {', '.join(map(repr, ACTIVATIONS))}).")
    n_layer = config_value(hf, "num_layers", 24, int)
    return ModelConfig(
        family="gpt",
        vocab_size=config_value(hf, "vocab_size", 50257, int),
        context_length=config_value(hf, "max_position_embeddings", 2048, int),
        n_layer=n_layer,
        n_head=config_value(hf, "num_heads", 16, int),
        d_model=config_value(hf, "hidden_size", 2048, int),
        d_ff=config_value(hf, "intermediate_size", None, (int, type(None))),
        dropout=float(config_value(hf, "resid_dropout", 0.0, (int, float))),
        bias=True,
        qkv_bias=False,
        attn_scale=1.0,
        **_windows(hf, n_layer),
        pos_encoding="learned",
        norm="layernorm",
        norm_position="pre",
        norm_eps=float(config_value(hf, "layer_norm_epsilon", 1e-5, (int, float))),
        activation=ACTIVATIONS[activation],
        tie_embeddings=config_value(hf, "tie_word_embeddings", True, bool),
        init_std=float(config_value(hf, "initializer_range", 0.02, (int, float))),
        n_labels=n_labels,
        name=name,
    )


def layer_kinds(hf: dict[str, Any], n_layer: int) -> list[str]:
    """Each layer's attention, "global" or "local": ``attention_layers``, else expanded from
    ``attention_types`` (``[[["global", "local"], 12]]``: the pair repeated 12 times)."""
    kinds = hf.get("attention_layers")
    if kinds is None:
        kinds = []
        for entry in hf.get("attention_types", [[["global", "local"], n_layer // 2]]):
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], list)
                    and isinstance(entry[1], int)):
                raise CheckpointError(
                    f"config.json has attention_types entry {entry!r}; each must be "
                    "[[kinds...], repeats], e.g. [[\"global\", \"local\"], 12]. Copy config.json "
                    "again from the model.")
            kinds += entry[0] * entry[1]
    if not isinstance(kinds, list) or len(kinds) != n_layer or set(kinds) - set(_KINDS):
        raise CheckpointError(
            f"config.json gives the layers' attention as {kinds!r}; llmlab needs one of "
            f"{', '.join(map(repr, _KINDS))} for each of the {n_layer} layers (num_layers). "
            "Copy config.json again from the model.")
    return kinds


def _windows(hf: dict[str, Any], n_layer: int) -> dict[str, Any]:
    """``sliding_window`` and ``window_pattern`` of the layers (none when all are global)."""
    pattern = "".join(_KINDS[kind] for kind in layer_kinds(hf, n_layer))
    if "w" not in pattern:  # window_size is read only where a layer uses it
        return window_fields(None, pattern)
    return window_fields(config_value(hf, "window_size", 256, int), pattern)


def rules(cfg: ModelConfig, *, new_head: bool = False) -> list[Rule]:
    """Where each tensor of an llmlab GPT comes from in a GPT-Neo checkpoint: GPT-2's names
    outside the blocks, q, k and v apart inside them."""
    out = embedding_rules()
    for i in range(cfg.n_layer):
        ours, theirs = f"decoder.blocks.{i}.", f"{PREFIX}h.{i}."
        out.append(Rule(f"{ours}attn.qkv.weight",
                        tuple(f"{theirs}attn.attention.{p}_proj.weight" for p in "qkv"),
                        "concat"))
        for our, their in _LAYER:
            out += [Rule(f"{ours}{our}.{p}", (f"{theirs}{their}.{p}",)) for p in ("weight", "bias")]
    return out + tail_rules(cfg, new_head=new_head)


def ignorable(name: str) -> bool:
    """Checkpoint tensors llmlab does not need: the causal-mask buffers older checkpoints
    saved, and a language-model head that is tied or unused by a classifier."""
    return name.endswith((".attention.bias", ".attention.masked_bias")) or name == "lm_head.weight"


def mismatch_hint(hf: dict[str, Any], cfg: ModelConfig) -> str:
    """Extra advice for a weights file that does not fit (none needed for GPT-Neo)."""
    return ""
