"""Generation options: checked once at the boundary, so the loops can trust them.

Every bad value raises :class:`~llmlab.errors.InputError` naming the option and the fix.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

from llmlab.errors import InputError

OVERFLOW_MODES = ("error", "slide")


@dataclass(frozen=True)
class Options:
    """Every option of :func:`~llmlab.generation.generate`, declared once: its keyword
    arguments are these fields with these defaults (a test checks that the two agree), and
    ``generate``'s docstring says what each does.

    ``Options(...)`` holds the options as given; :func:`resolve` checks them and fills in
    the defaults that depend on others (``temperature`` 1.0, ``do_sample`` from the
    temperature, ``top_k`` 0, ``stop`` a tuple, ``slide_keep`` half the context...).

    >>> Options(max_new_tokens=20).num_beams
    1
    """

    max_new_tokens: int = 100
    temperature: float | None = None
    do_sample: bool | None = None
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    repetition_penalty: float = 1.0
    stop: str | Sequence[str] | None = None
    stop_token_ids: int | Sequence[int] | None = None
    seed: int | Sequence[int] | None = None
    num_beams: int = 1
    length_penalty: float = 1.0
    early_stopping: bool = False
    on_overflow: str | None = None  # None: slide for causal LMs, error for seq2seq
    slide_keep: int | None = None
    stream: bool | str = False
    return_logprobs: bool = False
    top_alternatives: int = 0
    use_cache: bool = True

    @classmethod
    def of(cls, arguments: Mapping[str, object]) -> Options:
        """The options among a call's ``arguments`` (``generate`` passes its ``locals()``)."""
        return cls(**{f.name: arguments[f.name] for f in fields(cls)})

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


def resolve(given: Options, *, model_vocab: int, context_length: int, eos_id: int | None,
            has_tokenizer: bool, batched: bool) -> Options:
    """Check every option of ``given`` and fill in the defaults that depend on others."""
    max_new = _int("max_new_tokens", given.max_new_tokens, low=1, fix="e.g. max_new_tokens=100")
    temp = _temperature(given.temperature)
    beams = _int("num_beams", given.num_beams, low=1,
                 fix="1 samples or decodes greedily, 4 is typical for beam search")
    k, p, mp = _filters(given)
    penalty = _repetition_penalty(given.repetition_penalty)
    sample = _do_sample(given, temp, beams, filters=(k, p, mp))
    stops = _stop_strings(given.stop, has_tokenizer)
    stop_ids = _stop_ids(given.stop_token_ids, eos_id, model_vocab)
    length_penalty = _float("length_penalty", given.length_penalty)
    _check_choices(given)
    keep = _slide_keep(given.slide_keep, context_length)
    _check_streaming(given, beams, stops, batched, has_tokenizer)
    alts = _int("top_alternatives", given.top_alternatives, low=0,
                fix="0 records none, e.g. 5 records the five most likely tokens per step")
    return dataclasses.replace(
        given, max_new_tokens=max_new, do_sample=sample, temperature=temp, top_k=k, top_p=p,
        min_p=mp, repetition_penalty=penalty, stop=stops, stop_token_ids=stop_ids,
        num_beams=beams, length_penalty=length_penalty, slide_keep=keep,
        top_alternatives=min(alts, model_vocab),
    )


def _temperature(temperature: object) -> float:
    if temperature is None:
        return 1.0
    temp = _float("temperature", temperature)
    if temp < 0:
        raise InputError(
            f"temperature={temperature!r} is negative; pass 0 for greedy decoding or a "
            "value > 0 to sample (1.0 = the model's own distribution, lower = more "
            "conservative)."
        )
    return temp


def _filters(given: Options) -> tuple[int, float, float]:
    """top_k, top_p and min_p, checked (None: off)."""
    k = 0 if given.top_k is None else _int(
        "top_k", given.top_k, low=0,
        fix="0 (or None) keeps every token, e.g. top_k=50 keeps the 50 most likely")
    p = 1.0 if given.top_p is None else _float("top_p", given.top_p)
    if not 0.0 < p <= 1.0:
        raise InputError(
            f"top_p={given.top_p!r} is outside (0, 1]; pass e.g. top_p=0.9 to sample from the "
            "smallest set of tokens holding 90% of the probability, or 1.0 to turn it off."
        )
    mp = 0.0 if given.min_p is None else _float("min_p", given.min_p)
    if not 0.0 <= mp < 1.0:
        raise InputError(
            f"min_p={given.min_p!r} is outside [0, 1); pass e.g. min_p=0.05 to drop tokens less "
            "than 5% as likely as the most likely one, or 0 to turn it off."
        )
    return k, p, mp


def _repetition_penalty(value: object) -> float:
    penalty = _float("repetition_penalty", value)
    if penalty <= 0:
        raise InputError(
            f"repetition_penalty={value!r} must be > 0; 1.0 turns it off and "
            "values such as 1.2 make tokens already in the text less likely."
        )
    return penalty


def _do_sample(given: Options, temp: float, beams: int, *,
               filters: tuple[int, float, float]) -> bool:
    """Whether to sample: asked, or decided from the temperature; never with beam search.
    ``filters`` are the checked top_k, top_p and min_p."""
    do_sample, temperature = given.do_sample, given.temperature
    k, p, mp = filters
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
    if beams == 1:
        return sample
    sampling_asked = [name for name, asked in (
        ("do_sample=True", do_sample is True),
        (f"temperature={temperature!r}", temperature not in (None, 0, 0.0)),
        (f"top_k={given.top_k!r}", k > 0), (f"top_p={given.top_p!r}", p < 1.0),
        (f"min_p={given.min_p!r}", mp > 0)) if asked]
    if sampling_asked:
        raise InputError(
            f"num_beams={beams} is beam search, which is deterministic, but "
            f"{', '.join(sampling_asked)} asks for sampling; drop the sampling options "
            "for beam search, or pass num_beams=1 to sample."
        )
    return False


def _check_choices(given: Options) -> None:
    """The flags that must be True or False, and on_overflow."""
    for name in ("early_stopping", "return_logprobs", "use_cache"):
        if not isinstance(getattr(given, name), bool):
            raise InputError(f"{name}={getattr(given, name)!r} must be True or False.")
    if given.on_overflow is not None and given.on_overflow not in OVERFLOW_MODES:
        raise InputError(
            f"on_overflow={given.on_overflow!r} is not one of {OVERFLOW_MODES}: 'error' refuses "
            "to generate past the model's context_length, 'slide' keeps going with the most "
            "recent tokens as context (None, the default: 'slide' for causal LMs, 'error' for "
            "seq2seq models)."
        )


def _slide_keep(slide_keep: object, context_length: int) -> int:
    if slide_keep is None:
        return max(1, context_length // 2)
    keep = _int("slide_keep", slide_keep, low=1,
                fix=f"a number of tokens below the context_length {context_length}")
    if keep >= context_length:
        raise InputError(
            f"slide_keep={slide_keep!r} must be below the model's context_length "
            f"{context_length} so the window has room for new tokens; the default is "
            f"{max(1, context_length // 2)}."
        )
    return keep


def _check_streaming(given: Options, beams: int, stops: tuple[str, ...], batched: bool,
                     has_tokenizer: bool) -> None:
    stream = given.stream
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
