"""Attention views in a real browser, offline: bertviz's views (made self-contained by
llmlab), llmlab's inspector front end in a plain page with a local stand-in for the kernel,
and both in JupyterLab.

Headless Chromium (`/usr/bin/chromium`, from `apt-get install -y chromium`) through Python
playwright; every request that does not go to the local server is blocked and recorded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_helpers import artifacts_dir, running_lab

import llmlab
from llmlab.attention import inspect
from llmlab.attention.harness import InspectorServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
TEXT = "The animal didn't cross the street because it was too tired"
DRAWN = "() => window.__mock && window.__mock.drawn.length"


@pytest.fixture(autouse=True)
def jp_asyncio_loop():
    """Replaces pytest-jupyter's autouse fixture, which would try to close the event loop
    that playwright's sync API keeps running for the module-wide browser."""
    yield None


@pytest.fixture(autouse=True)
def jp_server_cleanup():
    """Replaces pytest-jupyter's autouse clean-up (it needs the loop above; these tests start
    no in-process Jupyter server)."""
    yield


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Browser tests need Chromium at /usr/bin/chromium: "
                    "`apt-get update && apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        b = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


class LocalPage:
    """A page that may only talk to ``base``; what else it tried is in ``blocked``."""

    def __init__(self, browser, base: str) -> None:
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.page = browser.new_page(viewport={"width": 1400, "height": 1100})
        self.page.set_default_timeout(60_000)
        self.page.route("**/*", self._route)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.base = base

    def _route(self, route) -> None:
        if route.request.url.startswith(self.base):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def close(self) -> None:
        self.page.close()


@pytest.fixture(scope="module")
def tok():
    return llmlab.CharTokenizer.train(TEXT + " .", special_tokens="bert")


def tiny(family, tok, context=80, **kw):
    cfg = llmlab.ModelConfig(family=family, n_layer=2, n_head=4, d_model=32,
                             context_length=context, vocab_size=tok.vocab_size, **kw)
    return llmlab.build_model(cfg, seed=0)


