"""Turning next-token logits into next tokens, for all rows of a batch at once.

Order (as in Hugging Face transformers): repetition penalty, then temperature, top-k,
top-p, min-p; then argmax (greedy) or a draw. Draws use inverse-CDF sampling with one
uniform number per row and step, taken from a table filled up front from a per-row
``torch.Generator``: the draw of row r at step t depends only on r's seed and r's
probabilities, never on the other rows, and the global RNG is never touched. So a row of a
batch samples what its prompt alone samples with the same seed, up to the float rounding that
separates a padded batched forward from a single one (~1e-6), which changes a draw only when
its uniform number falls that close to a boundary between two tokens.

>>> scores = torch.tensor([[2.0, 1.0, 0.0]])
>>> filter_top_k(scores, 2)
tensor([[2., 1., -inf]])
"""

from __future__ import annotations

import torch
from torch import Tensor

from llmlab.generation.options import Options


def uniform_table(seeds: list[int], steps: int, device: torch.device) -> Tensor:
    """``[B, steps]`` uniforms in [0, 1): row r from a generator seeded with ``seeds[r]``."""
    rows = [torch.rand(steps, generator=torch.Generator().manual_seed(s), dtype=torch.float64)
            for s in seeds]
    return torch.stack(rows).to(device)


def seen_tokens(seq: Tensor, mask: Tensor | None, n_vocab: int) -> Tensor:
    """``[B, V]`` flags: which tokens each row of ``seq`` holds (padding, mask 0, excluded)."""
    ids = seq.clamp(max=n_vocab - 1)
    real = torch.ones_like(ids) if mask is None else mask.long()
    counts = torch.zeros(seq.shape[0], n_vocab, dtype=torch.long, device=seq.device)
    return counts.scatter_add_(1, ids, real) > 0


def penalise_repeats(scores: Tensor, seen: Tensor, penalty: float) -> Tensor:
    """CTRL's repetition penalty (Keskar et al. 2019): divide the positive logits of tokens
    already present by ``penalty``, multiply the negative ones by it."""
    penalised = torch.where(scores > 0, scores / penalty, scores * penalty)
    return torch.where(seen, penalised, scores)


def filter_top_k(scores: Tensor, k: int) -> Tensor:
    """Keep the ``k`` highest scores per row (ties at the k-th value are kept too)."""
    if k >= scores.shape[-1]:
        return scores
    kth = scores.topk(k, dim=-1).values[:, -1:]
    return scores.masked_fill(scores < kth, float("-inf"))


def filter_top_p(scores: Tensor, p: float) -> Tensor:
    """Nucleus sampling (Holtzman et al. 2020): keep the most likely tokens whose probability
    mass reaches ``p``; the most likely token is always kept."""
    sorted_scores, order = scores.sort(dim=-1, descending=True)
    probs = sorted_scores.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs
    drop_sorted = mass_before >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return scores.masked_fill(drop, float("-inf"))


def filter_min_p(scores: Tensor, min_p: float) -> Tensor:
    """Keep tokens at least ``min_p`` times as likely as the most likely one (Nguyen et al.
    2024)."""
    probs = scores.softmax(dim=-1)
    threshold = probs.amax(dim=-1, keepdim=True) * min_p
    return scores.masked_fill(probs < threshold, float("-inf"))


def choose(scores: Tensor, opts: Options, uniforms: Tensor | None) -> Tensor:
    """Next token ids ``[B]`` from float scores ``[B, V]`` (penalty already applied)."""
    if not opts.do_sample:
        return scores.argmax(dim=-1)
    if opts.temperature != 1.0:
        scores = scores / opts.temperature
    if opts.top_k > 0:
        scores = filter_top_k(scores, opts.top_k)
    if opts.top_p < 1.0:
        scores = filter_top_p(scores, opts.top_p)
    if opts.min_p > 0.0:
        scores = filter_min_p(scores, opts.min_p)
    return draw(scores.softmax(dim=-1), uniforms)


def draw(probs: Tensor, uniforms: Tensor) -> Tensor:
    """Inverse-CDF sampling: the first token whose cumulative probability exceeds ``u``."""
    cdf = probs.double().cumsum(dim=-1)
    target = (uniforms * cdf[:, -1]).unsqueeze(-1)  # [B, 1]
    picked = torch.searchsorted(cdf, target, right=True).squeeze(-1)
    picked = picked.clamp_(max=probs.shape[-1] - 1)
    # rounding can land on a token of probability 0 at the very end: take the argmax instead
    ok = probs.gather(-1, picked[:, None]).squeeze(-1) > 0
    return torch.where(ok, picked, probs.argmax(dim=-1))
