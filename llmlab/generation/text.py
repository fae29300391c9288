"""Text of a growing token sequence, released piece by piece, and stop strings found in it.

Decoding token by token goes wrong in two ways: a character split over several tokens (a
multi-byte UTF-8 character from a byte tokenizer, a byte-level BPE token holding half an
emoji) decodes to U+FFFD until its last byte arrives, and a token's text can depend on the
token before it (a WordPiece "##" continuation, a SentencePiece leading space). So each new
piece is the difference between decoding a short window of recent tokens with and without
the new ones, released only once it does not end in U+FFFD.

>>> from llmlab import ByteTokenizer
>>> dec = IncrementalDecoder(ByteTokenizer(), context=[])
>>> [dec.push(b) for b in "é!".encode()]
['', 'é', '!']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

REPLACEMENT = "\ufffd"
CONTEXT_TOKENS = 4  # prompt tokens decoded before the new ones, for context-dependent decoders


class IncrementalDecoder:
    """Text of tokens pushed one at a time; ``push`` returns the newly completed text."""

    def __init__(self, tokenizer: Any, context: Sequence[int]):
        self.tokenizer = tokenizer
        self.ids = list(context[-CONTEXT_TOKENS:])
        self.start = 0  # window start: tokens before it are never decoded again
        self.read = len(self.ids)  # tokens before this are released

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        before = self._decode(self.ids[self.start:self.read])
        after = self._decode(self.ids[self.start:])
        if len(after) > len(before) and not after.endswith(REPLACEMENT):
            self.start, self.read = self.read, len(self.ids)
            return after[len(before):]
        return ""

    def flush(self) -> str:
        """Whatever is still held back (an unfinished character decodes to U+FFFD)."""
        before = self._decode(self.ids[self.start:self.read])
        after = self._decode(self.ids[self.start:])
        self.start = self.read = len(self.ids)
        return after[len(before):]


def continuation_text(tokenizer: Any, context: Sequence[int], new: Sequence[int]) -> str:
    """Text of ``new`` after ``context``, decoded at once (what the pieces of an
    :class:`IncrementalDecoder` add up to)."""
    if tokenizer is None or not new:
        return ""
    context = list(context[-CONTEXT_TOKENS:])
    before = tokenizer.decode(context, skip_special_tokens=True)
    after = tokenizer.decode(context + list(new), skip_special_tokens=True)
    return after[len(before):]


class RowText:
    """One row's generated text: incremental decoding plus stop strings.

    ``push`` returns the text that can be shown now: text that could still be the start of a
    stop string is held back until it is clearly not one. Once a stop string appears the text
    is cut just before it and ``stopped`` is True.
    """

    def __init__(self, tokenizer: Any, context: Sequence[int], stops: Sequence[str]):
        self.decoder = IncrementalDecoder(tokenizer, context)
        self.stops = tuple(stops)
        self.longest = max((len(s) for s in self.stops), default=0)
        self.text = ""
        self.sent = 0
        self.stopped = False

    def push(self, token_id: int) -> str:
        return self._add(self.decoder.push(token_id), final=False)

    def finish(self) -> str:
        """The rest of the text, at the end of generation (eos, stop token or length)."""
        return self._add(self.decoder.flush(), final=True)

    def _add(self, piece: str, final: bool) -> str:
        if piece and not self.stopped:
            search_from = max(0, len(self.text) - self.longest + 1)
            self.text += piece
            cut = self._find_stop(search_from)
            if cut is not None:
                self.text, self.stopped = self.text[:cut], True
        end = len(self.text) if final or self.stopped else len(self.text) - self._open_stop()
        out = self.text[self.sent:end] if end > self.sent else ""
        self.sent = max(self.sent, end)
        return out

    def _find_stop(self, start: int) -> int | None:
        hits = [i for i in (self.text.find(s, start) for s in self.stops) if i >= 0]
        return min(hits) if hits else None

    def _open_stop(self) -> int:
        """Length of the longest end of the text that begins some stop string."""
        for n in range(min(self.longest - 1, len(self.text)), 0, -1):
            tail = self.text[-n:]
            if any(s.startswith(tail) for s in self.stops):
                return n
        return 0
