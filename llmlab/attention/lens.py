"""The logit lens (nostalgebraist 2020): what the model would predict after each layer.

The hidden state after layer ``l`` goes through the model's own output head (with the final
norm of a pre-norm stack first), and the top ``k`` tokens and their probabilities are kept.
For GPT and the seq2seq decoder these are next-token predictions; for BERT they go through
the masked-LM head and say which token the model puts at each position.

>>> lens = cap.logit_lens(k=3)                  # doctest: +SKIP
>>> lens.at(4)                                  # per layer: [(token, probability), ...]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from llmlab.errors import InputError

__all__ = ["LogitLens", "TopK", "lens_head", "top_k_of"]


@dataclass
class TopK:
    """The ``k`` most likely tokens at each position: ``ids``/``probs`` ``[P, k]``."""

    ids: Tensor
    probs: Tensor
    tokens: list[list[str]]

    def at(self, position: int) -> list[tuple[str, float]]:
        """``[(token, probability), ...]`` at one position, most likely first."""
        return list(zip(self.tokens[position], self.probs[position].tolist()))


@dataclass
class LogitLens:
    """Top-``k`` predictions after every layer: ``ids``/``probs`` ``[layers + 1, P, k]``.

    Row 0 reads the embeddings, row ``l + 1`` the output of layer ``l`` (layers count from 0,
    as in captures; see ``layer_names``); the last row is the model's own output. ``side`` is the token
    sequence the positions belong to, ``what`` is ``"next token"`` or ``"masked token"``.
    """

    layer_names: list[str]
    ids: Tensor
    probs: Tensor
    tokens: list[list[list[str]]]
    side: str
    what: str

    def at(self, position: int) -> list[tuple[str, list[tuple[str, float]]]]:
        """For one position: ``[(layer name, [(token, probability), ...]), ...]``."""
        return [
            (name, list(zip(self.tokens[i][position], self.probs[i, position].tolist())))
            for i, name in enumerate(self.layer_names)
        ]

    def rows(self, position: int) -> dict:
        """The predictions after every layer at ``position`` as the inspector front end reads
        them: ``{"position", "what", "layers", "tokens": [layer][k], "probs": [layer][k]}``.

        >>> cap.logit_lens().rows(4)["tokens"][-1]     # the model's own top k  # doctest: +SKIP
        """
        n = self.ids.shape[1]
        if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < n:
            raise InputError(f"position={position!r} is not a token position (0 .. {n - 1}).")
        return {"position": position, "what": self.what, "layers": self.layer_names,
                "tokens": [layer[position] for layer in self.tokens],
                "probs": [[round(p, 5) for p in row]
                          for row in self.probs[:, position].float().tolist()]}

    def top1(self) -> list[list[str]]:
        """The most likely token per layer and position: ``[layers + 1][P]`` strings."""
        return [[row[0] for row in layer] for layer in self.tokens]

    def to_polars(self):
        """A long table: one row per (layer, position, rank) with token, id and probability."""
        import polars as pl

        L, P, k = self.ids.shape
        return pl.DataFrame({
            "layer": [name for name in self.layer_names for _ in range(P * k)],
            "position": [p for _ in range(L) for p in range(P) for _ in range(k)],
            "rank": [r for _ in range(L * P) for r in range(k)],
            "token": [t for layer in self.tokens for row in layer for t in row],
            "id": self.ids.flatten().tolist(),
            "prob": self.probs.float().flatten().tolist(),
        })


def lens_head(model: nn.Module, family: str) -> tuple[str, Callable[[Tensor, bool], Tensor], str]:
    """``(side, head, what)``: the side whose hidden states the lens reads and a function
    ``head(h, is_last) -> logits`` that applies the final norm (unless already applied) and
    the output head."""
    from llmlab.models.base import TransformerModel

    if isinstance(model, TransformerModel):
        stack, out, side, what = model.lens_parts()
    else:
        raise InputError(
            f"the logit lens needs an llmlab model (gpt, bert or seq2seq), got a {family!r} "
            "model; load or import it with llmlab.load(folder)."
        )

    def head(h: Tensor, is_last: bool) -> Tensor:
        # a pre-norm stack's last hidden state already went through its final norm
        if stack.pre_norm and not is_last:
            h = stack.norm(h)
        return out(h)

    return side, head, what


def top_k_of(logits: Tensor, k: int, token_of: Callable[[int], str],
             chunk: int = 256) -> tuple[Tensor, Tensor, list[list[str]]]:
    """Top-``k`` ids, probabilities and token strings of ``logits [P, V]``, in chunks of rows
    so that the softmax over a large vocabulary never holds more than ``chunk`` rows."""
    ids, probs = [], []
    for start in range(0, logits.shape[0], chunk):
        p = logits[start:start + chunk].float().softmax(-1)
        top = p.topk(min(k, p.shape[-1]), dim=-1)
        ids.append(top.indices.cpu())
        probs.append(top.values.cpu())
    id_t, prob_t = torch.cat(ids), torch.cat(probs)
    return id_t, prob_t, [[token_of(i) for i in row] for row in id_t.tolist()]


def compute_lens(hidden: Sequence[Tensor], head: Callable[[Tensor, bool], Tensor], *, k: int,
                 token_of: Callable[[int], str], side: str, what: str) -> LogitLens:
    """The lens from one sequence's hidden states (``[1, P, C]`` each, embeddings first)."""
    ids, probs, tokens = [], [], []
    with torch.no_grad():
        for i, h in enumerate(hidden):
            logits = head(h[0], i == len(hidden) - 1)
            a, b, c = top_k_of(logits, k, token_of)
            ids.append(a)
            probs.append(b)
            tokens.append(c)
    names = ["embeddings"] + [f"layer {i}" for i in range(len(hidden) - 1)]
    return LogitLens(names, torch.stack(ids), torch.stack(probs), tokens, side, what)
