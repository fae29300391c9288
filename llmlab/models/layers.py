"""The pieces every llmlab transformer is made of: norms, positions, attention, feed-forward, block.

Shapes use B = batch, T = query length, S = key length, H = heads, K = key/value heads,
D = head size, C = model width.

>>> import torch; from llmlab import ModelConfig
>>> block = Block(ModelConfig.preset("baby-char"), causal=True)
>>> y, att, _ = block(torch.randn(2, 8, 128), need_weights=True)
>>> y.shape, att.shape
(torch.Size([2, 8, 128]), torch.Size([2, 4, 8, 8]))
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from llmlab.config import GATED_ACTIVATIONS, ModelConfig
from llmlab.models.cache import LayerCache


def make_norm(cfg: ModelConfig, width: int | None = None) -> nn.Module:
    """The config's normalisation layer over the model width (or over ``width``)."""
    width = width or cfg.d_model
    if cfg.norm == "rmsnorm":
        return nn.RMSNorm(width, eps=cfg.norm_eps)
    return nn.LayerNorm(width, eps=cfg.norm_eps, bias=cfg.bias)


def activation_fn(name: str):
    """The element-wise function behind an activation name (SwiGLU's gate uses SiLU)."""
    return {
        "gelu": F.gelu,
        "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
        "relu": F.relu,
        "swiglu": F.silu,
        "geglu": lambda x: F.gelu(x, approximate="tanh"),
    }[name]


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """``F.dropout`` when it does something; otherwise ``x`` itself, without a kernel call
    (generation runs these layers once per token, where every call counts)."""
    return F.dropout(x, p, True) if training and p > 0 else x


def sinusoidal_table(length: int, width: int) -> Tensor:
    """Fixed positional encodings of Vaswani et al. (2017): sin on even, cos on odd columns."""
    # tables are made on the CPU even while a model is built on the meta device (skeletons)
    cpu = torch.device("cpu")
    pos = torch.arange(length, dtype=torch.float32, device=cpu)[:, None]
    freq = torch.exp(torch.arange(0, width, 2, dtype=torch.float32, device=cpu)
                     * (-math.log(10000.0) / width))
    table = torch.zeros(length, width, device=cpu)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table


def rope_frequencies(cfg: ModelConfig) -> Tensor:
    """Angular frequency of each rotated pair ``[rotary_dim / 2]`` (Su et al. 2021), with
    the config's ``rope_scaling``: linear divides every frequency by ``rope_factor``;
    llama3 (Llama 3.1 report, Meta 2024) divides those whose wavelength exceeds
    ``rope_original_context / rope_low_freq_factor``, keeps those below
    ``rope_original_context / rope_high_freq_factor`` and blends linearly in 1/wavelength
    between the two."""
    dim = cfg.rotary_dim
    steps = torch.arange(0, dim, 2, dtype=torch.float32, device=torch.device("cpu"))
    inv_freq = cfg.rope_theta ** (-steps / dim)
    if cfg.rope_scaling == "linear":
        return inv_freq / cfg.rope_factor
    if cfg.rope_scaling == "llama3":
        original = cfg.rope_original_context
        low, high = cfg.rope_low_freq_factor, cfg.rope_high_freq_factor
        wavelength = 2 * math.pi / inv_freq
        blend = ((original / wavelength - low) / (high - low)).clamp(0.0, 1.0)
        return blend * inv_freq + (1 - blend) * inv_freq / cfg.rope_factor
    return inv_freq


def rope_tables(cfg: ModelConfig, length: int) -> tuple[Tensor, Tensor]:
    """cos and signed sin tables ``[length, rotary_dim]`` for rotary embeddings: the sin
    table's first half is negated, so that :func:`apply_rope` rotates with one ``roll``."""
    positions = torch.arange(length, dtype=torch.float32, device=torch.device("cpu"))
    angles = torch.outer(positions, rope_frequencies(cfg))
    return torch.cat([angles, angles], dim=-1).cos(), torch.cat([-angles, angles], dim=-1).sin()


#: RoPE tables as the model hands them to its blocks: one (cos, signed sin) pair, or one per
#: kind of layer ({"full": ..., "local": ...}) where windowed layers have their own base
Rope = tuple[Tensor, Tensor] | dict[str, tuple[Tensor, Tensor]]


