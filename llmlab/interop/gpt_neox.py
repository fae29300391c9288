"""GPT-NeoX checkpoints (``model_type`` "gpt_neox": Pythia, the TinyStories-style NeoX models)
-> llmlab ``GPT`` models.

GPT-NeoX is a pre-norm decoder with LayerNorm and biases, rotary positions over a fraction of
each head (``rotary_pct``, 0.25 for Pythia), a *parallel* residual (attention and MLP both read
the block's input) and an output head of its own (``embed_out``). Its ``query_key_value``
layer stores q, k, v head by head, regrouped here into llmlab's q | k | v ``qkv``.

>>> from llmlab.interop import load_hf                    # doctest: +SKIP
>>> model, tok = load_hf("EleutherAI/pythia-70m")         # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from llmlab.config import ModelConfig
from llmlab.errors import CheckpointError
from llmlab.interop._hf import Rule, config_value
from llmlab.interop.llama import rope_settings

MODEL_TYPE = "gpt_neox"
PREFIX = "gpt_neox."
CHECKED = ("logits", "eager attention", "greedy generate (batch 1, left-padded 4)",
           "sequence classifier")
ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh",
               "relu": "relu"}

# llmlab block module -> GPT-NeoX layer module (weight and bias each)
_LAYER = (
    ("attn_norm", "input_layernorm"),
    ("attn.proj", "attention.dense"),
    ("ffn_norm", "post_attention_layernorm"),
    ("ffn.fc", "mlp.dense_h_to_4h"),
    ("ffn.proj", "mlp.dense_4h_to_h"),
)


def model_config(hf: dict[str, Any], *, n_labels: int, name: str) -> ModelConfig:
    """The llmlab config of a GPT-NeoX ``config.json`` (``n_labels`` classes, 0 = LM)."""
    activation = config_value(hf, "hidden_act", "gelu", str)
    rope = rope_settings({**hf, "rope_theta": hf.get("rope_theta", hf.get("rotary_emb_base",
                                                                          10000.0))})
    bad = []
    if activation not in ACTIVATIONS:
        bad.append(f"hidden_act={activation!r} (llmlab supports {', '.join(ACTIVATIONS)})")
    if rope.get("rope_type", "default") != "default":
        bad.append(f"rope_type={rope.get('rope_type')!r} (llmlab needs 'default' for NeoX)")
    if not config_value(hf, "attention_bias", True, bool):
        bad.append("attention_bias=False (llmlab needs True: NeoX layers have biases)")
    if bad:
        raise CheckpointError("this GPT-NeoX variant cannot be loaded into llmlab's GPT yet: "
                              + "; ".join(bad) + ".")
    fraction = rope.get("partial_rotary_factor", rope.get("rotary_pct", 0.25))
    return ModelConfig(
        family="gpt",
        vocab_size=config_value(hf, "vocab_size", 50432, int),
        context_length=config_value(hf, "max_position_embeddings", 2048, int),
        n_layer=config_value(hf, "num_hidden_layers", 44, int),
        n_head=config_value(hf, "num_attention_heads", 64, int),
        d_model=config_value(hf, "hidden_size", 6144, int),
        d_ff=config_value(hf, "intermediate_size", 24576, int),
        dropout=float(config_value(hf, "hidden_dropout", 0.0, (int, float))),
        bias=True,
        pos_encoding="rope",
        rope_theta=float(rope["rope_theta"]),
        rotary_fraction=float(fraction),
        parallel_residual=config_value(hf, "use_parallel_residual", True, bool),
        norm="layernorm",
        norm_position="pre",
        norm_eps=float(config_value(hf, "layer_norm_eps", 1e-5, (int, float))),
        activation=ACTIVATIONS[activation],
        tie_embeddings=config_value(hf, "tie_word_embeddings", False, bool),
        init_std=float(config_value(hf, "initializer_range", 0.02, (int, float))),
        n_labels=n_labels,
        name=name,
    )


def canonical_names(tensors: dict[str, Any]) -> dict[str, Any]:
    """Checkpoint names as ``GPTNeoXForCausalLM`` saves them (adds ``gpt_neox.`` where a bare
    ``GPTNeoXModel`` left it out)."""
    body = ("layers.", "embed_in.", "final_layer_norm.")
    return {(PREFIX + k if k.startswith(body) else k): v for k, v in tensors.items()}


def rules(cfg: ModelConfig, *, new_head: bool = False) -> list[Rule]:
    """Where each tensor of an llmlab GPT comes from in a GPT-NeoX checkpoint."""
    out = [Rule("embed.tok.weight", (f"{PREFIX}embed_in.weight",))]
    for i in range(cfg.n_layer):
        ours, theirs = f"decoder.blocks.{i}.", f"{PREFIX}layers.{i}."
        out += [Rule(f"{ours}attn.qkv.{p}", (f"{theirs}attention.query_key_value.{p}",),
                     "interleaved", heads=cfg.n_head) for p in ("weight", "bias")]
        for our, their in _LAYER:
            out += [Rule(f"{ours}{our}.{p}", (f"{theirs}{their}.{p}",)) for p in ("weight", "bias")]
    out += [Rule(f"decoder.norm.{p}", (f"{PREFIX}final_layer_norm.{p}",))
            for p in ("weight", "bias")]
    if cfg.n_labels:
        out += [Rule("classifier.weight", () if new_head else ("score.weight",),
                     optional=new_head),
                Rule("classifier.bias", (), "zeros")]
    elif cfg.lm_head and not cfg.tie_embeddings:
        out.append(Rule("lm_head.weight", ("embed_out.weight",)))
    return out


def headless(hf: dict[str, Any], tensors: dict[str, Any]) -> bool:
    """Whether the checkpoint is a bare ``GPTNeoXModel``: no ``embed_out`` head."""
    return not hf.get("tie_word_embeddings", False) and "embed_out.weight" not in tensors


def ignorable(name: str) -> bool:
    """Checkpoint tensors llmlab does not need: causal-mask and rotary buffers older
    checkpoints saved, and an output head unused by a classifier or tied."""
    return (name.endswith((".attention.bias", ".attention.masked_bias", "rotary_emb.inv_freq"))
            or name == "embed_out.weight")


def mismatch_hint(hf: dict[str, Any], cfg: ModelConfig) -> str:
    """Extra advice for a weights file that does not fit (none needed for GPT-NeoX)."""
    return ""
