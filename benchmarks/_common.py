"""Shared pieces of llmlab's side-by-side benchmarks: arguments, alternating timing, JSON lines.

Every benchmark script prints one JSON object per case to stdout (progress and spread go to
stderr), with ``ratio = llmlab / peer``. A case is three lines::

    ours, peer = time_pair(run_llmlab, run_peer, iters=30, device=args.device)
    emit("forward", "fwd_bwd", "ms/iter", ours.median, peer.median, "transformers",
         higher_is_better=False, target=1.0)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


# --------------------------------------------------------------------------- arguments
def parse_args(
    description: str,
    *,
    argv: list[str] | None = None,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """Parse ``--quick``, ``--device``, ``--iters`` and ``--warmup`` (plus whatever ``extra`` adds).

    ``args.device`` comes back as a :class:`torch.device`; asking for CUDA where there is none
    falls back to the CPU with a warning on stderr, so one command works on every machine.
    ``args.iters`` / ``args.warmup`` are None unless given; use :func:`iterations` to resolve them.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="fewer timed iterations (a smoke run; noisier numbers)")
    parser.add_argument("--device", default="cpu",
                        help="cpu (default), cuda or cuda:N; falls back to cpu without CUDA")
    parser.add_argument("--iters", type=int, default=None,
                        help="timed iterations per side (overrides the --quick/full default)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed iterations per side before timing")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        log(f"--device {args.device} asked for but CUDA is not available; using cpu")
        device = torch.device("cpu")
    args.device = device
    return args


def iterations(args: argparse.Namespace, *, quick: int, full: int, warmup: int = 3) -> tuple[int, int]:
    """``(timed iterations, warmup iterations)`` for this run."""
    iters = args.iters if args.iters is not None else (quick if args.quick else full)
    return iters, (args.warmup if args.warmup is not None else warmup)


def log(message: str) -> None:
    """A progress line on stderr (stdout carries only the JSON lines)."""
    print(message, file=sys.stderr, flush=True)


def environment(device: torch.device) -> dict[str, Any]:
    """Versions and hardware worth writing next to a result."""
    import platform

    env: dict[str, Any] = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "device": str(device),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


# --------------------------------------------------------------------------- timing
@dataclass
class Timing:
    """Milliseconds of each timed call of one side, and their summary."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def iqr(self) -> float:
        """Interquartile range: the spread that a few outliers do not move."""
        if len(self.samples) < 4:
            return max(self.samples) - min(self.samples)
        q = statistics.quantiles(self.samples, n=4)
        return q[2] - q[0]

    def __str__(self) -> str:
        return (f"median {self.median:.2f} ms (min {min(self.samples):.2f}, "
                f"IQR {self.iqr:.2f}, n={len(self.samples)})")


def _sync(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], Any], device: torch.device | None = None) -> float:
    """Milliseconds one call of ``fn`` takes, with the device synchronised on both sides."""
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return (time.perf_counter() - start) * 1e3


def time_pair(
    a: Callable[[], Any],
    b: Callable[[], Any],
    *,
    iters: int,
    warmup: int = 3,
    device: torch.device | None = None,
) -> tuple[Timing, Timing]:
    """Time ``a`` and ``b`` in alternation and return both sides' timings.

    Each round runs both once, in order a-b on even rounds and b-a on odd rounds, so a load
    spike from another process or a warm cache from the previous call falls on both sides
    alike; compare medians. ``warmup`` untimed rounds come first (allocator, kernel choice).
    """
    for _ in range(warmup):
        a()
        b()
    _sync(device)
    ta: list[float] = []
    tb: list[float] = []
    for i in range(iters):
        if i % 2 == 0:
            ta.append(time_call(a, device))
            tb.append(time_call(b, device))
        else:
            tb.append(time_call(b, device))
            ta.append(time_call(a, device))
    return Timing(ta), Timing(tb)


def paired_ratio(a: Timing, b: Timing) -> float:
    """Median over rounds of ``a[i] / b[i]``: each pair ran back to back, so a slow drift in
    machine load cancels out. A cross-check on ``a.median / b.median`` for noisy machines."""
    return statistics.median(x / y for x, y in zip(a.samples, b.samples))


# --------------------------------------------------------------------------- output
def emit(  # noqa: PLR0917 - the six fields of a result line, in the order they print
    bench: str,
    case: str,
    unit: str,
    llmlab: float,
    peer: float,
    peer_name: str,
    *,
    higher_is_better: bool,
    target: float,
    digits: int = 3,
) -> dict[str, Any]:
    """Print one result as a JSON line on stdout and return it.

    ``ratio = llmlab / peer``; the target is met when the ratio is at least ``target`` for a
    higher-is-better unit (throughput) and at most ``target`` otherwise (time, memory).
    """
    ratio = llmlab / peer
    meets = ratio >= target if higher_is_better else ratio <= target
    record = {
        "bench": bench,
        "case": case,
        "unit": unit,
        "llmlab": round(llmlab, digits),
        "peer": round(peer, digits),
        "peer_name": peer_name,
        "ratio": round(ratio, 3),
        "higher_is_better": higher_is_better,
        "target": target,
        "meets_target": bool(meets),
    }
    print(json.dumps(record), flush=True)
    return record