def wait_until(page, predicate, timeout=10.0):
    """Poll a Python-side condition while letting playwright run (its request routing, which
    every request of the page goes through, only runs while playwright has control)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        page.wait_for_timeout(20)


# --------------------------------------------------------------------------- bertviz offline
def test_bertviz_views_draw_offline(browser, tok, tmp_path):
    gpt = inspect(tiny("gpt", tok), tok, TEXT)
    s2s = inspect(tiny("seq2seq", tok), tok, "the animal", "didn't cross")
    pair = inspect(tiny("bert", tok), tok, "the animal", "was tired")
    pages = {
        "gpt-head.html": gpt.head_view(html=True),
        "gpt-model.html": gpt.model_view(html=True),
        "seq2seq-head.html": s2s.head_view(html=True),
        "seq2seq-model.html": s2s.model_view(html=True),
        "bert-pair-head.html": pair.head_view(html=True),
    }
    for name, html in pages.items():
        (tmp_path / name).write_text(f"<!doctype html><html><body>{html}</body></html>")
    with InspectorServer(directory=tmp_path) as server:
        page = LocalPage(browser, server.url)
        try:
            for name in pages:
                page.page.goto(server.url + name)
                page.page.wait_for_selector("[id^=bertviz] #vis svg", timeout=15_000)
                rects = page.page.locator("[id^=bertviz] svg rect").count()
                lines = page.page.locator("[id^=bertviz] svg path, [id^=bertviz] svg line").count()
                assert rects > 0 and lines > 0, name
        finally:
            page.close()
    assert not page.blocked, f"bertviz views tried to reach the network: {page.blocked}"
    assert not page.errors, page.errors


# --------------------------------------------------------------------------- llmlab's inspector
def canvas_ink(page, selector: str) -> int:
    """Number of non-white, non-transparent pixels of the first canvas matching selector."""
    return page.evaluate(
        """sel => { const c = document.querySelector(sel);
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4)
          if (d[i + 3] > 0 && (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250)) n++;
        return n; }""", selector)


def view_call(page, code: str):
    return page.evaluate(f"() => {{ const v = document.getElementById('root').llmlabInspector; "
                         f"return {code}; }}")


def click_head(page, layer_pos: int, column: int) -> dict:
    n = page.evaluate(DRAWN)
    c = view_call(page, f"v.gridCellCenter({layer_pos}, {column})")
    page.mouse.click(c["x"], c["y"])
    page.wait_for_function(f"{DRAWN} > {n}", timeout=10_000)
    return page.evaluate("() => window.__mock.drawn[window.__mock.drawn.length - 1]")


def test_inspector_draws_and_reacts(browser, tok):
    cap = inspect(tiny("gpt", tok), tok, TEXT, logit_lens=True)
    w = cap.show()
    with InspectorServer(w) as server:
        lp = LocalPage(browser, server.url)
        page = lp.page
        try:
            page.goto(server.url)
            page.wait_for_function(f"{DRAWN} >= 1", timeout=15_000)
            assert page.evaluate("() => window.__mock.drawn[0].key") == "decoder|1|mean|0|0"
            assert canvas_ink(page, ".llmlab-insp-heatmap canvas") > 1000
            assert canvas_ink(page, ".llmlab-insp-grid canvas") > 1000

            # a head click draws that head and reaches Python's state
            assert click_head(page, 0, 2)["key"] == "decoder|0|2|0|0"
            wait_until(page, lambda: (w.layer, w.head, w.agg) == (0, 2, "head"))

            # hovering a token colours the others; clicking selects it (synced to Python)
            tokens = page.locator(".llmlab-insp-token")
            assert tokens.count() == len(cap.sides["decoder"].tokens)
            tokens.nth(12).hover()
            page.wait_for_function(
                "() => [...document.querySelectorAll('.llmlab-insp-token')]"
                ".some(s => s.style.background !== '')")
            tokens.nth(12).click()
            wait_until(page, lambda: w.selected == [12])
            # the logit lens at the selected position: one row per layer plus the embeddings
            page.wait_for_selector(".llmlab-insp-lens table")
            assert page.locator(".llmlab-insp-lens tr").count() == 1 + 3

            # toggles ask Python for the transformed matrix
            n = page.evaluate(DRAWN)
            page.get_by_text("hide first token").click()
            page.wait_for_function(f"{DRAWN} > {n}")
            assert page.evaluate("() => window.__mock.drawn.at(-1).key") == "decoder|0|2|1|0"
            n = page.evaluate(DRAWN)
            page.get_by_text("words", exact=True).click()
            page.wait_for_function(f"{DRAWN} > {n}")
            assert tokens.count() == len(cap.sides["decoder"].words)
            wait_until(page, lambda: w.merge_words and w.hide_first)

            # Python sets the state: the view follows (as after w.layer = 1 in a notebook)
            n = page.evaluate(DRAWN)
            page.evaluate("() => window.__mock.setFromPython({agg: 'rollout', layer: 1})")
            page.wait_for_function(f"{DRAWN} > {n}")
            assert page.evaluate("() => window.__mock.drawn.at(-1).key") == "decoder|1|rollout|1|1"

            # top-k lines view and exports
            tokens.nth(2).click()
            page.locator("select[title^='Heatmap']").select_option("lines")
            page.wait_for_function(
                "() => getComputedStyle(document.querySelector('.llmlab-insp-lines')).display"
                " !== 'none'")
            assert canvas_ink(page, ".llmlab-insp-lines") > 200
            svg = view_call(page, "v.exportSVG()")
            assert svg.startswith("<svg") and "<line" in svg
            assert view_call(page, "v.exportPNG()").startswith("data:image/png;base64,")
            page.locator("select[title^='Heatmap']").select_option("heatmap")
            svg = view_call(page, "v.exportSVG()")
            assert "<rect" in svg and "didn" in svg  # word labels at this size
        finally:
            lp.close()
    assert not lp.blocked and not lp.errors, (lp.blocked, lp.errors)
    # traffic: one answer per distinct matrix, never per hover
    assert len([a for a in server.answers if a["type"] == "matrix"]) <= 8


#: JavaScript: pairs of the heatmap's drawn labels whose boxes overlap, and how many it drew
LABEL_OVERLAPS = """() => {
  const r = document.getElementById('root').llmlabInspector.heatmap.labelRects;
  const bad = [];
  for (let i = 0; i < r.length; i++) for (let j = i + 1; j < r.length; j++) {
    const x = Math.min(r[i].x + r[i].w, r[j].x + r[j].w) - Math.max(r[i].x, r[j].x);
    const y = Math.min(r[i].y + r[i].h, r[j].y + r[j].h) - Math.max(r[i].y, r[j].y);
    if (x > 0.5 && y > 0.5) bad.push([i, j]);
  }
  return {labels: r.length, overlaps: bad.length};
}"""


@pytest.mark.parametrize("repeat", [1, 5])
def test_inspector_labels_never_overlap(browser, tok, repeat):
    """Short inputs write every token; at 300 tokens every k-th, with its position; either
    way no two labels overlap (measured with the browser's own font metrics)."""
    text = " ".join([TEXT] * repeat)
    cap = inspect(tiny("gpt", tok, context=320), tok, text)
    n = cap.attention["decoder"].shape[-1]
    with InspectorServer(cap.show()) as server:
        lp = LocalPage(browser, server.url)
        try:
            lp.page.goto(server.url)
            lp.page.wait_for_function(f"{DRAWN} >= 1", timeout=15_000)
            drawn = lp.page.evaluate(LABEL_OVERLAPS)
            assert drawn["overlaps"] == 0, drawn
            assert drawn["labels"] >= 2 * 10, drawn  # rows and columns both labelled
            assert drawn["labels"] < 2 * n or repeat == 1
            lp.page.screenshot(path=str(artifacts_dir() / f"inspector-labels-{n}-tokens.png"))
        finally:
            lp.close()
    assert not lp.blocked and not lp.errors, (lp.blocked, lp.errors)


def test_inspector_auto_scale_on_a_long_input(browser, tok):
    """A 300-token causal input is coloured per row by default, and says so; picking linear
    draws the same matrix with (much) less ink."""
    cap = inspect(tiny("gpt", tok, context=320), tok, " ".join([TEXT] * 5))
    w = cap.show()
    assert w.scale == "auto"
    with InspectorServer(w) as server:
        lp = LocalPage(browser, server.url)
        page = lp.page
        try:
            page.goto(server.url)
            page.wait_for_function(f"{DRAWN} >= 1", timeout=15_000)
            status = page.locator(".llmlab-insp-status").inner_text()
            assert "colours per row (auto)" in status, status
            scale = page.locator("select[title='Colour scale']")
            assert scale.evaluate("s => s.options[0].textContent") == "auto (per row)"
            auto_ink = canvas_ink(page, ".llmlab-insp-heatmap canvas")
            scale.select_option("linear")
            page.wait_for_function(
                "() => !document.querySelector('.llmlab-insp-status').innerText.includes('auto')")
            wait_until(page, lambda: w.scale == "linear")
            assert canvas_ink(page, ".llmlab-insp-heatmap canvas") < auto_ink
        finally:
            lp.close()
    assert not lp.blocked and not lp.errors, (lp.blocked, lp.errors)


def test_inspector_cross_attention(browser, tok):
    cap = inspect(tiny("seq2seq", tok), tok, "the animal didn't cross", "the street")
    w = cap.show()
    with InspectorServer(w) as server:
        lp = LocalPage(browser, server.url)
        page = lp.page
        try:
            page.goto(server.url)
            page.wait_for_function(f"{DRAWN} >= 1", timeout=15_000)
            assert page.evaluate("() => window.__mock.drawn[0].key") == "cross|1|mean|0|0"
            strips = page.locator(".llmlab-insp-strip:visible")
            assert strips.count() == 2
            # clicking a key (encoder) token means "attention to it"
            strips.nth(1).locator(".llmlab-insp-token").nth(3).click()
            wait_until(page, lambda: (w.direction, w.selected) == ("to", [3]))
            n = page.evaluate(DRAWN)
            page.locator("select[title^='Which attention']").select_option("encoder")
            page.wait_for_function(f"{DRAWN} > {n}")
            assert page.locator(".llmlab-insp-strip:visible").count() == 1
        finally:
            lp.close()
    assert not lp.blocked and not lp.errors, (lp.blocked, lp.errors)


def test_inspector_1024_tokens_first_paint_and_head_click(browser):
    """The long-input case (a small model, so the capture is cheap): the first paint stays far
    under 5 MB and a head click redraws quickly. benchmarks/attention.py measures the
    12 x 12 model and the 200 ms target; here the budget is loose for loaded CI machines."""
    tok = llmlab.ByteTokenizer()
    cfg = llmlab.ModelConfig(family="gpt", n_layer=2, n_head=4, d_model=32,
                             context_length=1024, vocab_size=256)
    model = llmlab.build_model(cfg, seed=0)
    cap = inspect(model, tok, (TEXT + ". ") * 20, max_tokens=1024)
    assert cap.attention["decoder"].shape[-1] == 1024
    w = cap.show()
    from ipywidgets.widgets.widget import _remove_buffers

    state, _, buffers = _remove_buffers(w.get_state())
    with InspectorServer(w) as server:
        lp = LocalPage(browser, server.url)
        page = lp.page
        try:
            page.goto(server.url)
            page.wait_for_function(f"{DRAWN} >= 1", timeout=30_000)
            first = len(json.dumps(state)) + sum(len(b) for b in buffers) + page.evaluate(
                "() => window.__mock.received")
            assert first < 5e6, first
            times = [click_head(page, 1, h)["ms"] for h in range(4)]
            assert sorted(times)[len(times) // 2] < 500, times
        finally:
            lp.close()
    assert not lp.blocked and not lp.errors, (lp.blocked, lp.errors)


# --------------------------------------------------------------------------- in JupyterLab
NOTEBOOK_CELLS = [
    "import llmlab\n"
    "from llmlab.attention import inspect\n"
    f"tok = llmlab.CharTokenizer.train({TEXT!r})\n"
    "cfg = llmlab.ModelConfig(family='gpt', n_layer=2, n_head=4, d_model=32, "
    "context_length=80, vocab_size=tok.vocab_size)\n"
    "model = llmlab.build_model(cfg, seed=0)\n"
    f"cap = inspect(model, tok, {TEXT!r})",
    "cap.head_view()",
    "w = cap.show()\nw",
]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`jupyter lab` in a scratch folder holding inspect.ipynb; yields (base URL, token)."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, tmp_path / "inspect.ipynb")
    with running_lab(tmp_path) as url:
        base, token = url.split("/lab?token=")
        yield base, token


def test_views_in_jupyterlab_offline(browser, lab):
    base, token = lab
    lp = LocalPage(browser, base)
    page = lp.page
    try:
        page.goto(f"{base}/lab/tree/inspect.ipynb?token={token}")
        page.wait_for_function("() => window.jupyterapp?.commands !== undefined", timeout=60_000)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=90_000)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        # bertviz's head view drew its SVG from the inlined libraries
        page.wait_for_selector(".jp-OutputArea [id^=bertviz] #vis svg rect", timeout=90_000)
        # displayed once, although cap.head_view() also returns the HTML as the cell's value
        assert page.locator(".jp-OutputArea [id^=bertviz]").count() == 1
        # llmlab's widget rendered, drew its heatmap, and answers a head click via the kernel
        page.wait_for_selector(".jp-OutputArea .llmlab-insp-heatmap canvas", timeout=60_000)
        page.wait_for_function(
            "() => document.querySelector('.llmlab-insp')?.dataset.drawnKey === 'decoder|1|mean|0|0'",
            timeout=60_000)
        page.evaluate("() => document.querySelector('.llmlab-insp-grid').scrollIntoView()")
        c = page.evaluate("() => document.querySelector('.llmlab-insp').parentElement"
                          ".llmlabInspector.gridCellCenter(0, 3)")
        page.mouse.click(c["x"], c["y"])
        page.wait_for_function(
            "() => document.querySelector('.llmlab-insp').dataset.drawnKey === 'decoder|0|3|0|0'",
            timeout=30_000)
    finally:
        lp.close()
    assert not lp.blocked, f"JupyterLab or a view tried to reach the network: {lp.blocked}"
    assert not [e for e in lp.errors if "llmlab" in e or "bertviz" in e], lp.errors
