"""Training survives the browser (issue 21 item 3): a TrainerWidget trains, the page is
reloaded mid-run (and, in the second test, the kernel restarts mid-run), and the reloaded view's loss curve continues with no gap -- its x values are
the steps the run store logged (thinned as the chart thins long series) -- while the Run
history panel marks the run running and then interrupted when it is stopped.

JupyterLab on a scratch notebook, headless Chromium with every non-local request blocked;
screenshots go to the test artifacts.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from lab_helpers import chromium, open_lab, running_lab, screenshot

from llmlab.runs import RunStore
from llmlab.widgets.charts import MAX_POINTS, thin

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CELLS = [
    """import llmlab
text = llmlab.data.load_text("tinyshakespeare")[:50_000]
tok = llmlab.CharTokenizer.train(text)
data = llmlab.data.CausalLMData.from_text(text, tok, seq_len=32)
shape = llmlab.ModelConfig(family="gpt", vocab_size=tok.vocab_size, context_length=32,
                           n_layer=2, n_head=2, d_model=64)
trainer = llmlab.widgets.TrainerWidget(shape, data, run_dir="llmlab-runs", max_steps=1_000_000,
                                       batch_size=8, eval_interval=1_000_000, sample_every=0)
trainer.start()
trainer""",
    "trainer.stop(); run = trainer.wait(60); print('STOPPED', run.status)",
]
# the x values of the training-loss line in the page's TrainerWidget view
CURVE = """() => {
    const plot = document.querySelector('.jp-OutputArea .llmlab-trainer .js-plotly-plot');
    const line = plot && plot.data && plot.data.find(trace => trace.name === 'train/loss');
    return line && line.x ? Array.from(line.x) : [];
}"""


def notebook(path: Path, cells: list[str] = CELLS) -> None:
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(c) for c in cells],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}})
    nbformat.write(nb, path)


def last_x(page) -> int:
    xs = page.evaluate(CURVE)
    return xs[-1] if xs else 0


def test_a_reloaded_page_continues_the_curve_with_no_gap(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_DATA_DIR", str(SHARED_DATA))
    monkeypatch.setenv("LLMLAB_CACHE_DIR", str(tmp_path / ".cache"))
    notebook(tmp_path / "live.ipynb")
    store = RunStore(tmp_path / "llmlab-runs")
    with running_lab(tmp_path) as url, chromium() as browser:
        lab = open_lab(browser, url)
        page = lab.page
        page.set_default_timeout(60_000)
        try:
            lab.open_and_run("live.ipynb", "notebook:run-cell-and-select-next")
            page.wait_for_function(f"() => ({CURVE})().length >= 30", timeout=120_000)
            lab.command("docmanager:save")
            run = store.runs()[0]
            before = last_x(page)

            page.reload()                                   # mid-run
            page.wait_for_function(
                "() => window.jupyterapp?.commands?.hasCommand('docmanager:open')")
            page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
            lab.command("docmanager:open", {"path": "live.ipynb"})
            page.wait_for_function(f"() => {{ const x = ({CURVE})(); "
                                   f"return x.length && x[0] === 1 && x[x.length - 1] > {before}; }}",
                                   timeout=60_000)
            assert run.status == "running"                  # the training went on
            lab.command("llmlab:open-run-history")
            row = page.locator(f"tr[data-run-id='{run.id}']")
            row.and_(page.locator("[data-status='running']")).wait_for(timeout=60_000)
            screenshot(page, "widgets-attach-reloaded-running")

            page.evaluate("() => { window.jupyterapp.shell.currentWidget.content"
                          ".activeCellIndex = 1; }")
            lab.command("notebook:run-cell")
            page.get_by_text("STOPPED interrupted").wait_for(timeout=90_000)
            steps = store.get(run.id).metrics.select("step", "train/loss").drop_nulls()
            logged = steps["step"].to_list()
            page.wait_for_function(f"() => {{ const x = ({CURVE})(); "
                                   f"return x[x.length - 1] === {logged[-1]}; }}")
            assert page.evaluate(CURVE) == thin(logged, logged, MAX_POINTS)[0]   # no gap
            assert logged == list(range(1, logged[-1] + 1)) and logged[-1] > before
            row.and_(page.locator("[data-status='interrupted']")).wait_for(timeout=30_000)
            screenshot(page, "widgets-attach-stopped")
        except Exception:
            screenshot(page, "widgets-attach-failure")
            raise
        lab.assert_clean()


RESTART_CELLS = [
    CELLS[0],
    """import llmlab  # a new kernel: nothing of the old one is left
run_id = llmlab.runs.list("llmlab-runs")["id"][0]
again = llmlab.widgets.TrainerWidget.attach(run_id, run_dir="llmlab-runs")
again""",
]


def test_after_a_kernel_restart_attach_says_the_run_was_interrupted(tmp_path, monkeypatch):
    """The kernel that trained restarts mid-run (Kernel > Restart): attaching to the run from
    the new kernel shows its curve from the store and says, for the person at the screen, that
    the run was interrupted by the end of the process that trained it."""
    monkeypatch.setenv("LLMLAB_DATA_DIR", str(SHARED_DATA))
    monkeypatch.setenv("LLMLAB_CACHE_DIR", str(tmp_path / ".cache"))
    notebook(tmp_path / "restart.ipynb", RESTART_CELLS)
    store = RunStore(tmp_path / "llmlab-runs")
    with running_lab(tmp_path) as url, chromium() as browser:
        lab = open_lab(browser, url)
        page = lab.page
        page.set_default_timeout(60_000)
        try:
            lab.open_and_run("restart.ipynb", "notebook:run-cell-and-select-next")
            page.wait_for_function(f"() => ({CURVE})().length >= 20", timeout=120_000)
            run = store.runs()[0]
            page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext"
                          ".session.kernel.restart()")
            page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=90_000)
            page.evaluate("() => { window.jupyterapp.shell.currentWidget.content"
                          ".activeCellIndex = 1; }")
            lab.command("notebook:run-cell")
            status = page.locator(".jp-OutputArea", has_text="interrupted").last
            status.wait_for(timeout=90_000)
            text = status.inner_text()
            assert "kernel restart" in text and run.id in page.content()
            assert store.get(run.id).status == "interrupted"
            logged = store.get(run.id).metrics["step"].drop_nulls().max()
            page.wait_for_function(   # the attached widget draws the curve from the store
                f"() => {{ const p = [...document.querySelectorAll('.jp-OutputArea "
                f".llmlab-trainer .js-plotly-plot')].at(-1); const l = p && p.data && "
                f"p.data.find(t => t.name === 'train/loss'); "
                f"return l && l.x && l.x[l.x.length - 1] === {logged}; }}", timeout=60_000)
            status.scroll_into_view_if_needed()
            screenshot(page, "widgets-attach-after-kernel-restart")
        except Exception:
            screenshot(page, "widgets-attach-restart-failure")
            raise
        lab.assert_clean()
