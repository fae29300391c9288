"""Generation options: checked once at the boundary, so the loops can trust them.

Every bad value raises :class:`~llmlab.errors.InputError` naming the option and the fix.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

from llmlab.errors import InputError

OVERFLOW_MODES = ("error", "slide")


@dataclass(frozen=True)
class Options:
    """The resolved options of one ``generate`` call (see its docstring for each)."""

    max_new_tokens: int
    do_sample: bool
    temperature: float
    top_k: int
    top_p: float
    min_p: float
    repetition_penalty: float
    stop: tuple[str, ...]
    stop_token_ids: tuple[int, ...]
    num_beams: int
    length_penalty: float
    early_stopping: bool
    on_overflow: str | None  # None: slide for causal LMs, error for seq2seq
    slide_keep: int
    stream: bool | str
    return_logprobs: bool
    top_alternatives: int
    use_cache: bool

    @property
    def needs_text_per_step(self) -> bool:
        """Whether each step must decode text (streaming, or stop strings to look for)."""
        return bool(self.stream) or bool(self.stop)

    @property
    def needs_logprobs(self) -> bool:
        return self.return_logprobs or self.top_alternatives > 0

    @property
    def filters(self) -> bool:
        """Whether sampling reshapes the distribution (top-k, top-p, min-p)."""
        return self.top_k > 0 or self.top_p < 1.0 or self.min_p > 0.0


def resolve(  # noqa: PLR0915 - one flat list of checks reads best
    *,
    model_vocab: int,
    context_length: int,
    eos_id: int | None,
    has_tokenizer: bool,
    batched: bool,
    max_new_tokens: object,
    do_sample: object,
    temperature: object,
    top_k: object,
    top_p: object,
    min_p: object,
    repetition_penalty: object,
    stop: object,
    stop_token_ids: object,
    num_beams: object,
    length_penalty: object,
    early_stopping: object,
    on_overflow: object,
    slide_keep: object,
    stream: object,
    return_logprobs: object,
    top_alternatives: object,
    use_cache: object,
) -> Options:
    """Check every option and fill in the defaults that depend on others."""
    max_new = _int("max_new_tokens", max_new_tokens, low=1, fix="e.g. max_new_tokens=100")
    if temperature is None:
        temp = 1.0
    else:
        temp = _float("temperature", temperature)
        if temp < 0:
            raise InputError(
                f"temperature={temperature!r} is negative; pass 0 for greedy decoding or a "
                "value > 0 to sample (1.0 = the model's own distribution, lower = more "
                "conservative)."
            )
    beams = _int("num_beams", num_beams, low=1, fix="1 samples or decodes greedily, 4 is typical"
                 " for beam search")
    k = 0 if top_k is None else _int("top_k", top_k, low=0, fix="0 (or None) keeps every token,"
                                     " e.g. top_k=50 keeps the 50 most likely")
    p = 1.0 if top_p is None else _float("top_p", top_p)
    if not 0.0 < p <= 1.0:
        raise InputError(
            f"top_p={top_p!r} is outside (0, 1]; pass e.g. top_p=0.9 to sample from the "
            "smallest set of tokens holding 90% of the probability, or 1.0 to turn it off."
        )
    mp = 0.0 if min_p is None else _float("min_p", min_p)
    if not 0.0 <= mp < 1.0:
        raise InputError(
            f"min_p={min_p!r} is outside [0, 1); pass e.g. min_p=0.05 to drop tokens less than "
            "5% as likely as the most likely one, or 0 to turn it off."
        )
    penalty = _float("repetition_penalty", repetition_penalty)
    if penalty <= 0:
        raise InputError(
            f"repetition_penalty={repetition_penalty!r} must be > 0; 1.0 turns it off and "
            "values such as 1.2 make tokens already in the text less likely."
        )
    if do_sample is None:
        sample = temp > 0 and beams == 1
    elif isinstance(do_sample, bool):
        sample = do_sample
    else:
        raise InputError(f"do_sample={do_sample!r} must be True, False or None (decide from "
                         "temperature).")
    if sample and temp == 0:
        raise InputError(
            "temperature=0 means greedy decoding but do_sample=True asks for sampling; pass a "
            "temperature > 0 to sample, or do_sample=False (or leave it out) for greedy."
        )
    if beams > 1:
        sampling_asked = [name for name, given in (
            ("do_sample=True", do_sample is True),
            (f"temperature={temperature!r}", temperature not in (None, 0, 0.0)),
            (f"top_k={top_k!r}", k > 0), (f"top_p={top_p!r}", p < 1.0),
            (f"min_p={min_p!r}", mp > 0)) if given]
        if sampling_asked:
            raise InputError(
                f"num_beams={beams} is beam search, which is deterministic, but "
                f"{', '.join(sampling_asked)} asks for sampling; drop the sampling options "
                "for beam search, or pass num_beams=1 to sample."
            )
        sample = False
    stops = _stop_strings(stop, has_tokenizer)
    stop_ids = _stop_ids(stop_token_ids, eos_id, model_vocab)
    lp = _float("length_penalty", length_penalty)
    if not isinstance(early_stopping, bool):
        raise InputError(f"early_stopping={early_stopping!r} must be True or False.")
    if on_overflow is not None and on_overflow not in OVERFLOW_MODES:
        raise InputError(
            f"on_overflow={on_overflow!r} is not one of {OVERFLOW_MODES}: 'error' refuses to "
            "generate past the model's context_length, 'slide' keeps going with the most "
            "recent tokens as context (None, the default: 'slide' for causal LMs, 'error' for "
            "seq2seq models)."
        )
    if slide_keep is None:
        keep = max(1, context_length // 2)
    else:
        keep = _int("slide_keep", slide_keep, low=1,
                    fix=f"a number of tokens below the context_length {context_length}")
        if keep >= context_length:
            raise InputError(
                f"slide_keep={slide_keep!r} must be below the model's context_length "
                f"{context_length} so the window has room for new tokens; the default is "
                f"{max(1, context_length // 2)}."
            )
    if not (stream is True or stream is False or (isinstance(stream, str) and stream == "events")):
        raise InputError(
            f"stream={stream!r} must be False (return the result), True (yield text pieces) or "
            "'events' (yield TokenEvent records with token ids and log-probs)."
        )
    if stream is True and batched:
        raise InputError(
            "stream=True yields plain text and needs a single prompt; for a batch pass "
            "stream='events' (each event names its .row), or loop over the prompts."
        )
    if stream and beams > 1:
        raise InputError(
            "beam search cannot stream: its best sequence is only known at the end. Pass "
            "num_beams=1 to stream, or stream=False."
        )
    if stops and beams > 1:
        raise InputError(
            "stop strings are not supported with beam search; use stop_token_ids, or "
            "num_beams=1."
        )
    if stream and not has_tokenizer:
        raise InputError("streaming text needs a tokenizer; pass the model's tokenizer.")
    if not isinstance(return_logprobs, bool):
        raise InputError(f"return_logprobs={return_logprobs!r} must be True or False.")
    alts = _int("top_alternatives", top_alternatives, low=0,
                fix="0 records none, e.g. 5 records the five most likely tokens per step")
    alts = min(alts, model_vocab)
    if not isinstance(use_cache, bool):
        raise InputError(f"use_cache={use_cache!r} must be True or False.")
    return Options(
        max_new_tokens=max_new, do_sample=sample, temperature=temp, top_k=k, top_p=p, min_p=mp,
        repetition_penalty=penalty, stop=stops, stop_token_ids=stop_ids, num_beams=beams,
        length_penalty=lp, early_stopping=early_stopping, on_overflow=on_overflow,
        slide_keep=keep, stream=stream, return_logprobs=return_logprobs,
        top_alternatives=alts, use_cache=use_cache,
    )


def _int(name: str, value: object, *, low: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name}={value!r} must be an int >= {low} ({fix}).")
    if value < low:
        raise InputError(f"{name}={value!r} must be >= {low} ({fix}).")
    return int(value)


def _float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InputError(f"{name}={value!r} must be a finite number.")
    return float(value)


def _stop_strings(stop: object, has_tokenizer: bool) -> tuple[str, ...]:
    if stop is None:
        return ()
    stops = (stop,) if isinstance(stop, str) else stop
    if not isinstance(stops, Sequence) or not all(isinstance(s, str) and s for s in stops):
        raise InputError(
            f"stop={stop!r} must be a non-empty string or a list of them, e.g. stop='\\n\\n' "
            "or stop=['THE END', '\\n\\n']."
        )
    if stops and not has_tokenizer:
        raise InputError("stop strings are matched on decoded text, which needs a tokenizer; "
                         "pass the tokenizer, or use stop_token_ids.")
    return tuple(dict.fromkeys(stops))


def _stop_ids(stop_token_ids: object, eos_id: int | None, vocab: int) -> tuple[int, ...]:
    if stop_token_ids is None:
        return () if eos_id is None or eos_id >= vocab else (eos_id,)
    ids = (stop_token_ids,) if isinstance(stop_token_ids, numbers.Integral) else stop_token_ids
    if isinstance(ids, bool) or not isinstance(ids, Sequence) or not all(
            isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in ids):
        raise InputError(
            f"stop_token_ids={stop_token_ids!r} must be a token id or a list of them (default: "
            "the tokenizer's eos); pass [] to generate until max_new_tokens."
        )
    bad = [int(i) for i in ids if not 0 <= i < vocab]
    if bad:
        raise InputError(
            f"stop_token_ids holds {bad[0]}, outside the model's vocabulary [0, {vocab}); pass "
            "ids from the model's tokenizer."
        )
    return tuple(dict.fromkeys(int(i) for i in ids))
