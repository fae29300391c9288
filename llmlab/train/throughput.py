"""Throughput and model-FLOPs utilisation (MFU) of a training run.

MFU is the share of the devices' dense peak that the model's own arithmetic uses:
``flops_per_token_train x tokens/s / (peak x processes)``, where
``flops_per_token_train = 6 N + 12 L d T`` comes from :func:`llmlab.estimate` (the PaLM
appendix B count; recomputation and padding are not credited). The Trainer logs
``tokens_per_s`` every logging interval, and ``mfu`` beside it when the peak is known: from
``TrainConfig.peak_flops`` or, for the GPUs below, from their datasheets. CPUs have no entry
(their peak depends on the cores, vector width and clock a notebook happens to get); pass
``peak_flops=`` to get MFU there.

>>> peak_flops_for("NVIDIA H100 80GB HBM3", "bf16")
989400000000000.0
>>> round(mfu(tokens_per_s=1e5, flops_per_token=7.5e8, peak=989.4e12), 4)
0.0758
"""

from __future__ import annotations

from typing import Any

__all__ = ["PEAK_FLOPS", "flops_per_token", "mfu", "peak_flops_for", "run_peak_flops"]

#: Dense peak FLOP/s per device, (16-bit tensor cores, plain float32), matched by a piece of
#: the device name in order (the first match wins). From NVIDIA's datasheets: H100 SXM and
#: H200 989.4 / 66.9 TFLOP/s; H100 PCIe 756 / 51.2; H100 NVL 835 / 60; A100 312 / 19.5;
#: L4 121 / 30.3 (the datasheets' bf16 figures "with sparsity" halved).
PEAK_FLOPS: tuple[tuple[str, float, float], ...] = (
    ("H100 PCIe", 756e12, 51.2e12),
    ("H100 NVL", 835e12, 60e12),
    ("H100", 989.4e12, 66.9e12),
    ("H200", 989.4e12, 66.9e12),
    ("A100", 312e12, 19.5e12),
    ("L4", 121e12, 30.3e12),
)


def peak_flops_for(device_name: str, mixed_precision: str) -> float | None:
    """The dense peak of one device named ``device_name`` at ``mixed_precision`` ("bf16",
    "fp16" or "no"), or None when the table does not know it."""
    for piece, half, single in PEAK_FLOPS:
        if piece.lower() in device_name.lower():
            return half if mixed_precision in ("bf16", "fp16") else single
    return None


def run_peak_flops(cfg: Any, device: Any) -> float | None:
    """The peak of one device of a run: ``cfg.peak_flops`` if given, else the table's entry
    for the CUDA device ``device`` trains on (None on a CPU or an unknown device)."""
    if cfg.peak_flops is not None:
        return float(cfg.peak_flops)
    import torch

    if getattr(device, "type", str(device)) != "cuda":
        return None
    return peak_flops_for(torch.cuda.get_device_name(device), cfg.mixed_precision)


def flops_per_token(model: Any, seq_len: int) -> int | None:
    """Training FLOPs per token of an llmlab model at ``seq_len`` (None without a config)."""
    from llmlab.estimate import estimate

    cfg = getattr(model, "config", None)
    return None if cfg is None else estimate(cfg, seq_len=seq_len).flops_per_token_train


def mfu(tokens_per_s: float, flops_per_token: float, peak: float, processes: int = 1) -> float:
    """Model-FLOPs utilisation of ``processes`` devices of ``peak`` FLOP/s each."""
    return tokens_per_s * flops_per_token / (peak * processes)
