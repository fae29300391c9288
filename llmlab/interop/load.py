"""Load a local Hugging Face GPT-2 or BERT folder as an llmlab model (and its tokenizer).

>>> from llmlab.interop import load_hf                        # doctest: +SKIP
>>> model, tok = load_hf("~/models/gpt2")                     # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import torch

from llmlab.config import ModelConfig
from llmlab.errors import CheckpointError, ConfigError
from llmlab.interop import bert, gemma, gpt2, gpt_neo, gpt_neox, llama, olmo
from llmlab.interop._hf import (
    CONFIG_FILE,
    checkpoint_labels,
    has_tokenizer,
    load_into,
    read_config,
    read_weights,
)
from llmlab.interop.hub import resolve_folder

if TYPE_CHECKING:  # pragma: no cover
    import polars

    from llmlab.models import TransformerModel
    from llmlab.tokenizers import Tokenizer

# config.json "model_type" -> the module that converts that family
FAMILIES: dict[str, ModuleType] = {
    gpt2.MODEL_TYPE: gpt2, bert.MODEL_TYPE: bert, gpt_neo.MODEL_TYPE: gpt_neo,
    gpt_neox.MODEL_TYPE: gpt_neox, **dict.fromkeys(gemma.MODEL_TYPES, gemma),
    **dict.fromkeys(llama.MODEL_TYPES, llama), **dict.fromkeys(olmo.MODEL_TYPES, olmo)}


def supported() -> polars.DataFrame:
    """The Hugging Face ``model_type``s llmlab loads: a row each, with the converter module,
    whether llmlab exports that family back, and what the tests check against transformers.

    >>> supported().filter(pl.col("model_type") == "llama")["exports"].item()  # doctest: +SKIP
    True
    """
    import polars as pl

    from llmlab.interop.export import EXPORTERS

    exported = {module for module in EXPORTERS.values()}
    return pl.DataFrame({
        "model_type": list(FAMILIES),
        "converter": [m.__name__.rsplit(".", 1)[-1] for m in FAMILIES.values()],
        "exports": [m in exported for m in FAMILIES.values()],
        "checked": [list(m.CHECKED) for m in FAMILIES.values()],
    })


def is_hf_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder with a Hugging Face ``config.json`` (one naming a
    ``model_type``). It says nothing about whether llmlab supports that type.

    >>> is_hf_checkpoint("~/models/gpt2")  # doctest: +SKIP
    True
    """
    config = Path(path).expanduser() / CONFIG_FILE
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and isinstance(data.get("model_type"), str)


def load_hf(
    path: str | os.PathLike,
    *,
    n_labels: int | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    revision: str | None = None,
) -> tuple[TransformerModel, Tokenizer | None]:
    """An llmlab model (in eval mode) with a Hugging Face checkpoint's weights, and its tokenizer.

    ``path`` is a Hub name (``"openai-community/gpt2"``, resolved by
    :func:`llmlab.interop.hub.resolve_folder` at ``revision``) or a local folder written by
    ``save_pretrained``: ``config.json`` with
    ``model_type`` "gpt2" or "bert", and ``model.safetensors`` or ``pytorch_model.bin`` (or
    their shards). A ``...ForSequenceClassification`` checkpoint loads as a classifier. Passing
    ``n_labels`` for a language-model checkpoint builds a classifier instead: the body is
    loaded, the new head is freshly initialised (from torch's global RNG; seed it for
    repeatable heads) and a warning names its tensors. The tokenizer is read from the same
    folder by :func:`llmlab.tokenizers.load_tokenizer`, or is None when there is none.

    >>> model, tok = load_hf("~/models/gpt2")                        # doctest: +SKIP
    >>> clf, _ = load_hf("~/models/bert-base-uncased", n_labels=2)   # doctest: +SKIP
    """
    directory = resolve_folder(path, revision=revision)
    if not directory.is_dir():
        raise CheckpointError(
            f"{directory} is not a folder; pass the folder a Hugging Face model was saved in "
            "(with save_pretrained), holding config.json and model.safetensors."
        )
    hf = read_config(directory)
    family = _family(hf, directory)
    labels, new_head = _labels(hf, n_labels, directory)
    cfg = _model_config(family, hf, labels, directory)
    tensors = family.canonical_names(read_weights(directory))
    if not labels and family.headless(hf, tensors):
        cfg = cfg.replace(lm_head=False)  # a bare body (BertModel, sentence-transformers)

    from llmlab.models import build_model, build_skeleton

    # every weight comes from the checkpoint unless a head is new: then nothing is allocated
    # before the checkpoint's tensors become the parameters
    model = build_model(cfg) if new_head else build_skeleton(cfg)
    fresh = load_into(
        model, family.rules(cfg, new_head=new_head), tensors, ignorable=family.ignorable,
        source=str(directory), hint=family.mismatch_hint(hf, cfg),
        assign_dtype=None if new_head else (dtype or torch.float32),
    )
    del tensors
    if fresh:
        warnings.warn(
            f"{directory.name}: {', '.join(fresh)} are not in the checkpoint and were newly "
            f"initialised (a new {labels}-class head); fine-tune before trusting its outputs.",
            stacklevel=2,
        )
    if device is not None or dtype is not None:
        model = model.to(device=device, dtype=dtype)
    return model.eval(), _tokenizer(directory)


def _family(hf: dict[str, Any], directory: Path) -> ModuleType:
    model_type = hf.get("model_type")
    if model_type not in FAMILIES:
        raise CheckpointError(
            f"{directory / CONFIG_FILE} has model_type={model_type!r}; llmlab can load "
            f"{', '.join(map(repr, FAMILIES))}. Pass a model of one of these types."
        )
    return FAMILIES[model_type]


def _labels(hf: dict[str, Any], n_labels: int | None, directory: Path) -> tuple[int, bool]:
    """(classes of the model to build, whether its classifier head is new)."""
    own = checkpoint_labels(hf)
    if n_labels is None or n_labels == own:
        return own, False
    if not isinstance(n_labels, int) or isinstance(n_labels, bool) or n_labels < 0:
        raise ConfigError(
            f"n_labels={n_labels!r}: pass None (the checkpoint's own head), 0 (a language "
            "model) or the number of classes (2 or more)."
        )
    if own:
        raise CheckpointError(
            f"{directory} is a classifier with {own} classes ({', '.join(hf['architectures'])})"
            f"; it cannot become a model with n_labels={n_labels}. Pass n_labels=None to load "
            "it as it is, or load the language model it was fine-tuned from."
        )
    return n_labels, True


def _model_config(
    family: ModuleType, hf: dict[str, Any], n_labels: int, directory: Path
) -> ModelConfig:
    try:
        return family.model_config(hf, n_labels=n_labels, name=directory.name)
    except ConfigError as err:
        raise CheckpointError(
            f"{directory / CONFIG_FILE} describes a model llmlab cannot build: {err}"
        ) from None


def _tokenizer(directory: Path) -> Tokenizer | None:
    if not has_tokenizer(directory):
        return None
    from llmlab.tokenizers import load_tokenizer

    return load_tokenizer(directory)
