"""Generating text from llmlab models, and scoring text with them.

>>> out = llmlab.generate(model, tok, "ROMEO:", max_new_tokens=200, temperature=0.8,
...                       top_p=0.95, seed=0)                                  # doctest: +SKIP
>>> for piece in llmlab.generate(model, tok, "ROMEO:", stream=True):           # doctest: +SKIP
...     print(piece, end="")
>>> llmlab.score(model, tok, "To be, or not to be").perplexity                 # doctest: +SKIP

Modules, one job each:

- ``core``: ``generate`` (checks, the KV-cached sampling loop, results and streams);
- ``options``: option checking; ``prompts``: text or ids -> checked, padded ids;
- ``sampling``: temperature, top-k, top-p, min-p, repetition penalty, seeded draws;
- ``stepper``: feeding the model step by step (KV cache, sliding window, reordering);
- ``beam``: beam search; ``text``: incremental decoding and stop strings;
- ``scoring``: ``score`` (per-token log-probs, perplexity, sliding window);
- ``results``: ``Generation``, ``TokenEvent``, ``Alternative``, ``Score``, ``GenerationStream``.
"""

from __future__ import annotations

from llmlab.generation.core import generate
from llmlab.generation.results import (
    Alternative,
    Generation,
    GenerationStream,
    Score,
    TokenEvent,
)
from llmlab.generation.scoring import score

__all__ = ["Alternative", "Generation", "GenerationStream", "Score", "TokenEvent", "generate",
           "score"]
