"""Generation speed of llmlab, side by side with transformers' ``generate`` on the same weights.

The model is the ``shakespeare-char`` preset with random weights (``bias=True``, which GPT-2
needs to be exported), in eval mode, written with ``llmlab.interop.export_gpt2`` and read
back by ``transformers.GPT2LMHeadModel.from_pretrained``, so both sides compute with the
same weights; every case first checks that both produce the same tokens. Greedy decoding,
eos disabled on both sides so both generate exactly ``max_new_tokens``.

Cases (one JSON line each on stdout; see benchmarks/README.md):

- ``greedy_b1_200``: tokens/s, batch 1, 32-token prompt, 200 new tokens, vs transformers
  ``generate(do_sample=False, use_cache=True, min_new_tokens=max_new_tokens)``;
- ``greedy_b8_200``: the same with a batch of 8 prompts;
- ``cache_vs_recompute_250``: llmlab with its KV cache vs llmlab ``use_cache=False``
  (recomputing the whole sequence each step), 7-token prompt + 250 new tokens, which fits
  the preset's 256-token context without sliding;
- ``ttft_prompt256``: time to the first token (ms) after a 256-token prompt, vs transformers.
- ``smollm2_b1_128``: a Llama of SmolLM2-135M's shape (30 layers, width 576, 9 query / 3
  key-value heads, SwiGLU 1536, RMSNorm, RoPE theta 100,000, tied embeddings, vocabulary
  49,152; random weights saved by transformers and read by ``llmlab.load``): tokens/s, batch 1,
  32-token prompt, 128 new tokens, vs ``LlamaForCausalLM.generate``;
- ``smollm2_load``: ms for ``llmlab.load(folder)`` of that model vs
  ``AutoModelForCausalLM.from_pretrained(folder)``.
- ``tinystories_b1_128``: the same on a GPT-Neo of TinyStories-33M's shape (4 layers, width
  768, 16 heads, full and 256-token local attention in turn, vocabulary 50,257), vs
  ``GPTNeoForCausalLM.generate``.
- ``default_vs_1thread_b1`` / ``_b8``: llmlab at the default thread count against llmlab
  with ``torch.set_num_threads(1)`` (target >= 1: more threads never cost speed).

``--load contended`` (or ``both``, the default) runs the throughput cases again with a
busy-loop process of the benchmark's own on one core, named ``<case>_contended``: what a
notebook user has beside a generation (the browser, a training thread, a second kernel).
Every case runs at torch's default thread count unless ``--threads`` is given.

Run: ``python benchmarks/generate.py [--quick] [--threads N] [--load idle|contended|both]``
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (  # noqa: E402
    emit,
    environment,
    iterations,
    log,
    paired_ratio,
    parse_args,
    time_pair,
)

import llmlab  # noqa: E402
from llmlab.generation import generate  # noqa: E402

BENCH = "generate"
PRESET = "shakespeare-char"
PEER = "transformers GPT2LMHeadModel.generate (sdpa, cache)"


def models(device: torch.device, folder: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The preset built by llmlab and the same weights read by transformers, both in eval."""
    from transformers import GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    cfg = llmlab.ModelConfig.preset(PRESET, bias=True)
    ours = llmlab.build_model(cfg, seed=0).eval()
    llmlab.interop.export_gpt2(ours, folder)
    peer = GPT2LMHeadModel.from_pretrained(folder).to(device).eval()
    return ours.to(device), peer


def prompts(batch: int, length: int, device: torch.device) -> torch.Tensor:
    gen = torch.Generator().manual_seed(batch * 1000 + length)
    return torch.randint(0, 65, (batch, length), generator=gen).to(device)


def ours_fn(model, ids: torch.Tensor, new: int, **kw):
    def run():
        return generate(model, None, ids, max_new_tokens=new, temperature=0,
                        stop_token_ids=[], **kw)
    return run


