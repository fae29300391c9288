"""The JupyterLab extension: run listing time for a large store, and head draws in the panel.

A real ``jupyter lab`` (this environment's, with the installed llmlab extension) serves a
temporary run store; requests go over HTTP to 127.0.0.1 like the panels' own.

Cases (one JSON line each on stdout; see benchmarks/README.md):

- ``runs_list_1000_budget``: ``GET llmlab/api/runs?limit=500`` (the Run history panel's page
  size) on a store of 1,000 finished runs, ms per request measured by the client (an upper
  bound on server time: it includes the loopback round trip), vs the 500 ms budget;
- ``runs_list_1000_vs_contents``: the same request vs jupyter_server's contents API listing the
  store folder (``GET api/contents/llmlab-runs?content=1``), what the file browser asks for to
  show the same 1,000 folders: the same server, auth and HTTP path, but no manifest is read,
  so it is a floor for any listing served by Jupyter;
- ``runs_list_1000_vs_json``: in-process ``RunStore.list()`` (what the handler calls) vs a
  loop reading every ``manifest.json`` with plain ``json.load`` and keeping the same fields as
  dicts (no polars, no status check): what a minimal reader costs;
- ``version_p99_under_load_budget``: ``GET llmlab/api/version`` p99 (one request every 10 ms
  from the main thread) while 4 client threads request ``GET runs?limit=500`` on the same
  1,000-run store back to back, vs a 20 ms budget: file reads run on the server's read pool,
  so a long listing must not hold up the event loop;
- ``version_p50_under_load_vs_idle``: the same route's p50 under that load vs the same
  server idle;
- ``runs_list_1000_4clients_p99_budget``: the 4 clients' ``GET runs?limit=500`` p99, vs the
  500 ms budget (what each user of a shared server waits while the others refresh);
- ``panel_head_draw_1024``: in headless Chromium, the Attention inspector panel showing a
  1,024-token snapshot (GPT, 12 layers x 12 heads): from picking a head in the panel's Head
  menu to the redrawn heatmap (the panel's ``llmlab:attention-draw`` performance measures; each head
  is fetched from the server as float16), median over heads, vs the 200 ms budget;
- ``panel_head_draw_1024_vs_widget``: the same vs the notebook widget's front end drawing the
  same heads (``benchmarks/attention.py``'s harness: a local server answering as the kernel;
  there a head is picked by clicking its thumbnail);
- ``notebook_head_switch_1024``: ``cap.show()`` in a JupyterLab notebook on a real kernel
  (the same 1,024-token capture): from the click on a head's thumbnail to its redrawn
  heatmap (the view's own drawn event: input to pixels, kernel round trip included), median
  over heads, vs the 200 ms budget; ``notebook_head_switch_1024_wait`` is the part spent
  waiting for the kernel's answer; ``notebook_menu_switch_1024_worst`` is the slowest of
  the toolbar's picks (mean, max and rollout of heads, another layer, another head);
- ``panel_first_draw_1024``: from asking for the snapshot to its first picture (metadata,
  thumbnails, the mean of the last layer's 12 heads), vs a 1 s budget.

Run with the environment that has the built extension installed, e.g.
``/work/venv-lab/bin/python benchmarks/lab.py [--quick]``. Needs Chromium at /usr/bin/chromium
(except ``--load-only``: the three under-load cases, no browser).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from _common import emit, environment, iterations, log, parse_args, time_pair  # noqa: E402
from attention import browser_head_clicks, model_and_tokenizer, text_of  # noqa: E402
from lab_helpers import chromium, open_lab, running_lab  # noqa: E402

import llmlab.runs  # noqa: E402
from llmlab.attention import inspect  # noqa: E402

BENCH = "lab"
RUNS = 1000
LOAD_CLIENTS = 4
PANEL = "#llmlab-attention-inspector"


def fill_store(store: Path, n: int) -> None:
    """``n`` finished runs, each with a config, five logged steps and a validation loss."""
    cfg = llmlab.ModelConfig.preset("baby-char").to_dict()
    for i in range(n):
        run = llmlab.runs.create(store=store, name=f"run-{i:04d}", config=cfg,
                                 training={"lr": 3e-4}, seed=i, capture_git=False,
                                 auto_flush_seconds=None)
        for step in range(1, 6):
            run.log_metrics({"train/loss": 3.0 - step / 10}, step=step)
        run.log_metrics({"val/loss": 2.5}, step=5)
        run.finish()


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def plain_json_listing(store: Path) -> list[dict]:
    rows = []
    for folder in store.iterdir():
        try:
            with open(folder / "manifest.json", encoding="utf-8") as fh:
                m = json.load(fh)
        except (OSError, ValueError):
            continue
        summary = m.get("summary") or {}
        rows.append({"id": folder.name, "name": m.get("name"), "status": m.get("status"),
                     "created_at": m.get("created_at"), "steps": m.get("last_step"),
                     "train_loss": summary.get("train/loss"), "val_loss": summary.get("val/loss")})
    rows.sort(key=lambda r: r["created_at"] or "", reverse=True)
    return rows


def bench_runs_list(args, root: Path) -> None:
    store = root / "llmlab-runs"
    start = time.perf_counter()
    fill_store(store, RUNS)
    log(f"store of {RUNS} runs written in {time.perf_counter() - start:.1f} s")
    iters, warmup = iterations(args, quick=5, full=20, warmup=2)
    with running_lab(root, f"--LlmlabServer.run_dir={store}") as url:
        base, token = url.split("/lab?token=")
        ours_url = f"{base}/llmlab/api/runs?limit=500&token={token}"
        peer_url = f"{base}/api/contents/llmlab-runs?content=1&token={token}"
        assert json.loads(get(ours_url))["total"] == RUNS
        assert len(json.loads(get(peer_url))["content"]) == RUNS
        ours, peer = time_pair(lambda: get(ours_url), lambda: get(peer_url), iters=iters,
                               warmup=warmup)
    log(f"GET llmlab/api/runs?limit=500: {ours}; GET api/contents: {peer}")
    emit(BENCH, "runs_list_1000_budget", "ms", ours.median, 500.0, "500 ms budget",
         higher_is_better=False, target=1.0)
    emit(BENCH, "runs_list_1000_vs_contents", "ms", ours.median, peer.median,
         "jupyter_server contents API listing the store folder", higher_is_better=False,
         target=5.0)
    store_api = llmlab.runs.RunStore(store)
    ours, peer = time_pair(store_api.list, lambda: plain_json_listing(store), iters=iters,
                           warmup=warmup)
    log(f"RunStore.list(): {ours}; plain json loop: {peer}")
    emit(BENCH, "runs_list_1000_vs_json", "ms", ours.median, peer.median,
         "plain json.load of every manifest", higher_is_better=False, target=2.0)


def percentile(samples: list[float], q: int) -> float:
    """The ``q``-th percentile of ``samples`` (exclusive method, as statistics.quantiles)."""
    return statistics.quantiles(samples, n=100)[q - 1]


def hammer(url: str, stop: threading.Event, times: list[float]) -> None:
    """Request ``url`` back to back until ``stop`` is set, appending ms per request."""
    while not stop.is_set():
        start = time.perf_counter()
        get(url)
        times.append((time.perf_counter() - start) * 1e3)


def sample(url: str, seconds: float, gap: float = 0.01) -> list[float]:
    """ms per request of ``url``, one request every ``gap`` seconds for ``seconds``."""
    times, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        start = time.perf_counter()
        get(url)
        times.append((time.perf_counter() - start) * 1e3)
        time.sleep(gap)
    return times


def bench_load(args, root: Path) -> None:
    """GET version latency while LOAD_CLIENTS threads hammer GET runs on a 1,000-run store."""
    store = root / "llmlab-runs"
    fill_store(store, RUNS)
    seconds = 5.0 if args.quick else 15.0
    with running_lab(root, f"--LlmlabServer.run_dir={store}") as url:
        base, token = url.split("/lab?token=")
        version_url = f"{base}/llmlab/api/version?token={token}"
        runs_url = f"{base}/llmlab/api/runs?limit=500&token={token}"
        assert json.loads(get(runs_url))["total"] == RUNS
        idle = sample(version_url, seconds / 3)
        stop, listing = threading.Event(), []
        clients = [threading.Thread(target=hammer, args=(runs_url, stop, listing))
                   for _ in range(LOAD_CLIENTS)]
        for client in clients:
            client.start()
        time.sleep(1.0)  # every client past its first request
        listing.clear()
        busy = sample(version_url, seconds)
        stop.set()
        for client in clients:
            client.join()
    log(f"GET version idle: p50 {percentile(idle, 50):.1f} ms, p99 {percentile(idle, 99):.1f} "
        f"ms (n={len(idle)}); under load of {LOAD_CLIENTS} clients: p50 "
        f"{percentile(busy, 50):.1f} ms, p99 {percentile(busy, 99):.1f} ms (n={len(busy)}); "
        f"GET runs?limit=500 under load: p50 {percentile(listing, 50):.1f} ms, p99 "
        f"{percentile(listing, 99):.1f} ms (n={len(listing)})")
    emit(BENCH, "version_p99_under_load_budget", "ms", percentile(busy, 99), 20.0,
         "20 ms budget", higher_is_better=False, target=1.0)
    emit(BENCH, "version_p50_under_load_vs_idle", "ms", percentile(busy, 50),
         percentile(idle, 50), "same server idle", higher_is_better=False, target=5.0)
    emit(BENCH, "runs_list_1000_4clients_p99_budget", "ms", percentile(listing, 99), 500.0,
         "500 ms budget", higher_is_better=False, target=1.0)


def panel_head_clicks(url: str, clicks: int) -> tuple[list[float], float]:
    """(ms from picking a head in the Head menu to its picture, ms from asking for the
    snapshot to its first picture). The menu, not the thumbnail grid: in the narrow sidebar
    the 14-column grid of a 12-head model scrolls sideways."""
    with chromium() as browser:
        lab = open_lab(browser, url)
        page = lab.page
        page.set_default_timeout(120_000)
        lab.command("llmlab:open-attention-inspector")
        first = "() => performance.getEntriesByName('llmlab:snapshot-first-draw').length"
        page.wait_for_function(f"{first} >= 1", timeout=120_000)
        first_ms = page.evaluate(
            "() => performance.getEntriesByName('llmlab:snapshot-first-draw')[0].duration")
        draws = "() => performance.getEntriesByName('llmlab:attention-draw').length"
        head = page.locator(f"{PANEL} .llmlab-insp-bar select[title^='One head']")
        times = []
        for h in range(clicks):
            n = page.evaluate(draws)
            head.select_option(f"h{h % 12}")
            page.wait_for_function(f"{draws} > {n}")
            times.append(page.evaluate(
                "() => performance.getEntriesByName('llmlab:attention-draw').at(-1).duration"))
        lab.assert_clean()
    return times, first_ms


def bench_panel(args, root: Path) -> None:
    model, tok = model_and_tokenizer(torch.device("cpu"))
    cap = inspect(model, tok, text_of(1024))
    store = root / "llmlab-runs"
    run = llmlab.runs.create(store=store, name="long", capture_git=False)
    start = time.perf_counter()
    cap.save(run, "tokens-1024")
    run.finish()
    log(f"{cap!r} saved in {time.perf_counter() - start:.1f} s")
    clicks = 6 if args.quick else 12
    with running_lab(root, f"--LlmlabServer.run_dir={store}") as url:
        panel, first_ms = panel_head_clicks(url, clicks)
    widget = browser_head_clicks(cap.show(), clicks)
    log(f"panel head clicks (ms): {[round(t) for t in panel]}; widget: "
        f"{[round(t) for t in widget]}; first picture {first_ms:.0f} ms")
    emit(BENCH, "panel_head_draw_1024", "ms", statistics.median(panel), 200.0,
         "200 ms budget", higher_is_better=False, target=1.0)
    emit(BENCH, "panel_head_draw_1024_vs_widget", "ms", statistics.median(panel),
         statistics.median(widget), "notebook widget front end (attention.py harness)",
         higher_is_better=False, target=2.0)
    emit(BENCH, "panel_first_draw_1024", "ms", first_ms, 1000.0, "1 s budget",
         higher_is_better=False, target=1.0)


NOTEBOOK_CELLS = [
    "import sys\n"
    f"sys.path.insert(0, {str(HERE)!r})\n"
    "from attention import model_and_tokenizer, text_of\n"
    "import torch\n"
    "from llmlab.attention import inspect\n"
    "model, tok = model_and_tokenizer(torch.device('cpu'))\n"
    "cap = inspect(model, tok, text_of(1024))",
    "cap.show()",
]

#: JavaScript: collect every inspector drawn event's detail in window.__drawn.
COLLECT_DRAWN = """() => { window.__drawn = [];
  document.addEventListener('llmlab-inspector-drawn', e => window.__drawn.push(e.detail)); }"""


def notebook_head_clicks(url: str, clicks: int) -> list[dict]:
    """The drawn events' details (``ms``, ``waitMs``, ``drawMs``) of ``clicks`` head clicks
    on the thumbnail grid of ``cap.show()`` in a notebook (the last layer, heads in turn)."""
    with chromium() as browser:
        lab = open_lab(browser, url)
        page = lab.page
        page.set_default_timeout(180_000)
        page.evaluate(COLLECT_DRAWN)
        lab.open_and_run("inspect.ipynb")
        page.wait_for_function("() => window.__drawn.length >= 1")
        details = []
        for h in range(clicks):
            n = page.evaluate("() => window.__drawn.length")
            page.evaluate("() => document.querySelector('.llmlab-insp-grid').scrollIntoView()")
            c = page.evaluate("h => document.querySelector('.llmlab-insp').parentElement"
                              ".llmlabInspector.gridCellCenter(11, h)", 1 + h % 11)
            page.mouse.click(c["x"], c["y"])
            page.wait_for_function(f"() => window.__drawn.length > {n}")
            details.append(page.evaluate("() => window.__drawn.at(-1)"))
        bar = page.locator(".jp-OutputArea .llmlab-insp-bar")
        picks = [("One head", "mean"), ("One head", "max"), ("One head", "rollout"),
                 ("Layer", "5"), ("One head", "h4")]
        for title, value in picks:
            n = page.evaluate("() => window.__drawn.length")
            bar.locator(f"select[title^='{title}']").select_option(value)
            page.wait_for_function(f"() => window.__drawn.length > {n}")
            details.append({**page.evaluate("() => window.__drawn.at(-1)"), "menu": value})
        lab.assert_clean()
    return details


def bench_notebook(args, root: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, root / "inspect.ipynb")
    clicks = 6 if args.quick else 11
    with running_lab(root) as url:
        details = notebook_head_clicks(url, clicks)
    clicks_, menus = ([d for d in details if ("menu" in d) == menu] for menu in (False, True))
    log("notebook head clicks: " + ", ".join(
        f"{d['ms']:.0f} ms (wait {d['waitMs']:.0f}, draw {d['drawMs']:.0f})" for d in clicks_))
    log("notebook menu picks: " + ", ".join(
        f"{d['menu']} {d['ms']:.0f} ms (wait {d['waitMs']:.0f})" for d in menus))
    emit(BENCH, "notebook_head_switch_1024", "ms", statistics.median(d["ms"] for d in clicks_),
         200.0, "200 ms budget", higher_is_better=False, target=1.0)
    emit(BENCH, "notebook_head_switch_1024_wait", "ms",
         statistics.median(d["waitMs"] for d in clicks_), 200.0, "200 ms budget",
         higher_is_better=False, target=1.0)
    emit(BENCH, "notebook_menu_switch_1024_worst", "ms", max(d["ms"] for d in menus), 200.0,
         "200 ms budget", higher_is_better=False, target=1.0)


def main() -> None:
    def options(parser) -> None:
        parser.add_argument("--panel-only", action="store_true",
                            help="only the Attention inspector cases")
        parser.add_argument("--notebook-only", action="store_true",
                            help="only the notebook inspector case (cap.show() on a kernel)")
        parser.add_argument("--load-only", action="store_true",
                            help="only the GET version under load cases (no browser)")

    args = parse_args(__doc__.splitlines()[0], extra=options)
    log(json.dumps(environment(args.device)))
    if args.load_only:
        with tempfile.TemporaryDirectory(prefix="llmlab-bench-lab-") as tmp:
            bench_load(args, Path(tmp))
        return
    if args.notebook_only:
        with tempfile.TemporaryDirectory(prefix="llmlab-bench-lab-") as tmp:
            bench_notebook(args, Path(tmp))
        return
    if not args.panel_only:
        with tempfile.TemporaryDirectory(prefix="llmlab-bench-lab-") as tmp:
            bench_runs_list(args, Path(tmp))
        with tempfile.TemporaryDirectory(prefix="llmlab-bench-lab-") as tmp:
            bench_load(args, Path(tmp))
    with tempfile.TemporaryDirectory(prefix="llmlab-bench-lab-") as tmp:
        bench_panel(args, Path(tmp))
    with tempfile.TemporaryDirectory(prefix="llmlab-bench-lab-") as tmp:
        bench_notebook(args, Path(tmp))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
