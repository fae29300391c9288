"""Beam search for GPT and seq2seq models, over a batch of prompts at once.

Each prompt keeps ``K = num_beams`` running beams (rows ``b*K .. b*K+K-1`` of the model's
batch). A step scores every (beam, next token) pair by the beam's summed log-prob, takes the
best ``K * (1 + number of stop tokens)`` pairs per prompt, moves those ending in a stop token
(and ranked among the first K) to the prompt's finished list, and continues the best K
others; the KV cache follows its beams with ``KVCache.reorder``. A finished beam scores
``sum of log-probs / generated_length ** length_penalty`` (the stop token counts). At the
end, beams still running join the finished lists and each prompt returns its best.

>>> generate(model, tok, "ROMEO:", num_beams=4, max_new_tokens=40)   # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from llmlab.generation.results import Generation, alternatives_of
from llmlab.generation.sampling import penalise_repeats, seen_tokens
from llmlab.generation.text import continuation_text
from llmlab.generation.threads import DecodeThreads

if TYPE_CHECKING:  # pragma: no cover
    from llmlab.generation.core import Job

LENGTH, EOS, STOP = 0, 1, 2
REASONS = {LENGTH: "length", EOS: "eos", STOP: "stop"}


def beam_search(job: Job) -> list[Generation]:
    """Best beam per prompt of ``job`` (call inside ``inference(model)``)."""
    return _BeamSearch(job).run()


class _BeamSearch:
    """The state of one beam search: K running beams and K finished ones per prompt."""

    def __init__(self, job: Job):
        self.job, opts, device = job, job.opts, job.device
        self.K, self.N, self.V, self.B = opts.num_beams, opts.max_new_tokens, job.n_vocab, len(
            job.rows)
        K, B = self.K, self.B
        self.stop_ids = torch.tensor(opts.stop_token_ids, dtype=torch.long, device=device)
        self.n_cand = min(K * (1 + max(1, len(opts.stop_token_ids))), K * self.V)
        self.rank = torch.arange(self.n_cand, device=device)
        self.first_row = torch.arange(B, device=device)[:, None] * K  # [B, 1]
        self.scores = torch.full((B, K), float("-inf"), device=device)
        self.scores[:, 0] = 0.0  # all beams start equal: only the first may expand at step 0
        self.running = _History(B * K, self.N, opts.top_alternatives, opts.needs_logprobs,
                                device)
        self.finished = _Finished(B, K, _History(B * K, self.N, opts.top_alternatives,
                                                 opts.needs_logprobs, device))
        self.done = torch.zeros(B, dtype=torch.bool, device=device)

    def run(self) -> list[Generation]:
        job, opts = self.job, self.job.opts
        stepper = job.stepper()
        threads = DecodeThreads(job.model, self.B * self.K)
        with threads.work(timed=False):
            logits = stepper.prefill()
        expand = torch.arange(self.B, device=job.device).repeat_interleave(self.K)
        stepper.reorder(expand)
        logits = logits[expand]
        seen = None
        if opts.repetition_penalty != 1.0:
            seen = seen_tokens(stepper.seq[:, :stepper.length], stepper.mask, self.V)
        for t in range(self.N):
            with threads.work():
                raw = logits[:, :self.V].float()
                scores = raw if seen is None else penalise_repeats(raw, seen,
                                                                   opts.repetition_penalty)
                rows, tokens = self._step(t, raw, scores.log_softmax(dim=-1))
                if bool(self.done.all()) or t == self.N - 1:
                    break
                stepper.reorder(rows)
                if seen is not None:
                    seen = seen[rows].scatter_(1, tokens[:, None], True)
                logits = stepper.step(tokens)
            threads.token_done()
        # beams still running at the end compete with the finished ones
        length = t + 1
        final = torch.where(self.done[:, None], float("-inf"),
                            self.scores / float(length) ** opts.length_penalty)
        self.finished.add(final, self.running.as_candidates(self.B, self.K), length,
                          torch.full_like(final, LENGTH, dtype=torch.long))
        return self.finished.best(job)

    def _step(self, t: int, raw: Tensor, logp: Tensor) -> tuple[Tensor, Tensor]:
        """Extend every beam by every token, keep the best; return the rows the new beams
        continue from and their tokens (both ``[B * K]``)."""
        opts, B, K, V = self.job.opts, self.B, self.K, self.V
        cand = (self.scores.reshape(-1, 1) + logp).view(B, K * V)
        top_scores, top_index = cand.topk(self.n_cand, dim=1)  # sorted, best first
        parent = self.first_row + top_index // V  # [B, n_cand] rows of the model's batch
        token = top_index % V
        model_logp = raw.log_softmax(dim=-1) if opts.needs_logprobs else None
        histories = self.running.extend(parent, token, t, model_logp)
        divisor = float(t + 1) ** opts.length_penalty

        is_stop = (torch.isin(token, self.stop_ids) if len(opts.stop_token_ids)
                   else torch.zeros_like(token, dtype=torch.bool))
        now_done = is_stop & (self.rank < K) & ~self.done[:, None] & top_scores.isfinite()
        if bool(now_done.any()):
            eos = self.job.eos_id if self.job.eos_id is not None else -1
            self.finished.add(torch.where(now_done, top_scores / divisor, float("-inf")),
                              histories, t + 1, torch.where(token == eos, EOS, STOP))

        # the best K candidates that do not stop go on as the beams
        go_on = ~is_stop
        place = go_on.long().cumsum(dim=1) - 1
        order_key = torch.where(go_on & (place < K), self.rank, self.rank + self.n_cand)
        pick = order_key.argsort(dim=1)[:, :K]  # [B, K]
        self.scores = top_scores.gather(1, pick)
        self.running.take(histories, pick)
        if opts.early_stopping:
            self.done |= self.finished.full()
        else:  # no running beam can still beat the worst finished one (HF's heuristic)
            self.done |= self.finished.full() & (
                self.finished.scores[:, -1] >= self.scores[:, 0] / divisor)
        return parent.gather(1, pick).reshape(-1), token.gather(1, pick).reshape(-1)


class _History:
    """Per-row tokens (and log-probs, alternatives) of the running beams, ``[rows, N, ...]``."""

    def __init__(self, rows: int, steps: int, k_alt: int, logprobs: bool, device: torch.device):
        self.t = {"ids": torch.zeros(rows, steps, dtype=torch.long, device=device)}
        if logprobs:
            self.t["lp"] = torch.zeros(rows, steps, device=device)
        if k_alt:
            self.t["alt_ids"] = torch.zeros(rows, steps, k_alt, dtype=torch.long, device=device)
            self.t["alt_lp"] = torch.zeros(rows, steps, k_alt, device=device)
        self.k_alt = k_alt

    def extend(self, parent: Tensor, token: Tensor, t: int, model_logp: Tensor | None,
               ) -> dict[str, Tensor]:
        """Histories ``[B, M, N, ...]`` of candidates: their parent's history plus step t."""
        B, M = parent.shape
        flat = parent.reshape(-1)
        out = {name: h.index_select(0, flat).view(B, M, *h.shape[1:]) for name, h in self.t.items()}
        out["ids"][:, :, t] = token
        if "lp" in out:
            out["lp"][:, :, t] = model_logp[flat, token.reshape(-1)].view(B, M)
        if "alt_ids" in out:
            top = model_logp.topk(self.k_alt, dim=-1)  # [rows, k]
            out["alt_ids"][:, :, t] = top.indices[flat].view(B, M, -1)
            out["alt_lp"][:, :, t] = top.values[flat].view(B, M, -1)
        return out

    def take(self, candidates: dict[str, Tensor], pick: Tensor) -> None:
        """The picked candidates ``[B, K]`` become the running beams."""
        for name, c in candidates.items():
            index = pick.view(*pick.shape, *([1] * (c.dim() - 2))).expand(-1, -1, *c.shape[2:])
            self.t[name] = c.gather(1, index).flatten(0, 1)

    def as_candidates(self, B: int, K: int) -> dict[str, Tensor]:
        return {name: h.view(B, K, *h.shape[1:]) for name, h in self.t.items()}