def peer_fn(model, ids: torch.Tensor, new: int):
    mask = torch.ones_like(ids)

    @torch.inference_mode()
    def run():
        return model.generate(ids, attention_mask=mask, do_sample=False, use_cache=True,
                              max_new_tokens=new, min_new_tokens=new, eos_token_id=None,
                              pad_token_id=0)
    return run


class CpuClock:
    """Wraps a timed callable to also record the process CPU time of each call.

    With one intra-op thread, CPU time leaves out the time the process waited while other
    processes had the cores, so it is a contention-free cross-check of the wall-clock
    medians that ``time_pair`` reports (warmup calls are dropped by ``summary``).
    """

    def __init__(self, fn):
        self.fn, self.samples = fn, []

    def __call__(self):
        start = time.process_time()
        out = self.fn()
        self.samples.append((time.process_time() - start) * 1e3)
        return out

    def median(self, warmup: int) -> float:
        return statistics.median(self.samples[warmup:])


def cpu_note(a: CpuClock, b: CpuClock, warmup: int) -> str:
    ma, mb = a.median(warmup), b.median(warmup)
    return f"process CPU time medians {ma:.1f} / {mb:.1f} ms, ratio {ma / mb:.3f}"


def same_tokens(ours, peer, ids: torch.Tensor) -> bool:
    mine = ours()
    mine = mine if isinstance(mine, list) else [mine]
    theirs = peer()[:, ids.shape[1]:].tolist()
    return [g.token_ids for g in mine] == theirs


@contextlib.contextmanager
def busy_core(on: bool):
    """A process spinning on one core while the block runs (``on``), stopped after."""
    if not on:
        yield
        return
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let the scheduler see it
        yield
    finally:
        spin.kill()
        spin.wait()


def one_thread(fn):
    """``fn`` run with one intra-op thread, the count restored after."""
    def run():
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn()
        finally:
            torch.set_num_threads(before)
    return run


def case_threads(args, model, iters, warmup, *, batch: int, suffix: str):
    case, new = f"default_vs_1thread_b{batch}{suffix}", 200
    ids = prompts(batch, 32, args.device)
    default, single = ours_fn(model, ids, new), one_thread(ours_fn(model, ids, new))
    t_d, t_1 = time_pair(default, single, iters=iters, warmup=warmup, device=args.device)
    log(f"[{case}] default ({torch.get_num_threads()} threads) {t_d} | 1 thread {t_1} | "
        f"paired time ratio {paired_ratio(t_d, t_1):.3f}")
    tokens = batch * new
    return emit(BENCH, case, "tokens/s", tokens / t_d.median * 1e3, tokens / t_1.median * 1e3,
                "llmlab with torch.set_num_threads(1)", higher_is_better=True, target=1.0)


def case_throughput(args, ours_model, peer_model, iters, warmup, *, batch: int, target: float,
                    suffix: str = ""):
    case, new = f"greedy_b{batch}_200{suffix}", 200
    ids = prompts(batch, 32, args.device)
    ours, peer = ours_fn(ours_model, ids, new), peer_fn(peer_model, ids, new)
    log(f"[{case}] same tokens as transformers: {same_tokens(ours, peer, ids)}")
    ours, peer = CpuClock(ours), CpuClock(peer)
    t_ours, t_peer = time_pair(ours, peer, iters=iters, warmup=warmup, device=args.device)
    log(f"[{case}] llmlab {t_ours} | transformers {t_peer} | "
        f"paired time ratio {paired_ratio(t_ours, t_peer):.3f} | "
        f"{cpu_note(ours, peer, warmup)}")
    tokens = batch * new
    return emit(BENCH, case, "tokens/s", tokens / t_ours.median * 1e3,
                tokens / t_peer.median * 1e3, PEER, higher_is_better=True, target=target)


