"""``score``: how likely a model finds a text: per-token log-probs and perplexity.

>>> s = score(model, tok, "To be, or not to be")      # doctest: +SKIP
>>> s.perplexity, s.to_polars()                        # doctest: +SKIP

The numbers are the training loss's: for a text that fits the context,
``exp(nll) == exp(model(ids[:, :-1], targets=ids[:, 1:]).loss)`` on the same ids.

Texts longer than the context are scored with a strided sliding window: windows of
``context_length`` input tokens start every ``stride`` tokens (default context_length // 2),
and each window scores only the tokens the previous windows did not, so every token is
scored once, with at least ``context_length - stride`` tokens of context once the first
window is passed. A smaller stride gives more context and costs more forwards (about
``n_tokens / stride`` windows of ``context_length`` tokens).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
import torch.nn.functional as F

from llmlab.errors import InputError
from llmlab.generation import prompts
from llmlab.generation.core import inference
from llmlab.generation.results import Score

IGNORE = -100
LOGIT_BUDGET = 2**26  # logits held at once (256 MB of float32): sets the rows per forward


def score(
    model: torch.nn.Module,
    tokenizer: Any,
    text: Any,
    *,
    source: Any = None,
    stride: int | None = None,
    prepend_bos: bool = False,
    batch_size: int | None = None,
) -> Score | list[Score]:
    """Per-token log-probs, mean NLL and perplexity of ``text`` (a str, a list of them, or
    token ids) under ``model``; a list gives a list, computed in padded batches.

    GPT: every token but the first is scored (``prepend_bos=True`` puts the tokenizer's bos
    first so the first token is scored too). Seq2seq: pass the ``source`` text(s); the
    target is scored as training sees it, ``[bos] + target`` predicting ``target + [eos]``.
    ``stride`` sets the sliding window for texts longer than the context (module docstring);
    ``batch_size`` the windows per forward (default: as many as fit 2**26 logits).

    >>> score(model, tok, ["To be", "or not to be"])[1].perplexity   # doctest: +SKIP
    """
    prompts.check_model(model, "score")
    cfg = model.config
    context = cfg.context_length
    seq2seq = model.encoder_decoder
    rows, texts, batched = prompts.encode_prompts(text, tokenizer)
    if seq2seq:
        rows, sources = _seq2seq_rows(rows, tokenizer, source, len(rows), context)
    else:
        if source is not None:
            raise InputError("source= is for seq2seq models; a GPT scores the text alone.")
        if prepend_bos:
            bos = getattr(tokenizer, "bos_id", None)
            if bos is None:
                raise InputError("prepend_bos=True needs a tokenizer with a bos token; pass "
                                 "prepend_bos=False (the first token is then not scored).")
            rows = [[bos, *r] for r in rows]
        sources = None
    prompts.check_ids(rows, cfg.vocab_size)
    for i, r in enumerate(rows):
        if len(r) < 2:
            where = f"text {i}" if batched else "the text"
            raise InputError(
                f"{where} has {len(r)} token(s); scoring needs at least two, since the first "
                "token has no context (or pass prepend_bos=True with a tokenizer that has a "
                "bos token)."
            )
    stride = _stride(stride, context)
    windows = [(i, *w) for i, r in enumerate(rows) for w in _windows(len(r), context, stride)]
    per_row: list[list[float]] = [[] for _ in rows]
    if batch_size is None:
        rows_per_forward = max(1, min(256, LOGIT_BUDGET // (context * cfg.vocab_size)))
    elif isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or (
            batch_size < 1):
        raise InputError(f"batch_size={batch_size!r} must be an int >= 1 (or None: as many "
                         "windows per forward as fit 2**26 logits).")
    else:
        rows_per_forward = int(batch_size)
    device = next(model.parameters()).device
    with inference(model):
        for at in range(0, len(windows), rows_per_forward):
            chunk = windows[at:at + rows_per_forward]
            for (row, *_), values in zip(chunk, _score_windows(model, rows, sources, chunk, device),
                                         strict=True):
                per_row[row].extend(values)
    results = []
    for i, r in enumerate(rows):
        predicted = r[1:]
        nll = -math.fsum(per_row[i]) / len(per_row[i])
        results.append(Score(
            text=texts[i], token_ids=predicted,
            tokens=tokenizer.tokens(predicted) if tokenizer is not None else [],
            logprobs=per_row[i], nll=nll, perplexity=math.exp(nll),
        ))
    return results if batched else results[0]


def _stride(stride: Any, context: int) -> int:
    if stride is None:
        return max(1, context // 2)
    if isinstance(stride, bool) or not isinstance(stride, numbers.Integral) or not (
            1 <= stride <= context):
        raise InputError(
            f"stride={stride!r} must be an int in [1, {context}] (the context_length); "
            f"smaller strides give each token more context and cost more forwards."
        )
    return int(stride)


def _windows(n: int, context: int, stride: int) -> list[tuple[int, int, int]]:
    """``(start, end, first_new)`` windows over a sequence of n ids: inputs ``[start, end)``
    predict ids ``start+1 .. end``; those from ``first_new`` on are scored here."""
    out, begin, first_new = [], 0, 1
    while True:
        end = min(begin + context, n - 1)
        out.append((max(0, end - context), end, first_new))
        if end == n - 1:
            return out
        first_new = end + 1
        begin += stride


def _score_windows(model: torch.nn.Module, rows: list[list[int]], sources: list[list[int]] | None,
                   chunk: list[tuple[int, int, int, int]], device: torch.device,
                   ) -> list[list[float]]:
    """Log-probs of the new targets of each window in ``chunk``, one forward for all."""
    inputs, targets = [], []
    for row, start, end, first_new in chunk:
        ids = rows[row]
        inputs.append(ids[start:end])
        targets.append([ids[p] if p >= first_new else IGNORE for p in range(start + 1, end + 1)])
    # right padding: with causal attention the padded tail changes nothing before it
    x = prompts.right_pad(inputs, 0, device)
    y = prompts.right_pad(targets, IGNORE, device)
    if sources is None:
        logits = model(x).logits
    else:
        src_rows = [sources[row] for row, *_ in chunk]
        src = prompts.right_pad(src_rows, 0, device)
        lengths = torch.tensor([len(s) for s in src_rows], device=device)
        src_mask = torch.arange(src.shape[1], device=device) < lengths[:, None]
        logits = model(src, x, attention_mask=None if bool(src_mask.all()) else src_mask).logits
    logp = -F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), ignore_index=IGNORE,
                            reduction="none").view(y.shape)
    keep = y != IGNORE
    return [logp[i][keep[i]].tolist() for i in range(len(chunk))]


def _seq2seq_rows(targets: list[list[int]], tokenizer: Any, source: Any, n: int, context: int,
                  ) -> tuple[list[list[int]], list[list[int]]]:
    bos, eos = getattr(tokenizer, "bos_id", None), getattr(tokenizer, "eos_id", None)
    if bos is None or eos is None:
        raise InputError(
            "scoring with a seq2seq model needs the tokenizer's bos and eos tokens (the "
            "decoder reads [bos] + target and predicts target + [eos]); pass the tokenizer the"
            " model was trained with."
        )
    if source is None:
        raise InputError("a seq2seq model scores a target given its source; pass source=text "
                         "(or a list of sources, one per target).")
    sources, _, _ = prompts.encode_prompts(source, tokenizer)
    if len(sources) != n:
        raise InputError(f"got {len(sources)} source(s) for {n} target(s); pass one source per "
                         "target.")
    for i, s in enumerate(sources):
        if not s:
            raise InputError(f"source {i} is empty; pass the text the target belongs to.")
        if len(s) > context:
            raise InputError(
                f"source {i} has {len(s)} tokens but the model's context_length is {context};"
                f" shorten it (e.g. keep its first {context} tokens)."
            )
    return [[bos, *t, eos] for t in targets], sources
