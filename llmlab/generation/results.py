"""What generation and scoring return: plain dataclasses, easy to print, compare and tabulate.

>>> g = Generation(text=" world", prompt="hello", token_ids=[1], tokens=[" world"],
...                finish_reason="length")
>>> g.full_text
'hello world'
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # pragma: no cover
    import polars


class Alternative(NamedTuple):
    """One of the most likely tokens at a position: its display string, id and log-prob."""

    token: str
    token_id: int
    logprob: float


@dataclass
class Generation:
    """One generated continuation.

    ``text`` is the new text only (``full_text`` adds the prompt); it excludes a stop token
    and is cut before a stop string. ``token_ids``/``tokens`` are every generated token,
    the stop token (eos) included, so they can hold a little more than ``text`` shows.
    ``logprobs[i]`` is the log-probability of ``token_ids[i]`` under the model's own
    distribution (before temperature, filters and penalties) and ``alternatives[i]`` the
    ``top_alternatives`` most likely tokens there; both are None unless asked for.
    ``finish_reason`` is "length" (max_new_tokens reached), "eos" (the tokenizer's eos),
    "stop" (another stop token id or a stop string) or "stopped" (the stream was closed: the
    Generation holds what was produced until then). ``seed`` is the seed this row was sampled
    with (None for greedy and beam search): pass it back to reproduce the row alone.
    ``score`` is the beam's length-normalised log-prob (beam search only).
    """

    text: str
    prompt: str
    token_ids: list[int]
    tokens: list[str]
    finish_reason: str
    logprobs: list[float] | None = None
    alternatives: list[list[Alternative]] | None = None
    seed: int | None = None
    score: float | None = None

    @property
    def full_text(self) -> str:
        """The prompt followed by the generated text."""
        return self.prompt + self.text

    def __str__(self) -> str:
        return self.text

    def to_polars(self) -> polars.DataFrame:
        """One row per generated token: position, token, token_id, logprob (if recorded)."""
        return _table(self.token_ids, self.tokens, self.logprobs)


@dataclass(frozen=True)
class TokenEvent:
    """One generated token, as ``generate(..., stream="events")`` yields it.

    ``text`` is the text this token completes (it can be "" while a multi-byte character or a
    possible stop string is still open, and can hold text of earlier tokens once it closes);
    a row's ``text`` pieces add up to its :attr:`Generation.text`. ``row`` is the prompt's
    index in a batch. The row's last event carries its ``finish_reason``.
    """

    row: int
    index: int
    token_id: int
    token: str
    text: str
    logprob: float | None = None
    alternatives: list[Alternative] | None = None
    finish_reason: str | None = None


@dataclass
class Score:
    """How likely a model finds a text: per-token log-probs and the perplexity.

    ``token_ids``/``tokens``/``logprobs`` are aligned: the tokens that were predicted (every
    token but the first, which has no context; for seq2seq the target tokens and eos).
    ``nll`` is their mean negative log-likelihood in nats, ``perplexity = exp(nll)``.
    """

    text: str
    token_ids: list[int]
    tokens: list[str]
    logprobs: list[float]
    nll: float
    perplexity: float

    @property
    def n_tokens(self) -> int:
        """Number of scored tokens."""
        return len(self.logprobs)

    def to_polars(self) -> polars.DataFrame:
        """One row per scored token: position, token, token_id, logprob."""
        return _table(self.token_ids, self.tokens, self.logprobs)


class GenerationStream:
    """The iterator ``generate(..., stream=True | "events")`` returns.

    Iterate it for text pieces (``stream=True``) or :class:`TokenEvent` s
    (``stream="events"``); ``result`` then holds the :class:`Generation` (a list for a batch).
    Reading ``result`` early finishes the generation without yielding the rest; ``close()``
    stops it, and ``result`` then holds what was generated so far (rows still running
    finish with ``finish_reason="stopped"``).

    >>> stream = generate(model, tok, "ROMEO:", stream=True)   # doctest: +SKIP
    >>> for piece in stream: print(piece, end="")              # doctest: +SKIP
    >>> stream.result.finish_reason                            # doctest: +SKIP
    """

    def __init__(self, items: Iterator[Any], finish: Any, stop: Any):
        self._items = items
        self._finish = finish  # () -> the result, once items is exhausted
        self._stop = stop  # () -> the partial result, after close()
        self._result: Any = None
        self._done = False

    def __iter__(self) -> GenerationStream:
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        try:
            return next(self._items)
        except StopIteration:
            self._done = True
            self._result = self._finish()
            raise

    @property
    def result(self) -> Any:
        """The :class:`Generation` (or list of them), finishing the generation if needed."""
        for _ in self:
            pass
        return self._result

    def close(self) -> None:
        """Stop generating; ``result`` keeps what was generated so far."""
        if self._done:
            return
        self._items.close()  # type: ignore[attr-defined]
        self._done = True
        self._result = self._stop()


def alternatives_of(tok: Any, ids: list[int], logprobs: list[float]) -> list[Alternative]:
    """:class:`Alternative` records for token ids and their log-probs."""
    names = tok.tokens(ids) if tok is not None else [""] * len(ids)
    return [Alternative(n, i, lp) for n, i, lp in zip(names, ids, logprobs, strict=True)]


def _table(ids: list[int], tokens: list[str], logprobs: list[float] | None) -> polars.DataFrame:
    import polars as pl

    columns: dict[str, Any] = {
        "position": list(range(len(ids))),
        "token": tokens if len(tokens) == len(ids) else [None] * len(ids),
        "token_id": ids,
    }
    if logprobs is not None:
        columns["logprob"] = logprobs
    return pl.DataFrame(columns)
