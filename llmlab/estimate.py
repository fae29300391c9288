"""Size, compute and memory of a model, computed from its config alone (no tensors).

- ``params``: exact parameter count (tied weights once); equals ``build_model(cfg).num_params()``.
- ``flops_per_token_forward`` = 2 N + 4 L d T and ``flops_per_token_train`` = 3 x that
  = 6 N + 12 L d T: the PaLM appendix B estimate (Chowdhery et al. 2022), where N counts the
  parameters used in matrix multiplies (all but embedding tables; a tied output projection
  counts once), L the layers, d the attention width (heads x head size) and T the sequence
  length. For seq2seq, T is used for both source and target and a cross-attention layer adds
  its own 4 d T term; FLOPs are per target token.
- memory: weights, gradients (same dtype as the weights), AdamW state (two float32 moments
  per parameter, plus a float32 master copy when the weights are 16-bit), and activations after
  Korthikanti et al. 2022 ("Reducing Activation Recomputation"), eq. 2: per layer
  ``s b h (34 + 5 a s / h)`` bytes for 16-bit activations; the ``5 a s / h`` term (the stored
  attention matrix) is dropped for fused attention, which recomputes it; scaled by the dtype
  size / 2; plus the logits and their gradient (``2 b s V`` elements, float32).
- ``kv_cache_bytes_per_token``: keys and values of every decoder layer for one token.

>>> from llmlab import ModelConfig
>>> est = ModelConfig.preset("gpt2-small").estimate(batch_size=8, seq_len=1024)
>>> round(est.params / 1e6, 1)
124.4
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from llmlab.config import GATED_ACTIVATIONS, ModelConfig
from llmlab.errors import ConfigError

DTYPE_BYTES = {"float32": 4, "fp32": 4, "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2}


@dataclass(frozen=True)
class Estimate:
    """Estimated size, compute and memory of one config at one batch shape."""

    params: int
    matmul_params: int
    flops_per_token_forward: int
    flops_per_token_train: int
    batch_size: int
    seq_len: int
    dtype: str
    weights_bytes: int
    gradients_bytes: int
    optimizer_bytes: int
    activations_bytes: int
    kv_cache_bytes_per_token: int

    @property
    def training_bytes(self) -> int:
        """Weights + gradients + AdamW state + activations for one training step."""
        return (self.weights_bytes + self.gradients_bytes + self.optimizer_bytes
                + self.activations_bytes)

    @property
    def flops_per_step(self) -> int:
        """Training FLOPs of one optimizer step at ``batch_size x seq_len`` tokens."""
        return self.flops_per_token_train * self.batch_size * self.seq_len

    def to_dict(self) -> dict[str, int | str]:
        """All figures, including the derived ones, as a plain dict."""
        return {**asdict(self), "training_bytes": self.training_bytes,
                "flops_per_step": self.flops_per_step}

    def __str__(self) -> str:
        rows = [
            ("parameters", _count(self.params)),
            ("FLOPs/token (forward)", _count(self.flops_per_token_forward)),
            ("FLOPs/token (training)", _count(self.flops_per_token_train)),
            (f"weights ({self.dtype})", _bytes(self.weights_bytes)),
            ("gradients", _bytes(self.gradients_bytes)),
            ("AdamW state", _bytes(self.optimizer_bytes)),
            (f"activations (batch {self.batch_size} x {self.seq_len})",
             _bytes(self.activations_bytes)),
            ("training total", _bytes(self.training_bytes)),
            ("KV cache per token", _bytes(self.kv_cache_bytes_per_token)),
        ]
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)

    def _repr_html_(self) -> str:
        cells = "".join(f"<tr><td>{line[:line.rfind('  ')].strip()}</td>"
                        f"<td style='text-align:right'>{line[line.rfind('  '):].strip()}</td></tr>"
                        for line in str(self).splitlines())
        return f"<table>{cells}</table>"


def estimate(
    cfg: ModelConfig,
    *,
    batch_size: int = 1,
    seq_len: int | None = None,
    dtype: str = "float32",
    fused_attention: bool = True,
) -> Estimate:
    """Estimate parameters, FLOPs per token and memory of ``cfg`` at one batch shape.

    >>> e = estimate(ModelConfig.preset("baby-char"), batch_size=12)
    >>> e.params, e.seq_len
    (804096, 64)
    """
    seq_len = cfg.context_length if seq_len is None else seq_len
    if batch_size < 1 or seq_len < 1:
        raise ConfigError(f"batch_size and seq_len must be at least 1 (got {batch_size}, "
                          f"{seq_len}); pass positive sizes.",
                          fields=("batch_size", "seq_len") if batch_size < 1 else ("seq_len",))
    if seq_len > cfg.context_length:
        raise ConfigError(f"seq_len={seq_len} exceeds the config's context_length="
                          f"{cfg.context_length}; pass a shorter seq_len or raise context_length.",
                          fields=("seq_len", "context_length"))
    if dtype not in DTYPE_BYTES:
        raise ConfigError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPE_BYTES)}.",
                          fields=("dtype",))
    size = DTYPE_BYTES[dtype]
    params = param_count(cfg)
    matmul = matmul_param_count(cfg)
    forward = 2 * matmul + attention_flops_per_token(cfg, seq_len)
    master_copy = 4 if size < 4 else 0
    return Estimate(
        params=params,
        matmul_params=matmul,
        flops_per_token_forward=forward,
        flops_per_token_train=3 * forward,
        batch_size=batch_size,
        seq_len=seq_len,
        dtype=dtype,
        weights_bytes=params * size,
        gradients_bytes=params * size,
        optimizer_bytes=params * (8 + master_copy),
        activations_bytes=activation_bytes(cfg, batch_size, seq_len, size, fused_attention),
        kv_cache_bytes_per_token=kv_cache_bytes_per_token(cfg, size),
    )


# ------------------------------------------------------------------------- parameters
def _linear(n_in: int, n_out: int, bias: bool) -> int:
    return n_in * n_out + (n_out if bias else 0)


def _norm(cfg: ModelConfig, width: int | None = None) -> int:
    return (width or cfg.d_model) * (2 if cfg.norm == "layernorm" and cfg.bias else 1)


def _attention(cfg: ModelConfig) -> int:
    d, q, kv = cfg.d_model, cfg.n_head * cfg.head_dim, cfg.kv_heads * cfg.head_dim
    qk_norms = 0
    if cfg.qk_norm:
        qk_norms = (2 * _norm(cfg, cfg.head_dim) if cfg.qk_norm_per_head
                    else _norm(cfg, q) + _norm(cfg, kv))
    return _linear(d, q + 2 * kv, cfg.attention_bias) + _linear(q, d, cfg.bias) + qk_norms


def _ffn(cfg: ModelConfig) -> int:
    gate = 2 if cfg.activation in GATED_ACTIVATIONS else 1
    return (_linear(cfg.d_model, gate * cfg.ffn_dim, cfg.ffn_bias)
            + _linear(cfg.ffn_dim, cfg.d_model, cfg.ffn_bias))


def _block(cfg: ModelConfig, cross: bool) -> int:
    # cross-attention has the same matrices as self-attention (q, k, v, out), split differently
    norms = (2 if cfg.input_norm else 0) + (2 if cfg.sublayer_norm else 0)
    return (_attention(cfg) + _ffn(cfg) + norms * _norm(cfg)
            + (_attention(cfg) + _norm(cfg) if cross else 0))


def _head(cfg: ModelConfig) -> int:
    d, V = cfg.d_model, cfg.vocab_size
    if not cfg.lm_head:
        return 0
    if cfg.n_labels:
        pooler = _linear(d, d, cfg.bias) if cfg.family == "bert" else 0
        return pooler + _linear(d, cfg.n_labels, cfg.bias)
    output = 0 if cfg.tie_embeddings else V * d
    if cfg.family == "bert":  # dense + norm before the vocabulary projection, and its bias
        return _linear(d, d, cfg.bias) + _norm(cfg) + output + (V if cfg.bias else 0)
    return output


def embedding_param_count(cfg: ModelConfig) -> int:
    """Parameters of the embedding tables (tokens, learned positions, token types)."""
    d = cfg.d_model
    pos = cfg.context_length * d if cfg.pos_encoding == "learned" else 0
    return cfg.vocab_size * d + pos + cfg.type_vocab_size * d


def param_count(cfg: ModelConfig) -> int:
    """Exact number of parameters of ``build_model(cfg)`` (tied weights counted once)."""
    stacks = 1 + (cfg.family == "seq2seq")
    return (embedding_param_count(cfg)
            + cfg.n_layer * _block(cfg, cross=False)
            + cfg.decoder_layers * _block(cfg, cross=True)
            + stacks * _norm(cfg)
            + _head(cfg))


def matmul_param_count(cfg: ModelConfig) -> int:
    """Parameters that take part in matrix multiplies: N of the 6N rule.

    All parameters but the embedding tables, plus the output projection once when it is tied
    to the token embedding (the table is then also a matmul weight).
    """
    tied = cfg.tie_embeddings and cfg.lm_head and not cfg.n_labels
    tied_output = cfg.vocab_size * cfg.d_model if tied else 0
    return param_count(cfg) - embedding_param_count(cfg) + tied_output


# ------------------------------------------------------------------------- compute, memory
def attention_flops_per_token(cfg: ModelConfig, seq_len: int) -> int:
    """Forward FLOPs per token of the score and weighted-value products: 4 d T per layer,
    T capped at each self-attention layer's sliding window."""
    width = cfg.n_head * cfg.head_dim
    causal = cfg.decoder_layers or cfg.n_layer  # seq2seq: only the decoder's is windowed
    spans = sum(min(seq_len, cfg.layer_window(i) or seq_len) for i in range(causal))
    encoder = cfg.n_layer * seq_len if cfg.decoder_layers else 0
    return 4 * width * (spans + encoder + cfg.decoder_layers * seq_len)


def activation_bytes(cfg: ModelConfig, batch_size: int, seq_len: int, dtype_bytes: int,
                     fused_attention: bool = True) -> int:
    """Activation memory of one training step (Korthikanti et al. 2022, eq. 2, see module doc)."""
    s, b, h, a = seq_len, batch_size, cfg.d_model, cfg.n_head
    per_layer_16bit = s * b * h * 34 + (0 if fused_attention else 5 * a * s * s * b)
    layers = cfg.n_layer + cfg.decoder_layers
    logits = 2 * b * s * (cfg.n_labels or cfg.vocab_size) * 4
    return layers * per_layer_16bit * dtype_bytes // 2 + logits


def kv_cache_bytes_per_token(cfg: ModelConfig, dtype_bytes: int = 4) -> int:
    """Bytes of cached keys and values per generated token, over all decoder layers."""
    layers = cfg.n_layer if cfg.family == "gpt" else cfg.decoder_layers
    return 2 * layers * cfg.kv_heads * cfg.head_dim * dtype_bytes


def _count(n: int) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def _bytes(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
