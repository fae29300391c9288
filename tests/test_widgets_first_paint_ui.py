"""Every widget paints its main content in JupyterLab, offline (issue 22 item 1).

One notebook shows each widget of ``paint_cases.WIDGETS`` (ModelBuilder, TrainerWidget,
GenerateWidget, CalibrationWidget, RunHistory, TradeoffWidget, the Lab) under Run All; each
cell's output must show its widget's main element with its content (``PAINTED``: the
plotly chart's axes where there is a chart). The lab extension has evaluated plotly's
bundle before the first cell runs (``plotlyPreload.ts``), and the charts all use that one
(``plotly_widget.LOADER``). How long this takes is measured by
benchmarks/first_paint.py, not here. Screenshots go to the test artifacts.
"""

from __future__ import annotations

import plotly
from lab_helpers import chromium, open_lab, running_lab, screenshot
from paint_cases import PAINTED, WIDGETS, all_widgets_notebook

CELL = "(i => window.jupyterapp.shell.currentWidget.content.widgets[i].node)"
CHARTS = "() => document.querySelectorAll('.jp-OutputArea .js-plotly-plot .main-svg').length"
SHARED = f"() => !!globalThis[Symbol.for('llmlab.plotly-widget-bundle@{plotly.__version__}')]"


def test_every_widget_paints_its_main_content_in_jupyterlab(tmp_path) -> None:
    notebook = all_widgets_notebook(tmp_path)
    with running_lab(tmp_path) as url, chromium() as browser:
        lab = open_lab(browser, url)
        page = lab.page
        page.set_default_timeout(120_000)
        try:
            lab.open_and_run(notebook.name, command="")
            page.wait_for_function(SHARED)        # preloaded while the page was idle
            assert page.evaluate(CHARTS) == 0
            lab.command("notebook:run-all-cells")
            for index, name in enumerate(WIDGETS, start=1):
                page.evaluate(f"() => {CELL}({index}).scrollIntoView()")
                page.wait_for_function(f"() => ({PAINTED[name]})({CELL}({index}))")
                screenshot(page.locator(".jp-Cell").nth(index), f"first-paint-{name}")
            assert page.evaluate(CHARTS) >= 4    # trainer, calibration, history, the Lab's trainer
        except Exception:
            screenshot(page, "first-paint-failure")
            raise
        assert not [e for e in lab.errors if "anywidget" in e or "plotly" in e], lab.errors
        lab.assert_clean()
