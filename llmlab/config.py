"""``ModelConfig``: the one description of a model's architecture.

A config validates itself before any tensor exists, round-trips through JSON, exports the JSON
Schema the config panel builds its form from, and is the single input of the estimates
(:mod:`llmlab.estimate`) and of :func:`llmlab.build_model`.

>>> cfg = ModelConfig.preset("baby-char")
>>> ModelConfig.from_json(cfg.to_json()) == cfg
True
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

from llmlab.errors import ConfigError

Family = Literal["gpt", "bert", "seq2seq"]
PosEncoding = Literal["learned", "sinusoidal", "rope", "none"]
Norm = Literal["layernorm", "rmsnorm"]
NormPosition = Literal["pre", "post"]
Activation = Literal["gelu", "gelu_tanh", "relu", "swiglu", "geglu"]
GATED_ACTIVATIONS = ("swiglu", "geglu")
RopeScaling = Literal["none", "linear", "llama3"]

# Help shown in the JSON Schema (and so in the config panel's form).
_HELP = {
    "family": "gpt: decoder-only causal LM; bert: bidirectional encoder (masked LM); "
    "seq2seq: encoder-decoder with cross-attention (the original Transformer).",
    "vocab_size": "Number of token ids; must cover the tokenizer's vocabulary.",
    "context_length": "Longest sequence the model accepts (positions 0 .. context_length-1).",
    "n_layer": "Transformer blocks (for seq2seq: encoder blocks).",
    "n_decoder_layer": "seq2seq only: decoder blocks (default: same as n_layer).",
    "n_head": "Attention heads per layer.",
    "n_kv_head": "Key/value heads (grouped-query attention); default n_head (multi-head), "
    "1 = multi-query.",
    "d_model": "Width of the residual stream (embedding size).",
    "d_ff": "Hidden width of the feed-forward block (default 4 x d_model).",
    "dropout": "Dropout probability on attention weights, residual branches and embeddings.",
    "bias": "Biases in linear layers and LayerNorms.",
    "pos_encoding": "learned table, fixed sinusoids (Vaswani et al.), rotary (RoPE), or none.",
    "rope_theta": "Base of the rotary frequencies (RoPE only).",
    "norm": "LayerNorm or RMSNorm.",
    "norm_position": "pre: normalise each block's input (GPT-2); post: after the residual "
    "sum (original Transformer, BERT).",
    "norm_eps": "Epsilon inside the normalisation layers.",
    "activation": "Feed-forward activation; gelu_tanh is GPT-2's approximation; swiglu "
    "(Llama) and geglu (Gemma: tanh-GELU gate) are gated forms (three matrices).",
    "tie_embeddings": "Share the token embedding with the output projection.",
    "qkv_bias": "Biases on the query/key/value projections; default: as bias (Qwen2 has them "
    "without any other bias).",
    "mlp_bias": "Biases in the feed-forward layers; default: as bias.",
    "head_size": "Width of one attention head; default d_model / n_head (Qwen3 uses wider "
    "heads).",
    "rotary_fraction": "Share of each head's dimensions that RoPE rotates (GPT-NeoX/Pythia: "
    "0.25); the rest carry no position.",
    "rope_scaling": "Stretch RoPE to longer contexts: none; linear (positions / rope_factor); "
    "llama3 (Llama 3.1+: low frequencies / rope_factor, smooth in between).",
    "rope_factor": "Context stretch factor of rope_scaling.",
    "rope_original_context": "llama3 scaling: the context length the model was pre-trained on.",
    "rope_low_freq_factor": "llama3 scaling: wavelengths above original context / this are "
    "scaled fully.",
    "rope_high_freq_factor": "llama3 scaling: wavelengths below original context / this are "
    "kept.",
    "parallel_residual": "Attention and feed-forward read the same input and add to the "
    "residual together (GPT-J, GPT-NeoX/Pythia).",
    "qk_norm": "Normalise each head's queries and keys before RoPE (Qwen3, OLMo 2).",
    "embed_scale": "Token embeddings are multiplied by this before the first block (Gemma: "
    "sqrt(d_model)); the tied output head uses the table unscaled.",
    "lm_head": "False: no output head at all; the model returns its hidden states (a bare "
    "encoder such as a sentence-transformers model).",
    "sliding_window": "Each token attends to at most this many latest tokens (itself "
    "included; Mistral); default: all of them.",
    "window_pattern": "Which layers attend within sliding_window, as letters repeated over "
    "the layers: w = windowed, f = full attention (GPT-Neo: fw, alternating from a full "
    "layer); empty: every layer windowed.",
    "sublayer_norm": "Also normalise each sublayer's output before it joins the residual "
    "(Gemma 2 and 3: four norms per block).",
    "input_norm": "False: blocks do not normalise their input, only each sublayer's output "
    "(OLMo 2; needs sublayer_norm).",
    "qk_norm_per_head": "qk_norm over each head alone (Qwen3, Gemma 3); False: over all "
    "heads' queries (and keys) together, the projection's whole width (OLMo 2).",
    "rope_local_theta": "RoPE base of the layers with a sliding window (Gemma 3: 10,000, "
    "against rope_theta 1,000,000 in its full layers); default: rope_theta.",
    "attn_softcap": "Attention scores pass through cap * tanh(score / cap) before the mask "
    "(Gemma 2: 50); attention then runs as explicit matmuls, which the fused kernel cannot.",
    "logit_softcap": "Output logits pass through cap * tanh(logit / cap) (Gemma 2: 30).",
    "attn_scale": "Multiplier of the query-key scores before the softmax; default "
    "1/sqrt(head size). GPT-Neo: 1 (unscaled).",
    "init_std": "Standard deviation of the normal weight initialisation.",
    "type_vocab_size": "bert only: token-type (segment) embeddings; 0 = none, 2 = BERT's.",
    "n_labels": "If > 0, the model ends in a sequence-classification head with this many "
    "classes instead of its language-model head.",
}

_MAX_VOCAB = 10_000_000
#: Upper bounds of the integer fields: far above any published model (Llama 3.1 405B has
#: d_model 16384, 126 layers, 128 heads, d_ff 53248, a 128,256-token vocabulary and a
#: 131,072-token context), low enough that every estimate stays exact and finite.
MAX_SIZES = {
    "vocab_size": _MAX_VOCAB, "context_length": 1 << 20, "n_layer": 1024,
    "n_decoder_layer": 1024, "n_head": 1024, "n_kv_head": 1024, "d_model": 1 << 16,
    "d_ff": 1 << 20, "type_vocab_size": 1024, "n_labels": _MAX_VOCAB, "head_size": 1 << 14,
    "rope_original_context": 1 << 20, "sliding_window": 1 << 20,
}
#: Upper bound of the float fields other than dropout (rope_theta of Llama 3 is 500,000).
_MAX_FLOAT = 1e12


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a transformer language model.

    >>> cfg = ModelConfig(family="gpt", vocab_size=65, context_length=64, n_layer=2,
    ...                   n_head=2, d_model=64)
    >>> cfg.head_dim, cfg.ffn_dim
    (32, 256)
    """

    family: Family = "gpt"
    vocab_size: int = 50257
    context_length: int = 1024
    n_layer: int = 12
    n_head: int = 12
    d_model: int = 768
    n_kv_head: int | None = None
    d_ff: int | None = None
    n_decoder_layer: int | None = None
    dropout: float = 0.0
    bias: bool = True
    pos_encoding: PosEncoding = "learned"
    rope_theta: float = 10000.0
    norm: Norm = "layernorm"
    norm_position: NormPosition = "pre"
    norm_eps: float = 1e-5
    activation: Activation = "gelu"
    tie_embeddings: bool = True
    init_std: float = 0.02
    type_vocab_size: int = 0
    n_labels: int = 0
    qkv_bias: bool | None = None
    mlp_bias: bool | None = None
    head_size: int | None = None
    rotary_fraction: float = 1.0
    rope_scaling: RopeScaling = "none"
    rope_factor: float = 1.0
    rope_original_context: int | None = None
    rope_low_freq_factor: float = 1.0
    rope_high_freq_factor: float = 4.0
    parallel_residual: bool = False
    qk_norm: bool = False
    sliding_window: int | None = None
    window_pattern: str = ""
    attn_scale: float | None = None
    sublayer_norm: bool = False
    input_norm: bool = True
    qk_norm_per_head: bool = True
    rope_local_theta: float | None = None
    attn_softcap: float | None = None
    logit_softcap: float | None = None
    lm_head: bool = True
    embed_scale: float = 1.0
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        self._check_types()
        self._check_values()

    # ----------------------------------------------------------------- derived sizes
    @property
    def head_dim(self) -> int:
        """Width of one attention head: ``head_size``, by default ``d_model // n_head``."""
        return self.head_size or self.d_model // self.n_head

    @property
    def rotary_dim(self) -> int:
        """Dimensions of each head that RoPE rotates (``rotary_fraction`` of the head)."""
        return int(self.head_dim * self.rotary_fraction)

    def layer_window(self, layer: int) -> int | None:
        """The sliding window of (decoder) self-attention layer ``layer``, None where it
        attends to every earlier token (``sliding_window`` and ``window_pattern``).

        >>> cfg = ModelConfig(n_layer=4, n_head=2, d_model=8, sliding_window=3,
        ...                   window_pattern="fw")
        >>> [cfg.layer_window(i) for i in range(4)]
        [None, 3, None, 3]
        """
        pattern = self.window_pattern
        if pattern and pattern[layer % len(pattern)] == "f":
            return None
        return self.sliding_window

    @property
    def score_scale(self) -> float:
        """What query-key scores are multiplied by: ``attn_scale``, else 1/sqrt(head size)."""
        return self.attn_scale if self.attn_scale is not None else self.head_dim ** -0.5

    @property
    def attention_bias(self) -> bool:
        """Whether the query/key/value projections have biases (``qkv_bias``, else ``bias``)."""
        return self.bias if self.qkv_bias is None else self.qkv_bias

    @property
    def ffn_bias(self) -> bool:
        """Whether the feed-forward layers have biases (``mlp_bias``, else ``bias``)."""
        return self.bias if self.mlp_bias is None else self.mlp_bias

    @property
    def kv_heads(self) -> int:
        """Key/value heads actually used (``n_kv_head`` or ``n_head``)."""
        return self.n_kv_head or self.n_head

    @property
    def ffn_dim(self) -> int:
        """Hidden width of the feed-forward block (``d_ff`` or ``4 * d_model``)."""
        return self.d_ff or 4 * self.d_model

    @property
    def decoder_layers(self) -> int:
        """Decoder blocks of a seq2seq model (0 for other families)."""
        if self.family != "seq2seq":
            return 0
        return self.n_decoder_layer or self.n_layer

    @property
    def is_causal(self) -> bool:
        """Whether the (decoder) self-attention is causal."""
        return self.family != "bert"

    # ----------------------------------------------------------------- validation
    def _check_types(self) -> None:
        hints = get_type_hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            allowed = _allowed_literals(hints[f.name])
            if allowed is not None:
                if value not in allowed:
                    raise ConfigError(
                        f"ModelConfig.{f.name}={value!r} is not a known choice. "
                        f"Use one of: {', '.join(map(repr, allowed))}.", fields=(f.name,)
                    )
                continue
            expected = _python_type(hints[f.name])
            if value is None and _is_optional(hints[f.name]):
                continue
            ok = isinstance(value, expected) and not (
                expected in (int, float) and isinstance(value, bool)
            )
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                ok = True
            if not ok:
                raise ConfigError(
                    f"ModelConfig.{f.name} must be {expected.__name__}, got "
                    f"{type(value).__name__} {_short(value)}. Pass a {expected.__name__}.",
                    fields=(f.name,)
                )
            _check_bound(f.name, value, expected)

    def _check_values(self) -> None:
        _positive(self, "vocab_size", "context_length", "n_layer", "n_head", "d_model")
        for name in ("n_kv_head", "d_ff", "n_decoder_layer", "head_size", "sliding_window",
                     "rope_original_context"):
            value = getattr(self, name)
            if value is not None and value < 1:
                _fail(name, value, "must be at least 1, or None for the default")
        if self.head_size is None and self.d_model % self.n_head:
            _fail(
                "d_model", self.d_model,
                f"is not divisible by n_head={self.n_head}; pick a width that is a multiple "
                f"of n_head (e.g. {self.n_head * max(1, round(self.d_model / self.n_head))}) "
                "or a number of heads that divides it", ("n_head",),
            )
        if self.n_head % self.kv_heads:
            _fail(
                "n_kv_head", self.n_kv_head,
                f"must divide n_head={self.n_head} (each key/value head serves a whole group "
                f"of query heads); use one of {_divisors(self.n_head)}", ("n_head",),
            )
        if self.pos_encoding == "rope" and self.rotary_dim % 2:
            _fail(
                "pos_encoding", "rope",
                f"needs an even head size to rotate (rotary dimensions), but the head size "
                f"{self.head_dim} x rotary_fraction {self.rotary_fraction} = {self.rotary_dim}; "
                "change d_model, n_head, head_size or rotary_fraction, or use another "
                "pos_encoding", ("d_model", "n_head", "head_size", "rotary_fraction"),
            )
        self._check_new_knobs()
        if self.pos_encoding == "sinusoidal" and self.d_model % 2:
            _fail("pos_encoding", "sinusoidal", "needs an even d_model (sine/cosine pairs)",
                  ("d_model",))
        if not 0.0 <= self.dropout < 1.0:
            _fail("dropout", self.dropout, "must be in [0, 1)")
        for name in ("norm_eps", "init_std", "rope_theta", "embed_scale"):
            if not getattr(self, name) > 0:
                _fail(name, getattr(self, name), "must be positive")
        if self.type_vocab_size < 0 or self.n_labels < 0:
            bad = "type_vocab_size" if self.type_vocab_size < 0 else "n_labels"
            _fail(bad, getattr(self, bad), "must be 0 or more")
        if self.n_labels == 1:
            _fail("n_labels", 1, "must be 0 (no classifier) or at least 2 classes")
        if self.n_decoder_layer is not None and self.family != "seq2seq":
            _fail("n_decoder_layer", self.n_decoder_layer,
                  f"only applies to family='seq2seq' (this is {self.family!r}); leave it None",
                  ("family",))
        if self.type_vocab_size and self.family != "bert":
            _fail("type_vocab_size", self.type_vocab_size,
                  f"only applies to family='bert' (this is {self.family!r}); set it to 0",
                  ("family",))
        if self.n_labels and self.family == "seq2seq":
            _fail("n_labels", self.n_labels,
                  "classification heads exist for gpt and bert; use 0 for seq2seq", ("family",))

    def _check_new_knobs(self) -> None:
        """Rotary scaling and fraction, sliding window, parallel residual."""
        rope_only = {"rotary_fraction": 1.0, "rope_scaling": "none"}
        for name, default in rope_only.items():
            if self.pos_encoding != "rope" and getattr(self, name) != default:
                _fail(name, getattr(self, name), "only applies to pos_encoding='rope'; leave it "
                      f"at {default!r} or use pos_encoding='rope'", ("pos_encoding",))
        if not 0.0 < self.rotary_fraction <= 1.0 or (self.pos_encoding == "rope"
                                                      and self.rotary_dim < 2):
            _fail("rotary_fraction", self.rotary_fraction,
                  "must be in (0, 1] and rotate at least 2 dimensions of each head")
        if self.rope_factor < 1.0:
            _fail("rope_factor", self.rope_factor, "must be at least 1 (1 = no stretch)")
        if self.rope_scaling == "llama3":
            if self.rope_original_context is None:
                _fail("rope_original_context", None, "is needed by rope_scaling='llama3' (the "
                      "pre-training context, e.g. 8192)", ("rope_scaling",))
            if not 0 < self.rope_low_freq_factor < self.rope_high_freq_factor:
                _fail("rope_low_freq_factor", self.rope_low_freq_factor,
                      f"must be positive and below rope_high_freq_factor="
                      f"{self.rope_high_freq_factor}", ("rope_high_freq_factor",))
        if self.sliding_window is not None and not self.is_causal:
            _fail("sliding_window", self.sliding_window,
                  "only applies to causal attention (gpt, seq2seq); leave it None", ("family",))
        if self.window_pattern and (self.sliding_window is None
                                    or set(self.window_pattern) - {"w", "f"}
                                    or len(self.window_pattern) > MAX_SIZES["n_layer"]):
            _fail("window_pattern", self.window_pattern,
                  "must be letters w (windowed) and f (full attention), at most one per layer, "
                  "with sliding_window set; leave it empty for a window in every layer",
                  ("sliding_window",))
        if self.attn_scale is not None and not self.attn_scale > 0:
            _fail("attn_scale", self.attn_scale, "must be positive, or None for "
                  "1/sqrt(head size)")
        if self.rope_local_theta is not None and (
                not self.rope_local_theta > 0 or self.pos_encoding != "rope"
                or self.sliding_window is None):
            _fail("rope_local_theta", self.rope_local_theta, "must be positive, with "
                  "pos_encoding='rope' and a sliding_window (it is the windowed layers' RoPE "
                  "base); or None for rope_theta everywhere", ("pos_encoding", "sliding_window"))
        for name in ("attn_softcap", "logit_softcap"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                _fail(name, getattr(self, name), "must be positive, or None for no cap")
        if self.logit_softcap is not None and (self.n_labels or not self.lm_head
                                               or self.family != "gpt"):
            _fail("logit_softcap", self.logit_softcap, "applies to a gpt language-model head; "
                  "leave it None for a classifier or a bare body", ("n_labels", "lm_head"))
        if not self.input_norm and not self.sublayer_norm:
            _fail("input_norm", False, "needs sublayer_norm=True (a block must normalise "
                  "something)", ("sublayer_norm",))
        if not self.qk_norm_per_head and not self.qk_norm:
            _fail("qk_norm_per_head", False, "only applies with qk_norm=True", ("qk_norm",))
        if self.sublayer_norm and (self.family != "gpt" or self.norm_position != "pre"
                                   or self.parallel_residual):
            _fail("sublayer_norm", True, "needs family='gpt', norm_position='pre' and no "
                  "parallel_residual", ("family", "norm_position", "parallel_residual"))
        if not self.lm_head and (self.n_labels or self.family == "seq2seq"):
            _fail("lm_head", False, "means a bare gpt or bert body: it needs n_labels=0 and "
                  "is not available for seq2seq", ("n_labels", "family"))
        if self.parallel_residual and (self.norm_position != "pre" or self.family != "gpt"):
            _fail("parallel_residual", True, "needs family='gpt' and norm_position='pre'",
                  ("norm_position", "family"))

    # ----------------------------------------------------------------- constructors
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ModelConfig:
        """A named configuration, optionally with some fields changed.

        >>> ModelConfig.preset("shakespeare-char", dropout=0.0).n_layer
        6
        """
        if name not in PRESETS:
            raise ConfigError(
                f"unknown preset {name!r}. Known presets: {', '.join(sorted(PRESETS))}."
            )
        return cls.from_dict({**PRESETS[name], "name": name, **overrides})

    @classmethod
    def presets(cls) -> list[str]:
        """Names of the built-in presets."""
        return sorted(PRESETS)

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (validated again).

        >>> ModelConfig.preset("baby-char").replace(n_layer=2).n_layer
        2
        """
        _reject_unknown(changes)
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from a dict such as :meth:`to_dict` returns; unknown keys are an error."""
        if not isinstance(data, dict):
            raise ConfigError(
                f"a model config must be a JSON object (dict), got {type(data).__name__}"
            )
        _reject_unknown(data)
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain JSON-able values."""
        return dataclasses.asdict(self)

    def to_json(self, path: str | os.PathLike | None = None, *, indent: int = 2) -> str:
        """The config as JSON text; also written (atomically) to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            from llmlab._files import write_text_atomic

            write_text_atomic(Path(path), text + "\n")
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> ModelConfig:
        """Read a config from JSON text or from a ``.json`` file.

        >>> ModelConfig.from_json('{"family": "bert", "vocab_size": 100}').family
        'bert'
        """
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            path = Path(text_or_path)
            if not path.is_file():
                raise ConfigError(f"config file {path} does not exist; pass JSON text or a path")
            text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"config JSON is malformed: {err}. Fix the JSON syntax.") from None
        return cls.from_dict(data)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """JSON Schema (draft 2020-12) of the config; the config panel's form is built from it.

        >>> ModelConfig.json_schema()["properties"]["family"]["enum"]
        ['gpt', 'bert', 'seq2seq']
        """
        hints = get_type_hints(cls)
        props: dict[str, Any] = {}
        for f in fields(cls):
            props[f.name] = _field_schema(f, hints[f.name])
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "ModelConfig",
            "description": "Architecture of an llmlab transformer model.",
            "type": "object",
            "properties": props,
            "additionalProperties": False,
        }

    def estimate(self, batch_size: int = 1, seq_len: int | None = None, **kwargs: Any):
        """Parameters, FLOPs per token and memory; see :func:`llmlab.estimate.estimate`.

        >>> ModelConfig.preset("baby-char").estimate(batch_size=12).params > 0
        True
        """
        from llmlab.estimate import estimate

        return estimate(self, batch_size=batch_size, seq_len=seq_len, **kwargs)