class _Finished:
    """The best ``K`` finished beams per prompt, sorted best first."""

    def __init__(self, B: int, K: int, empty: _History):
        device = empty.t["ids"].device
        self.K = K
        self.scores = torch.full((B, K), float("-inf"), device=device)
        self.length = torch.zeros(B, K, dtype=torch.long, device=device)
        self.reason = torch.zeros(B, K, dtype=torch.long, device=device)
        self.h = empty.as_candidates(B, K)

    def full(self) -> Tensor:
        """``[B]``: whether a prompt has K finished beams."""
        return self.scores[:, -1].isfinite()

    def add(self, scores: Tensor, candidates: dict[str, Tensor], length: int,
            reason: Tensor) -> None:
        """Merge candidates ``[B, M]`` (score -inf = not a candidate) into the lists."""
        all_scores = torch.cat([self.scores, scores], dim=1)
        top = all_scores.topk(self.K, dim=1)
        self.scores = top.values
        lengths = torch.cat([self.length, torch.full_like(scores, length, dtype=torch.long)], 1)
        self.length = lengths.gather(1, top.indices)
        self.reason = torch.cat([self.reason, reason.expand_as(scores)], 1).gather(1, top.indices)
        for name, h in self.h.items():
            both = torch.cat([h, candidates[name]], dim=1)
            index = top.indices.view(*top.indices.shape, *([1] * (both.dim() - 2)))
            self.h[name] = both.gather(1, index.expand(-1, -1, *both.shape[2:]))

    def best(self, job: Job) -> list[Generation]:
        tok = job.tokenizer
        scores, lengths, reasons = self.scores[:, 0].tolist(), self.length[:, 0].tolist(), \
            self.reason[:, 0].tolist()
        ids = self.h["ids"][:, 0].tolist()
        lps = self.h["lp"][:, 0].tolist() if "lp" in self.h else None
        alt_ids = self.h["alt_ids"][:, 0].tolist() if "alt_ids" in self.h else None
        alt_lp = self.h["alt_lp"][:, 0].tolist() if "alt_lp" in self.h else None
        results = []
        for b in range(len(scores)):
            n, reason = lengths[b], REASONS[reasons[b]]
            row = ids[b][:n]
            kept = row if reason == "length" else row[:-1]
            alternatives = None
            if alt_ids is not None:
                alternatives = [alternatives_of(tok, alt_ids[b][t], alt_lp[b][t])
                                for t in range(n)]
            results.append(Generation(
                text=continuation_text(tok, job.context(b), kept), prompt=job.texts[b],
                token_ids=row, tokens=tok.tokens(row) if tok is not None else [],
                finish_reason=reason,
                logprobs=lps[b][:n] if lps is not None and job.opts.return_logprobs else None,
                alternatives=alternatives, score=scores[b],
            ))
        return results

