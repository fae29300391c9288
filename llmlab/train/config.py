"""``TrainConfig``: the hyperparameters of a training run, validated and JSON-able.

>>> TrainConfig(max_steps=100, lr=3e-4).warmup
10
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

from llmlab.config import reject_unknown_keys
from llmlab.errors import ConfigError

MixedPrecision = Literal["no", "bf16", "fp16"]
Decay = Literal["cosine", "linear", "constant"]
Sharding = Literal["fsdp", "deepspeed-zero2", "deepspeed-zero3"]
#: The ``sharding`` choices besides None (DDP, or one device).
SHARDINGS: tuple[str, ...] = get_args(Sharding)
#: The settings that take one of a few values, and those values: the one list that
#: validation, the trainer widget's dropdowns and the docs read (None: not sharded).
CHOICES: dict[str, tuple[Any, ...]] = {
    "mixed_precision": get_args(MixedPrecision),
    "decay": get_args(Decay),
    "sharding": (None, *SHARDINGS),
}
#: Settings that describe the machine, not the training: a resume may change them.
MACHINE_SETTINGS = ("peak_flops",)


@dataclass(frozen=True)
class TrainConfig:
    """Optimizer, schedule, batching, evaluation and checkpointing settings.

    ``batch_size`` is the number of sequences per optimizer step over all processes; it is
    split into ``grad_accum_steps`` micro-batches and then across processes, so the same
    config trains the same way on one process or several. ``sharding`` shards the model
    through accelerate (``"fsdp"``: FSDP2; ``"deepspeed-zero2"`` / ``"-zero3"``: DeepSpeed
    ZeRO); None trains a whole copy per process (DDP). ``peak_flops`` is the device's dense
    peak (FLOP/s) for the logged model-FLOPs utilisation, where the known-device table in
    :mod:`llmlab.train.throughput` has no entry (CPUs).
    """

    max_steps: int = 1000
    batch_size: int = 12
    grad_accum_steps: int = 1
    lr: float = 1e-3
    min_lr: float | None = None
    warmup_steps: int | None = None
    decay: Decay = "cosine"
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_interval: int = 250
    eval_batches: int = 20
    checkpoint_interval: int | None = None
    keep_checkpoints: int = 2
    log_interval: int = 1
    mixed_precision: MixedPrecision = "no"
    compile: bool = False
    cpu: bool = False
    sharding: Sharding | None = None
    peak_flops: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        _at_least(self, 1, "max_steps", "batch_size", "grad_accum_steps", "eval_interval",
                  "eval_batches", "keep_checkpoints", "log_interval")
        _at_least(self, -MAX_INT - 1, "seed")
        _at_least(self, 0, "warmup_steps", "checkpoint_interval", optional=True)
        _finite(self, "lr", "weight_decay", "beta1", "beta2", "grad_clip")
        _finite(self, "min_lr", optional=True)
        _flags(self, "compile", "cpu")
        if not self.lr > 0:
            raise ConfigError(f"TrainConfig.lr={self.lr!r} must be a positive number; typical "
                              "values are 1e-4 to 1e-3.")
        if self.min_lr is not None and not 0 <= self.min_lr <= self.lr:
            raise ConfigError(f"TrainConfig.min_lr={self.min_lr!r} must be in [0, lr={self.lr}].")
        if self.batch_size % self.grad_accum_steps:
            raise ConfigError(
                f"TrainConfig.batch_size={self.batch_size} is not divisible by grad_accum_steps="
                f"{self.grad_accum_steps}; make batch_size a multiple of it."
            )
        for name in ("weight_decay", "grad_clip"):
            if getattr(self, name) < 0:
                raise ConfigError(f"TrainConfig.{name} must be 0 or more (0 turns it off).")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ConfigError("TrainConfig.beta1 and beta2 must be in [0, 1).")
        for name, allowed in CHOICES.items():
            _choice(self, name, allowed)
        _finite(self, "peak_flops", optional=True)
        if self.peak_flops is not None and not self.peak_flops > 0:
            raise ConfigError(f"TrainConfig.peak_flops={self.peak_flops!r} must be the device's "
                              "dense peak in FLOP/s, a positive number (an H100's bf16 peak is "
                              "9.894e14), or None for the known devices' table.")

    @property
    def warmup(self) -> int:
        """Warm-up steps actually used (default: 10% of max_steps, at most 1000)."""
        return self.resolved("warmup_steps")

    def resolved(self, name: str) -> Any:
        """A setting with its default filled in (warmup_steps, min_lr, checkpoint_interval)."""
        value = getattr(self, name)
        if value is not None:
            return value
        return {
            "warmup_steps": min(self.max_steps // 10, 1000),
            "min_lr": self.lr / 10,
            "checkpoint_interval": self.eval_interval,
        }[name]

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some settings changed (validated again)."""
        _reject_unknown(changes)
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict; unknown keys are an error that lists the known ones."""
        _reject_unknown(data)
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-able dict (defaults left as None)."""
        return dataclasses.asdict(self)


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warm-up, then decay to min_lr.

    >>> cfg = TrainConfig(max_steps=100, lr=1.0, warmup_steps=10, min_lr=0.0)
    >>> lr_at(cfg, 0), lr_at(cfg, 9), round(lr_at(cfg, 55), 3), lr_at(cfg, 100)
    (0.1, 1.0, 0.5, 0.0)
    """
    warmup, min_lr = cfg.warmup, cfg.resolved("min_lr")
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    if cfg.decay == "constant":
        return cfg.lr
    span = max(1, cfg.max_steps - warmup)
    progress = min(1.0, (step - warmup) / span)
    if cfg.decay == "linear":
        return cfg.lr - (cfg.lr - min_lr) * progress
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - min_lr)


#: Largest integer setting (an int64: steps, sizes and seeds are stored as one).
MAX_INT = 2**63 - 1


def _at_least(cfg: TrainConfig, low: int, *names: str, optional: bool = False) -> None:
    """Integer settings (not bools, not floats such as 3.5) in ``[low, MAX_INT]``."""
    for name in names:
        value = getattr(cfg, name)
        if optional and value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= MAX_INT:
            shown = repr(value) if len(repr(value)) < 40 else f"{type(value).__name__} (too long)"
            lowest = "-2**63" if low == -MAX_INT - 1 else str(low)
            raise ConfigError(f"TrainConfig.{name}={shown} must be a whole number (int) from "
                              f"{lowest} to 2**63-1" + (", or None." if optional else "."))


def _finite(cfg: TrainConfig, *names: str, optional: bool = False) -> None:
    """Number settings that are real (int or float, not bool) and finite."""
    for name in names:
        value = getattr(cfg, name)
        if optional and value is None:
            continue
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        try:
            ok = ok and math.isfinite(value)
        except OverflowError:  # an int too large for a float
            ok = False
        if not ok:
            shown = repr(value) if len(repr(value)) < 40 else f"{type(value).__name__} (too long)"
            raise ConfigError(f"TrainConfig.{name}={shown} must be a finite number"
                              + (" or None" if optional else "") + "; pass a float such as "
                              f"{getattr(TrainConfig, name) or 1e-4!r}.")


def _flags(cfg: TrainConfig, *names: str) -> None:
    for name in names:
        if not isinstance(getattr(cfg, name), bool):
            raise ConfigError(f"TrainConfig.{name}={getattr(cfg, name)!r} must be True or False.")


def _choice(cfg: TrainConfig, name: str, allowed: tuple[Any, ...]) -> None:
    if getattr(cfg, name) not in allowed:
        raise ConfigError(f"TrainConfig.{name}={getattr(cfg, name)!r}; use one of {allowed}.")


def _reject_unknown(data: dict[str, Any]) -> None:
    reject_unknown_keys(data, {f.name for f in fields(TrainConfig)}, "training setting")
