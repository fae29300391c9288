"""The GPU check of issue 19, one command: training MFU, a sharded run, generation speed.

Run by ``benchmarks/gpu.sh`` on a machine with one NVIDIA GPU (it installs llmlab from this
checkout, and wheels carried in ``.whl/`` for what the machine lacks). Cases, one JSON line
each (see benchmarks/README.md):

- ``gpu_gpt2_small_bf16_mfu`` / ``_compile_mfu``: the ``gpt2-small`` preset on random tokens,
  batch 16 x 1024, ``mixed_precision="bf16"`` without and with ``compile=True``: MFU of the
  Trainer's steady ``tokens_per_s`` (peer 1.0; target 0.40 on an H100, goal 0.50);
- ``gpu_gpt2_small_bf16_vs_hf`` (and ``_compile``): the same step, tokens/s, against
  transformers' ``GPT2LMHeadModel`` in a plain loop (bf16 autocast, fused AdamW, same shape);
- ``gpu_fsdp2_resume_exact``: ``sharding="fsdp"`` through ``torch.distributed.run`` on one GPU:
  20 steps straight against 10 + a resume to 20, the largest difference of the train losses
  of steps 11-20 (target <= 1e-3), and ``gpu_fsdp2_consolidate``: the merged final checkpoint
  loads with ``llmlab.load`` and gives the run's logged validation loss (ratio of the two);
- ``gpu_smollm2_b1_128`` / ``_b8_128``: greedy generation of a SmolLM2-135M-shaped Llama
  against ``LlamaForCausalLM.generate``, tokens/s (target 1.3).

``--dry-run`` runs every case on the CPU with tiny sizes and no sharding: what CI checks, so
that the first session with a GPU spends its minutes measuring.

Run: ``python benchmarks/gpu.py [--dry-run]``
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import emit, environment, log, time_pair  # noqa: E402
from generate import SMOLLM2_SHAPE, ours_fn, peer_fn  # noqa: E402
from train import random_token_rate  # noqa: E402

import llmlab  # noqa: E402
from llmlab.train import throughput  # noqa: E402

BENCH = "gpu"


def sizes(dry_run: bool) -> dict:
    """Shapes of every case: the real ones, or tiny ones for ``--dry-run`` on a CPU."""
    if dry_run:
        return dict(preset=("baby-char", dict(vocab_size=256)), batch=4, seq_len=32, steps=4,
                    fsdp_steps=4, fsdp_model={"preset": "baby-char", "n_layer": 2},
                    llama=dict(SMOLLM2_SHAPE, num_hidden_layers=2,
                                             vocab_size=512), new=8, gen_iters=1)
    return dict(preset=("gpt2-small", {}), batch=16, seq_len=1024, steps=120, fsdp_steps=20,
                fsdp_model={"preset": "shakespeare-char", "n_layer": 4}, llama=SMOLLM2_SHAPE, new=128, gen_iters=5)


def device_peak(device: torch.device, dry_run: bool) -> tuple[float, str]:
    if dry_run:
        return 1e12, "a made-up 1 TFLOP/s peak (dry run)"
    name = torch.cuda.get_device_name(device)
    peak = throughput.peak_flops_for(name, "bf16")
    if peak is None:
        raise SystemExit(f"no dense bf16 peak known for {name!r}; add it to "
                         "llmlab.train.throughput.PEAK_FLOPS")
    return peak, f"{name} dense bf16 peak"


# ------------------------------------------------------------------ training MFU and peer
def hf_step_rate(cfg: llmlab.ModelConfig, *, steps: int, batch: int, seq_len: int,
                 device: torch.device, compile: bool) -> float:
    """transformers' GPT-2 of the same shape, a plain bf16 training loop: steady tokens/s."""
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(
        vocab_size=cfg.vocab_size, n_positions=cfg.context_length, n_embd=cfg.d_model,
        n_layer=cfg.n_layer, n_head=cfg.n_head, resid_pdrop=0.0, embd_pdrop=0.0,
        attn_pdrop=0.0, attn_implementation="sdpa")).to(device)
    step_model = torch.compile(model) if compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, fused=device.type == "cuda")
    ids = torch.randint(0, cfg.vocab_size, (batch, seq_len), device=device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = step_model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        times.append(time.perf_counter() - start)
    return batch * seq_len / statistics.median(times[min(20, steps // 3):])


def case_training(args, size: dict, *, compile: bool) -> None:
    name, overrides = size["preset"]
    cfg = llmlab.ModelConfig.preset(name, **overrides)
    suffix = "_compile" if compile else ""
    device = args.device
    settings = dict(mixed_precision="bf16", compile=compile, cpu=device.type == "cpu")
    if args.dry_run:
        settings.update(mixed_precision="no", compile=False)
    ours, _whole = random_token_rate(cfg, steps=size["steps"], batch=size["batch"],
                                     seq_len=size["seq_len"], **settings)
    peak, peak_name = device_peak(device, args.dry_run)
    per_token = cfg.estimate(seq_len=size["seq_len"]).flops_per_token_train
    mfu = throughput.mfu(ours, per_token, peak)
    log(f"[gpu_{name}_bf16{suffix}] llmlab {ours:,.0f} tokens/s, MFU {mfu:.3f}")
    emit(BENCH, f"gpu_{name}_bf16{suffix}_mfu", "MFU", mfu, 1.0, peak_name,
         higher_is_better=True, target=0.40)
    theirs = hf_step_rate(cfg, steps=size["steps"], batch=size["batch"],
                          seq_len=size["seq_len"], device=device,
                          compile=compile and not args.dry_run)
    emit(BENCH, f"gpu_{name}_bf16_vs_hf{suffix}", "tokens/s", ours, theirs,
         "transformers GPT2LMHeadModel, plain bf16 loop", higher_is_better=True, target=1.0)


# ------------------------------------------------------------------ FSDP2: resume, consolidate
def launch(spec: dict, folder: Path, name: str, *, resume: str | None = None) -> dict:
    """``python -m torch.distributed.run --nproc_per_node 1 -m llmlab.train spec.json``."""
    path = folder / f"{name}.json"
    path.write_text(json.dumps(spec))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "1", "-m", "llmlab.train", str(path), "--no-progress"]
    if resume:
        command += ["--resume", resume]
    done = subprocess.run(command, capture_output=True, text=True, timeout=480)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def case_fsdp(args, size: dict) -> None:
    from llmlab.data import CausalLMData, save_corpus

    steps, half = size["fsdp_steps"], size["fsdp_steps"] // 2
    with tempfile.TemporaryDirectory(prefix="llmlab-gpu-") as tmp:
        folder = Path(tmp)
        tok = llmlab.CharTokenizer.train("".join(chr(0x10000 + i) for i in range(256)))
        ids = torch.randint(0, 256, (200_000,), generator=torch.Generator().manual_seed(0))
        save_corpus(CausalLMData(ids, tok, seq_len=64, val_fraction=0.05), folder / "data")
        # a constant schedule: the first half's run (max_steps=half) then trains at the
        # same learning rates as the straight one
        train = dict(max_steps=steps, batch_size=8, lr=1e-3, decay="constant", warmup_steps=1,
                     eval_interval=half,
                     eval_batches=2, checkpoint_interval=half, mixed_precision="bf16",
                     sharding="fsdp")
        if args.dry_run:
            train.update(mixed_precision="no", sharding=None, cpu=True)
        spec = {"model": {**size["fsdp_model"], "context_length": 64},
                "data": {"kind": "causal_lm", "saved": str(folder / "data")},
                "train": train, "run_dir": str(folder / "runs")}
        straight = launch(spec, folder, "straight")
        first = launch({**spec, "train": {**train, "max_steps": half}}, folder, "first")
        resumed = launch(spec, folder, "resume", resume=first["run_id"])
        store = folder / "runs"
        a = llmlab.runs.get(straight["run_id"], store).metrics.sort("step")
        b = llmlab.runs.get(resumed["run_id"], store).metrics.sort("step")
        la = a.filter(a["step"] > half)["train/loss"].to_list()
        lb = b.filter(b["step"] > half)["train/loss"].to_list()
        diff = max(abs(x - y) for x, y in zip(la, lb, strict=True))
        emit(BENCH, "gpu_fsdp2_resume_exact", "max |train loss diff| after the resume", diff, 1.0,
             "1.0 (target 1e-3)", higher_is_better=False, target=1e-3, digits=6)
        run = llmlab.runs.get(resumed["run_id"], store)
        model, _ = llmlab.load(run.consolidate(folder / "final"))
        logged = b.filter(b["val/loss"].is_not_null())["val/loss"].to_list()[-1]
        emit(BENCH, "gpu_fsdp2_consolidate", "val loss of the merged model / logged",
             _val_loss(model, folder / "data", args.device), logged,
             "the run's logged val/loss", higher_is_better=False, target=1.01)


def _val_loss(model, data_folder: Path, device: torch.device) -> float:
    from llmlab.data import load_corpus

    data = load_corpus(data_folder)
    gen = torch.Generator().manual_seed(1)  # the Trainer's eval generator: seed + 1
    model = model.to(device)
    losses = []
    with torch.no_grad():
        for _ in range(2):
            batch = {k: v.to(device) for k, v in data.get_batch("val", 8, gen).items()}
            losses.append(model(**batch).loss.float().item())
    return sum(losses) / len(losses)


# ------------------------------------------------------------------ generation
def case_generation(args, size: dict, batch: int) -> None:
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    with tempfile.TemporaryDirectory(prefix="llmlab-gpu-smol-") as folder:
        torch.manual_seed(0)
        LlamaForCausalLM(LlamaConfig(**size["llama"])).eval().save_pretrained(folder)
        ours = llmlab.load(folder, device=args.device)[0]
        peer = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        peer = peer.to(args.device).eval()
    ids = torch.randint(0, size["llama"]["vocab_size"], (batch, 32),
                        generator=torch.Generator().manual_seed(5)).to(args.device)
    new = size["new"]
    t_ours, t_peer = time_pair(ours_fn(ours, ids, new), peer_fn(peer, ids, new),
                               iters=size["gen_iters"], warmup=1, device=args.device)
    emit(BENCH, f"gpu_smollm2_b{batch}_{new}", "tokens/s", batch * new / t_ours.median * 1e3,
         batch * new / t_peer.median * 1e3, "transformers LlamaForCausalLM.generate",
         higher_is_better=True, target=1.3)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true",
                        help="every case on the CPU with tiny sizes (what CI runs)")
    args = parser.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on a GPU machine, or pass --dry-run")
    args.device = torch.device("cpu" if args.dry_run else "cuda")
    log(f"[{BENCH}] {environment(args.device)}")
    size = sizes(args.dry_run)
    case_training(args, size, compile=False)
    case_training(args, size, compile=True)
    case_fsdp(args, size)
    for batch in (1, 8):
        case_generation(args, size, batch)


if __name__ == "__main__":
    main()