# --------------------------------------------------------------------------- presets
PRESETS: dict[str, dict[str, Any]] = {
    # nanoGPT's config for a laptop CPU (train_shakespeare_char.py, CPU variant)
    "baby-char": dict(family="gpt", vocab_size=65, context_length=64, n_layer=4, n_head=4,
                      d_model=128, dropout=0.0, bias=False),
    # nanoGPT's train_shakespeare_char.py
    "shakespeare-char": dict(family="gpt", vocab_size=65, context_length=256, n_layer=6,
                             n_head=6, d_model=384, dropout=0.2, bias=False),
    # GPT-2 124M (Radford et al. 2019)
    "gpt2-small": dict(family="gpt", vocab_size=50257, context_length=1024, n_layer=12,
                       n_head=12, d_model=768, activation="gelu_tanh", dropout=0.1),
    # BERT-mini (Turc et al. 2019): 4 layers, 4 heads, width 256
    "bert-mini": dict(family="bert", vocab_size=30522, context_length=512, n_layer=4,
                      n_head=4, d_model=256, norm_position="post", norm_eps=1e-12,
                      type_vocab_size=2, dropout=0.1),
    # a small original-Transformer-style encoder-decoder, for toy translation tasks
    "seq2seq-small": dict(family="seq2seq", vocab_size=1024, context_length=128, n_layer=3,
                          n_head=4, d_model=256, pos_encoding="sinusoidal",
                          activation="relu", dropout=0.1),
}


