"""``generate``: KV-cached greedy decoding, sampling and beam search, batched and streamed.

>>> out = generate(model, tok, "ROMEO:", max_new_tokens=200, temperature=0.8, top_p=0.95,
...                seed=0)                                                  # doctest: +SKIP
>>> for piece in generate(model, tok, "ROMEO:", stream=True): print(piece, end="")  # doctest: +SKIP

One forward pass per step serves the whole batch; choosing tokens, recording log-probs and
finding stop tokens are tensor operations over all rows. Python looks at single rows only
to decode text, when text is needed while generating (streaming or stop strings).
"""

from __future__ import annotations

import contextlib
import dataclasses
import numbers
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from llmlab.errors import InputError
from llmlab.generation import prompts
from llmlab.generation.options import Options, resolve
from llmlab.generation.results import Generation, GenerationStream, TokenEvent, alternatives_of
from llmlab.generation.sampling import choose, penalise_repeats, seen_tokens, uniform_table
from llmlab.generation.stepper import Stepper
from llmlab.generation.text import RowText, continuation_text
from llmlab.generation.threads import DecodeThreads


def generate(
    model: torch.nn.Module,
    tokenizer: Any,
    prompt: Any,
    *,
    max_new_tokens: int = 100,
    temperature: float | None = None,
    do_sample: bool | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    repetition_penalty: float = 1.0,
    stop: str | Sequence[str] | None = None,
    stop_token_ids: int | Sequence[int] | None = None,
    seed: int | Sequence[int] | None = None,
    num_beams: int = 1,
    length_penalty: float = 1.0,
    early_stopping: bool = False,
    on_overflow: str | None = None,
    slide_keep: int | None = None,
    stream: bool | str = False,
    return_logprobs: bool = False,
    top_alternatives: int = 0,
    use_cache: bool = True,
) -> Generation | list[Generation] | GenerationStream:
    """Continue ``prompt`` with a GPT model (or translate it with a seq2seq model).

    ``prompt`` is text, a list of texts (a batch: left-padded, one forward per step for all,
    each row's result equal to generating it alone), or token ids (a list of ints, a list of
    lists, a tensor; the tokenizer may then be None and the text fields stay empty). An
    empty GPT prompt starts from the tokenizer's bos token. For seq2seq the prompt is the
    source; the decoder starts from the tokenizer's bos token.

    Decoding: ``temperature`` (default 1.0; 0 = greedy) or ``do_sample=False`` for greedy;
    sampling filters ``top_k`` (0/None = off), ``top_p`` (1.0 = off), ``min_p`` (0 = off);
    ``repetition_penalty`` (CTRL's; 1.0 = off). ``num_beams > 1`` is beam search (GPT and
    seq2seq), scoring a finished beam by its log-prob over ``length ** length_penalty``;
    ``early_stopping=True`` stops a prompt as soon as ``num_beams`` beams finished, False
    when no running beam can still beat the finished ones (Hugging Face's heuristic).

    Stopping: ``stop_token_ids`` (default: the tokenizer's eos; ``[]`` = none),
    ``stop`` strings (found in the decoded text, which is cut before them),
    ``max_new_tokens``. ``seed`` seeds sampling (row i of a batch uses ``seed + i``, or pass
    one seed per row; without a seed one is drawn and reported in ``Generation.seed``):
    a batch row samples what its prompt alone samples with the same seed (see
    :mod:`llmlab.generation.sampling`); the global RNG is never used.

    The model's ``context_length`` bounds prompt + new tokens: ``on_overflow="slide"`` (the
    default for causal LMs, as nanoGPT's sampler does) keeps generating from the last
    ``slide_keep`` tokens (default context_length // 2) each time the window fills,
    re-reading them in one forward pass (see :mod:`llmlab.generation.stepper` for the cost);
    ``"error"`` (the default for seq2seq models, whose source would be cut) refuses a
    request that does not fit.

    Returns a :class:`Generation` (a list for a batch). ``stream=True`` returns an iterator
    of text pieces instead, ``stream="events"`` one of :class:`TokenEvent` (token id, text,
    log-prob, alternatives; for batches too); the iterator's ``.result`` holds the
    Generation(s) once it is exhausted. ``return_logprobs`` / ``top_alternatives=k`` record
    each token's log-prob and the k most likely tokens. ``use_cache=False`` recomputes the
    whole window every step (same tokens, slower; for checking and benchmarking).

    >>> generate(model, tok, ["ROMEO:", "JULIET:"], temperature=0, max_new_tokens=50)  # doctest: +SKIP
    """
    given = Options.of(locals())  # the keyword arguments above are Options' fields
    prompts.check_model(model, "generate")
    job = _prepare(model, tokenizer, prompt, given)
    if job.opts.num_beams > 1:
        from llmlab.generation.beam import beam_search

        with inference(model):
            results = beam_search(job)
        return results if job.batched else results[0]
    run = SampleRun(job)
    if not job.opts.stream:
        for _ in run.steps():
            pass
        return run.result()
    items = run.events() if job.opts.stream == "events" else run.pieces()
    return GenerationStream(items, run.result, run.stopped)


