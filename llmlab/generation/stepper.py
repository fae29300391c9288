"""Running a model one token at a time: the KV cache, the sliding window, beam reordering.

A :class:`Stepper` owns every token of the batch so far (``seq``, left-padded for a GPT
prompt batch) and hands the model only what it has not seen: the prompt once (prefill), then
one token per row per step, with the cache holding the keys and values of the rest.
``use_cache=False`` recomputes the whole window every step instead: the same tokens,
slower; it is the reference the tests compare the cache against.
A cached one-token step of a GPT goes through its :mod:`~llmlab.models.decode` plan (the
same arithmetic without module dispatch) where one applies, and through the model otherwise.

The window: the model sees at most ``context_length`` tokens. With ``on_overflow="slide"``,
when the window is full it restarts from the last ``keep`` tokens, which are fed again in
one forward pass (re-prefill) with fresh positions 0 .. keep-1. Between slides each token
costs one cached step; a slide costs one forward over ``keep`` tokens, so over a long
generation the extra cost is about one ``keep``-token forward every ``context - keep``
tokens (with the default keep = context // 2: about twice the work of the plain cache,
against ``context`` times for recomputing the window at every token).

>>> stepper = Stepper(model, ids, mask, max_new_tokens=20, use_cache=True, keep=None)  # doctest: +SKIP
>>> logits = stepper.prefill(); logits = stepper.step(logits.argmax(-1))              # doctest: +SKIP
"""

from __future__ import annotations

import torch
from torch import Tensor

from llmlab.models.cache import KVCache
from llmlab.models.decode import DecodePlan, decode_plan


class Stepper:
    """Next-token logits ``[B, V]`` for a batch, one step at a time.

    For a GPT, ``ids [B, P]`` is the (left-padded) prompt batch and ``mask`` its padding mask
    or None. For a seq2seq model, ``source``/``source_mask`` are encoded once and ``ids``
    is the decoder's start (``[B, 1]`` of bos). ``keep`` is the sliding window's keep length,
    or None when the window may never slide (the caller checked that everything fits).
    """

    def __init__(self, model: torch.nn.Module, ids: Tensor, mask: Tensor | None, *,
                 max_new_tokens: int, use_cache: bool, keep: int | None,
                 source: Tensor | None = None, source_mask: Tensor | None = None):
        self.model = model
        self.context = model.config.context_length
        self.keep = keep
        B, P = ids.shape
        self.seq = torch.empty(B, P + max_new_tokens, dtype=torch.long, device=ids.device)
        self.seq[:, :P] = ids
        self.mask: Tensor | None = None
        if mask is not None:
            self.mask = torch.ones(B, P + max_new_tokens, dtype=torch.bool, device=ids.device)
            self.mask[:, :P] = mask
        self.length = P  # columns of seq filled
        self.start = 0  # first column inside the model's window
        self.memory: Tensor | None = None
        self.source_mask = source_mask
        if source is not None:
            self.memory, _ = model.encode(source, source_mask)
        self.cache: KVCache | None = None
        if use_cache:
            size = self.context if keep is not None else min(self.context, P + max_new_tokens)
            self.cache = KVCache.for_model(model, B, size)
        self._plans: dict[int, DecodePlan | None] = {}

    @property
    def plan(self) -> DecodePlan | None:
        """The cached one-token step for the current thread count, where one applies; built
        at the first step at that count, so a one-token call builds none."""
        threads = torch.get_num_threads()
        if threads not in self._plans:
            self._plans[threads] = decode_plan(self.model)
        return self._plans[threads]

    # ------------------------------------------------------------------ model calls
    def _run(self, ids: Tensor, mask: Tensor | None, cache: KVCache | None) -> Tensor:
        if self.memory is None:
            out = self.model(ids, attention_mask=mask, cache=cache, logits_to_keep=1).logits
        else:
            out, _ = self.model.decode(ids, self.memory, self.source_mask, mask, cache=cache,
                                       logits_to_keep=1)
        return out[:, -1]

    def _window(self) -> Tensor:
        """Feed the whole window (a prefill, a re-prefill after a slide, or an uncached step)."""
        if self.cache is not None:
            # rewrite the preallocated buffers from the start; a seq2seq cache keeps the
            # encoder's keys and values, which do not change
            self.cache.length = 0
        mask = None if self.mask is None else self.mask[:, self.start:self.length]
        return self._run(self.seq[:, self.start:self.length], mask, self.cache)

    # ------------------------------------------------------------------ public steps
    def prefill(self) -> Tensor:
        """Logits after the prompt (a prompt longer than the window keeps its tail)."""
        if self.keep is not None and self.length > self.context:
            self.start = self.length - self.keep
        return self._window()

    def step(self, tokens: Tensor) -> Tensor:
        """Append ``tokens [B]`` and return the logits that follow them."""
        L = self.length
        self.seq[:, L] = tokens
        self.length = L + 1
        if self.length - self.start > self.context:  # the window is full: slide
            self.start = self.length - self.keep
            return self._window()
        if self.cache is None:
            return self._window()
        mask = None if self.mask is None else self.mask[:, self.start:self.length]
        if self.plan is not None:
            return self.plan.step(self.seq[:, L:L + 1], mask, self.cache)
        return self._run(self.seq[:, L:L + 1], mask, self.cache)

    def reorder(self, rows: Tensor) -> None:
        """Keep batch rows ``rows`` (beam search, or dropping finished rows)."""
        self.seq = self.seq.index_select(0, rows)
        if self.mask is not None:
            self.mask = self.mask.index_select(0, rows)
        if self.memory is not None:
            self.memory = self.memory.index_select(0, rows)
            if self.source_mask is not None:
                self.source_mask = self.source_mask.index_select(0, rows)
        if self.cache is not None:
            self.cache.reorder(rows)
