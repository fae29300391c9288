"""From what a user passes (a model, a tokenizer, text or ids) to checked token-id lists.

>>> from llmlab import ByteTokenizer
>>> encode_prompts("hi", ByteTokenizer())
([[104, 105]], ['hi'], False)
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from llmlab.errors import InputError


def check_model(model: Any, purpose: str) -> None:
    """Raise unless ``model`` is an llmlab language model that can predict next tokens."""
    from llmlab.models import TransformerModel

    if not isinstance(model, TransformerModel):
        raise InputError(
            f"{purpose} needs an llmlab model (from llmlab.build_model, llmlab.load or "
            f"llmlab.interop.load_hf), got {type(model).__name__}; for a transformers "
            "checkpoint, save it with save_pretrained and load the folder with "
            "llmlab.load(folder)."
        )
    cfg = model.config
    if not model.predicts_next_token:
        raise InputError(
            f"{purpose} needs a model that predicts the next token (family 'gpt' or "
            f"'seq2seq'); this is a {type(model).__name__} (family={cfg.family!r}), a "
            "bidirectional encoder that fills in masked tokens. Build a 'gpt' model to "
            "generate, or fill masks with model(ids).logits at the mask positions."
        )
    if getattr(cfg, "n_labels", 0):
        raise InputError(
            f"{purpose} needs a language-model head, but this model is a classifier "
            f"(n_labels={cfg.n_labels}); load or build it with n_labels=0."
        )
    if not cfg.lm_head:
        raise InputError(
            f"{purpose} needs a language-model head, but this model is a bare body "
            "(lm_head=False: its checkpoint had no head); load the checkpoint of the causal "
            "LM (...ForCausalLM), or use the hidden states (output.last_hidden_state)."
        )


def encode_prompts(prompt: Any, tokenizer: Any) -> tuple[list[list[int]], list[str], bool]:
    """``(ids per prompt, prompt text per prompt, whether a batch was given)``.

    A prompt is text (needs the tokenizer) or token ids: a list of ints, or a 1-D tensor; a
    batch is a list of texts, a list of id lists, or a 2-D tensor. Empty prompts stay empty
    here (the caller decides what an empty prompt means for its model).
    """
    if isinstance(prompt, str):
        return [_encode(tokenizer, prompt)], [prompt], False
    if isinstance(prompt, Tensor):
        if prompt.dtype.is_floating_point or prompt.dtype == torch.bool or prompt.dim() not in (1, 2):
            raise InputError(
                f"a tensor prompt must hold integer token ids with shape [seq_len] or [batch, "
                f"seq_len], got {prompt.dtype} {tuple(prompt.shape)}."
            )
        rows = prompt.tolist()
        batched = prompt.dim() == 2
        rows = rows if batched else [rows]
    elif isinstance(prompt, Sequence) and not isinstance(prompt, bytes):
        items = list(prompt)
        if not items:
            raise InputError("the batch of prompts is empty; pass at least one prompt.")
        if all(isinstance(p, str) for p in items):
            return _encode_batch(tokenizer, items), items, True
        if all(_is_id(i) for i in items):
            rows, batched = [items], False
        elif all(isinstance(p, (Sequence, Tensor)) and not isinstance(p, str) for p in items):
            rows = [p.tolist() if isinstance(p, Tensor) else list(p) for p in items]
            if not all(_is_id(i) for row in rows for i in row):
                raise InputError("a batch of id prompts must hold lists of int token ids.")
            batched = True
        else:
            raise InputError(
                "prompts must all be text (str) or all token ids (lists of int); got a mix. "
                "Pass ['text a', 'text b'] or [[1, 2], [3]]."
            )
    else:
        raise InputError(
            f"prompt must be text, a list of texts, or token ids; got {type(prompt).__name__}."
        )
    rows = [[int(i) for i in row] for row in rows]
    texts = [tokenizer.decode(row) if tokenizer is not None else "" for row in rows]
    return rows, texts, batched


def _is_id(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _encode(tokenizer: Any, text: str) -> list[int]:
    if tokenizer is None:
        raise InputError(
            "a text prompt needs the tokenizer; pass it (generate(model, tok, text)), or pass "
            "the prompt as token ids."
        )
    return list(tokenizer.encode(text))


def _encode_batch(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    if tokenizer is None:
        raise InputError("text prompts need the tokenizer; pass it, or pass token ids.")
    return [list(ids) for ids in tokenizer.encode_batch(texts)]


def fill_empty(rows: list[list[int]], tokenizer: Any, *, source: bool) -> list[list[int]]:
    """Give an empty GPT prompt the tokenizer's bos token; refuse it when there is none."""
    out = []
    for index, ids in enumerate(rows):
        if not ids:
            where = f"prompt {index} of the batch" if len(rows) > 1 else "the prompt"
            if source:
                raise InputError(
                    f"{where} is empty, but a seq2seq model needs source text to encode; pass "
                    "the text to translate or summarise."
                )
            bos = getattr(tokenizer, "bos_id", None)
            if bos is None:
                raise InputError(
                    f"{where} is empty and the tokenizer has no bos token to start from; pass "
                    "at least one token of text (e.g. '\\n' for a character model), or a "
                    "tokenizer with a '<bos>' special token."
                )
            ids = [bos]
        out.append(ids)
    return out


def check_ids(rows: list[list[int]], vocab: int) -> None:
    """Refuse ids outside the model's vocabulary (a tokenizer that does not fit the model)."""
    for index, ids in enumerate(rows):
        bad = [i for i in ids if not 0 <= i < vocab]
        if bad:
            where = f"prompt {index}" if len(rows) > 1 else "the prompt"
            raise InputError(
                f"{where} holds token id {bad[0]}, outside the model's vocabulary [0, {vocab});"
                " use the tokenizer the model was trained with, or a model whose vocab_size "
                "covers the tokenizer's."
            )


def left_pad(rows: list[list[int]], pad_id: int, device: torch.device,
             ) -> tuple[Tensor, Tensor | None]:
    """``[B, P]`` ids padded on the left (so every row's next token is in the last column) and
    the attention mask, or None when all rows have the same length."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r):] = True
    padded = not bool(mask.all())
    return ids.to(device), (mask.to(device) if padded else None)


def right_pad(rows: list[list[int]], value: int, device: torch.device) -> Tensor:
    """``[B, L]`` rows padded on the right with ``value``."""
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(r, dtype=torch.long)
    return out.to(device)
