"""SIGKILL a real training (the CLI, in a subprocess) at write boundaries, resume it, and check
that the finished run has every step exactly once, with the values of an uninterrupted run.

The kill points are sampled to keep this bounded: right after a checkpoint's ``COMPLETE``
appears (where rows logged since the last flush used to be lost for good), and mid-way
between checkpoints. ``benchmarks/crash_campaign.py`` runs many random kills by hand.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmlab.runs import RunStore

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MAX_STEPS = 12


def spec(tmp_path: Path, run_dir: Path) -> Path:
    path = tmp_path / f"spec-{run_dir.name}.json"
    path.write_text(json.dumps({
        "model": {"preset": "baby-char", "n_layer": 1, "d_model": 32, "n_head": 2,
                  "context_length": 32},
        "data": {"kind": "causal_lm", "source": str(SHARED / "tinyshakespeare.txt"),
                 "seq_len": 32},
        "train": {"max_steps": MAX_STEPS, "batch_size": 8, "lr": 3e-3, "eval_interval": 4,
                  "eval_batches": 1, "checkpoint_interval": 4, "seed": 1, "cpu": True},
        "run_dir": str(run_dir)}))
    return path


def cli(spec_path: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "llmlab.train", str(spec_path),
                             "--no-progress", *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def kill_when(process: subprocess.Popen, ready, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the kill point never came"
        time.sleep(0.002)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def only_run(run_dir: Path):
    (folder,) = [p for p in run_dir.glob("*/manifest.json")]
    return RunStore(run_dir).get(folder.parent.name)


def finished_metrics(spec_path: Path, run_dir: Path):
    run = only_run(run_dir)
    done = cli(spec_path, "--resume", run.id)
    out, err = done.communicate(timeout=180)
    assert done.returncode == 0, err
    run = RunStore(run_dir).get(run.id)
    assert run.status == "finished"
    return run.metrics


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reference")
    process = cli(spec(tmp, tmp / "runs"))
    assert process.wait(timeout=180) == 0, process.communicate()
    return only_run(tmp / "runs").metrics


def checkpoint_sealed(run_dir: Path, step: int):
    return lambda: any(run_dir.glob(f"*/checkpoints/step-{step:08d}/COMPLETE"))


def metrics_flushed_past(run_dir: Path, step: int):
    def ready():
        for manifest in run_dir.glob("*/manifest.json"):
            try:
                last = json.loads(manifest.read_text()).get("last_step")
            except ValueError:
                continue
            if isinstance(last, int) and last >= step:
                return True
        return False
    return ready


@pytest.mark.parametrize("kill_at", ["after COMPLETE of step 4", "after COMPLETE of step 8",
                                     "between checkpoints (step 6 flushed)"])
def test_a_killed_run_resumes_to_every_step_exactly_once(tmp_path, reference, kill_at):
    run_dir = tmp_path / "runs"
    spec_path = spec(tmp_path, run_dir)
    ready = {"after COMPLETE of step 4": checkpoint_sealed(run_dir, 4),
             "after COMPLETE of step 8": checkpoint_sealed(run_dir, 8),
             "between checkpoints (step 6 flushed)": metrics_flushed_past(run_dir, 6)}[kill_at]
    kill_when(cli(spec_path), ready)
    metrics = finished_metrics(spec_path, run_dir)
    assert metrics["step"].to_list() == list(range(1, MAX_STEPS + 1))
    assert metrics["train/loss"].to_list() == reference["train/loss"].to_list()
    assert metrics["val/loss"].drop_nulls().to_list() == (
        reference["val/loss"].drop_nulls().to_list())
