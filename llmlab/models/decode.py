"""``DecodePlan``: a GPT's cached one-token step without ``nn.Module`` dispatch.

Generating one token of a small model is a few dozen small matrix-vector products. Around
them the module path spends a large share of each token in Python: about sixty module calls,
hundreds of attribute lookups, per-call input checks. A plan reads every layer's tensors
once and runs the same arithmetic as :class:`~llmlab.models.layers.Block` over them, for a
step whose new tokens are known to be valid (the sampler chose them).

On a CPU with several threads the plan also splits each projection's work between them.
One token's ``x @ W.T`` is a matrix-vector product bound by reading ``W``, and the BLAS runs
it on one core, which reads memory at well under the machine's speed. The plan views the
weight's rows as one block per thread and multiplies them with a single batched matmul,
which the BLAS runs side by side (on the shakespeare-char preset with 2 threads: ~12 GB/s
becomes ~18 GB/s, about 1.3x per token). The blocks are views of the parameters: the plan
copies no weights, and elsewhere (one thread, a GPU) it calls ``F.linear`` as the model does.

The model's ``forward`` stays the reference: the tests check the plan against it for every
architecture option. :func:`decode_plan` returns None where the plan does not apply, and
the caller uses the model: seq2seq models and classifiers, a model in training mode, parts
that are not llmlab's own blocks and norms, or any forward hook (attention capture, head
gates), since hooks must see the module calls. A projection that is not a plain
``nn.Linear`` (``llmlab.compress.quantize``'s layers) is called through its ``forward``.

>>> import torch; from llmlab import ModelConfig, build_model
>>> from llmlab.models.cache import KVCache
>>> model = build_model(ModelConfig.preset("baby-char")).eval()
>>> cache = KVCache.for_model(model, batch_size=1, max_len=16)
>>> with torch.inference_mode():
...     _ = model(torch.zeros(1, 4, dtype=torch.long), cache=cache)
...     logits = decode_plan(model).step(torch.ones(1, 1, dtype=torch.long), None, cache)
>>> logits.shape, cache.length
(torch.Size([1, 65]), 5)
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from llmlab.models.base import Stack, self_attention_mask
from llmlab.models.cache import KVCache
from llmlab.models.gpt import GPT
from llmlab.models.layers import (
    Attention,
    Block,
    FeedForward,
    Rope,
    apply_rope,
    layer_rope,
    soft_cap,
)


def decode_plan(model: nn.Module) -> DecodePlan | None:
    """A plan over ``model``'s parameters as they are now, or None where only the model will
    do. Building one takes views and costs about a millisecond; the generation ``Stepper``
    builds one per call, so a plan never outlives a change of parameters or of the thread
    count (in-place updates it sees anyway: it holds views)."""
    if not _eligible(model):
        return None
    return DecodePlan(model, threads=torch.get_num_threads())


def _eligible(model: nn.Module) -> bool:
    """A GPT in eval mode whose stack computes as llmlab's, with no forward hooks anywhere."""
    # the plan replaces GPT.forward's cached path; a subclass that overrides it keeps it
    if type(model).forward is not GPT.forward or model.config.n_labels or model.training:
        return False
    if nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks:
        return False
    if any(m._forward_hooks or m._forward_pre_hooks for m in model.modules()):
        return False
    stack = model.decoder
    parts = [stack, stack.norm]
    for block in stack.blocks:
        parts += [block, block.attn, block.ffn, block.attn_norm, block.ffn_norm,
                  *(getattr(block, name) for name in ("attn_out_norm", "ffn_out_norm")
                    if hasattr(block, name))]
    return all(_computes_as_replicated(part) for part in parts)


# what the plan replicates, per class: a subclass may change anything else (PrunedAttention
# changes only the attention-weights path, which decoding does not use)
_REPLICATED = {
    Stack: ("forward",), Block: ("forward", "_sublayer_input", "_residual"),
    Attention: ("forward", "_project", "_heads", "position", "window_mask"),
    FeedForward: ("forward",),
    nn.LayerNorm: ("forward",), nn.RMSNorm: ("forward",), nn.Identity: ("forward",),
}


def _computes_as_replicated(module: nn.Module) -> bool:
    for base, methods in _REPLICATED.items():
        if isinstance(module, base):
            return all(getattr(type(module), m) is getattr(base, m) for m in methods)
    return False


