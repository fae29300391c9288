"""Forward (and backward) speed of llmlab's models, side by side with transformers' GPT-2.

Cases (one JSON line each on stdout; see benchmarks/README.md):

- ``fwd_bwd_shakespeare_char``: forward + backward of the ``shakespeare-char`` preset
  (bias=False) vs ``GPT2LMHeadModel`` of the same shape (which always has biases);
- ``fwd_bwd_shakespeare_char_bias``: the same with llmlab ``bias=True``, an exact same-shape,
  same-parameter-count comparison;
- ``explicit_vs_fused_attention``: llmlab inference with ``return_attention=True`` (explicit
  softmax path that returns the weights) vs the default fused ``scaled_dot_product_attention``.

Run: ``python benchmarks/forward.py [--quick] [--device cuda]``
"""

from __future__ import annotations

import os
import sys

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

BENCH = "forward"
PRESET = "shakespeare-char"
BATCH, SEQ = 12, 256


def llmlab_model(device: torch.device, **overrides) -> torch.nn.Module:
    """The preset (with ``overrides``) built by llmlab, in train mode."""
    cfg = llmlab.ModelConfig.preset(PRESET, **overrides)
    return llmlab.build_model(cfg, device=device, seed=0).train()


def hf_gpt2(device: torch.device) -> torch.nn.Module:
    """transformers' GPT-2 of the preset's shape, with its default (sdpa) attention."""
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = llmlab.ModelConfig.preset(PRESET)
    hf_cfg = GPT2Config(
        vocab_size=cfg.vocab_size, n_positions=cfg.context_length, n_embd=cfg.d_model,
        n_layer=cfg.n_layer, n_head=cfg.n_head, n_inner=4 * cfg.d_model,
        resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout,
        activation_function="gelu",  # exact erf GELU, as llmlab's "gelu"
        layer_norm_epsilon=cfg.norm_eps, use_cache=False,
        bos_token_id=None, eos_token_id=None, loss_type="ForCausalLM",
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(hf_cfg).to(device).train()
    return model


def fwd_bwd_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, hf: bool):
    """One training step's compute, without the optimizer: zero grads, forward, loss, backward."""

    def step() -> None:
        model.zero_grad(set_to_none=True)
        if hf:
            # HF shifts labels internally (predicts labels[:, 1:] from input[:, :-1]), so the
            # inputs are the labels; the logits and the backward cover the same [B, T] tokens.
            loss = model(input_ids=x, labels=x, use_cache=False).loss
        else:
            loss = model(x, targets=y).loss
        loss.backward()

    return step


def case_fwd_bwd(args, iters: int, warmup: int, *, case: str, bias: bool) -> dict:
    device = args.device
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 65, (BATCH, SEQ + 1), generator=gen)
    x, y = ids[:, :-1].contiguous().to(device), ids[:, 1:].contiguous().to(device)
    ours = llmlab_model(device, bias=bias)
    peer = hf_gpt2(device)
    log(f"[{case}] llmlab params {sum(p.numel() for p in ours.parameters()):,}, "
        f"transformers params {sum(p.numel() for p in peer.parameters()):,}, "
        f"attn_implementation={peer.config._attn_implementation}")
    t_ours, t_peer = time_pair(fwd_bwd_step(ours, x, y, hf=False), fwd_bwd_step(peer, x, y, hf=True),
                               iters=iters, warmup=warmup, device=device)
    log(f"[{case}] llmlab {t_ours} | transformers {t_peer} | "
        f"paired ratio {paired_ratio(t_ours, t_peer):.3f}")
    record = emit(BENCH, case, "ms/iter", t_ours.median, t_peer.median,
                  "transformers GPT2LMHeadModel (sdpa)", higher_is_better=False, target=1.0)
    del ours, peer
    return record


def case_explicit_vs_fused(args, iters: int, warmup: int) -> dict:
    device = args.device
    case = "explicit_vs_fused_attention"
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, 65, (BATCH, SEQ), generator=gen).to(device)
    model = llmlab_model(device).eval()

    @torch.no_grad()
    def explicit() -> None:
        model(x, return_attention=True)

    @torch.no_grad()
    def fused() -> None:
        model(x)

    t_explicit, t_fused = time_pair(explicit, fused, iters=iters, warmup=warmup, device=device)
    log(f"[{case}] explicit {t_explicit} | fused {t_fused} | "
        f"paired ratio {paired_ratio(t_explicit, t_fused):.3f}")
    return emit(BENCH, case, "ms/iter", t_explicit.median, t_fused.median, "llmlab fused",
                higher_is_better=False, target=1.5)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv=argv)
    import transformers

    log(f"[{BENCH}] {environment(args.device)} transformers {transformers.__version__}")
    iters, warmup = iterations(args, quick=10, full=30, warmup=3)
    case_fwd_bwd(args, iters, warmup, case="fwd_bwd_shakespeare_char", bias=False)
    case_fwd_bwd(args, iters, warmup, case="fwd_bwd_shakespeare_char_bias", bias=True)
    case_explicit_vs_fused(args, 2 * iters, warmup)


if __name__ == "__main__":
    main()