# --------------------------------------------------------------------------- preparation
@dataclass
class Job:
    """A checked ``generate`` call."""

    model: torch.nn.Module
    tokenizer: Any
    opts: Options
    rows: list[list[int]]  # prompt ids (GPT) or source ids (seq2seq), per row
    texts: list[str]
    batched: bool
    seq2seq: bool
    n_vocab: int  # logits beyond this are ids the tokenizer cannot decode: never chosen
    keep: int | None  # sliding window keep length, None when everything fits
    seeds: list[int] | None
    bos_id: int | None
    eos_id: int | None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def stepper(self) -> Stepper:
        opts, device = self.opts, self.device
        if self.seq2seq:
            source = prompts.right_pad(self.rows, 0, device)
            lengths = torch.tensor([len(r) for r in self.rows], device=device)
            source_mask = torch.arange(source.shape[1], device=device) < lengths[:, None]
            start = torch.full((len(self.rows), 1), self.bos_id, dtype=torch.long, device=device)
            return Stepper(self.model, start, None, max_new_tokens=opts.max_new_tokens,
                           use_cache=opts.use_cache, keep=self.keep, source=source,
                           source_mask=None if bool(source_mask.all()) else source_mask)
        pad = getattr(self.tokenizer, "pad_id", None)
        ids, mask = prompts.left_pad(self.rows, pad if pad is not None else 0, device)
        return Stepper(self.model, ids, mask, max_new_tokens=opts.max_new_tokens,
                       use_cache=opts.use_cache, keep=self.keep)

    def context(self, row: int) -> list[int]:
        """Tokens the generated text follows (for decoding it in context)."""
        return [self.bos_id] if self.seq2seq else self.rows[row]

    def finish_reason(self, token_id: int) -> str:
        return "eos" if token_id == self.eos_id else "stop"


def _prepare(model: torch.nn.Module, tokenizer: Any, prompt: Any, given: Options) -> Job:
    cfg = model.config
    seq2seq = model.encoder_decoder
    rows, texts, batched = prompts.encode_prompts(prompt, tokenizer)
    rows = prompts.fill_empty(rows, tokenizer, source=seq2seq)
    prompts.check_ids(rows, cfg.vocab_size)
    eos = getattr(tokenizer, "eos_id", None)
    opts = resolve(given, model_vocab=cfg.vocab_size, context_length=cfg.context_length,
                   eos_id=eos, has_tokenizer=tokenizer is not None, batched=batched)
    bos = getattr(tokenizer, "bos_id", None)
    if seq2seq and bos is None:
        raise InputError(
            "a seq2seq model's decoder starts from the tokenizer's bos token, and this "
            "tokenizer has none; pass the tokenizer the model was trained with (Seq2SeqData "
            "needs '<bos>' too)."
        )
    rows, keep = _fit_context(rows, opts, cfg.context_length, seq2seq, batched)
    n_vocab = cfg.vocab_size
    if tokenizer is not None:
        n_vocab = min(n_vocab, tokenizer.vocab_size)
        opts = dataclasses.replace(opts, top_alternatives=min(opts.top_alternatives, n_vocab))
    return Job(model=model, tokenizer=tokenizer, opts=opts, rows=rows, texts=texts,
               batched=batched, seq2seq=seq2seq, n_vocab=n_vocab, keep=keep,
               seeds=_seeds(opts.seed, len(rows), opts.do_sample), bos_id=bos, eos_id=eos)


