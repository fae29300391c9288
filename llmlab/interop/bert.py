"""BERT checkpoints (``model_type: "bert"``) -> llmlab ``Bert`` models.

BERT is a post-norm encoder: LayerNorm on the embeddings and after each residual sum. Its
attention keeps separate ``query``, ``key`` and ``value`` layers, which become llmlab's fused
``qkv`` (stacked along the output). ``BertForMaskedLM`` maps to the masked-LM head,
``BertForSequenceClassification`` (pooler + classifier) to llmlab's classifier head.

>>> from llmlab.interop import load_hf                 # doctest: +SKIP
>>> model, tok = load_hf("~/models/bert-base-uncased")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from llmlab.config import ModelConfig
from llmlab.errors import CheckpointError
from llmlab.interop._hf import Rule, config_value

MODEL_TYPE = "bert"
PREFIX = "bert."
CHECKED = ("masked-LM logits", "sequence classifier", "old names and .bin")

# BERT's hidden_act -> llmlab activation
ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh",
               "relu": "relu"}

# llmlab block module -> BERT layer module (all stored as nn.Linear / LayerNorm)
_LAYER = (
    ("attn.proj", "attention.output.dense"),
    ("attn_norm", "attention.output.LayerNorm"),
    ("ffn.fc", "intermediate.dense"),
    ("ffn.proj", "output.dense"),
    ("ffn_norm", "output.LayerNorm"),
)
_MLM_HEAD = (
    ("mlm_head.dense", "cls.predictions.transform.dense"),
    ("mlm_head.norm", "cls.predictions.transform.LayerNorm"),
)


def model_config(hf: dict[str, Any], *, n_labels: int, name: str) -> ModelConfig:
    """The llmlab config of a BERT ``config.json`` (with ``n_labels`` classes, 0 = masked LM)."""
    _reject_unsupported(hf)
    activation = config_value(hf, "hidden_act", "gelu", str)
    if activation not in ACTIVATIONS:
        raise CheckpointError(
            f"config.json has hidden_act={activation!r}; llmlab's Bert supports "
            f"{', '.join(map(repr, ACTIVATIONS))}."
        )
    return ModelConfig(
        family="bert",
        vocab_size=config_value(hf, "vocab_size", 30522, int),
        context_length=config_value(hf, "max_position_embeddings", 512, int),
        n_layer=config_value(hf, "num_hidden_layers", 12, int),
        n_head=config_value(hf, "num_attention_heads", 12, int),
        d_model=config_value(hf, "hidden_size", 768, int),
        d_ff=config_value(hf, "intermediate_size", 3072, int),
        dropout=float(config_value(hf, "hidden_dropout_prob", 0.1, (int, float))),
        bias=True,
        pos_encoding="learned",
        norm="layernorm",
        norm_position="post",
        norm_eps=float(config_value(hf, "layer_norm_eps", 1e-12, (int, float))),
        activation=ACTIVATIONS[activation],
        tie_embeddings=config_value(hf, "tie_word_embeddings", True, bool),
        init_std=float(config_value(hf, "initializer_range", 0.02, (int, float))),
        type_vocab_size=config_value(hf, "type_vocab_size", 2, int),
        n_labels=n_labels,
        name=name,
    )


def _reject_unsupported(hf: dict[str, Any]) -> None:
    unsupported = {
        "position_embedding_type": ("absolute", "learned absolute positions"),
        "is_decoder": (False, "bidirectional attention"),
        "add_cross_attention": (False, "no cross-attention"),
    }
    bad = [
        f"{key}={hf[key]!r} (llmlab needs {needed!r}: {why})"
        for key, (needed, why) in unsupported.items()
        if key in hf and hf[key] != needed
    ]
    if bad:
        raise CheckpointError(
            "this BERT variant cannot be loaded into llmlab's Bert: " + "; ".join(bad) + "."
        )


def canonical_names(tensors: dict[str, Any]) -> dict[str, Any]:
    """Checkpoint names as ``BertFor...`` models save them today: adds ``bert.`` where a bare
    ``BertModel`` left it out, renames old LayerNorm ``gamma``/``beta`` to ``weight``/``bias``,
    and takes the masked-LM output bias from ``decoder.bias`` when only that is stored."""
    body = ("embeddings.", "encoder.", "pooler.")
    out = {}
    for name, tensor in tensors.items():
        if name.startswith(body):
            name = PREFIX + name
        for old, new in ((".gamma", ".weight"), (".beta", ".bias")):
            if ".LayerNorm." in name and name.endswith(old):
                name = name.removesuffix(old) + new
        out[name] = tensor
    if "cls.predictions.bias" not in out and "cls.predictions.decoder.bias" in out:
        out["cls.predictions.bias"] = out.pop("cls.predictions.decoder.bias")
    return out


def rules(cfg: ModelConfig, *, new_head: bool = False) -> list[Rule]:
    """Where each tensor of an llmlab Bert comes from in a BERT checkpoint.

    ``new_head``: the classifier is not in the checkpoint (a masked LM loaded for
    classification); its pooler is still taken from the checkpoint when it has one.
    """
    emb = f"{PREFIX}embeddings."
    out = [
        Rule("embed.tok.weight", (f"{emb}word_embeddings.weight",)),
        Rule("embed.pos.weight", (f"{emb}position_embeddings.weight",)),
    ]
    if cfg.type_vocab_size:
        out.append(Rule("embed.token_type.weight", (f"{emb}token_type_embeddings.weight",)))
    out += _pairs("encoder.norm", f"{emb}LayerNorm")
    for i in range(cfg.n_layer):
        ours, theirs = f"encoder.blocks.{i}.", f"{PREFIX}encoder.layer.{i}."
        for p in ("weight", "bias"):
            qkv = tuple(f"{theirs}attention.self.{x}.{p}" for x in ("query", "key", "value"))
            out.append(Rule(f"{ours}attn.qkv.{p}", qkv, "concat"))
        for our, their in _LAYER:
            out += _pairs(ours + our, theirs + their)
    if cfg.n_labels:
        out += _pairs("classifier.pool", f"{PREFIX}pooler.dense", optional=new_head)
        out += _pairs("classifier.out", "classifier", optional=new_head)
    elif cfg.lm_head:
        for our, their in _MLM_HEAD:
            out += _pairs(our, their)
        out.append(Rule("mlm_head.decoder.bias", ("cls.predictions.bias",)))
        if not cfg.tie_embeddings:
            out.append(Rule("mlm_head.decoder.weight", ("cls.predictions.decoder.weight",)))
    return out


def _pairs(ours: str, theirs: str, *, optional: bool = False) -> list[Rule]:
    return [Rule(f"{ours}.{p}", (f"{theirs}.{p}",), optional=optional) for p in ("weight", "bias")]


def headless(hf: dict[str, Any], tensors: dict[str, Any]) -> bool:
    """Whether the checkpoint is a bare ``BertModel`` (a sentence-transformers encoder, say):
    no masked-LM head among its tensors."""
    return f"{_MLM_HEAD[0][1]}.weight" not in tensors


def ignorable(name: str) -> bool:
    """Checkpoint tensors llmlab does not need: index buffers, the next-sentence head, the
    pooler of a masked LM, and a tied copy of the word embeddings."""
    return (
        name.endswith(("embeddings.position_ids", "embeddings.token_type_ids"))
        or name.startswith(("cls.", f"{PREFIX}pooler."))
    )


def mismatch_hint(hf: dict[str, Any], cfg: ModelConfig) -> str:
    """Advice for a bare encoder (``BertModel``) loaded as a masked LM."""
    architectures = hf.get("architectures") or []
    if cfg.n_labels or any("MaskedLM" in a or "PreTraining" in a for a in architectures):
        return ""
    return (
        f"This checkpoint ({', '.join(architectures) or 'no architectures listed'}) may have no "
        "masked-LM head: pass n_labels=N to load its encoder under a new classifier head."
    )
