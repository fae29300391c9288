"""Saved notebooks and offline HTML exports show every widget's picture and its final numbers.

Examples 01 (ModelBuilder, TrainerWidget) and 04 (Trainer.fit's progress bar) are executed
as ``nbconvert --execute --ExecutePreprocessor.store_widget_state=True`` does (the session's
``executed_example`` run, shared with test_examples; ``CI=1`` for small settings), then exported with ``llmlab.export_html`` and opened in
headless Chromium with every request outside the file blocked and recorded.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from lab_helpers import CHROMIUM, CHROMIUM_ARGS, screenshot

import llmlab
from llmlab.export_html import WIDGET_STATE, WIDGET_VIEW, main, notebook_html

ROOT = Path(__file__).resolve().parents[1]
SIZE_LIMIT = 300_000   # bytes one widget output may add to the saved notebook


@pytest.fixture(scope="module")
def executed(executed_example):
    """{example stem: (executed notebook, its folder)} for examples 01 and 04."""
    return {stem: executed_example(stem) for stem in ("01_train_char_gpt", "04_sampling")}


def widget_outputs(nb) -> list[dict]:
    return [o for c in nb.cells for o in c.get("outputs", ()) if WIDGET_VIEW in o.get("data", {})]


def snapshot_of(nb, kind: str) -> str:
    found = [o["data"]["text/html"] for o in widget_outputs(nb)
             if f'data-llmlab-widget="{kind}"' in o["data"].get("text/html", "")]
    assert len(found) == 1, f"expected one {kind} output with a picture, found {len(found)}"
    return found[0]


def expected_numbers(nb, folder: Path) -> dict[str, str]:
    """What the widgets showed live: the builder's parameter count (llmlab.estimate of its
    config) and the trainer run's last logged loss."""
    trainer = snapshot_of(nb, "trainer")
    run_id = re.search(r"run (\S+?)</div>", trainer).group(1)
    run = llmlab.runs.RunStore(folder / "llmlab-runs").get(run_id)
    losses = run.metrics["train/loss"].drop_nulls()
    cfg = run.config if isinstance(run.config, llmlab.ModelConfig) else (
        llmlab.ModelConfig.from_dict(run.config))
    from llmlab.estimate import estimate

    return {"params": f"{estimate(cfg, batch_size=12).params:,} parameters",
            "loss": f"loss {losses[-1]:.4f}", "steps": f"step {run.metrics['step'].max():,}/"}


def test_saved_notebook_holds_final_pictures_and_widget_state(executed):
    nb, folder = executed["01_train_char_gpt"]
    numbers = expected_numbers(nb, folder)
    builder, trainer = snapshot_of(nb, "builder"), snapshot_of(nb, "trainer")
    assert numbers["params"] in builder and "<svg" in builder
    assert "built (builder.model)" in builder            # refreshed when Start built it
    assert numbers["loss"] in trainer and numbers["steps"] in trainer
    assert "finished run" in trainer and "data:image/png;base64," in trainer
    for output in widget_outputs(nb):
        assert len(nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
            outputs=[output])]))) < SIZE_LIMIT
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    assert all(o["data"][WIDGET_VIEW]["model_id"] in state for o in widget_outputs(nb))
    bar = [o for o in widget_outputs(executed["04_sampling"][0])
           if "llmlab-progress" in o["data"].get("text/html", "")]
    assert len(bar) == 1 and "40/40" in bar[0]["data"]["text/html"]   # the final bar


def _open_offline(browser, path: Path):
    """Open ``path`` with every request that is not the file itself recorded and aborted."""
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: r.url.startswith(("file:", "data:")) or requests.append(r.url))
    page.route("http*://**/*", lambda route: route.abort())
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, requests, errors


def test_offline_export_shows_pictures_and_numbers(executed, tmp_path):
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail("Browser tests need Chromium at /usr/bin/chromium")
    pages = {}
    for stem, (nb, _) in executed.items():
        pages[stem] = tmp_path / f"{stem}.html"
        pages[stem].write_text(notebook_html(nb, title=stem), encoding="utf-8")
        assert not re.search(r"<script[^>]+src=", pages[stem].read_text())
    numbers = expected_numbers(*executed["01_train_char_gpt"])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page, requests, errors = _open_offline(browser, pages["01_train_char_gpt"])
            builder = page.locator('.llmlab-snapshot[data-llmlab-widget="builder"]')
            trainer = page.locator('.llmlab-snapshot[data-llmlab-widget="trainer"]')
            assert builder.is_visible() and trainer.is_visible()
            assert numbers["params"] in builder.inner_text()
            assert builder.locator("svg rect").count() > 3             # the diagram
            assert numbers["loss"] in trainer.inner_text()
            chart = trainer.locator("img")
            assert chart.evaluate("img => img.complete && img.naturalWidth > 100")
            screenshot(page, "export-01")
            page, more, errors2 = _open_offline(browser, pages["04_sampling"])
            bar = page.locator(".llmlab-progress")
            assert bar.is_visible() and "40/40" in bar.inner_text()
            assert page.locator("img").count() >= 1                    # the matplotlib figure
            requests += more
            errors += errors2
        finally:
            browser.close()
    assert not requests, f"the export tried to reach the network: {requests}"
    assert not errors


FIGURES = [
    "import plotly.graph_objects as go\ngo.Figure(go.Scatter(y=[1, 3, 2], name='plain'))",
    "go.FigureWidget(go.Scatter(y=[2, 1, 3], name='widget'))",
    "from llmlab.widgets import LineChart\nchart = LineChart('loss')\n"
    "chart.set_series('train/loss', [1, 2, 3], [3.0, 2.0, 1.5])\nchart",
]


def test_export_command_draws_plotly_live_offline(tmp_path):
    from playwright.sync_api import sync_playwright

    source = tmp_path / "charts.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("Charts, offline: $e^{i\\pi} = -1$"),
        *[nbformat.v4.new_code_cell(code) for code in FIGURES]]), source)
    assert main([str(source), "--execute", "-o", str(tmp_path / "out.html")]) == 0
    text = (tmp_path / "out.html").read_text()
    assert not re.search(r"<script[^>]+src=", text)
    assert text.count("Plotly.newPlot") == 2            # the figure and the FigureWidget
    from plotly.offline import get_plotlyjs

    assert text.count(get_plotlyjs()[:300]) == 1          # plotly.js inlined once
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page, requests, errors = _open_offline(browser, tmp_path / "out.html")
            page.wait_for_function(
                "() => document.querySelectorAll('.plotly-graph-div .main-svg').length >= 2")
            names = page.evaluate("() => [...document.querySelectorAll('.plotly-graph-div')]"
                                  ".map(d => d.data.map(t => t.name).join())")
            chart = page.locator('.llmlab-snapshot, img[src^="data:image/png"]')
            assert chart.count() >= 1                    # the LineChart's picture
        finally:
            browser.close()
    assert names == ["plain", "widget"]
    assert not requests and not errors


def test_export_command_refuses_bad_input(tmp_path, capsys):
    assert main([str(tmp_path / "missing.ipynb")]) == 2
    assert "no notebook at" in capsys.readouterr().err
    (tmp_path / "bad.ipynb").write_text("not json")
    assert main([str(tmp_path / "bad.ipynb")]) == 2
    assert "not a readable notebook" in capsys.readouterr().err