def _fit_context(rows: list[list[int]], opts: Options, context: int, seq2seq: bool,
                 batched: bool) -> tuple[list[list[int]], int | None]:
    """Check the request against the context; with "slide", the window's keep length.

    The model reads every token but the last new one, so a request fits when
    ``prompt + max_new_tokens - 1 <= context_length``.
    """
    mode = opts.on_overflow or ("error" if seq2seq else "slide")
    new, slide, keep = opts.max_new_tokens, mode == "slide", opts.slide_keep
    longest = max(len(r) for r in rows)
    what = "the longest prompt of the batch" if batched else "the prompt"
    fix_slide = (f"or pass on_overflow='slide' to keep generating with the last {keep} tokens "
                 "as context each time the window fills")
    if seq2seq:
        if longest > context:
            if not slide:
                raise InputError(
                    f"{what} (the source) has {longest} tokens but the model's context_length "
                    f"is {context}; shorten it, or pass on_overflow='slide' to keep its last "
                    f"{context} tokens."
                )
            rows = [r[-context:] for r in rows]
        if new <= context:  # the decoder reads its start token and new - 1 generated ones
            return rows, None
        if not slide:
            raise InputError(
                f"max_new_tokens={new} needs the decoder to read {new} tokens (its start token "
                f"and all new ones but the last) but the model's context_length is {context}; "
                f"pass max_new_tokens={context} or less, {fix_slide}."
            )
        return rows, keep
    if longest + new - 1 <= context:
        return rows, None
    if slide:
        return rows, keep
    if longest > context:
        raise InputError(
            f"{what} has {longest} tokens but the model's context_length is {context}; "
            f"shorten it to at most {context} tokens (keep its end, e.g. ids[-{context}:]), or "
            f"pass on_overflow='slide' to keep its last {keep} tokens and go on from there."
        )
    raise InputError(
        f"{what} has {longest} tokens and max_new_tokens={new}: the model would have to read "
        f"{longest + new - 1} tokens (all but the last new one), more than its context_length "
        f"{context}. Pass max_new_tokens={context - longest + 1} or less, shorten the prompt, "
        f"{fix_slide}."
    )


def _seeds(seed: Any, n: int, do_sample: bool) -> list[int] | None:
    def is_int(v: object) -> bool:
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    if seed is None:
        return [secrets.randbits(62) + i for i in range(n)] if do_sample else None
    if is_int(seed):
        seeds = [int(seed) + i for i in range(n)]
    elif isinstance(seed, Sequence) and len(seed) == n and all(is_int(s) for s in seed):
        seeds = [int(s) for s in seed]
    else:
        raise InputError(
            f"seed={seed!r} must be an int (row i of a batch then uses seed + i) or one int "
            f"per prompt ({n} here)."
        )
    return seeds if do_sample else None


@contextlib.contextmanager
def inference(model: torch.nn.Module) -> Iterator[None]:
    """No autograd, and the model in eval mode (dropout off) while inside."""
    was_training = model.training
    if was_training:
        model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        if was_training:
            model.train()


