"""Attention inspection: capture cost, bytes to the browser, and head-switch latency.

Model: GPT with 12 layers x 12 heads (d_model 192, vocab 256, random weights), so the CPU
cost stays small while the attention has the shape of GPT-2 small's.

Cases (one JSON line each on stdout; see benchmarks/README.md):

- ``capture_<T>``: ``llmlab.inspect`` (every layer and head) vs a plain fused forward of
  the same model, ms per call;
- ``first_paint_bytes_<T>``: what llmlab's inspector sends before its first picture (widget
  state with the ES module, tokens and thumbnails; the first matrix answer; the fallback PNG)
  vs the size of bertviz's own head-view HTML (``html_action="return"``), which holds every
  weight as JSON. bertviz is built for real at 64 and 256 tokens; at 1,024 it would be ~16 x
  the 256-token size (a few GB), so that value is extrapolated (``"extrapolated": true`` on
  stderr and in the README);
- ``head_switch_bytes_<T>``: bytes of one head's answer vs the same bertviz HTML;
- ``first_paint_bytes_1024_budget``: the first paint at 1,024 tokens vs the 5 MB budget;
- ``head_click_redraw_1024``: in headless Chromium (the front end in a plain page, a local
  server answering as the kernel would), time from the click on a head's thumbnail to the
  redrawn full-resolution heatmap, vs the 200 ms budget (median over heads);
- ``answer_ms_1024``: Python time to compute and quantise one head's answer (in a notebook
  this is the kernel's share of a head switch), vs the same budget.

Run: ``python benchmarks/attention.py [--quick]`` (Chromium at /usr/bin/chromium for the
browser case; skipped with a note when it is missing).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import emit, environment, iterations, log, parse_args, time_call, time_pair  # noqa: E402

import llmlab  # noqa: E402
from llmlab.attention import inspect  # noqa: E402

BENCH = "attention"
LENGTHS = (64, 256, 1024)
TEXT = "The animal didn't cross the street because it was too tired. "
CHROMIUM = Path("/usr/bin/chromium")


def model_and_tokenizer(device: torch.device):
    cfg = llmlab.ModelConfig(family="gpt", n_layer=12, n_head=12, d_model=192,
                             context_length=1024, vocab_size=256)
    return llmlab.build_model(cfg, device=device, seed=0).eval(), llmlab.ByteTokenizer()


def text_of(n: int) -> str:
    return (TEXT * (n // len(TEXT) + 1))[:n]


def first_paint_bytes(widget) -> tuple[int, int]:
    """(bytes before the first picture, bytes of one head's answer)."""
    import base64

    from ipywidgets.widgets.widget import _remove_buffers

    state, _, buffers = _remove_buffers(widget.get_state())
    state_bytes = len(json.dumps(state)) + sum(len(b) for b in buffers)
    first, first_buffers = widget.answer({
        "type": "matrix", "id": 1, "kind": widget.kind, "layer": widget.layer,
        "head": widget.head, "agg": widget.agg})
    answer_bytes = len(json.dumps(first)) + sum(len(b) for b in first_buffers)
    png = len(base64.b64encode(widget.fallback_png()))
    head, head_buffers = widget.answer({"type": "matrix", "id": 2, "kind": widget.kind,
                                        "layer": 0, "head": 1, "agg": "head"})
    switch = len(json.dumps(head)) + sum(len(b) for b in head_buffers)
    return state_bytes + answer_bytes + png, switch


def bertviz_html_bytes(cap) -> int:
    from bertviz import head_view

    att = cap.attention["decoder"].float()
    html = head_view([att[i][None] for i in range(att.shape[0])], cap.sides["decoder"].tokens,
                     html_action="return")
    return len(html.data.encode())


def browser_head_clicks(widget, clicks: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    from llmlab.attention.harness import InspectorServer

    args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    drawn = "() => window.__mock && window.__mock.drawn.length"
    times = []
    with InspectorServer(widget) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=args)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(server.url)
                   else r.abort())
        page.goto(server.url)
        page.wait_for_function(f"{drawn} >= 1", timeout=60_000)
        last = len(widget.capture.layers["decoder"]) - 1
        for h in range(clicks):
            n = page.evaluate(drawn)
            c = page.evaluate("h => document.getElementById('root').llmlabInspector"
                              f".gridCellCenter({last}, h)", h % 12)
            page.mouse.click(c["x"], c["y"])
            page.wait_for_function(f"{drawn} > {n}", timeout=30_000)
            times.append(page.evaluate("() => window.__mock.drawn.at(-1).ms"))
        browser.close()
    return times


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    log(json.dumps(environment(args.device)))
    model, tok = model_and_tokenizer(args.device)
    bertviz_sizes: dict[int, int] = {}
    widget_1024 = None
    for n in LENGTHS:
        text = text_of(n)
        ids = torch.tensor([tok.encode(text)], device=args.device)
        iters, warmup = iterations(args, quick=2 if n == 1024 else 3, full=5 if n == 1024 else 10,
                                   warmup=1)

        def capture(text=text):
            return inspect(model, tok, text)

        def forward(ids=ids):
            with torch.no_grad():
                return model(ids)

        ours, peer = time_pair(capture, forward, iters=iters, warmup=warmup, device=args.device)
        log(f"capture {n}: {ours}; fused forward: {peer}")
        emit(BENCH, f"capture_{n}", "ms/call", ours.median, peer.median,
             "llmlab fused forward", higher_is_better=False, target=4.0)

        cap = inspect(model, tok, text)
        log(f"{cap!r}")
        widget = cap.show()
        first, switch = first_paint_bytes(widget)
        if n <= 256:
            start = time.perf_counter()
            bertviz_sizes[n] = bertviz_html_bytes(cap)
            log(f"bertviz head_view HTML at {n} tokens: {bertviz_sizes[n] / 1e6:.1f} MB "
                f"(built in {time.perf_counter() - start:.1f} s)")
            peer_bytes, extrapolated = bertviz_sizes[n], False
        else:
            peer_bytes = bertviz_sizes[256] * (n / 256) ** 2
            extrapolated = True
            log(f"bertviz head_view HTML at {n} tokens: ~{peer_bytes / 1e6:.0f} MB "
                "(extrapolated from 256 tokens: the size grows with tokens squared)")
        emit(BENCH, f"first_paint_bytes_{n}", "bytes", first, peer_bytes,
             "bertviz head_view HTML" + (" (extrapolated)" if extrapolated else ""),
             higher_is_better=False, target=0.1)
        emit(BENCH, f"head_switch_bytes_{n}", "bytes", switch, peer_bytes,
             "bertviz head_view HTML" + (" (extrapolated)" if extrapolated else ""),
             higher_is_better=False, target=0.1)
        if n == 1024:
            widget_1024 = widget
            emit(BENCH, "first_paint_bytes_1024_budget", "bytes", first, 5e6, "5 MB budget",
                 higher_is_better=False, target=1.0)
        del cap

    assert widget_1024 is not None
    answers = []
    for h in range(12):
        widget_1024._cache.clear()
        answers.append(time_call(lambda h=h: widget_1024.matrix_message(
            kind="decoder", layer=11, head=h, agg="head")))
    log(f"answer per head at 1024 tokens: median {statistics.median(answers):.1f} ms")
    emit(BENCH, "answer_ms_1024", "ms", statistics.median(answers), 200.0, "200 ms budget",
         higher_is_better=False, target=1.0)

    if not CHROMIUM.exists():
        log("head_click_redraw_1024 skipped: no Chromium at /usr/bin/chromium")
        return
    clicks = 6 if args.quick else 12
    times = browser_head_clicks(widget_1024, clicks)
    log(f"head click -> redraw at 1024 tokens (ms): {[round(t) for t in times]}")
    emit(BENCH, "head_click_redraw_1024", "ms", statistics.median(times), 200.0,
         "200 ms budget", higher_is_better=False, target=1.0)


if __name__ == "__main__":
    main()
