"""Operations on attention matrices: aggregation over heads, attention rollout, the
attention-sink toggle, subword-to-word merging, thumbnails and row-wise quantisation.

Every function takes and returns CPU tensors; shapes use L = layers, H = heads, T = query
positions, S = key positions, W = words.

>>> import torch
>>> att = torch.softmax(torch.randn(2, 4, 5, 5), -1)       # [L, H, T, S]
>>> rollout(att).shape                                        # one matrix per layer
torch.Size([2, 5, 5])
>>> word_index(["The", "Ġanim", "al", "Ġran", "."], [False] * 5)
[0, 1, 1, 2, 3]
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "aggregate_heads",
    "choose_scale",
    "hide_first",
    "merge_words",
    "quantize_rows",
    "rollout",
    "rollout_steps",
    "scaled_for_display",
    "thumbnails",
    "word_index",
    "word_labels",
]


def aggregate_heads(att: Tensor, how: str = "mean") -> Tensor:
    """``[H, T, S]`` -> ``[T, S]`` float32: the mean or the maximum over heads.

    The mean of row-stochastic matrices is row-stochastic; the maximum is not (it shows
    where any head looks).
    """
    if how not in ("mean", "max"):
        raise ValueError(f"how={how!r} is not an aggregation; use 'mean' or 'max'.")
    # one head at a time into a float32 accumulator: a float16 capture is never widened
    # whole (at 1,024 tokens that is ~10x faster than att.float().mean(0))
    out = att[0].to(torch.float32, copy=True)
    for head in att[1:]:
        if how == "mean":
            out.add_(head)
        else:
            torch.maximum(out, head, out=out)
    return out.div_(att.shape[0]) if how == "mean" else out


#: choose_scale's constants (the same in labextension/src/inspector/data.ts chooseScale)
SCALE_MIN_ROWS, SCALE_ROW_PEAK, SCALE_FAINT, SCALE_FAINT_SHARE = 16, 0.25, 0.05, 0.5
SCALES = ("auto", "linear", "sqrt", "row")


def choose_scale(matrix: Tensor) -> str:
    """The colour scale that keeps ``matrix`` readable: the inspector's ``"auto"`` scale.

    ``"row"`` (each row by its own maximum) when the (lower) median row peaks below a quarter of the
    matrix maximum, as on long causal inputs whose late rows spread their attention thin;
    ``"sqrt"`` when most non-zero cells are under 5% of the maximum; else ``"linear"``.

    >>> causal = torch.ones(64, 64).triu(1).bool()
    >>> choose_scale(torch.softmax(torch.zeros(64, 64).masked_fill(causal, -torch.inf), -1))
    'row'
    """
    m = matrix.float()
    vmax = float(m.max()) if m.numel() else 0.0
    if not vmax > 0:
        return "linear"
    peak = float(m.amax(-1).median())  # the lower median, as chooseScale
    if m.shape[0] >= SCALE_MIN_ROWS and peak < SCALE_ROW_PEAK * vmax:
        return "row"
    nonzero = int((m > 0).sum())
    faint = int(((m > 0) & (m < SCALE_FAINT * vmax)).sum())
    return "sqrt" if nonzero and faint > SCALE_FAINT_SHARE * nonzero else "linear"


def scaled_for_display(matrix: Tensor, scale: str) -> Tensor:
    """``matrix`` mapped to [0, 1] as the inspector colours it under ``scale`` (``"auto"``
    resolved by :func:`choose_scale`)."""
    if scale not in SCALES:
        raise ValueError(f"scale={scale!r}; use one of {SCALES}.")
    m = matrix.float()
    scale = choose_scale(m) if scale == "auto" else scale
    if scale == "row":
        return m / m.amax(-1, keepdim=True).clamp_min(1e-30)
    m = m / max(float(m.max()), 1e-30)
    return m.sqrt() if scale == "sqrt" else m


def hide_first(matrix: Tensor) -> Tensor:
    """Zero the attention paid to the first key (an "attention sink") and renormalise rows.

    Works on ``[..., T, S]``. A row that attended only to the first key becomes all zeros
    (there is nothing left to show) rather than NaN.
    """
    out = matrix.float().clone()
    out[..., 0] = 0
    total = out.sum(-1, keepdim=True)
    return torch.where(total > 0, out / total.clamp_min(1e-30), out)


def rollout(att: Tensor, *, residual: bool = True) -> Tensor:
    """Attention rollout (Abnar and Zuidema 2020) after each layer: ``[L, H, T, T]`` -> ``[L, T, T]``.

    Per layer: average the heads, add the identity for the residual connection (``residual``),
    renormalise the rows; then multiply through the layers, ``R_l = A_l @ R_(l-1)``. Row ``i``
    of ``R_l`` says how much of the information at position ``i`` after layer ``l`` came from
    each input token, if attention were the only way information moved.
    """
    return torch.stack(list(rollout_steps(att, residual=residual)))


def rollout_steps(att: Tensor, *, residual: bool = True) -> Iterator[Tensor]:
    """:func:`rollout` one layer at a time (``R_0``, ``R_1``, ...), so that a caller who needs
    layer ``l`` computes no further."""
    if att.dim() != 4 or att.shape[-1] != att.shape[-2]:
        raise ValueError(
            f"rollout needs self-attention [layers, heads, T, T], got {tuple(att.shape)}; "
            "cross-attention has no rollout (queries and keys are different sequences)."
        )
    joint = None
    for layer in range(att.shape[0]):
        a = aggregate_heads(att[layer], "mean")
        if residual:
            a.diagonal().add_(1.0)
            a.div_(a.sum(-1, keepdim=True).clamp_min_(1e-30))
        joint = a if joint is None else _matmul_lower(a, joint)
        yield joint


#: causal products are multiplied in this many row blocks (zero blocks skipped)
_TRIANGLE_BLOCKS = 4


def _matmul_lower(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b``; when both are lower-triangular (causal attention) only the blocks that can
    be non-zero are multiplied, about a third of the work at four blocks."""
    n = a.shape[-1]
    if n < 256 or bool(a.triu(1).any()) or bool(b.triu(1).any()):
        return a @ b
    size = -(-n // _TRIANGLE_BLOCKS)
    out = torch.zeros_like(a)
    for i in range(0, n, size):
        rows = slice(i, min(n, i + size))
        for j in range(0, i + 1, size):
            cols, inner = slice(j, min(n, j + size)), slice(j, min(n, i + size))
            torch.mm(a[rows, inner], b[inner, cols], out=out[rows, cols])
    return out


# --------------------------------------------------------------------------- words
_MARKERS = ("Ġ", "▁", "Ċ", "ĉ", " ", "\n", "\t")
_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def _is_punctuation(token: str) -> bool:
    token = token.lstrip("".join(_MARKERS))
    return bool(token) and all(unicodedata.category(c).startswith("P") for c in token)


_JOINERS = ("'", "’", "-")


def _starts_word(token: str, previous: str | None) -> bool:
    if previous is None or token.startswith(_MARKERS) or token.isspace():
        return True
    byte = _BYTE_TOKEN.fullmatch(token)
    if byte:  # byte tokens: whitespace and ASCII start a word, UTF-8 continuation bytes do not
        return int(byte.group(1), 16) < 0x80 and not previous.startswith("<0x")
    return _is_punctuation(token) or _is_punctuation(previous)


def _joins(tokens: Sequence[str], i: int) -> bool:
    """An apostrophe or hyphen token between two letters ("didn ' t", "well - known")."""
    if tokens[i] not in _JOINERS or i == 0 or i + 1 >= len(tokens):
        return False
    before, after = tokens[i - 1], tokens[i + 1]
    return bool(before) and before[-1].isalnum() and bool(after) and after[0].isalnum()


def word_index(tokens: Sequence[str], special: Sequence[bool]) -> list[int]:
    """The word each token belongs to, from the tokenizer's display strings.

    - WordPiece (some token starts with ``##``): ``##piece`` continues the previous word and
      every other token starts one;
    - otherwise (byte-level BPE, SentencePiece, characters, bytes): a token starts a word when
      it begins with a space marker (``Ġ``, ``▁``, a space, a newline), is whitespace, or is
      punctuation or follows punctuation (an apostrophe or hyphen between letters joins
      instead: "didn't"); other tokens continue the word before them;
    - special tokens (``special[i]``) are words of their own.
    """
    wordpiece = any(t.startswith("##") for t in tokens)
    out: list[int] = []
    word = -1
    previous_special = True
    joined = False
    for i, token in enumerate(tokens):
        if special[i] or previous_special:
            starts = True
        elif wordpiece:
            starts = not token.startswith("##")
        elif _joins(tokens, i):
            starts, joined = False, True
        elif joined:
            starts, joined = False, False
        else:
            starts = _starts_word(token, tokens[i - 1])
        word += starts
        out.append(word)
        previous_special = special[i]
    return out


def word_labels(tokens: Sequence[str], index: Sequence[int]) -> list[str]:
    """Display string of each word: its tokens joined, markers turned back into spaces."""
    words: list[list[str]] = [[] for _ in range(index[-1] + 1)] if index else []
    for token, w in zip(tokens, index):
        words[w].append(token[2:] if token.startswith("##") else token)
    labels = []
    for parts in words:
        text = "".join(parts).replace("Ġ", " ").replace("▁", " ").replace("Ċ", "\n")
        labels.append(text.strip() or text)
    return labels


def merge_words(matrix: Tensor, query_words: Sequence[int], key_words: Sequence[int]) -> Tensor:
    """``[..., T, S]`` -> ``[..., Wq, Wk]``: attention between words instead of tokens.

    Attention a word *receives* is the sum over its tokens (columns add up), attention a word
    *gives* is the average over its tokens (rows are averaged), so merged rows still sum to 1.
    """
    matrix = matrix.float()
    q = torch.as_tensor(list(query_words), dtype=torch.long)
    k = torch.as_tensor(list(key_words), dtype=torch.long)
    n_q, n_k = int(q.max()) + 1, int(k.max()) + 1
    lead = matrix.shape[:-2]
    cols = torch.zeros(*lead, matrix.shape[-2], n_k).index_add_(-1, k, matrix)
    rows = torch.zeros(*lead, n_q, n_k).index_add_(-2, q, cols)
    counts = torch.bincount(q, minlength=n_q).clamp_min(1).to(rows.dtype)
    return rows / counts[:, None]


# --------------------------------------------------------------------------- transport
def thumbnails(att: Tensor, size: int = 32) -> Tensor:
    """``[L, H, T, S]`` -> uint8 ``[L, H, t, s]`` small images, ``t = min(T, size)``.

    Each thumbnail is the block mean of its head's matrix, scaled so that its largest value is
    255 and brightened with a square root, so that thin patterns (diagonals) stay visible.
    """
    L, H, T, S = att.shape
    t, s = min(T, size), min(S, size)
    out = torch.empty(L, H, t, s, dtype=torch.uint8)
    for layer in range(L):  # one layer at a time: float32 copies stay small
        pooled = F.adaptive_avg_pool2d(att[layer].float().unsqueeze(1), (t, s)).squeeze(1)
        peak = pooled.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
        out[layer] = ((pooled / peak).sqrt() * 255).round().to(torch.uint8)
    return out


def quantize_rows(matrix: Tensor) -> tuple[bytes, bytes]:
    """Quantise ``[T, S]`` to uint8 per row: ``value ~= q / 255 * scale[row]``.

    Returns ``(q bytes [T*S], scale bytes float32 [T])``. Each row keeps 8 bits relative to its
    own maximum, so a row with small weights is not flattened to zero by another row's peak.
    """
    m = matrix.float()
    scale = m.amax(-1).clamp_min(0)
    inv = torch.where(scale > 0, 255.0 / scale.clamp_min(1e-30), torch.zeros_like(scale))
    q = torch.mul(m, inv[:, None])  # in [0, 255]: each row's maximum maps to 255
    q = q.add_(0.5).to(torch.uint8)  # round half up (the cast truncates)
    return q.contiguous().numpy().tobytes(), scale.contiguous().numpy().astype("<f4").tobytes()
