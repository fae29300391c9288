"""Crash campaign: SIGKILL one chained training again and again, resume it each time, and
count the steps of the finished run that match an uninterrupted run (run by hand; the unit
tests sample a few kill points in tests/test_crash_resume.py).

The training is the CLI (``python -m llmlab.train spec.json``, baby-char, 1 layer, width 32)
with a checkpoint every 4 steps. Each attempt runs for a random time (0-0.6 s once it has
written its manifest) before the SIGKILL, then ``--resume`` goes on; the
campaign ends when a resume finishes. Case, one JSON line on stdout:

- ``random_kills_<N>``: steps of the finished run present once with the uninterrupted run's
  ``train/loss`` (llmlab) over the uninterrupted run's steps (peer); target ratio 1.0.

Run: ``python benchmarks/crash_campaign.py [--kills 20] [--steps 200] [--seed 0]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import emit, log  # noqa: E402

from llmlab.runs import RunStore  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def write_spec(folder: Path, steps: int) -> Path:
    path = folder / "spec.json"
    path.write_text(json.dumps({
        "model": {"preset": "baby-char", "n_layer": 1, "d_model": 32, "n_head": 2,
                  "context_length": 32},
        "data": {"kind": "causal_lm", "source": str(SHARED / "tinyshakespeare.txt"),
                 "seq_len": 32},
        "train": {"max_steps": steps, "batch_size": 8, "lr": 3e-3, "eval_interval": 4,
                  "eval_batches": 1, "checkpoint_interval": 4, "seed": 1, "cpu": True},
        "run_dir": str(folder / "runs")}))
    return path


def start(spec: Path, resume: str | None) -> subprocess.Popen:
    extra = ["--resume", resume] if resume else []
    return subprocess.Popen([sys.executable, "-m", "llmlab.train", str(spec), "--no-progress",
                             *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run_id(folder: Path) -> str | None:
    found = list((folder / "runs").glob("*/manifest.json"))
    return found[0].parent.name if found else None


def campaign(folder: Path, spec: Path, kills: int, rng: random.Random) -> int:
    """Kill the training ``kills`` times (while it still runs), then let it finish."""
    done = 0
    while done < kills:
        before = run_id(folder) and _mtime(folder)
        process = start(spec, run_id(folder))
        while process.poll() is None and (run_id(folder) is None or _mtime(folder) == before):
            time.sleep(0.01)  # start-up: wait until this attempt writes its manifest
        time.sleep(rng.uniform(0.0, 0.6))
        if process.poll() is not None:
            break  # it finished before this kill
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        done += 1
        log(f"[crash_campaign] kill {done}: last_step "
            f"{RunStore(folder / 'runs').get(run_id(folder)).manifest.get('last_step')}")
    final = start(spec, run_id(folder))
    assert final.wait() == 0, final.stderr.read()
    return done


def _mtime(folder: Path) -> float:
    return (folder / "runs" / run_id(folder) / "manifest.json").stat().st_mtime


def losses(folder: Path) -> dict[int, float]:
    frame = RunStore(folder / "runs").get(run_id(folder)).metrics.drop_nulls("train/loss")
    return dict(zip(frame["step"].to_list(), frame["train/loss"].to_list(), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as ref_dir, tempfile.TemporaryDirectory() as crash_dir:
        ref, crashed = Path(ref_dir), Path(crash_dir)
        assert start(write_spec(ref, args.steps), None).wait() == 0
        kills = campaign(crashed, write_spec(crashed, args.steps), args.kills,
                         random.Random(args.seed))
        expected, got = losses(ref), losses(crashed)
        matching = sum(got.get(step) == value for step, value in expected.items())
        log(f"[crash_campaign] {kills} kills; {matching}/{len(expected)} steps as uninterrupted; "
            f"missing {sorted(set(expected) - set(got))}")
        emit("crash_campaign", f"random_kills_{kills}", "steps as uninterrupted", matching,
             len(expected), "the uninterrupted run", higher_is_better=True, target=1.0)


if __name__ == "__main__":
    main()
