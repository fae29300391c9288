"""Llama-family checkpoints (``model_type`` "llama", "mistral") <-> llmlab ``GPT`` models.

Llama is a pre-norm decoder with RMSNorm, rotary positions, grouped-query attention, a SwiGLU
feed-forward and no biases; SmolLM2, TinyLlama and Mistral are Llama in this sense. The
checkpoint keeps ``q_proj``, ``k_proj`` and ``v_proj`` apart (of unequal widths under
grouped-query attention), which become llmlab's fused ``qkv``; ``gate_proj`` and ``up_proj``
become the two halves of the SwiGLU ``fc``.

>>> from llmlab.interop import load_hf                              # doctest: +SKIP
>>> model, tok = load_hf("HuggingFaceTB/SmolLM2-135M")               # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from typing import Any

from llmlab.config import ModelConfig
from llmlab.errors import CheckpointError
from llmlab.interop._hf import Rule, config_value

MODEL_TYPES = ("llama", "mistral")
PREFIX = "model."
CHECKED = ("logits", "eager attention", "greedy generate (batch 1, left-padded 4)",
           "sequence classifier", "shards", "bfloat16", "export", "every llmlab tool")


# --------------------------------------------------------------------------- loading
def model_config(hf: dict[str, Any], *, n_labels: int, name: str) -> ModelConfig:
    """The llmlab config of a Llama-family ``config.json`` (``n_labels`` classes, 0 = LM)."""
    _reject_unsupported(hf)
    d_model = config_value(hf, "hidden_size", 4096, int)
    n_head = config_value(hf, "num_attention_heads", 32, int)
    return ModelConfig(
        family="gpt",
        vocab_size=config_value(hf, "vocab_size", 32000, int),
        context_length=_context_length(hf, name),
        n_layer=config_value(hf, "num_hidden_layers", 32, int),
        n_head=n_head,
        n_kv_head=config_value(hf, "num_key_value_heads", None, (int, type(None))) or n_head,
        d_model=d_model,
        d_ff=config_value(hf, "intermediate_size", 11008, int),
        dropout=float(config_value(hf, "attention_dropout", 0.0, (int, float))),
        bias=False,
        pos_encoding="rope",
        rope_theta=float(_rope(hf).get("rope_theta", 10000.0)),
        norm="rmsnorm",
        norm_position="pre",
        norm_eps=float(config_value(hf, "rms_norm_eps", 1e-6, (int, float))),
        activation="swiglu",
        tie_embeddings=config_value(hf, "tie_word_embeddings", False, bool),
        init_std=float(config_value(hf, "initializer_range", 0.02, (int, float))),
        n_labels=n_labels,
        name=name,
    )


def _rope(hf: dict[str, Any]) -> dict[str, Any]:
    """RoPE settings: ``rope_parameters`` (transformers 5) or the older top-level keys."""
    params = hf.get("rope_parameters")
    if isinstance(params, dict) and "full_attention" in params:  # per attention type
        params = params["full_attention"]
    if not isinstance(params, dict):
        params = dict(hf.get("rope_scaling") or {})
        if "rope_theta" in hf:
            params["rope_theta"] = hf["rope_theta"]
    theta = params.get("rope_theta", 10000.0)
    if isinstance(theta, bool) or not isinstance(theta, (int, float)) or theta <= 0:
        raise CheckpointError(f"config.json has rope_theta={theta!r}; it must be a positive "
                              "number. Fix the value or copy config.json again.")
    return params


def _context_length(hf: dict[str, Any], name: str) -> int:
    length = config_value(hf, "max_position_embeddings", 2048, int)
    window = config_value(hf, "sliding_window", None, (int, type(None)))
    if hf.get("use_sliding_window") is False or window is None or window >= length:
        return length
    warnings.warn(
        f"{name}: attention looks back {window} tokens at most (sliding_window); llmlab loads "
        f"it with context_length={window}, where every output is exact, instead of "
        f"max_position_embeddings={length}.", stacklevel=4)
    return window


def _reject_unsupported(hf: dict[str, Any]) -> None:
    d_model = config_value(hf, "hidden_size", 4096, int)
    n_head = config_value(hf, "num_attention_heads", 32, int)
    rope_type = _rope(hf).get("rope_type", _rope(hf).get("type", "default"))
    checks = [
        ("hidden_act", config_value(hf, "hidden_act", "silu", str), "silu",
         "the SwiGLU feed-forward"),
        ("attention_bias", config_value(hf, "attention_bias", False, bool), False,
         "attention projections without biases"),
        ("mlp_bias", config_value(hf, "mlp_bias", False, bool), False,
         "a feed-forward without biases"),
        ("rope_type", rope_type, "default", "unscaled rotary positions"),
        ("head_dim", hf.get("head_dim") or d_model // max(n_head, 1), d_model // max(n_head, 1),
         "head size = hidden_size / num_attention_heads"),
    ]
    bad = [f"{key}={value!r} (llmlab needs {needed!r}: {why})"
           for key, value, needed, why in checks if value != needed]
    if bad:
        raise CheckpointError(
            f"this {hf.get('model_type')} variant cannot be loaded into llmlab's GPT yet: "
            + "; ".join(bad) + ". Load a model without these options, or open an issue "
            "naming the model.")


def canonical_names(tensors: dict[str, Any]) -> dict[str, Any]:
    """Checkpoint names as ``LlamaForCausalLM`` saves them (adds ``model.`` where a bare
    ``LlamaModel`` left it out)."""
    body = ("layers.", "embed_tokens.", "norm.")
    return {(PREFIX + k if k.startswith(body) else k): v for k, v in tensors.items()}


def rules(cfg: ModelConfig, *, new_head: bool = False) -> list[Rule]:
    """Where each tensor of an llmlab GPT comes from in a Llama-family checkpoint.

    ``new_head``: the classifier is not in the checkpoint (an LM loaded for classification).
    """
    q_rows, kv_rows = cfg.n_head * cfg.head_dim, cfg.kv_heads * cfg.head_dim
    out = [Rule("embed.tok.weight", (f"{PREFIX}embed_tokens.weight",))]
    for i in range(cfg.n_layer):
        ours, theirs = f"decoder.blocks.{i}.", f"{PREFIX}layers.{i}."
        attn, mlp = f"{theirs}self_attn.", f"{theirs}mlp."
        out += [
            Rule(f"{ours}attn_norm.weight", (f"{theirs}input_layernorm.weight",)),
            Rule(f"{ours}attn.qkv.weight", tuple(f"{attn}{x}_proj.weight" for x in "qkv"),
                 "concat", split=(q_rows, kv_rows, kv_rows)),
            Rule(f"{ours}attn.proj.weight", (f"{attn}o_proj.weight",)),
            Rule(f"{ours}ffn_norm.weight", (f"{theirs}post_attention_layernorm.weight",)),
            Rule(f"{ours}ffn.fc.weight", (f"{mlp}gate_proj.weight", f"{mlp}up_proj.weight"),
                 "concat"),
            Rule(f"{ours}ffn.proj.weight", (f"{mlp}down_proj.weight",)),
        ]
    out.append(Rule("decoder.norm.weight", (f"{PREFIX}norm.weight",)))
    if cfg.n_labels:
        out.append(Rule("classifier.weight", () if new_head else ("score.weight",),
                        optional=new_head))
    elif not cfg.tie_embeddings:
        out.append(Rule("lm_head.weight", ("lm_head.weight",)))
    return out


def ignorable(name: str) -> bool:
    """Checkpoint tensors llmlab does not need: rotary-frequency buffers of older checkpoints,
    and a language-model head that is tied or unused by a classifier."""
    return name.endswith("rotary_emb.inv_freq") or name == "lm_head.weight"


def mismatch_hint(hf: dict[str, Any], cfg: ModelConfig) -> str:
    """Extra advice for a weights file that does not fit (none needed for Llama)."""
    return ""


# --------------------------------------------------------------------------- export
def hf_config(cfg: ModelConfig, *, dtype: str = "float32", tokenizer: Any = None) -> dict:
    """Llama's ``config.json`` for an exportable llmlab config."""
    return {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "vocab_size": cfg.vocab_size,
        "max_position_embeddings": cfg.context_length,
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.ffn_dim,
        "num_hidden_layers": cfg.n_layer,
        "num_attention_heads": cfg.n_head,
        "num_key_value_heads": cfg.kv_heads,
        "head_dim": cfg.head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,
        "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},
        "attention_bias": False,
        "mlp_bias": False,
        "attention_dropout": cfg.dropout,
        "initializer_range": cfg.init_std,
        "tie_word_embeddings": cfg.tie_embeddings,
        "bos_token_id": getattr(tokenizer, "bos_id", None),
        "eos_token_id": getattr(tokenizer, "eos_id", None),
        "pad_token_id": getattr(tokenizer, "pad_id", None),
        "dtype": dtype,
    }


def gaps(cfg: ModelConfig) -> list[tuple[str, Any, str]]:
    """(field, value, what Llama needs) for every field a Llama config cannot express."""
    required = {"family": "gpt", "pos_encoding": "rope", "norm": "rmsnorm",
                "norm_position": "pre", "bias": False, "activation": "swiglu", "n_labels": 0}
    return [(field, getattr(cfg, field), repr(needed))
            for field, needed in required.items() if getattr(cfg, field) != needed]