def case_cache(args, model, iters, warmup):
    case, new = "cache_vs_recompute_250", 250
    ids = prompts(1, 7, args.device)
    cached, recompute = ours_fn(model, ids, new), ours_fn(model, ids, new, use_cache=False)
    log(f"[{case}] same tokens: {cached()[0].token_ids == recompute()[0].token_ids}")
    cached, recompute = CpuClock(cached), CpuClock(recompute)
    t_c, t_r = time_pair(cached, recompute, iters=iters, warmup=warmup, device=args.device)
    log(f"[{case}] cache {t_c} | recompute {t_r} | paired time ratio "
        f"{paired_ratio(t_c, t_r):.3f} | {cpu_note(cached, recompute, warmup)}")
    return emit(BENCH, case, "tokens/s", new / t_c.median * 1e3, new / t_r.median * 1e3,
                "llmlab use_cache=False", higher_is_better=True, target=3.0)


def case_ttft(args, ours_model, peer_model, iters, warmup):
    case = "ttft_prompt256"
    ids = prompts(1, 256, args.device)
    ours, peer = ours_fn(ours_model, ids, 1), peer_fn(peer_model, ids, 1)
    log(f"[{case}] same token as transformers: {same_tokens(ours, peer, ids)}")
    ours, peer = CpuClock(ours), CpuClock(peer)
    t_ours, t_peer = time_pair(ours, peer, iters=iters, warmup=warmup, device=args.device)
    log(f"[{case}] llmlab {t_ours} | transformers {t_peer} | "
        f"paired ratio {paired_ratio(t_ours, t_peer):.3f} | {cpu_note(ours, peer, warmup)}")
    return emit(BENCH, case, "ms", t_ours.median, t_peer.median, PEER,
                higher_is_better=False, target=1.0)


SMOLLM2_SHAPE = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                     num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                     max_position_embeddings=2048, rope_theta=100000.0, rms_norm_eps=1e-5,
                     tie_word_embeddings=True, bos_token_id=None, eos_token_id=None)
SMOL_PEER = "transformers LlamaForCausalLM.generate (sdpa, cache)"


