"""Llama-family checkpoints (``model_type`` llama, mistral, qwen2, qwen3) <-> llmlab ``GPT``.

Llama is a pre-norm decoder with RMSNorm, rotary positions, grouped-query attention, a SwiGLU
feed-forward and no biases; SmolLM2 and TinyLlama are Llama, Llama 3.1+ adds ``llama3`` RoPE
scaling, Mistral a sliding window, Qwen2 q/k/v biases (and no other), Qwen3 a per-head RMSNorm
of queries and keys and wider heads. The checkpoint keeps ``q_proj``, ``k_proj`` and
``v_proj`` apart (of unequal widths under grouped-query attention), which become llmlab's
fused ``qkv``; ``gate_proj`` and ``up_proj`` become the two halves of the SwiGLU ``fc``.

>>> from llmlab.interop import load_hf                              # doctest: +SKIP
>>> model, tok = load_hf("HuggingFaceTB/SmolLM2-135M")               # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from llmlab.config import ModelConfig
from llmlab.errors import CheckpointError
from llmlab.interop._hf import Rule, config_gaps, config_value, window_fields

MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")
PREFIX = "model."
CHECKED = ("logits", "eager attention", "greedy generate (batch 1, left-padded 4)",
           "sequence classifier", "shards", "bfloat16", "export", "every llmlab tool")
_SCALINGS = {"default": "none", "linear": "linear", "llama3": "llama3"}


# --------------------------------------------------------------------------- loading
def model_config(hf: dict[str, Any], *, n_labels: int, name: str) -> ModelConfig:
    """The llmlab config of a Llama-family ``config.json`` (``n_labels`` classes, 0 = LM)."""
    _reject_unsupported(hf)
    model_type = hf.get("model_type")
    d_model = config_value(hf, "hidden_size", 4096, int)
    n_head = config_value(hf, "num_attention_heads", 32, int)
    head_dim = config_value(hf, "head_dim", None, (int, type(None))) or d_model // n_head
    biased = config_value(hf, "attention_bias", False, bool)
    return ModelConfig(
        family="gpt",
        vocab_size=config_value(hf, "vocab_size", 32000, int),
        context_length=config_value(hf, "max_position_embeddings", 2048, int),
        n_layer=config_value(hf, "num_hidden_layers", 32, int),
        n_head=n_head,
        n_kv_head=config_value(hf, "num_key_value_heads", None, (int, type(None))) or n_head,
        d_model=d_model,
        d_ff=config_value(hf, "intermediate_size", 11008, int),
        head_size=None if head_dim * n_head == d_model else head_dim,
        dropout=float(config_value(hf, "attention_dropout", 0.0, (int, float))),
        bias=biased,
        qkv_bias=True if model_type == "qwen2" else None,
        mlp_bias=config_value(hf, "mlp_bias", False, bool),
        qk_norm=model_type == "qwen3",
        **_windows(hf, config_value(hf, "num_hidden_layers", 32, int)),
        pos_encoding="rope",
        **_rope_fields(hf),
        norm="rmsnorm",
        norm_position="pre",
        norm_eps=float(config_value(hf, "rms_norm_eps", 1e-6, (int, float))),
        activation="swiglu",
        tie_embeddings=config_value(hf, "tie_word_embeddings", False, bool),
        init_std=float(config_value(hf, "initializer_range", 0.02, (int, float))),
        n_labels=n_labels,
        name=name,
    )


def rope_settings(hf: dict[str, Any]) -> dict[str, Any]:
    """RoPE settings: ``rope_parameters`` (transformers 5) or the older top-level keys
    (``rope_theta``, ``rope_scaling``, ``partial_rotary_factor``)."""
    params = hf.get("rope_parameters")
    if isinstance(params, dict) and "full_attention" in params:  # per attention type
        params = params["full_attention"]
    if not isinstance(params, dict):
        params = dict(hf.get("rope_scaling") or {})
        for key in ("rope_theta", "partial_rotary_factor", "rotary_pct"):
            if key in hf:
                params.setdefault(key, hf[key])
    theta = params.get("rope_theta", 10000.0)
    if isinstance(theta, bool) or not isinstance(theta, (int, float)) or theta <= 0:
        raise CheckpointError(f"config.json has rope_theta={theta!r}; it must be a positive "
                              "number. Fix the value or copy config.json again.")
    return params


def local_rope_settings(hf: dict[str, Any]) -> dict[str, Any]:
    """The windowed layers' RoPE settings where ``rope_parameters`` gives them apart
    (``"sliding_attention"``: Gemma 3, OLMo 3), else none."""
    params = hf.get("rope_parameters")
    if isinstance(params, dict) and isinstance(params.get("sliding_attention"), dict):
        return params["sliding_attention"]
    return {}


def _rope_fields(hf: dict[str, Any]) -> dict[str, Any]:
    params = rope_settings(hf)
    kind = _SCALINGS[params.get("rope_type", params.get("type", "default"))]
    fields: dict[str, Any] = {"rope_theta": float(params.get("rope_theta", 10000.0)),
                              "rope_scaling": kind}
    if kind != "none":
        fields["rope_factor"] = float(params.get("factor", 1.0))
    if kind == "llama3":
        fields.update(rope_original_context=int(params["original_max_position_embeddings"]),
                      rope_low_freq_factor=float(params.get("low_freq_factor", 1.0)),
                      rope_high_freq_factor=float(params.get("high_freq_factor", 4.0)))
    return fields


def _windows(hf: dict[str, Any], n_layer: int) -> dict[str, Any]:
    """``sliding_window`` and ``window_pattern``: a window in every layer (Mistral), in the
    layers ``layer_types`` marks "sliding_attention" (Qwen2 above ``max_window_layers``),
    or none."""
    window = config_value(hf, "sliding_window", None, (int, type(None)))
    if hf.get("use_sliding_window") is False:  # Qwen2/3 keep a window they do not use
        window = None
    kinds = hf.get("layer_types")
    if window is None or kinds is None:
        return {"sliding_window": window}
    letters = {"sliding_attention": "w", "full_attention": "f"}
    if not isinstance(kinds, list) or len(kinds) != n_layer or set(kinds) - set(letters):
        raise CheckpointError(
            f"config.json has layer_types={kinds!r}; llmlab needs one of "
            f"{', '.join(map(repr, letters))} for each of the {n_layer} layers "
            "(num_hidden_layers). Copy config.json again from the model.")
    return window_fields(window, "".join(letters[kind] for kind in kinds))


def _reject_unsupported(hf: dict[str, Any]) -> None:
    params = rope_settings(hf)
    rope_type = params.get("rope_type", params.get("type", "default"))
    checks = [
        ("hidden_act", config_value(hf, "hidden_act", "silu", str), {"silu"},
         "the SwiGLU feed-forward"),
        ("rope_type", rope_type, set(_SCALINGS), "RoPE unscaled, linear or llama3"),
        ("partial_rotary_factor", params.get("partial_rotary_factor", 1.0), {1.0},
         "rotary positions over whole heads"),
    ]
    if rope_type == "llama3" and "original_max_position_embeddings" not in params:
        checks.append(("original_max_position_embeddings", None, {"an int"},
                       "llama3 RoPE scaling needs the pre-training context"))
    bad = [f"{key}={value!r} (llmlab needs {' or '.join(map(repr, needed))}: {why})"
           for key, value, needed, why in checks if value not in needed]
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
            *_qkv(ours, attn, cfg, (q_rows, kv_rows, kv_rows)),
            Rule(f"{ours}attn.proj.weight", (f"{attn}o_proj.weight",)),
            Rule(f"{ours}ffn_norm.weight", (f"{theirs}post_attention_layernorm.weight",)),
            Rule(f"{ours}ffn.fc.weight", (f"{mlp}gate_proj.weight", f"{mlp}up_proj.weight"),
                 "concat"),
            Rule(f"{ours}ffn.proj.weight", (f"{mlp}down_proj.weight",)),
        ]
        if cfg.bias:
            out.append(Rule(f"{ours}attn.proj.bias", (f"{attn}o_proj.bias",)))
        if cfg.ffn_bias:
            out += [Rule(f"{ours}ffn.fc.bias", (f"{mlp}gate_proj.bias", f"{mlp}up_proj.bias"),
                         "concat"),
                    Rule(f"{ours}ffn.proj.bias", (f"{mlp}down_proj.bias",))]
        if cfg.qk_norm:
            out += [Rule(f"{ours}attn.{x}_norm.weight", (f"{attn}{x}_norm.weight",))
                    for x in "qk"]
    out.append(Rule("decoder.norm.weight", (f"{PREFIX}norm.weight",)))
    if cfg.n_labels:
        out.append(Rule("classifier.weight", () if new_head else ("score.weight",),
                        optional=new_head))
        if cfg.bias:  # the checkpoint's "score" layer has no bias: ours is zero
            out.append(Rule("classifier.bias", (), "zeros"))
    elif cfg.lm_head and not cfg.tie_embeddings:
        out.append(Rule("lm_head.weight", ("lm_head.weight",)))
    return out


def output_norm_rules(cfg: ModelConfig) -> list[Rule]:
    """The norms of each sublayer's output (``sublayer_norm``: Gemma 2/3, OLMo 2), which these
    checkpoints call ``post_attention_layernorm`` and ``post_feedforward_layernorm``."""
    return [Rule(f"decoder.blocks.{i}.{ours}.weight", (f"{PREFIX}layers.{i}.{theirs}.weight",))
            for i in range(cfg.n_layer)
            for ours, theirs in (("attn_out_norm", "post_attention_layernorm"),
                                 ("ffn_out_norm", "post_feedforward_layernorm"))]


def _qkv(ours: str, attn: str, cfg: ModelConfig, split: tuple[int, int, int]) -> list[Rule]:
    params = ("weight", "bias") if cfg.attention_bias else ("weight",)
    return [Rule(f"{ours}attn.qkv.{p}", tuple(f"{attn}{x}_proj.{p}" for x in "qkv"), "concat",
                 split=split) for p in params]


def headless(hf: dict[str, Any], tensors: dict[str, Any]) -> bool:
    """Whether the checkpoint is a bare ``...Model`` body: an untied head that is not there."""
    return not hf.get("tie_word_embeddings", False) and "lm_head.weight" not in tensors


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
    rope: dict[str, Any] = {"rope_type": "default" if cfg.rope_scaling == "none"
                            else cfg.rope_scaling, "rope_theta": cfg.rope_theta}
    if cfg.rope_scaling != "none":
        rope["factor"] = cfg.rope_factor
    if cfg.rope_scaling == "llama3":
        rope.update(original_max_position_embeddings=cfg.rope_original_context,
                    low_freq_factor=cfg.rope_low_freq_factor,
                    high_freq_factor=cfg.rope_high_freq_factor)
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
        "rope_parameters": rope,
        "attention_bias": cfg.bias,
        "mlp_bias": cfg.ffn_bias,
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
    allowed = {"family": ("gpt",), "pos_encoding": ("rope",), "norm": ("rmsnorm",),
               "norm_position": ("pre",), "activation": ("swiglu",), "n_labels": (0,),
               "qkv_bias": (None,), "qk_norm": (False,), "parallel_residual": (False,),
               "rotary_fraction": (1.0,), "sliding_window": (None,), "embed_scale": (1.0,),
               "attn_scale": (None,), "lm_head": (True,), "sublayer_norm": (False,),
               "attn_softcap": (None,), "logit_softcap": (None,), "input_norm": (True,)}
    return config_gaps(cfg, allowed)
