"""The widgets in the states docs/widgets.md shows, drawn in a real JupyterLab, offline: a
CalibrationWidget after calibrating (its reliability diagrams), a GenerateWidget after a
generation, a TradeoffWidget after a sweep (table and Pareto plot) and the Lab. Each widget is
checked to be drawn with that state's content, then its element is saved as a screenshot in
the test artifacts (``widget-<name>.png``; copied into docs/images by hand).

One notebook, one server, one page; the kernel's work is a few seconds (tiny sweep, 80 tokens).
"""

from __future__ import annotations

from pathlib import Path

from lab_helpers import chromium, open_lab, running_lab, screenshot, widget_screenshot
from paint_cases import write_notebook

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = ".jp-OutputArea"
PLOT = ".js-plotly-plot .main-svg"

CELLS = [
    f"""import os
os.environ.setdefault("LLMLAB_DATA_DIR", {str(SHARED_DATA)!r})
import numpy as np
import llmlab
from llmlab.widgets import CalibrationWidget, GenerateWidget, TradeoffWidget
text = llmlab.data.load_text("tinyshakespeare")[:20_000]
tok = llmlab.CharTokenizer.train(text)
data = llmlab.data.CausalLMData.from_text(text, tok, seq_len=64)
model = llmlab.build_model(llmlab.ModelConfig.preset("baby-char", vocab_size=tok.vocab_size),
                           seed=0)""",
    """rng = np.random.default_rng(0)
logits = rng.normal(size=(400, 3)) * 3                      # overconfident scores
labels = np.array([rng.choice(3, p=np.exp(r / 3) / np.exp(r / 3).sum()) for r in logits])
calibration = CalibrationWidget(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), labels)
calibration.methods.value = ("none", "temperature", "isotonic")
calibration.calibrate()
calibration""",
    """writer = GenerateWidget((model, tok))
writer.prompt.value = "ROMEO:"
writer.max_new_tokens.value = 80
writer.generate()
writer.wait()
writer""",
    """tradeoff = TradeoffWidget(data, source=(model, tok), run_dir="runs", eval_batches=2,
                          gen_tokens=8)
tradeoff.choice.value = ("source: float32", "source: int8", "source: int4 weights")
tradeoff.run()
tradeoff""",
    """lab = llmlab.Lab(data, run_dir="runs")
lab.show("Runs")                                            # the sweep's three runs
lab""",
]

#: name -> (the widget's element, a selector inside it that shows the state is drawn)
SHOTS = {
    "calibration": (f"{OUT} .llmlab-calibration", f"{PLOT} .scatterlayer .trace"),
    "generate": (f"{OUT} .llmlab-generate", ".llmlab-generation span"),
    "tradeoff": (f"{OUT} .llmlab-tradeoff", f"{PLOT} .scatterlayer .trace"),
    "lab": (f"{OUT} .llmlab-lab", ".llmlab-run-history table tbody tr td"),
}


def test_widget_states_for_the_docs_are_drawn(tmp_path: Path) -> None:
    write_notebook(tmp_path / "gallery.ipynb", CELLS)
    with running_lab(tmp_path) as url, chromium() as browser:
        lab = open_lab(browser, url)
        page = lab.page
        page.set_default_timeout(90_000)
        try:
            lab.open_and_run("gallery.ipynb")
            for name, (element, drawn) in SHOTS.items():
                widget = page.locator(element).first
                widget.scroll_into_view_if_needed()
                widget.locator(drawn).first.wait_for()
                page.wait_for_timeout(300)          # plotly's transitions settle
                widget_screenshot(widget, f"widget-{name}")
            assert page.locator(f"{OUT} .llmlab-calibration {PLOT} .scatterlayer .trace").count() \
                >= 3                                 # a curve per method, at least
            written = page.locator(f"{OUT} .llmlab-generate .llmlab-generation").inner_text()
            assert written.startswith("ROMEO:") and len(written) > 60
            sweep_rows = page.locator(f"{OUT} .llmlab-tradeoff table.llmlab-table tr")
            assert sweep_rows.count() == 4                   # header + 3 runs
            assert page.locator(f"{OUT} .llmlab-lab .llmlab-run-history tbody tr").count() == 3
        except Exception:
            screenshot(page, "gallery-failure")
            raise
        lab.assert_clean()