def _norm(module: nn.Module) -> Callable[[Tensor], Tensor]:
    if isinstance(module, nn.Identity):  # a block without input norms (OLMo 2)
        return module.forward
    shape = tuple(module.normalized_shape)
    if isinstance(module, nn.RMSNorm):
        return functools.partial(F.rms_norm, normalized_shape=shape, weight=module.weight,
                                 eps=module.eps)
    return functools.partial(F.layer_norm, normalized_shape=shape, weight=module.weight,
                             bias=module.bias, eps=module.eps)


def _projection(module: nn.Module, threads: int) -> Callable[[Tensor], Tensor]:
    """``x [B, in] -> [B, out]`` for one of a block's projections.

    A quantized (or otherwise replaced) layer computes itself: its ``forward`` is called
    directly. A plain ``nn.Linear`` is ``F.linear`` over its parameters, or split into thread
    blocks on a multi-threaded CPU where that measured faster for this weight's shape.
    """
    if type(module) is not nn.Linear:
        return module.forward
    weight = module.weight.detach()
    bias = None if module.bias is None else module.bias.detach()
    linear = functools.partial(F.linear, weight=weight, bias=bias)
    if threads < 2 or weight.device.type != "cpu" or not weight.is_contiguous():
        return linear
    blocks = _ThreadBlocks(weight, bias, threads)
    return blocks if _blocks_win(weight, linear, blocks, threads) else linear


# (weight shape, dtype, threads) -> whether thread blocks beat F.linear on this machine
_BLOCKS_WIN: dict[tuple, bool] = {}


def _blocks_win(weight: Tensor, linear: Callable, blocks: _ThreadBlocks, threads: int) -> bool:
    """Whether the thread blocks beat ``F.linear`` for one row, timed once per shape.

    Which is faster depends on the machine: on one 2-core AMD EPYC guest the blocks read
    weights about 1.3x faster, on a 2-core Intel Xeon guest ``F.linear``, which MKL already
    spreads over the threads, was 2-4x faster than the blocks (see benchmarks/README.md).
    """
    key = (tuple(weight.shape), weight.dtype, threads)
    if key not in _BLOCKS_WIN:
        x = torch.randn(1, weight.shape[1], dtype=weight.dtype)
        _BLOCKS_WIN[key] = _best_time(blocks, x) < _best_time(linear, x)
    return _BLOCKS_WIN[key]


def _best_time(fn: Callable[[Tensor], Tensor], x: Tensor, rounds: int = 3) -> float:
    import time

    fn(x)
    best = float("inf")
    with torch.inference_mode():
        for _ in range(rounds):
            start = time.perf_counter()
            fn(x)
            best = min(best, time.perf_counter() - start)
    return best


class _ThreadBlocks:
    """``F.linear(x, weight, bias)`` as one batched matmul over ``threads`` row blocks.

    ``F.linear`` with a few rows of ``x`` runs on one core, and decoding one token is bound
    by reading the weights, which one core cannot do at the memory's full speed. ``bmm``
    over ``[n, out // n, in]`` views of the weight runs the blocks side by side.
    """

    def __init__(self, weight: Tensor, bias: Tensor | None, threads: int):
        out, n_in = weight.shape
        rows = out // threads
        self.bias = bias
        self.blocks = weight[:threads * rows].view(threads, rows, n_in)
        self.tail = weight[threads * rows:] if out % threads else None  # the last out % n rows

    def __call__(self, x: Tensor) -> Tensor:
        n, _, n_in = self.blocks.shape
        B = x.shape[0]
        # x.t() keeps x's memory: with this layout MKL runs the blocks side by side
        y = torch.bmm(self.blocks, x.t().expand(n, n_in, B)).permute(2, 0, 1).reshape(B, -1)
        if self.tail is not None:
            y = torch.cat([y, F.linear(x, self.tail)], dim=1)
        return y if self.bias is None else y.add_(self.bias)


