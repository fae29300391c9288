"""Compression on a trained ``shakespeare-char`` model: speed, size and the loss each costs.

The model is the ``shakespeare-char`` preset (6 layers, 6 heads, width 384, dropout 0)
trained with ``llmlab.Trainer`` on tinyshakespeare (``../shared/data/tinyshakespeare.txt``,
or ``$LLMLAB_DATA_DIR``) with lr 1e-3: 64-token windows, batch 16, 400 steps (``--quick``:
32-token windows, batch 8, 150 steps, so that it fits a shared 2-core machine). The trained
checkpoint is cached (``--cache-dir``, default ``$LLMLAB_CACHE_DIR/bench-compress`` or
``~/.cache/llmlab/bench-compress``) and reused by later runs with the same settings.
Validation loss is the Trainer's (20 fixed validation batches; 10 with ``--quick``).

Cases (one JSON line each on stdout; see benchmarks/README.md):

- ``int8_generate_b1``: greedy tokens/s, batch 1, 8-token prompt + 100 new tokens, dynamic
  int8 (``llmlab.compress.quantize(model, "int8")``) vs the float32 model (target >= 1.5x);
- ``int8_generate_b8``: the same with 8 prompts;
- ``int8_val_loss``: validation loss, int8 vs float32 (target: increase <= 0.05);
- ``int8_disk_bytes`` / ``int4_disk_bytes``: safetensors size vs float32;
- ``heads30_finetune_val_loss``: 30% of heads removed (gradient importance, Michel et al.
  2019) then fine-tuned for ``--finetune-steps``, vs the unpruned model (increase <= 0.1);
- ``distill_half_width``: a half-width student (width 192) distilled from the model
  (T=2, alpha=0.5) vs the same student trained from scratch for the same steps (lower loss).

Run: ``python benchmarks/compress.py [--quick] [--threads N] [--steps N] [--cases quantize]``
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import emit, environment, iterations, log, paired_ratio, parse_args, time_pair  # noqa: E402

import llmlab  # noqa: E402
from llmlab import compress  # noqa: E402

BENCH = "compress"
PRESET = "shakespeare-char"
LR = 1e-3
FULL = {"seq_len": 64, "batch": 16, "steps": 400, "finetune": 100, "eval_batches": 20}
QUICK = {"seq_len": 32, "batch": 8, "steps": 150, "finetune": 30, "eval_batches": 10}
SEQ_LEN, BATCH, EVAL_BATCHES = FULL["seq_len"], FULL["batch"], FULL["eval_batches"]


def main(argv: list[str] | None = None) -> None:
    def extra(parser):
        parser.add_argument("--threads", type=int, default=None,
                            help="torch intra-op threads (default: torch's)")
        parser.add_argument("--steps", type=int, default=None,
                            help="training steps of the model and of each student "
                                 "(default 150 with --quick, else 400)")
        parser.add_argument("--finetune-steps", type=int, default=None,
                            help="fine-tuning steps after head pruning (default 30 / 100)")
        parser.add_argument("--cache-dir", default=None, help="where the trained model is kept")
        parser.add_argument("--cases", default="quantize,prune,distill",
                            help="comma-separated groups of cases to run (default: all)")

    args = parse_args(__doc__.splitlines()[0], argv=argv, extra=extra)
    if args.threads:
        torch.set_num_threads(args.threads)
    global SEQ_LEN, BATCH, EVAL_BATCHES  # noqa: PLW0603 - one setting for the whole script
    plan = QUICK if args.quick else FULL
    SEQ_LEN, BATCH, EVAL_BATCHES = plan["seq_len"], plan["batch"], plan["eval_batches"]
    steps = args.steps or plan["steps"]
    finetune = args.finetune_steps or plan["finetune"]
    log(f"environment: {json.dumps(environment(args.device))}")
    data = shakespeare_data()
    runs = tempfile.mkdtemp(prefix="llmlab-bench-compress-")
    try:
        model = trained_model(data, steps, cache_dir(args), runs)
        base = val_loss(model, data, runs)
        log(f"float32 model after {steps} steps: val loss {base:.4f}")
        cases = set(args.cases.split(","))
        if "quantize" in cases:
            quantization_cases(args, model, data, base, runs)
        if "prune" in cases:
            pruning_case(model, data, base, finetune, runs)
        if "distill" in cases:
            distillation_case(model, data, steps, runs)
    finally:
        shutil.rmtree(runs, ignore_errors=True)


# --------------------------------------------------------------------------- the model
def shakespeare_data():
    folder = os.environ.get("LLMLAB_DATA_DIR") or str(
        Path(__file__).resolve().parents[2] / "shared" / "data")
    os.environ["LLMLAB_DATA_DIR"] = folder
    text = llmlab.data.load_text("tinyshakespeare")
    tok = llmlab.CharTokenizer.train(text)
    return llmlab.data.CausalLMData.from_text(text, tok, seq_len=SEQ_LEN)


def cache_dir(args) -> Path:
    if args.cache_dir:
        return Path(args.cache_dir)
    root = os.environ.get("LLMLAB_CACHE_DIR") or Path.home() / ".cache" / "llmlab"
    return Path(root) / "bench-compress"


def trained_model(data, steps: int, cache: Path, runs: str) -> torch.nn.Module:
    folder = cache / f"{PRESET}-seq{SEQ_LEN}-batch{BATCH}-steps{steps}"
    if (folder / "model.safetensors").exists():
        log(f"reusing the trained model in {folder}")
        return llmlab.load(folder)[0]
    cfg = llmlab.ModelConfig.preset(PRESET, dropout=0.0, vocab_size=data.tokenizer.vocab_size)
    model = llmlab.build_model(cfg, seed=0)
    start = time.perf_counter()
    train(model, data, steps, runs, "teacher")
    log(f"trained {PRESET} for {steps} steps in {time.perf_counter() - start:.0f} s")
    llmlab.save(model, folder, tokenizer=data.tokenizer)
    return model.eval()


def train(model, data, steps: int, runs: str, name: str, **extra):
    trainer = llmlab.Trainer(model, data, max_steps=steps, batch_size=BATCH, lr=LR,
                             eval_interval=steps, eval_batches=EVAL_BATCHES,
                             checkpoint_interval=0, run_dir=runs, run_name=name,
                             progress=False, **extra)
    return trainer.fit()


def val_loss(model, data, runs: str) -> float:
    trainer = llmlab.Trainer(model, data, batch_size=BATCH, eval_batches=EVAL_BATCHES, run_dir=runs,
                             progress=False)
    return trainer.evaluate()["val/loss"]


def emit_increase(case: str, ours: float, base: float, peer_name: str, max_increase: float,
                  **info) -> None:
    """A loss case: ``delta = ours - base`` must stay at most ``max_increase``."""
    delta = ours - base
    print(json.dumps({"bench": BENCH, "case": case, "unit": "val_loss", "llmlab": round(ours, 4),
                      "peer": round(base, 4), "peer_name": peer_name, "delta": round(delta, 4),
                      "ratio": round(ours / base, 4), "higher_is_better": False,
                      "target": f"delta <= {max_increase}",
                      "meets_target": bool(delta <= max_increase), **info}), flush=True)


# --------------------------------------------------------------------------- cases
def quantization_cases(args, model, data, base: float, runs: str) -> None:
    int8 = compress.quantize(model, "int8")
    iters, warmup = iterations(args, quick=3, full=8, warmup=1)
    for batch in (1, 8):
        prompts = [data.get_batch("val", 1, torch.Generator().manual_seed(i))["input_ids"][
            0, :8].tolist() for i in range(batch)]

        def run_int8(prompts=prompts):
            llmlab.generate(int8, None, prompts, max_new_tokens=100)

        def run_float(prompts=prompts):
            llmlab.generate(model, None, prompts, max_new_tokens=100)

        ours, peer = time_pair(run_int8, run_float, iters=iters, warmup=warmup)
        tokens = 100 * batch
        log(f"b{batch} int8 {ours}; float32 {peer}; paired ratio "
            f"{1 / paired_ratio(ours, peer):.2f}x")
        emit(BENCH, f"int8_generate_b{batch}", "tokens/s", tokens / ours.median * 1e3,
             tokens / peer.median * 1e3, "llmlab float32", higher_is_better=True, target=1.5)
    emit_increase("int8_val_loss", val_loss(int8, data, runs), base, "llmlab float32", 0.05)
    float_size = compress.model_size(model)
    for mode, name in (("int8", "int8"), ("int4-weight", "int4")):
        size = compress.model_size(int8 if mode == "int8" else compress.quantize(model, mode))
        emit(BENCH, f"{name}_disk_bytes", "bytes", size.disk_bytes, float_size.disk_bytes,
             "llmlab float32", higher_is_better=False, target=0.35 if name == "int8" else 0.25)


def pruning_case(model, data, base: float, finetune: int, runs: str) -> None:
    start = time.perf_counter()
    pruned = compress.prune(model, amount=0.3, structured="heads", data=data,
                            batch_size=BATCH, finetune_steps=finetune, lr=LR / 3,
                            run_dir=runs, eval_interval=finetune, eval_batches=EVAL_BATCHES,
                            checkpoint_interval=0)
    log(f"pruned 30% of heads and fine-tuned {finetune} steps in "
        f"{time.perf_counter() - start:.0f} s; heads per layer {compress.head_counts(pruned)}")
    emit_increase("heads30_finetune_val_loss", val_loss(pruned, data, runs), base,
                  "llmlab unpruned", 0.1, params=pruned.num_params(),
                  params_unpruned=model.num_params(), finetune_steps=finetune)


def distillation_case(model, data, steps: int, runs: str) -> None:
    student_cfg = model.config.replace(d_model=model.config.d_model // 2)
    start = time.perf_counter()
    distilled = compress.distill(model, student_cfg, data, steps=steps, batch_size=BATCH,
                                 lr=LR, temperature=2.0, alpha=0.5, run_dir=runs,
                                 eval_interval=steps, eval_batches=EVAL_BATCHES,
                                 checkpoint_interval=0, progress=False)
    log(f"distilled for {steps} steps in {time.perf_counter() - start:.0f} s")
    scratch = llmlab.build_model(student_cfg, seed=0)
    train(scratch, data, steps, runs, "scratch-student")
    emit(BENCH, "distill_half_width", "val_loss", val_loss(distilled, data, runs),
         val_loss(scratch, data, runs), "same student from scratch", higher_is_better=False,
         target=1.0, digits=4)


if __name__ == "__main__":
    main()