# --------------------------------------------------------------------------- sampling loop
class SampleRun:
    """Greedy decoding or sampling for a batch, one step per iteration of :meth:`steps`.

    Rows that finish stop counting at once; when at most half of the rows still run, the
    finished ones are dropped from the batch (one copy of the cache), so stragglers do not
    pay for them.
    """

    def __init__(self, job: Job):
        self.job = job
        opts = self.opts = job.opts
        B, N = len(job.rows), opts.max_new_tokens
        self.n_rows = B
        device = job.device
        self.out = torch.zeros(B, N, dtype=torch.long, device=device)
        self.lp = torch.zeros(B, N, device=device) if opts.return_logprobs else None
        k = opts.top_alternatives
        self.alt_ids = torch.zeros(B, N, k, dtype=torch.long, device=device) if k else None
        self.alt_lp = torch.zeros(B, N, k, device=device) if k else None
        self.stop_ids = torch.tensor(opts.stop_token_ids, dtype=torch.long, device=device)
        self.length = [N] * B  # tokens generated per row (set when a row finishes)
        self.reason: list[str | None] = [None] * B
        self.texts = ([RowText(job.tokenizer, job.context(r), opts.stop) for r in range(B)]
                      if opts.needs_text_per_step else None)
        self.rows = list(range(B))  # batch index -> original row (changes when compacting)
        self.alive = [True] * B  # per batch index
        self.done_steps = 0  # steps whose tokens were recorded and handed out

    # ------------------------------------------------------------------ the loop
    def steps(self) -> Iterator[list[TokenEvent]]:
        """Generate; each iteration is one step and yields that step's events (only built
        when streaming)."""
        job, opts = self.job, self.opts
        threads = DecodeThreads(job.model, len(job.rows))
        with inference(job.model), threads.work(timed=False):
            stepper = job.stepper()
            logits = stepper.prefill()
            seen = None
            if opts.repetition_penalty != 1.0:
                seen = seen_tokens(stepper.seq[:, :stepper.length], stepper.mask,
                                   job.n_vocab)
            uniforms = None
            if opts.do_sample:
                uniforms = uniform_table(job.seeds, opts.max_new_tokens, job.device)
        rows_t = None  # the rows as a tensor, once the batch was compacted
        for t in range(opts.max_new_tokens):
            with inference(job.model), threads.work():
                raw = logits[:, :job.n_vocab].float()
                scores = raw if seen is None else penalise_repeats(raw, seen, opts.repetition_penalty)
                u = None
                if uniforms is not None:
                    u = uniforms[:, t] if rows_t is None else uniforms[rows_t, t]
                tokens = choose(scores, opts, u)
                self._record(t, tokens, raw, rows_t)
                if seen is not None:
                    seen.scatter_(1, tokens[:, None], True)
                hits = None
                if len(opts.stop_token_ids):
                    hits = torch.isin(tokens, self.stop_ids)
            events = self._finish_rows(t, tokens, hits)
            self.done_steps = t + 1
            yield events
            n_alive = sum(self.alive)
            if n_alive == 0 or t == opts.max_new_tokens - 1:
                return
            with inference(job.model), threads.work():
                if n_alive <= len(self.rows) // 2:  # drop finished rows from the batch
                    keep = [i for i, a in enumerate(self.alive) if a]
                    index = torch.tensor(keep, device=tokens.device)
                    stepper.reorder(index)
                    tokens = tokens[index]
                    seen = None if seen is None else seen[index]
                    self.rows = [self.rows[i] for i in keep]
                    self.alive = [True] * len(keep)
                    rows_t = torch.tensor(self.rows, device=tokens.device)
                logits = stepper.step(tokens)
            threads.token_done()

    def _record(self, t: int, tokens: Tensor, raw: Tensor, rows_t: Tensor | None) -> None:
        where = slice(None) if rows_t is None else rows_t
        self.out[where, t] = tokens
        if self.opts.needs_logprobs:
            logp = raw.log_softmax(dim=-1)
            if self.lp is not None:
                self.lp[where, t] = logp.gather(1, tokens[:, None]).squeeze(1)
            if self.alt_ids is not None:
                top = logp.topk(self.opts.top_alternatives, dim=-1)
                self.alt_ids[where, t] = top.indices
                self.alt_lp[where, t] = top.values

    def _finish_rows(self, t: int, tokens: Tensor, hits: Tensor | None) -> list[TokenEvent]:
        """Mark rows that finished at step t; decode text and build events when needed."""
        job, opts = self.job, self.opts
        last = t == opts.max_new_tokens - 1
        hit_rows: set[int] = set()
        if hits is not None and bool(hits.any()):
            hit_rows = set(hits.nonzero().flatten().tolist())
        if self.texts is None and not hit_rows and not last:
            return []
        ids = tokens.tolist()
        events = []
        for i, row in enumerate(self.rows):
            if not self.alive[i]:
                continue
            hit = i in hit_rows
            reason = job.finish_reason(ids[i]) if hit else None
            piece = ""
            text = self.texts[row] if self.texts is not None else None
            if text is not None and not hit:  # a stop token is not part of the text
                piece = text.push(ids[i])
                if text.stopped:
                    reason = "stop"
            if reason is None and last:
                reason = "length"
            if text is not None and reason is not None:
                piece += text.finish()
            if reason is not None:
                self.alive[i] = False
                self.reason[row], self.length[row] = reason, t + 1
            if opts.stream == "events":
                events.append(self._event(row, t, ids[i], piece, reason))
            elif opts.stream and piece:
                events.append(piece)  # type: ignore[arg-type]  # stream=True: plain text
        return events

    def _event(self, row: int, t: int, token_id: int, piece: str, reason: str | None,
               ) -> TokenEvent:
        tok = self.job.tokenizer
        logprob = float(self.lp[row, t]) if self.lp is not None else None
        alternatives = None
        if self.alt_ids is not None:
            alternatives = alternatives_of(tok, self.alt_ids[row, t].tolist(),
                                         self.alt_lp[row, t].tolist())
        return TokenEvent(row=row, index=t, token_id=token_id, token=tok.id_to_token(token_id),
                          text=piece, logprob=logprob, alternatives=alternatives,
                          finish_reason=reason)

    # ------------------------------------------------------------------ outputs
    def pieces(self) -> Iterator[str]:
        for step in self.steps():
            yield from step  # type: ignore[misc]

    def events(self) -> Iterator[TokenEvent]:
        for step in self.steps():
            yield from step

    def stopped(self) -> Generation | list[Generation]:
        """The result after the caller stopped early: running rows end "stopped"."""
        for i, row in enumerate(self.rows):
            if self.alive[i]:
                self.alive[i] = False
                self.reason[row], self.length[row] = "stopped", self.done_steps
                if self.texts is not None:
                    self.texts[row].finish()
        return self.result()

    def result(self) -> Generation | list[Generation]:
        job, tok = self.job, self.job.tokenizer
        out = self.out.tolist()
        lps = self.lp.tolist() if self.lp is not None else None
        alt_ids = self.alt_ids.tolist() if self.alt_ids is not None else None
        alt_lp = self.alt_lp.tolist() if self.alt_lp is not None else None
        results = []
        for r in range(self.n_rows):
            n, reason = self.length[r], self.reason[r] or "length"
            ids = out[r][:n]
            if self.texts is not None:
                text = self.texts[r].text
            else:
                ended_by_token = reason in ("eos", "stop")  # its last token is not text
                text = continuation_text(tok, job.context(r), ids[:-1] if ended_by_token else ids)
            results.append(Generation(
                text=text, prompt=job.texts[r], token_ids=ids,
                tokens=tok.tokens(ids) if tok is not None else [],
                finish_reason=reason,
                logprobs=lps[r][:n] if lps is not None else None,
                alternatives=([alternatives_of(tok, alt_ids[r][t], alt_lp[r][t]) for t in range(n)]
                              if alt_ids is not None else None),
                seed=job.seeds[r] if job.seeds is not None else None,
            ))
        return results if job.batched else results[0]

