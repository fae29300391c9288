"""Hugging Face interop: load GPT-2, BERT and Llama-family models (by Hub name or folder) into
llmlab models, and export GPT-2 and Llama-family models back.

>>> model, tok = llmlab.interop.load_hf("HuggingFaceTB/SmolLM2-135M")   # doctest: +SKIP
>>> llmlab.interop.export(model, "exports/smol-copy", tokenizer=tok)    # doctest: +SKIP

Files are read and written here (``config.json``, safetensors, ``torch.load`` with
``weights_only=True``); ``transformers`` is not needed and never imported. The outputs of a
loaded model match ``transformers``' own for the same checkpoint.
"""

from __future__ import annotations

from llmlab.interop.export import export
from llmlab.interop.gpt2 import export_gpt2
from llmlab.interop.load import is_hf_checkpoint, load_hf, supported

__all__ = ["export", "export_gpt2", "is_hf_checkpoint", "load_hf", "supported"]