def smollm2_folder(folder: str) -> str:
    """A random SmolLM2-135M-shaped Llama saved by transformers, as the Hub would hold it."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(**SMOLLM2_SHAPE)).eval().save_pretrained(folder)
    return folder


def peer_causal_lm(folder: str, device: torch.device) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).to(device).eval()


# TinyStories-33M (GPT-Neo): 4 layers of width 768, 16 heads, full and local (256) in turn
TINYSTORIES_SHAPE = dict(vocab_size=50257, hidden_size=768, num_layers=4, num_heads=16,
                         attention_types=[[["global", "local"], 2]], window_size=256,
                         max_position_embeddings=2048, bos_token_id=None, eos_token_id=None)
TINYSTORIES_PEER = "transformers GPTNeoForCausalLM.generate (cache)"


def tinystories_folder(folder: str) -> str:
    """A random TinyStories-33M-shaped GPT-Neo saved by transformers."""
    from transformers import GPTNeoConfig, GPTNeoForCausalLM

    torch.manual_seed(0)
    GPTNeoForCausalLM(GPTNeoConfig(**TINYSTORIES_SHAPE)).eval().save_pretrained(folder)
    return folder


def case_smollm2(args, folder: str, iters: int, warmup: int, suffix: str = ""):
    return case_real_model(args, folder, f"smollm2_b1_128{suffix}",
                           vocab=SMOLLM2_SHAPE["vocab_size"], peer_name=SMOL_PEER, iters=iters,
                           warmup=warmup)


def case_tinystories(args, folder: str, iters: int, warmup: int, suffix: str = ""):
    return case_real_model(args, folder, f"tinystories_b1_128{suffix}",
                           vocab=TINYSTORIES_SHAPE["vocab_size"], peer_name=TINYSTORIES_PEER,
                           iters=iters, warmup=warmup)


def case_real_model(args, folder: str, case: str, *, vocab: int, peer_name: str, iters: int,
                    warmup: int):
    """Greedy batch 1, 128 new tokens after 32, from a folder transformers wrote: llmlab.load
    against AutoModelForCausalLM, the same weights on both sides."""
    new = 128
    ours = llmlab.load(folder, device=args.device)[0]
    peer = peer_causal_lm(folder, args.device)
    ids = torch.randint(0, vocab, (1, 32),
                        generator=torch.Generator().manual_seed(5)).to(args.device)
    mine, theirs = ours_fn(ours, ids, new), peer_fn(peer, ids, new)
    log(f"[{case}] same tokens as transformers: {same_tokens(mine, theirs, ids)}")
    t_ours, t_peer = time_pair(mine, theirs, iters=iters, warmup=warmup, device=args.device)
    log(f"[{case}] llmlab {t_ours} | transformers {t_peer} | "
        f"paired time ratio {paired_ratio(t_ours, t_peer):.3f}")
    return emit(BENCH, case, "tokens/s", new / t_ours.median * 1e3, new / t_peer.median * 1e3,
                peer_name, higher_is_better=True, target=1.3)


def case_smollm2_load(args, folder: str, iters: int):
    case = "smollm2_load"
    t_ours, t_peer = time_pair(lambda: llmlab.load(folder),
                               lambda: peer_causal_lm(folder, "cpu"), iters=iters, warmup=1)
    log(f"[{case}] llmlab.load {t_ours} | from_pretrained {t_peer} | "
        f"paired time ratio {paired_ratio(t_ours, t_peer):.3f}")
    return emit(BENCH, case, "ms", t_ours.median, t_peer.median,
                "transformers AutoModelForCausalLM.from_pretrained", higher_is_better=False,
                target=1.5)


def main(argv: list[str] | None = None) -> None:
    def extra(parser):
        parser.add_argument("--threads", type=int, default=None,
                            help="torch intra-op threads for both sides (default: torch's)")
        parser.add_argument("--cases",
                            default="b1,b8,threads,cache,ttft,smollm2,load,tinystories",
                            help="comma-separated subset of b1,b8,threads,cache,ttft,smollm2,"
                                 "load,tinystories")
        parser.add_argument("--load", choices=("idle", "contended", "both"), default="both",
                            help="run the throughput cases idle, beside a busy core, or both")

    args = parse_args(__doc__.splitlines()[0], argv=argv, extra=extra)
    if args.threads is not None and args.threads < 1:
        raise SystemExit(f"--threads must be >= 1, got {args.threads}; leave it out for "
                         "torch's default.")
    if args.threads:
        torch.set_num_threads(args.threads)
    log(f"[{BENCH}] {environment(args.device)}")
    iters, warmup = iterations(args, quick=3, full=10, warmup=1)
    cases = set(args.cases.split(","))
    loads = {"idle": [False], "contended": [True], "both": [False, True]}[args.load]
    with tempfile.TemporaryDirectory() as folder:
        ours, peer = models(args.device, folder)
        for busy in loads:
            suffix = "_contended" if busy else ""
            with busy_core(busy):
                for batch, target in ((1, 1.5), (8, 1.2)):
                    if f"b{batch}" in cases:
                        case_throughput(args, ours, peer, iters, warmup, batch=batch,
                                        target=target, suffix=suffix)
                    if "threads" in cases:
                        case_threads(args, ours, iters, warmup, batch=batch, suffix=suffix)
        if "cache" in cases:
            case_cache(args, ours, max(3, iters // 2), warmup)
        if "ttft" in cases:
            case_ttft(args, ours, peer, 3 * iters, warmup)
    if cases & {"smollm2", "load"}:
        with tempfile.TemporaryDirectory() as folder:
            smollm2_folder(folder)
            if "smollm2" in cases:
                for busy in loads:
                    with busy_core(busy):
                        case_smollm2(args, folder, max(3, iters // 2), warmup,
                                     suffix="_contended" if busy else "")
            if "load" in cases:
                case_smollm2_load(args, folder, max(3, iters // 2))
    if "tinystories" in cases:
        with tempfile.TemporaryDirectory() as folder:
            tinystories_folder(folder)
            for busy in loads:
                with busy_core(busy):
                    case_tinystories(args, folder, max(3, iters // 2), warmup,
                                     suffix="_contended" if busy else "")


if __name__ == "__main__":
    main()
