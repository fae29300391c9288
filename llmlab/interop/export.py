"""Write an llmlab model as a Hugging Face folder that ``transformers`` loads.

The family is picked from the config: GPT-2 for learned positions, LayerNorm and biases;
Llama for RoPE, RMSNorm, SwiGLU and no biases (grouped-query attention included). A config
neither can express is refused with every field to change, before anything is written.

>>> import llmlab                                                     # doctest: +SKIP
>>> llmlab.interop.export(model, "exports/my-model", tokenizer=tok)    # doctest: +SKIP
>>> AutoModelForCausalLM.from_pretrained("exports/my-model")          # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from llmlab.config import ModelConfig
from llmlab.errors import CheckpointError
from llmlab.interop import gpt2, llama
from llmlab.interop._hf import CONFIG_FILE, SAFETENSORS_FILE, save_tokenizer

# model_type written -> the module that knows its config and tensor names
EXPORTERS: dict[str, ModuleType] = {"gpt2": gpt2, "llama": llama}
_NAMES = {"gpt2": "GPT-2", "llama": "Llama"}


def export(model: Any, path: str | os.PathLike, tokenizer: Any = None, *,
           model_type: str | None = None) -> Path:
    """Write ``model`` (and ``tokenizer``) as a Hugging Face folder; return the folder.

    ``model_type`` ("gpt2" or "llama") forces a family; by default the one that can express
    the config is used. The folder holds ``config.json``, ``model.safetensors`` and the
    tokenizer files, written atomically.

    >>> export(model, "exports/smol-copy", tokenizer=tok)   # doctest: +SKIP
    PosixPath('exports/smol-copy')
    """
    from safetensors.torch import save_file

    from llmlab._files import write_atomic, write_text_atomic

    cfg = _config_of(model)
    family = _family(cfg, model_type)
    directory = Path(path).expanduser()
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"{directory} is a file; pass a folder to export the model into.")
    if tokenizer is not None:
        save_tokenizer(tokenizer, directory, vocab_size=cfg.vocab_size,
                       context_length=cfg.context_length)
    tensors = _hf_tensors(model, family.rules(cfg))
    write_atomic(directory / SAFETENSORS_FILE,
                 lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}))
    dtype = str(next(iter(tensors.values())).dtype).removeprefix("torch.")
    hf = family.hf_config(cfg, dtype=dtype, tokenizer=tokenizer)
    write_text_atomic(directory / CONFIG_FILE, json.dumps(hf, indent=2) + "\n")
    return directory


def _config_of(model: Any) -> ModelConfig:
    cfg = getattr(model, "config", None)
    if not isinstance(cfg, ModelConfig):
        raise CheckpointError(
            f"export needs an llmlab model (from llmlab.build_model or llmlab.load), got "
            f"{type(model).__name__}.")
    return cfg


def _family(cfg: ModelConfig, model_type: str | None) -> ModuleType:
    if model_type is not None and model_type not in EXPORTERS:
        raise CheckpointError(f"model_type={model_type!r}: llmlab exports "
                              f"{', '.join(map(repr, EXPORTERS))}; pass one of them or None.")
    candidates = [model_type] if model_type else list(EXPORTERS)
    reasons = []
    for name in candidates:
        gaps = EXPORTERS[name].gaps(cfg)
        if not gaps:
            return EXPORTERS[name]
        listed = "; ".join(f"{field}={value!r} ({_NAMES[name]} needs {needed})"
                           for field, value, needed in gaps)
        reasons.append(f"as {_NAMES[name]}: {listed}")
    raise CheckpointError(
        "this model cannot be written as " + " or ".join(_NAMES[n] for n in candidates)
        + ": " + " | ".join(reasons) + ". Build a model with these fields changed to export "
        "it, or keep it in llmlab's own format (llmlab.save).")


def _hf_tensors(model: Any, rules: list) -> dict[str, Any]:
    """The model's weights under the checkpoint's names and layout, contiguous on the CPU."""
    state = model.state_dict()
    tensors = {}
    for rule in rules:
        for name, tensor in rule.to_hf(state[rule.target]).items():
            tensors[name] = tensor.detach().cpu().contiguous()
    return tensors
