"""Hugging Face interop: load local GPT-2 and BERT checkpoints into llmlab models, export GPT-2.

>>> model, tok = llmlab.interop.load_hf("~/models/gpt2")   # doctest: +SKIP
>>> llmlab.interop.export_gpt2(model, "exports/gpt2-copy")  # doctest: +SKIP

Files are read and written here (``config.json``, safetensors, ``torch.load`` with
``weights_only=True``); ``transformers`` is not needed and never imported. The outputs of a
loaded model match ``transformers``' own for the same checkpoint.
"""

from __future__ import annotations

from llmlab.interop.gpt2 import export_gpt2
from llmlab.interop.load import is_hf_checkpoint, load_hf

__all__ = ["export_gpt2", "is_hf_checkpoint", "load_hf"]
