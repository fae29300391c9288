"""Sharding a model over processes, owned by accelerate: FSDP2 or DeepSpeed ZeRO.

``TrainConfig.sharding`` names the choice; :func:`accelerator_plugins` turns it into the
plugin accelerate's ``Accelerator`` takes, and :func:`check_sharding` refuses a choice this
machine cannot honour before anything starts. llmlab adds nothing to what the plugins do:
FSDP2 wraps each of llmlab's transformer blocks (its auto-wrap policy names their classes),
reshards after the forward pass and saves sharded state dicts (one file per process,
``accelerate/pytorch_model_fsdp_0/``); DeepSpeed runs ZeRO stage 2 (optimizer state and
gradients sharded) or 3 (parameters too). A sharded checkpoint is merged back into one
``llmlab.save`` folder by :func:`llmlab.runs.consolidate`.

accelerate turns FSDP and DeepSpeed on only on accelerator devices (on a CPU it would
silently train unsharded), so on a CPU a sharding choice is an error.

>>> from llmlab.train import TrainConfig
>>> accelerator_plugins(TrainConfig(), model=None)
{}
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import torch

from llmlab.errors import ConfigError, TrainingError
from llmlab.train.config import SHARDINGS

__all__ = ["FSDP_MODEL_DIR", "accelerator_plugins", "block_class_names", "check_resume_processes",
           "check_sharding", "saved_processes"]

#: Where accelerate's ``save_state`` puts an FSDP model's sharded state (a torch
#: distributed-checkpoint folder), inside a checkpoint's ``accelerate/`` folder.
FSDP_MODEL_DIR = "pytorch_model_fsdp_0"


def check_sharding(cfg: Any, device: str | None = None) -> None:
    """Refuse a ``sharding`` choice the machine cannot honour, saying what works instead.

    >>> from llmlab.train import TrainConfig
    >>> check_sharding(TrainConfig(sharding="fsdp"), device="cpu")
    Traceback (most recent call last):
    ...
    llmlab.errors.ConfigError: sharding='fsdp' needs GPUs ...
    """
    if cfg.sharding is None:
        return
    if cfg.sharding not in SHARDINGS:  # TrainConfig validates; a duck-typed config may not
        raise ConfigError(f"sharding={cfg.sharding!r} is not a sharding choice; use one of "
                          f"{SHARDINGS} or None (DDP).")
    if device is None:
        from llmlab.train.hardware import training_device

        device = training_device(cfg)
    if device == "cpu":
        raise ConfigError(
            f"sharding={cfg.sharding!r} needs GPUs (accelerate enables FSDP and DeepSpeed only "
            "on accelerator devices; on a CPU it would train unsharded). Train with "
            "sharding=None here (DDP over CPU processes works: accelerate launch "
            "--num_processes N), and use the sharding on a GPU machine.")
    if cfg.sharding.startswith("deepspeed") and importlib.util.find_spec("deepspeed") is None:
        raise ConfigError(
            f"sharding={cfg.sharding!r} needs DeepSpeed, which is not installed: "
            "pip install 'llmlab[deepspeed]' (or pip install deepspeed), or use "
            "sharding='fsdp', which needs nothing beyond torch.")


def saved_processes(checkpoint: str | os.PathLike) -> int | None:
    """How many processes wrote a training checkpoint folder's ``accelerate/`` state (each
    saves its RNG state, ``accelerate/random_states_<rank>.pkl``); None when there is none."""
    from llmlab.runs.checkpoints import EXACTNESS_PREFIX

    return len(list(Path(checkpoint).glob(f"{EXACTNESS_PREFIX}*"))) or None


def check_resume_processes(cfg: Any, checkpoint: str | os.PathLike, processes: int) -> None:
    """Refuse to resume a DeepSpeed ZeRO checkpoint on another number of processes.

    An unsharded (DDP) checkpoint holds whole states and resumes on any count; FSDP2's
    distributed checkpoint is re-sharded for the processes at hand when it loads. DeepSpeed's
    ZeRO files hold one optimizer partition per process and load only on the count that
    wrote them (changing it takes DeepSpeed's universal-checkpoint conversion).
    """
    saved = saved_processes(checkpoint)
    if saved in (None, processes) or not str(cfg.sharding or "").startswith("deepspeed"):
        return
    raise TrainingError(
        f"this checkpoint ({checkpoint}) was saved by {saved} processes with "
        f"sharding={cfg.sharding!r}, and DeepSpeed ZeRO loads its optimizer partitions only on "
        f"the same number; this job has {processes}. Resume with accelerate launch "
        f"--num_processes {saved}, or consolidate the checkpoint (run.consolidate('final/')) and "
        "train on from that folder in a new run (its optimizer state starts afresh).")


def block_class_names(model: torch.nn.Module) -> list[str]:
    """Class names of the model's transformer blocks: the units FSDP2 wraps one by one.

    >>> import llmlab
    >>> block_class_names(llmlab.build_model(llmlab.ModelConfig.preset("baby-char")))
    ['Block']
    """
    from llmlab.models.layers import Block

    names = {type(m).__name__ for m in model.modules() if isinstance(m, Block)}
    if not names:
        raise ConfigError(f"{type(model).__name__} has no llmlab transformer blocks to shard; "
                          "sharding works on models built by llmlab.build_model or "
                          "llmlab.load.")
    return sorted(names)


def accelerator_plugins(cfg: Any, model: torch.nn.Module | None) -> dict[str, Any]:
    """The keyword arguments of ``accelerate.Accelerator`` that shard as ``cfg.sharding`` says
    (none for None). Call :func:`check_sharding` first."""
    if cfg.sharding is None:
        return {}
    if cfg.sharding == "fsdp":
        from accelerate import FullyShardedDataParallelPlugin

        return {"fsdp_plugin": FullyShardedDataParallelPlugin(
            fsdp_version=2, auto_wrap_policy="transformer_based_wrap",
            transformer_cls_names_to_wrap=block_class_names(model),
            reshard_after_forward=True, state_dict_type="SHARDED_STATE_DICT",
        )}
    from accelerate import DeepSpeedPlugin

    plugin = DeepSpeedPlugin(
        zero_stage=int(cfg.sharding[-1]), gradient_accumulation_steps=cfg.grad_accum_steps,
        gradient_clipping=cfg.grad_clip or None,
    )
    # llmlab draws its own batches (no DataLoader for accelerate to read the sizes from)
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    micro = cfg.batch_size // cfg.grad_accum_steps // processes
    plugin.deepspeed_config.update(train_micro_batch_size_per_gpu=micro,
                                   train_batch_size=micro * cfg.grad_accum_steps * processes)
    return {"deepspeed_plugin": plugin}
