"""What the machine offers a training run: native bf16 on the CPU, a C++ compiler for
``torch.compile``, and the fastest correct settings for a model on it.

A choice the machine cannot honour is refused before training starts, with the setting that
works instead; nothing falls back silently to a slow path.

>>> suggested_settings(llmlab.ModelConfig.preset("baby-char"), "cpu")   # doctest: +SKIP
{'mixed_precision': 'no', 'compile': False}
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import torch

from llmlab.errors import ConfigError

__all__ = ["check_machine", "cpu_has_bf16", "cxx_compiler", "suggested_settings",
           "training_device"]

#: Width from which bf16 autocast pays on a CPU with AVX512-BF16/AMX. Measured on a 2-core
#: Xeon with AMX (forward + backward, batch 12 x 64, 4 layers): fp32/bf16 step time 0.75 at
#: width 128, 1.04 at 192, 1.17 at 256, 1.54 at 320, 2.7 at shakespeare-char's 384 x 256
#: tokens. Below it, autocast's per-op casts cost more than the faster matmuls save.
BF16_MIN_WIDTH = 256


def training_device(cfg: Any) -> str:
    """The device type a Trainer with ``cfg`` trains on ("cpu" or the accelerator's)."""
    if cfg.cpu or not torch.accelerator.is_available():
        return "cpu"
    return torch.accelerator.current_accelerator().type


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), as oneDNN reports it."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cxx_compiler() -> str | None:
    """The C++ compiler ``torch.compile`` (inductor) would use on the CPU, or None."""
    from torch._inductor import config as inductor

    names = inductor.cpp.cxx if isinstance(inductor.cpp.cxx, (list, tuple)) else (
        inductor.cpp.cxx,)
    for name in (os.environ.get("CXX"), *names):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def check_machine(cfg: Any) -> None:
    """Refuse ``mixed_precision`` / ``compile`` / ``sharding`` settings this machine cannot run
    well.

    >>> check_machine(TrainConfig(mixed_precision="bf16"))          # doctest: +SKIP
    """
    from llmlab.train.sharding import check_sharding

    device = training_device(cfg)
    check_sharding(cfg, device)
    if device != "cpu":
        return
    if cfg.mixed_precision == "bf16" and not cpu_has_bf16():
        raise ConfigError(
            "mixed_precision='bf16' needs a CPU with native bf16 (AVX512-BF16 or AMX), and "
            "this one has neither: bf16 would run emulated, slower than float32. Train with "
            "mixed_precision='no' (float32), or on a GPU."
        )
    if cfg.mixed_precision == "fp16":
        raise ConfigError(
            "mixed_precision='fp16' is for GPUs; on a CPU it is emulated and slow. Use "
            "mixed_precision='bf16' on a CPU with AVX512-BF16/AMX, else 'no'."
        )
    if cfg.compile and cxx_compiler() is None:
        raise ConfigError(
            "compile=True on a CPU needs a C++ compiler for torch.compile (inductor), and none "
            "was found (looked for $CXX and g++). Install one (Debian: apt install g++) or set "
            "CXX to it, or train with compile=False."
        )


def suggested_settings(model_config: Any, device: str | None = None) -> dict[str, Any]:
    """The fastest correct ``mixed_precision`` and ``compile`` for a model on ``device``
    (default: the accelerator if there is one, else the CPU).

    On a GPU: bf16 and compile. On a CPU: bf16 when the CPU has it natively and the model is
    at least :data:`BF16_MIN_WIDTH` wide; compile stays off (its minute of compiling is not
    won back by the runs a notebook does on a CPU; ``benchmarks/train.py`` measures it).
    """
    if device is None:
        device = (torch.accelerator.current_accelerator().type
                  if torch.accelerator.is_available() else "cpu")
    if device != "cpu":
        return {"mixed_precision": "bf16", "compile": True}
    wide = model_config.d_model >= BF16_MIN_WIDTH
    return {"mixed_precision": "bf16" if wide and cpu_has_bf16() else "no", "compile": False}
