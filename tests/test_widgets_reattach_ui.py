"""A new view of a training TrainerWidget shows the whole loss curve so far and keeps
updating: shown again in another cell, in a second browser window, after a page reload and
after the notebook tab is closed and reopened (issue 21, item 0), with no plotly warnings.

JupyterLab on a scratch notebook the test writes, headless Chromium (`/usr/bin/chromium`)
with every request outside the local server blocked; screenshots go to the test artifacts.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from lab_helpers import chromium, open_lab, running_lab, screenshot

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CELLS = [
    """import llmlab
text = llmlab.data.load_text("tinyshakespeare")[:50_000]
tok = llmlab.CharTokenizer.train(text)
data = llmlab.data.CausalLMData.from_text(text, tok, seq_len=32)
shape = llmlab.ModelConfig(family="gpt", vocab_size=tok.vocab_size, context_length=32,
                           n_layer=1, n_head=2, d_model=32)
trainer = llmlab.widgets.TrainerWidget(shape, data, max_steps=1_000_000, batch_size=4,
                                       eval_interval=1_000_000, sample_every=0)
trainer.start()
trainer""",
    "trainer",
]
# the last step of the training-loss line in each TrainerWidget view of the page, or 0 when
# the line is missing or does not start at step 1 (long curves are thinned, never cut)
PLOTTED = """() => [...document.querySelectorAll('.jp-OutputArea .llmlab-trainer')].map(view => {
    const plot = view.querySelector('.js-plotly-plot');
    const line = plot && plot.data && plot.data.find(trace => trace.name === 'train/loss');
    return line && line.x && line.x.length && line.x[0] === 1 ? line.x[line.x.length - 1] : 0;
})"""


def notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(c) for c in CELLS],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}})
    nbformat.write(nb, path)


def whole_and_growing(page, views: int, at_least: int) -> int:
    """Every one of ``views`` views draws the curve from step 1 to at least ``at_least``,
    then further: the curve so far came with the view, and later points keep arriving."""
    page.wait_for_function(
        f"() => {{ const n = ({PLOTTED})(); return n.length === {views} && "
        f"n.every(v => v >= {at_least}); }}", timeout=60_000)
    now = min(page.evaluate(PLOTTED))
    page.wait_for_function(f"() => ({PLOTTED})().every(v => v > {now})", timeout=60_000)
    return max(page.evaluate(PLOTTED))


def steps_so_far(page) -> int:
    """The step the widget's numbers line shows (what the kernel has trained)."""
    text = page.locator(".jp-OutputArea .llmlab-trainer-stats").first.inner_text()
    return int(text.split("step ")[1].split("/")[0].replace(",", ""))


def test_every_new_view_of_a_training_widget_shows_the_whole_curve(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_DATA_DIR", str(SHARED_DATA))
    monkeypatch.setenv("LLMLAB_CACHE_DIR", str(tmp_path / ".cache"))
    notebook(tmp_path / "live.ipynb")
    warnings: list[str] = []

    def watch(page):
        page.on("console", lambda msg: warnings.append(msg.text)
                if "trace index" in msg.text or "out of bounds" in msg.text else None)

    with running_lab(tmp_path) as url, chromium() as browser:
        lab = open_lab(browser, url)
        page = lab.page
        watch(page)
        page.set_default_timeout(60_000)
        try:
            lab.open_and_run("live.ipynb", "notebook:run-cell-and-select-next")
            page.wait_for_function(f"() => ({PLOTTED})()[0] >= 200", timeout=120_000)

            lab.command("notebook:run-cell-and-select-next")       # 1. shown again
            seen = whole_and_growing(page, views=2, at_least=200)
            screenshot(page, "widgets-reattach-1-shown-again")
            lab.command("docmanager:save")   # the other windows read the outputs from the file

            second = open_lab(browser, url, reset=False)           # 2. a second window
            watch(second.page)
            second.command("docmanager:open", {"path": "live.ipynb"})
            whole_and_growing(second.page, views=2, at_least=seen)
            screenshot(second.page, "widgets-reattach-2-second-window")
            second.page.close()

            page.reload()                                          # 3. a page reload
            page.wait_for_function(
                "() => window.jupyterapp?.commands?.hasCommand('docmanager:open')")
            page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
            lab.command("docmanager:open", {"path": "live.ipynb"})
            seen = whole_and_growing(page, views=2, at_least=seen)
            screenshot(page, "widgets-reattach-3-reloaded")

            lab.command("application:close-all")                   # 4. tab closed, reopened
            lab.command("docmanager:open", {"path": "live.ipynb"})
            seen = whole_and_growing(page, views=2, at_least=seen)
            screenshot(page, "widgets-reattach-4-reopened")
            # the views reach the step the kernel has trained, give or take the updates
            # in flight (a few hundred steps a second on this tiny model)
            assert seen >= steps_so_far(page) - 2000
            assert not warnings, warnings[:3]
        except Exception:
            screenshot(page, "widgets-reattach-failure")
            raise
        lab.assert_clean()