def layer_rope(rope: Rope | None, kind: str) -> tuple[Tensor, Tensor] | None:
    """The (cos, signed sin) pair of a layer of ``kind`` ("full" or "local")."""
    return rope[kind] if isinstance(rope, dict) else rope


def across_heads(norm: nn.Module, x: Tensor) -> Tensor:
    """``norm`` over all heads of ``x [B, n, T, D]`` together (its width ``n * D``)."""
    B, n, T, D = x.shape
    return norm(x.transpose(1, 2).reshape(B, T, n * D)).view(B, T, n, D).transpose(1, 2)


def soft_cap(x: Tensor, cap: float) -> Tensor:
    """``cap * tanh(x / cap)``: values squashed smoothly into (-cap, cap) (Gemma 2).

    >>> soft_cap(torch.tensor([0.0, 100.0]), 30.0)
    tensor([ 0.0000, 29.9232])
    """
    return torch.tanh(x / cap) * cap


class SoftCap(nn.Module):
    """:func:`soft_cap` as a module (a capped head for the logit lens)."""

    def __init__(self, cap: float):
        super().__init__()
        self.cap = cap

    def forward(self, x: Tensor) -> Tensor:
        return soft_cap(x, self.cap)


def apply_rope(x: Tensor, cos: Tensor, signed_sin: Tensor) -> Tensor:
    """Rotate pairs (i, i + R/2) of the first R = ``cos.shape[-1]`` dimensions of
    ``x [B, H, T, D]`` by position-dependent angles; the other D - R pass unchanged.

    Pair (a, b) becomes (a cos - b sin, b cos + a sin): ``x * cos + roll(x) * signed_sin``.
    """
    rot = cos.shape[-1]
    if rot < x.shape[-1]:
        return torch.cat([apply_rope(x[..., :rot], cos, signed_sin), x[..., rot:]], dim=-1)
    cos, signed_sin = cos.to(x.dtype), signed_sin.to(x.dtype)
    return torch.addcmul(x * cos, x.roll(rot // 2, dims=-1), signed_sin)


class Attention(nn.Module):
    """Multi-head (or grouped-query) attention, self or cross.

    The fused path calls ``scaled_dot_product_attention``; with ``need_weights`` an explicit
    path computes ``softmax(scale q k^T) v`` (scale 1/sqrt(D) unless the config says
    otherwise) and also returns the weights ``[B, H, T, S]``.
    """

    def __init__(self, cfg: ModelConfig, *, causal: bool, cross: bool = False, layer: int = 0):
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = cfg.n_head, cfg.kv_heads, cfg.head_dim
        self.causal, self.cross, self.dropout = causal, cross, cfg.dropout
        # a window narrows causal self-attention only: an encoder sees its whole input
        self.window = cfg.layer_window(layer) if causal and not cross else None
        self.scale = cfg.score_scale
        self.rope_kind = "local" if self.window and cfg.rope_local_theta else "full"
        self.softcap = None if cross else cfg.attn_softcap
        q_width, kv_width = self.n_head * self.head_dim, self.n_kv_head * self.head_dim
        bias = cfg.attention_bias
        if cross:
            self.q = nn.Linear(cfg.d_model, q_width, bias=bias)
            self.kv = nn.Linear(cfg.d_model, 2 * kv_width, bias=bias)
        else:
            self.qkv = nn.Linear(cfg.d_model, q_width + 2 * kv_width, bias=bias)
        self.qk_norm_per_head = cfg.qk_norm_per_head
        if cfg.qk_norm:  # one head wide, or across every head (OLMo 2)
            per_head = cfg.qk_norm_per_head
            self.q_norm = make_norm(cfg, self.head_dim if per_head else q_width)
            self.k_norm = make_norm(cfg, self.head_dim if per_head else kv_width)
        self.proj = nn.Linear(q_width, cfg.d_model, bias=cfg.bias)
        self.proj.is_residual_output = True

    def forward(
        self,
        x: Tensor,
        *,
        context: Tensor | None = None,
        mask: Tensor | None = None,
        rope: Rope | None = None,
        need_weights: bool = False,
        cache: LayerCache | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """``x [B, T, C]`` -> ``([B, T, C], weights [B, H, T, S] or None)``.

        ``mask [B, 1, T, S]`` is boolean, True where attending is allowed; when it is None a
        causal layer masks the future itself. With a ``cache``, the new keys and values are
        appended to it and the queries attend to everything cached so far.
        """
        B, T, _ = x.shape
        q, k, v = self._project(x, context, cache)
        q, k = self.position(q, k, rope)
        if cache is not None and not self.cross:
            k, v = cache.append(k, v)
        S = k.shape[2]
        mask = self.window_mask(mask, T, S, x.device)
        if self.causal and mask is None and 1 < T < S:  # new queries after cached keys
            mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(S - T)
        is_causal = self.causal and mask is None and T == S
        if need_weights or self.softcap:  # the fused kernel cannot cap the scores
            y, weights = self._explicit(q, k, v, mask, is_causal)
            weights = weights if need_weights else None
        else:
            weights = None
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=is_causal,
                dropout_p=self.dropout if self.training else 0.0,
                enable_gqa=self.n_kv_head != self.n_head, scale=self.scale,
            )
        y = y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim)
        return dropout(self.proj(y), self.dropout, self.training), weights

    def position(self, q: Tensor, k: Tensor, rope: Rope | None) -> tuple[Tensor, Tensor]:
        """Queries and keys ``[B, n, T, D]`` made ready to score: each head normalised
        (``qk_norm``), then rotated by their positions (RoPE). The decode plan calls it too."""
        if hasattr(self, "q_norm"):
            if self.qk_norm_per_head:
                q, k = self.q_norm(q), self.k_norm(k)
            else:
                q, k = across_heads(self.q_norm, q), across_heads(self.k_norm, k)
        rope = layer_rope(rope, self.rope_kind)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        return q, k

    def window_mask(self, mask: Tensor | None, T: int, S: int,
                    device: torch.device) -> Tensor | None:
        """``mask`` narrowed to the sliding window: the last ``T`` of ``S`` positions query,
        and each sees the ``window`` latest keys up to itself. Unchanged without a window,
        or when every key is within it."""
        if self.window is None or S <= self.window:
            return mask
        query = torch.arange(S - T, S, device=device)[:, None]
        key = torch.arange(S, device=device)[None, :]
        band = (key <= query) & (key > query - self.window)
        return band if mask is None else mask & band

    def _project(
        self, x: Tensor, context: Tensor | None, cache: LayerCache | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        # widths from the head counts, not the model width: head pruning shrinks them
        q_width, kv_width = self.n_head * self.head_dim, self.n_kv_head * self.head_dim
        if not self.cross:
            q, k, v = self.qkv(x).split([q_width, kv_width, kv_width], dim=-1)
            return self._heads(q, self.n_head), self._heads(k, self.n_kv_head), self._heads(
                v, self.n_kv_head)
        q = self._heads(self.q(x), self.n_head)  # [B, H, T, D]
        stored = cache.cross_kv() if cache is not None else None
        if stored is not None:  # the encoder's keys and values never change while decoding
            return (q, *stored)
        k, v = self.kv(context).split(kv_width, dim=-1)
        k, v = self._heads(k, self.n_kv_head), self._heads(v, self.n_kv_head)  # [B, K, S, D]
        if cache is not None:
            cache.set_cross_kv(k, v)
        return q, k, v

    def _heads(self, t: Tensor, n: int) -> Tensor:
        """``[B, T, n * D]`` -> ``[B, n, T, D]``."""
        B, T, _ = t.shape
        return t.view(B, T, n, self.head_dim).transpose(1, 2)

    def _explicit(
        self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, is_causal: bool
    ) -> tuple[Tensor, Tensor]:
        groups = self.n_head // self.n_kv_head
        if groups > 1:
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        # one [B, H, T, S] buffer: scale q first, mask in place
        scores = (q * self.scale) @ k.transpose(-2, -1)
        if self.softcap:
            scores = soft_cap(scores, self.softcap)
        if is_causal:
            T, S = scores.shape[-2:]
            mask = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(S - T)
        if mask is not None:
            scores.masked_fill_(~mask, float("-inf"))
        weights = scores.softmax(dim=-1)
        dropped = F.dropout(weights, self.dropout, self.training)
        return dropped @ v, weights


class FeedForward(nn.Module):
    """Position-wise MLP: ``proj(act(fc(x)))``, or ``proj(act(gate) * up)`` when gated
    (SwiGLU: SiLU, GeGLU: tanh-GELU)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gated = cfg.activation in GATED_ACTIVATIONS
        hidden = cfg.ffn_dim
        bias = cfg.ffn_bias
        self.fc = nn.Linear(cfg.d_model, 2 * hidden if self.gated else hidden, bias=bias)
        self.act = activation_fn(cfg.activation)
        self.proj = nn.Linear(hidden, cfg.d_model, bias=bias)
        self.proj.is_residual_output = True
        self.dropout = cfg.dropout

    def forward(self, x: Tensor) -> Tensor:
        return dropout(self.proj(self.activate(self.fc(x))), self.dropout, self.training)

    def activate(self, h: Tensor) -> Tensor:
        """The activation over ``fc``'s output (SwiGLU: ``silu(gate) * up`` of its halves)."""
        if self.gated:
            gate, up = h.chunk(2, dim=-1)
            return self.act(gate) * up
        return self.act(h)


class Block(nn.Module):
    """One transformer layer: self-attention, optional cross-attention, feed-forward.

    Pre-norm: ``x + f(norm(x))`` (GPT-2). Post-norm: ``norm(x + f(x))`` (original Transformer,
    BERT). Parallel residual: ``x + attn(norm1(x)) + ffn(norm2(x))`` (GPT-NeoX). With
    ``sublayer_norm``: ``x + out_norm(f(norm(x)))`` (Gemma 3).
    """

    def __init__(self, cfg: ModelConfig, *, causal: bool, cross: bool = False, layer: int = 0):
        super().__init__()
        self.pre_norm, self.has_cross = cfg.norm_position == "pre", cross
        self.parallel = cfg.parallel_residual
        # OLMo 2 normalises only each sublayer's output (input_norm=False)
        self.attn_norm = make_norm(cfg) if cfg.input_norm else nn.Identity()
        self.attn = Attention(cfg, causal=causal, layer=layer)
        if cross:
            self.cross_norm = make_norm(cfg)
            self.cross_attn = Attention(cfg, causal=False, cross=True)
        self.ffn_norm = make_norm(cfg) if cfg.input_norm else nn.Identity()
        self.ffn = FeedForward(cfg)
        if cfg.sublayer_norm:
            self.attn_out_norm, self.ffn_out_norm = make_norm(cfg), make_norm(cfg)

    def forward(
        self,
        x: Tensor,
        *,
        mask: Tensor | None = None,
        rope: Rope | None = None,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        need_weights: bool = False,
        cache: LayerCache | None = None,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``x [B, T, C]`` -> ``(x, self-attention weights, cross-attention weights)``."""
        out, self_weights = self.attn(self._sublayer_input(x, self.attn_norm), mask=mask,
                                      rope=rope, need_weights=need_weights, cache=cache)
        if hasattr(self, "attn_out_norm"):
            out = self.attn_out_norm(out)
        if self.parallel:
            return x + out + self.ffn(self.ffn_norm(x)), self_weights, None
        x = self._residual(x, out, self.attn_norm)
        cross_weights = None
        if self.has_cross:
            out, cross_weights = self.cross_attn(
                self._sublayer_input(x, self.cross_norm), context=context, mask=context_mask,
                need_weights=need_weights, cache=cache)
            x = self._residual(x, out, self.cross_norm)
        out = self.ffn(self._sublayer_input(x, self.ffn_norm))
        if hasattr(self, "ffn_out_norm"):
            out = self.ffn_out_norm(out)
        return self._residual(x, out, self.ffn_norm), self_weights, cross_weights

    def _sublayer_input(self, x: Tensor, norm: nn.Module) -> Tensor:
        return norm(x) if self.pre_norm else x

    def _residual(self, x: Tensor, out: Tensor, norm: nn.Module) -> Tensor:
        return x + out if self.pre_norm else norm(x + out)
