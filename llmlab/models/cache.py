"""``KVCache``: keys and values of past tokens, so generation computes each token once.

Self-attention layers append the keys and values of new tokens into preallocated buffers;
cross-attention layers (seq2seq) compute the encoder's keys and values once and keep them.

>>> import torch; from llmlab import ModelConfig, build_model
>>> model = build_model(ModelConfig.preset("baby-char")).eval()
>>> cache = KVCache.for_model(model, batch_size=1, max_len=16)
>>> _ = model(torch.zeros(1, 4, dtype=torch.long), cache=cache)
>>> cache.length
4
"""

from __future__ import annotations

import torch
from torch import Tensor


class KVCache:
    """Per-layer key/value buffers ``[B, K, max_len, D]`` plus the number of cached tokens."""

    def __init__(self, n_layer: int, batch_size: int, n_kv_head: int, head_dim: int,
                 max_len: int, *, dtype: torch.dtype, device: torch.device | str):
        shape = (batch_size, n_kv_head, max_len, head_dim)
        # nothing past ``length`` is ever read, so the buffers need no initialisation
        self.keys = [torch.empty(shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.values = [torch.empty(shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.cross: list[tuple[Tensor, Tensor] | None] = [None] * n_layer
        self.max_len = max_len
        self.length = 0

    @classmethod
    def for_model(cls, model: torch.nn.Module, batch_size: int, max_len: int | None = None,
                  ) -> KVCache:
        """A cache sized for ``model``'s decoder (its context length by default)."""
        cfg = model.config
        param = next(model.parameters())
        layers = cfg.decoder_layers or cfg.n_layer
        return cls(layers, batch_size, cfg.kv_heads, cfg.head_dim,
                   max_len or cfg.context_length, dtype=param.dtype, device=param.device)

    def layer(self, index: int) -> LayerCache:
        """The view one layer's attention reads and writes."""
        return LayerCache(self, index)

    def append(self, index: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store layer ``index``'s keys/values ``[B, K, T, D]`` for the tokens after the
        ``length`` cached ones; return all of that layer's cached ones up to and with them."""
        start = self.length
        end = start + k.shape[2]
        keys, values = self.keys[index], self.values[index]
        keys[:, :, start:end] = k
        values[:, :, start:end] = v
        return keys[:, :, :end], values[:, :, :end]

    def advance(self, n_tokens: int) -> None:
        """Count ``n_tokens`` more tokens as cached (the model calls this after a forward)."""
        self.length += n_tokens

    def reorder(self, rows: Tensor) -> None:
        """Keep batch rows ``rows`` (beam search): row i becomes old row ``rows[i]``.

        Only the ``length`` cached positions are copied, in place when the batch size stays.
        """
        for buffers in (self.keys, self.values):
            for i, buf in enumerate(buffers):
                kept = buf[:, :, :self.length].index_select(0, rows)
                if len(rows) != buf.shape[0]:
                    buffers[i] = buf = buf.new_empty(len(rows), *buf.shape[1:])
                buf[:, :, :self.length] = kept
        self.cross = [None if kv is None else (kv[0].index_select(0, rows),
                                               kv[1].index_select(0, rows)) for kv in self.cross]


class LayerCache:
    """One layer's slice of a :class:`KVCache`."""

    def __init__(self, cache: KVCache, index: int):
        self.cache, self.index = cache, index

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store new keys/values ``[B, K, T, D]``; return all cached ones up to and with them."""
        if self.cache.length == 0 and k.shape[1] != self.cache.keys[self.index].shape[1]:
            self._resize_heads(k.shape[1])  # a layer with fewer heads (llmlab.compress.prune)
        return self.cache.append(self.index, k, v)

    def _resize_heads(self, n_kv_head: int) -> None:
        """Size this layer's empty buffers for ``n_kv_head`` key/value heads."""
        for buffers in (self.cache.keys, self.cache.values):
            B, _, L, D = buffers[self.index].shape
            buffers[self.index] = buffers[self.index].new_empty(B, n_kv_head, L, D)

    def cross_kv(self) -> tuple[Tensor, Tensor] | None:
        return self.cache.cross[self.index]

    def set_cross_kv(self, k: Tensor, v: Tensor) -> None:
        self.cache.cross[self.index] = (k, v)