# --------------------------------------------------------------------------- helpers
def _fail(name: str, value: Any, problem: str, related: tuple[str, ...] = ()) -> None:
    """Refuse ``name=value``; ``related`` names the other fields the problem is about."""
    raise ConfigError(f"ModelConfig.{name}={_short(value)} {problem}.",
                      fields=(name, *related))


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (a huge int or string in a message)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**limit:
        return f"<an integer of {len(str(abs(value)))} digits>"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _check_bound(name: str, value: Any, expected: type) -> None:
    """An int field within ``MAX_SIZES``, a float field finite and within ``_MAX_FLOAT``:
    checked before any arithmetic, so d_model=10**400 cannot overflow an estimate."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if expected is int and name in MAX_SIZES and value > MAX_SIZES[name]:
        _fail(name, value, f"is larger than llmlab supports (at most {MAX_SIZES[name]:,}); "
                           "pass a smaller size")
    if expected is float and isinstance(value, float) and not math.isfinite(value):
        _fail(name, value, "must be a finite number")
    if expected is float and abs(value) > _MAX_FLOAT:
        _fail(name, value, f"is out of range (at most {_MAX_FLOAT:g} in size); pass a "
                           "smaller number")


def _positive(cfg: ModelConfig, *names: str) -> None:
    for name in names:
        if getattr(cfg, name) < 1:
            _fail(name, getattr(cfg, name), "must be at least 1")


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _reject_unknown(data: dict[str, Any]) -> None:
    reject_unknown_keys(data, {f.name for f in fields(ModelConfig)}, "ModelConfig field")


def reject_unknown_keys(data: dict[str, Any], known: set[str], what: str) -> None:
    """Raise ConfigError for keys of ``data`` not in ``known``, suggesting the closest names."""
    unknown = sorted(set(data) - known)
    if not unknown:
        return
    import difflib

    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise ConfigError(
        f"unknown {what}(s): {', '.join(hints)}. Known: {', '.join(sorted(known))}.",
        fields=unknown,
    )


def _allowed_literals(hint: Any) -> tuple | None:
    if getattr(hint, "__origin__", None) is Literal:
        return get_args(hint)
    return None


def _is_optional(hint: Any) -> bool:
    return type(None) in get_args(hint)


def _python_type(hint: Any) -> type:
    args = [a for a in get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def _field_schema(f: dataclasses.Field, hint: Any) -> dict[str, Any]:
    allowed = _allowed_literals(hint)
    schema: dict[str, Any]
    if allowed is not None:
        schema = {"type": "string", "enum": list(allowed)}
    else:
        base = {int: "integer", float: "number", bool: "boolean", str: "string"}
        kind = base[_python_type(hint)]
        schema = {"type": [kind, "null"] if _is_optional(hint) else kind}
        if kind in ("integer", "number") and f.name not in ("dropout",):
            schema["minimum"] = 0
        if f.name in MAX_SIZES:
            schema["maximum"] = MAX_SIZES[f.name]
    if f.name == "dropout":
        schema.update(minimum=0, exclusiveMaximum=1)
    if f.name == "rotary_fraction":
        schema.update(exclusiveMinimum=0, maximum=1)
    schema["default"] = f.default
    if f.name in _HELP:
        schema["description"] = _HELP[f.name]
    return schema
