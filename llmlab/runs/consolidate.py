"""A training checkpoint, sharded or not, merged into one ``llmlab.save`` folder.

A checkpoint of an unsharded run already holds the whole model in ``model/``; a sharded one
(``TrainConfig.sharding``) holds only its config and tokenizer there, and the weights as
accelerate saved them in ``accelerate/``: FSDP2's distributed checkpoint
(``pytorch_model_fsdp_0/``, one ``.distcp`` file per process) or DeepSpeed's ZeRO files
(``pytorch_model/``). :func:`consolidate` checks the checkpoint against its ``COMPLETE``
marker first (so a missing shard is named, not met as a torch error), merges the shards
with torch's or DeepSpeed's own converter, and writes a folder that ``llmlab.load`` opens.

>>> llmlab.runs.get(run_id).consolidate("final/")                  # doctest: +SKIP
>>> model, tok = llmlab.load("final/")                             # doctest: +SKIP
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from llmlab.runs import checkpoints
from llmlab.runs.layout import RunStoreError

#: Folders inside a checkpoint's ``accelerate/`` that hold a sharded model, by kind.
FSDP_SHARDS = "pytorch_model_fsdp_0"
DEEPSPEED_SHARDS = "pytorch_model"


def consolidate(checkpoint: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the model of the training checkpoint folder ``checkpoint`` to ``out`` as one
    ``llmlab.save`` folder (weights, config, tokenizer); returns ``out``.

    Raises :class:`~llmlab.runs.RunStoreError` naming every missing or damaged file when the
    checkpoint does not match its ``COMPLETE`` marker.
    """
    from llmlab.checkpoint import WEIGHTS_FILE, load, save

    folder = Path(checkpoint)
    checked = checkpoints.check(folder)
    if checked.problems:
        raise RunStoreError(
            f"checkpoint {folder} cannot be consolidated: {'; '.join(checked.problems)}. "
            "Consolidate another checkpoint of the run (run.checkpoints() lists them) or "
            "copy the missing files back.")
    if (folder / "model" / WEIGHTS_FILE).is_file():
        model, tokenizer = load(folder / "model")
    else:
        model, tokenizer = _merged_model(folder)
    return save(model, out, tokenizer)


def _merged_model(folder: Path):
    from llmlab.checkpoint import _read_tokenizer, load_state_checked, read_config
    from llmlab.models import build_model

    shards = folder / "accelerate"
    if (shards / FSDP_SHARDS).is_dir():
        state = _fsdp_state(shards / FSDP_SHARDS)
    elif (shards / DEEPSPEED_SHARDS).is_dir():
        state = _deepspeed_state(shards)
    else:
        raise RunStoreError(
            f"checkpoint {folder} has no weights: neither model/model.safetensors nor sharded "
            f"weights (accelerate/{FSDP_SHARDS}/ or accelerate/{DEEPSPEED_SHARDS}/). It was "
            "not written by llmlab's Trainer; consolidate another checkpoint.")
    model = build_model(read_config(folder / "model"))
    prefix = "_orig_mod."  # a compiled model's parameter names
    state = {k.removeprefix(prefix): v for k, v in state.items()}
    load_state_checked(model, state, source=str(shards))
    return model.eval(), _read_tokenizer(folder / "model")


def _fsdp_state(shards: Path) -> dict:
    """The full state dict of an FSDP sharded save, through torch's own DCP converter."""
    import torch
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    with tempfile.TemporaryDirectory(prefix="llmlab-consolidate-") as tmp:
        merged = Path(tmp) / "model.pt"
        dcp_to_torch_save(str(shards), str(merged))
        state = torch.load(merged, map_location="cpu", weights_only=True)
    if set(state) == {"model"}:  # accelerate saves {"model": state_dict}
        state = state["model"]
    return state


def _deepspeed_state(shards: Path) -> dict:
    try:
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    except ImportError:
        raise RunStoreError(
            f"{shards} holds DeepSpeed ZeRO shards, and merging them needs DeepSpeed: "
            "pip install 'llmlab[deepspeed]' (or pip install deepspeed), then consolidate "
            "again.") from None
    return get_fp32_state_dict_from_zero_checkpoint(str(shards), tag=DEEPSPEED_SHARDS)
