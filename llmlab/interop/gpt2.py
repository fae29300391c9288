"""GPT-2 checkpoints (``model_type: "gpt2"``) <-> llmlab ``GPT`` models.

GPT-2 is a pre-norm decoder with learned positions, LayerNorm and biases everywhere. Its
linear layers are ``Conv1D`` modules that store weights ``[in, out]``, the transpose of
``nn.Linear``; ``c_attn`` holds q | k | v along the output, as llmlab's fused ``qkv`` does.

>>> from llmlab.interop import export_gpt2, load_hf       # doctest: +SKIP
>>> export_gpt2(model, "my-gpt2"); model2, _ = load_hf("my-gpt2")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from llmlab.config import ModelConfig
from llmlab.errors import CheckpointError
from llmlab.interop._hf import Rule, config_gaps, config_value

MODEL_TYPE = "gpt2"
PREFIX = "transformer."
# what the tests check against transformers for this family (shown by interop.supported())
CHECKED = ("logits", "sequence classifier", "shards and .bin", "export")

# GPT-2's activation_function -> llmlab activation ("gelu_new" is the tanh approximation)
ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu",
               "relu": "relu"}
EXPORT_ACTIVATIONS = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}

# llmlab block module -> GPT-2 block module, and how its weight is stored
_LAYER = (
    ("attn_norm", "ln_1", "same"),
    ("attn.qkv", "attn.c_attn", "transpose"),
    ("attn.proj", "attn.c_proj", "transpose"),
    ("ffn_norm", "ln_2", "same"),
    ("ffn.fc", "mlp.c_fc", "transpose"),
    ("ffn.proj", "mlp.c_proj", "transpose"),
)


# --------------------------------------------------------------------------- loading
def model_config(hf: dict[str, Any], *, n_labels: int, name: str) -> ModelConfig:
    """The llmlab config of a GPT-2 ``config.json`` (with ``n_labels`` classes, 0 = LM)."""
    _reject_unsupported(hf)
    activation = config_value(hf, "activation_function", "gelu_new", str)
    if activation not in ACTIVATIONS:
        raise CheckpointError(
            f"config.json has activation_function={activation!r}; llmlab's GPT supports "
            f"{', '.join(map(repr, ACTIVATIONS))}."
        )
    return ModelConfig(
        family="gpt",
        vocab_size=config_value(hf, "vocab_size", 50257, int),
        context_length=config_value(hf, "n_positions", 1024, int),
        n_layer=config_value(hf, "n_layer", 12, int),
        n_head=config_value(hf, "n_head", 12, int),
        d_model=config_value(hf, "n_embd", 768, int),
        d_ff=config_value(hf, "n_inner", None, (int, type(None))),
        dropout=float(config_value(hf, "resid_pdrop", 0.1, (int, float))),
        bias=True,
        pos_encoding="learned",
        norm="layernorm",
        norm_position="pre",
        norm_eps=float(config_value(hf, "layer_norm_epsilon", 1e-5, (int, float))),
        activation=ACTIVATIONS[activation],
        tie_embeddings=config_value(hf, "tie_word_embeddings", True, bool),
        init_std=float(config_value(hf, "initializer_range", 0.02, (int, float))),
        attn_scale=None if config_value(hf, "scale_attn_weights", True, bool) else 1.0,
        n_labels=n_labels,
        name=name,
    )


def _reject_unsupported(hf: dict[str, Any]) -> None:
    # GPT-2 options that change the computation in ways llmlab's GPT does not model
    unsupported = {
        "scale_attn_by_inverse_layer_idx": (False, "no extra per-layer scaling"),
        "add_cross_attention": (False, "no cross-attention"),
    }
    bad = [
        f"{key}={hf[key]!r} (llmlab needs {needed!r}: {why})"
        for key, (needed, why) in unsupported.items()
        if key in hf and hf[key] != needed
    ]
    if bad:
        raise CheckpointError(
            "this GPT-2 variant cannot be loaded into llmlab's GPT: " + "; ".join(bad) + "."
        )


def canonical_names(tensors: dict[str, Any]) -> dict[str, Any]:
    """Checkpoint names as a ``GPT2LMHeadModel`` (or ``GPTNeoForCausalLM``) saves them (adds
    ``transformer.`` when a bare ``GPT2Model``, or the original OpenAI release, left it out)."""
    body = ("h.", "wte.", "wpe.", "ln_f.")
    return {(PREFIX + k if k.startswith(body) else k): v for k, v in tensors.items()}


def rules(cfg: ModelConfig, *, new_head: bool = False) -> list[Rule]:
    """Where each tensor of an llmlab GPT comes from in a GPT-2 checkpoint.

    ``new_head``: the classifier is not in the checkpoint (an LM loaded for classification).
    """
    out = embedding_rules()
    for i in range(cfg.n_layer):
        for ours, theirs, layout in _LAYER:
            ours, theirs = f"decoder.blocks.{i}.{ours}", f"{PREFIX}h.{i}.{theirs}"
            out.append(Rule(f"{ours}.weight", (f"{theirs}.weight",), layout))
            out.append(Rule(f"{ours}.bias", (f"{theirs}.bias",)))
    return out + tail_rules(cfg, new_head=new_head)


def embedding_rules() -> list[Rule]:
    """The token and position tables (``wte``, ``wpe``; GPT-Neo names them the same)."""
    return [Rule("embed.tok.weight", (f"{PREFIX}wte.weight",)),
            Rule("embed.pos.weight", (f"{PREFIX}wpe.weight",))]


def tail_rules(cfg: ModelConfig, *, new_head: bool = False) -> list[Rule]:
    """The final norm ``ln_f`` and the head: a classifier's ``score``, or an untied
    ``lm_head`` (GPT-Neo names them the same)."""
    out = [Rule(f"decoder.norm.{p}", (f"{PREFIX}ln_f.{p}",)) for p in ("weight", "bias")]
    if cfg.n_labels and new_head:
        out += [Rule("classifier.weight", (), optional=True),
                Rule("classifier.bias", (), optional=True)]
    elif cfg.n_labels:
        # GPT2ForSequenceClassification's "score" layer has no bias: ours is set to zero
        out += [Rule("classifier.weight", ("score.weight",)),
                Rule("classifier.bias", (), "zeros")]
    elif cfg.lm_head and not cfg.tie_embeddings:
        out.append(Rule("lm_head.weight", ("lm_head.weight",)))
    return out


def headless(hf: dict[str, Any], tensors: dict[str, Any]) -> bool:
    """Never: GPT-2's (and GPT-Neo's) head is tied to the token embedding, which every
    checkpoint has."""
    return False


def ignorable(name: str) -> bool:
    """Checkpoint tensors that are no weights llmlab needs: the causal-mask buffers older
    checkpoints saved, and a language-model head that is tied or unused by a classifier."""
    return name.endswith((".attn.bias", ".attn.masked_bias")) or name == "lm_head.weight"


def mismatch_hint(hf: dict[str, Any], cfg: ModelConfig) -> str:
    """Extra advice for a weights file that does not fit (none needed for GPT-2)."""
    return ""


# --------------------------------------------------------------------------- export
def export_gpt2(model: Any, path: str | os.PathLike, tokenizer: Any = None) -> Path:
    """Write an llmlab GPT as a Hugging Face GPT-2 folder; return the folder.

    The folder holds ``config.json`` and ``model.safetensors`` (and the tokenizer, when one is
    given), so ``transformers.GPT2LMHeadModel.from_pretrained(folder)`` and
    :func:`llmlab.interop.load_hf` both read it. Only configs GPT-2 can express are accepted
    (learned positions, LayerNorm, pre-norm, biases, multi-head attention, GELU or ReLU, no
    classifier); anything else is a :class:`CheckpointError` naming each field to change.
    :func:`llmlab.interop.export` picks GPT-2 or Llama by itself.

    >>> export_gpt2(model, "exports/my-gpt2", tokenizer=tok)  # doctest: +SKIP
    >>> GPT2LMHeadModel.from_pretrained("exports/my-gpt2")   # doctest: +SKIP
    """
    from llmlab.interop.export import export

    return export(model, path, tokenizer, model_type=MODEL_TYPE)


def hf_config(cfg: ModelConfig, *, dtype: str = "float32", tokenizer: Any = None) -> dict:
    """GPT-2's ``config.json`` for an exportable llmlab config."""
    return {
        "model_type": MODEL_TYPE,
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": cfg.vocab_size,
        "n_positions": cfg.context_length,
        "n_embd": cfg.d_model,
        "n_layer": cfg.n_layer,
        "n_head": cfg.n_head,
        "n_inner": cfg.d_ff,
        "activation_function": EXPORT_ACTIVATIONS[cfg.activation],
        "layer_norm_epsilon": cfg.norm_eps,
        "initializer_range": cfg.init_std,
        "resid_pdrop": cfg.dropout,
        "embd_pdrop": cfg.dropout,
        "attn_pdrop": cfg.dropout,
        "scale_attn_weights": cfg.attn_scale is None,
        "tie_word_embeddings": cfg.tie_embeddings,
        "bos_token_id": getattr(tokenizer, "bos_id", None),
        "eos_token_id": getattr(tokenizer, "eos_id", None),
        "pad_token_id": getattr(tokenizer, "pad_id", None),
        "dtype": dtype,
    }


def gaps(cfg: ModelConfig) -> list[tuple[str, Any, str]]:
    """(field, value, what GPT-2 needs) for every field GPT-2 cannot express."""
    allowed = {
        "family": ("gpt",), "pos_encoding": ("learned",), "norm": ("layernorm",),
        "norm_position": ("pre",), "bias": (True,), "qkv_bias": (None, True),
        "mlp_bias": (None, True), "n_labels": (0,), "embed_scale": (1.0,),
        "activation": tuple(EXPORT_ACTIVATIONS), "n_kv_head": (None, cfg.n_head),
        "head_size": (None, cfg.d_model // cfg.n_head), "parallel_residual": (False,),
        "qk_norm": (False,), "sliding_window": (None,), "lm_head": (True,),
        "sublayer_norm": (False,), "attn_softcap": (None,), "logit_softcap": (None,),
        "input_norm": (True,),
        # GPT-2's scale_attn_weights=False is a scale of 1
        "attn_scale": (None, 1.0),
    }
    return config_gaps(cfg, allowed)