class _Layer:
    """One block's tensors and its arithmetic for one new token per row (``x [B, C]``)."""

    def __init__(self, block: Block, threads: int):
        attn, ffn = block.attn, block.ffn
        self.pre_norm, self.parallel = block.pre_norm, block.parallel
        # the block's own query/key preparation (qk-norm, RoPE) and sliding-window mask
        self.position, self.window_mask = attn.position, attn.window_mask
        self.joint_rope = not hasattr(attn, "q_norm")  # nothing happens to q, k apart
        self.attn_norm, self.ffn_norm = _norm(block.attn_norm), _norm(block.ffn_norm)
        self.qkv, self.out = _projection(attn.qkv, threads), _projection(attn.proj, threads)
        self.fc, self.down = _projection(ffn.fc, threads), _projection(ffn.proj, threads)
        self.n_head, self.n_kv_head, self.head_dim = attn.n_head, attn.n_kv_head, attn.head_dim
        self.scale = attn.scale
        self.activate = ffn.activate
        self.rope_kind = attn.rope_kind
        self.explicit = attn._explicit if attn.softcap else None  # capped scores: no SDPA
        # Gemma 3's norms of each sublayer's output, where the block has them
        self.attn_out = _norm(block.attn_out_norm) if hasattr(block, "attn_out_norm") else None
        self.ffn_out = _norm(block.ffn_out_norm) if hasattr(block, "ffn_out_norm") else None

    def __call__(self, x: Tensor, index: int, cache: KVCache, mask: Tensor | None,
                 rope: Rope | None) -> Tensor:
        h = self.attn_norm(x) if self.pre_norm else x
        out = self._attend(h, index, cache, mask, layer_rope(rope, self.rope_kind))
        if self.attn_out is not None:
            out = self.attn_out(out)
        if self.parallel:
            return x + out + self.down(self.activate(self.fc(self.ffn_norm(x))))
        x = x + out if self.pre_norm else self.attn_norm(x + out)
        h = self.ffn_norm(x) if self.pre_norm else x
        out = self.down(self.activate(self.fc(h)))
        if self.ffn_out is not None:
            out = self.ffn_out(out)
        return x + out if self.pre_norm else self.ffn_norm(x + out)

    def _attend(self, h: Tensor, index: int, cache: KVCache, mask: Tensor | None,
                rope: tuple[Tensor, Tensor] | None) -> Tensor:
        B = h.shape[0]
        H, K, D = self.n_head, self.n_kv_head, self.head_dim
        qkv = self.qkv(h)
        # one token per row: [B, n * D] is already [B, n, 1, D] in memory
        v = qkv[:, (H + K) * D:].view(B, K, 1, D)
        if self.joint_rope and rope is not None:  # q and k side by side: rotate them at once
            qk = apply_rope(qkv[:, :(H + K) * D].view(B, H + K, 1, D), *rope)
            q, k = qk[:, :H], qk[:, H:]
        else:
            q = qkv[:, :H * D].view(B, H, 1, D)
            k = qkv[:, H * D:(H + K) * D].view(B, K, 1, D)
            q, k = self.position(q, k, rope)
        k, v = cache.append(index, k, v)
        mask = self.window_mask(mask, 1, k.shape[2], h.device)
        if self.explicit is not None:
            y, _ = self.explicit(q, k, v, mask, False)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=K != H,
                                               scale=self.scale)
        return self.out(y.reshape(B, H * D))


class DecodePlan:
    """A GPT's weights, read once, and its one-token step over a filled :class:`KVCache`."""

    def __init__(self, model: nn.Module, *, threads: int):
        stack = model.decoder
        self.layers = [_Layer(block, threads) for block in stack.blocks]
        # the stack's own norm: after the last block (pre-norm), on the embeddings (post-norm)
        self.stack_norm, self.pre_norm = _norm(stack.norm), stack.pre_norm
        self.head = _projection(model.lm_head, threads)
        self.logit_cap = model.config.logit_softcap
        self.model, self.threads = model, threads

    def step(self, ids: Tensor, mask: Tensor | None, cache: KVCache) -> Tensor:
        """Logits ``[B, V]`` after ``ids [B, 1]``, which follow the ``cache.length`` cached
        tokens; ``mask [B, cache.length + 1]`` is the padding mask (None: no padding).
        Appends the new keys and values to ``cache``, as ``model(ids, cache=cache)`` does."""
        model, past = self.model, cache.length
        positions = model._positions(mask, 1, past)
        B = ids.shape[0]
        x = model.embed(ids, positions=positions).view(B, -1)
        if not self.pre_norm:
            x = self.stack_norm(x)
        attn_mask = self_attention_mask(mask, causal=True, T=1)
        rope = model._rope(positions, 1)
        for index, layer in enumerate(self.layers):
            x = layer(x, index, cache, attn_mask, rope)
        cache.advance(1)
        if self.pre_norm:
            x = self.stack_norm(x)
        logits = self.head(x)
        return soft_cap(logits, self.logit_cap) if self.logit_cap else logits
