"""llmlab's widgets in Notebook 7 (`jupyter notebook`), offline: a ModelBuilder, a LineChart,
a GenerateWidget and the attention inspector render from the installed ipywidgets / anywidget / plotly front ends.

Writes a small notebook on a scratch folder, serves it with `jupyter notebook` from this
Python environment (``lab_helpers.running_notebook``), opens it in headless Chromium with
every request outside the local server blocked, runs it with Run > Run All Cells and checks
what the page shows; a screenshot is kept as a test artifact (``lab_helpers.screenshot``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
from lab_helpers import chromium, open_notebook, running_notebook, screenshot

import llmlab

NOTEBOOK = "widgets.ipynb"
TEXT = "the cat sat on the mat. the dog sat on the log."
POINTS = ([1, 2, 3, 4, 5], [4.2, 3.1, 2.6, 2.3, 2.2])
NEW_TOKENS = 12
SIZES = dict(n_layer=1, d_model=32, n_head=2, context_length=32)  # of the notebook's model
BUILDER, CHART, GENERATOR = (".jp-OutputArea .llmlab-model-builder",
                             ".jp-OutputArea .llmlab-LineChart", ".jp-OutputArea .llmlab-generate")
# (x, y) of the chart's series as plotly.js holds them in the page (gd.data)
PLOTTED = f"""() => {{
    const plot = document.querySelector('{CHART} .js-plotly-plot');
    const line = plot && plot.data && plot.data.find(trace => trace.name === 'train/loss');
    return line && line.x ? [Array.from(line.x), Array.from(line.y)] : null;
}}"""
# Notebook 7.6's own bundle may throw this while it starts (its shortcuts plugin reads the
# settings of a plugin whose settings have not loaded yet: "has no transformers yet"); the
# same start in JupyterLab 4.6 throws nothing. Tolerated only when raised there alone.
NOTEBOOK_STARTUP_ERRORS = {"Cannot read properties of undefined (reading 'schema')"}
NOTEBOOK_CORE = re.compile(r"/static/notebook/[\w.-]+\.js")
CELLS = [
    f"""import llmlab
from llmlab.widgets import GenerateWidget, LineChart, ModelBuilder

tok = llmlab.CharTokenizer.train({TEXT!r})
builder = ModelBuilder(llmlab.ModelConfig.preset("baby-char").replace(
    **{SIZES!r}, vocab_size=tok.vocab_size))
builder.tokenizer = tok
builder.build()
builder""",
    f"""chart = LineChart("loss", y_title="cross-entropy")
chart.set_series("train/loss", *{POINTS!r})
chart""",
    f"""generator = GenerateWidget(builder)
generator.prompt.value, generator.seed.value = "the ", "7"
generator.max_new_tokens.value = {NEW_TOKENS}
generator""",
    """generator.generate_button.click()
assert generator.wait(timeout=60)
shown = sum(1 for event in generator.events if event.text)  # tokens with a shaded span
print("GENERATED", __import__("json").dumps({"text": generator.text, "shown": shown}))""",
    """cap = llmlab.inspect(builder.model, tok, "the cat sat on the mat")
cap.show(layer=0, head=1)""",
]


def write_notebook(path: Path) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                       "language": "python"}
    nbformat.write(notebook, path)


def test_widgets_render_in_notebook_7(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LLMLAB_CACHE_DIR", str(tmp_path / ".cache"))
    write_notebook(tmp_path / NOTEBOOK)

    with running_notebook(tmp_path) as url, chromium() as browser:
        notebook = open_notebook(browser, url, NOTEBOOK)
        page = notebook.page
        page.set_default_timeout(60_000)
        try:
            page.locator(".lm-MenuBar-item", has_text="Run").first.click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            printed = page.locator(".jp-OutputArea-output", has_text="GENERATED")
            printed.wait_for(timeout=90_000)
            generated = json.loads(printed.inner_text().split("GENERATED", 1)[1])

            # the builder: one labelled control per config field, the estimates, the diagram
            labels = {text.strip() for text in page.locator(f"{BUILDER} label").all_inner_texts()}
            fields = llmlab.ModelConfig.json_schema()["properties"]
            assert set(fields) <= labels, sorted(set(fields) - labels)
            assert page.locator(f"{BUILDER} input, {BUILDER} select").count() >= len(fields)
            cfg = llmlab.ModelConfig.preset("baby-char").replace(
                **SIZES, vocab_size=llmlab.CharTokenizer.train(TEXT).vocab_size)
            params = str(cfg.estimate(batch_size=12)).splitlines()[0].split()[-1]
            estimate = page.locator(f"{BUILDER} table", has_text="parameters")
            assert params in estimate.inner_text()
            assert page.locator(f"{BUILDER} svg").count() >= 1
            assert page.locator(f"{BUILDER} button", has_text="Build").is_enabled()

            # the chart: plotly.js holds the points and drew one marker per point in its SVG
            page.wait_for_function(f"() => ({PLOTTED})() !== null")
            assert page.evaluate(PLOTTED) == [POINTS[0], POINTS[1]]
            markers = page.locator(f"{CHART} svg .scatterlayer .trace .points path")
            assert markers.count() == len(POINTS[0])

            # the generator: the text generated in the kernel, shaded token by token
            status = page.locator(f"{GENERATOR} .llmlab-status",
                                  has_text=f"{NEW_TOKENS} tokens, finished by length")
            status.wait_for()
            output = page.locator(f"{GENERATOR} .llmlab-generation")
            assert output.inner_text() == "the " + generated["text"]
            assert output.locator("span[title]").count() == generated["shown"] > 0
            # the attention inspector (anywidget): drew the head it was asked for
            page.wait_for_function(
                "() => document.querySelector('.jp-OutputArea .llmlab-insp')?.dataset.drawnKey"
                " === 'decoder|0|1|0|0'", timeout=60_000)
            page.locator(BUILDER).scroll_into_view_if_needed()
            screenshot(page, "widgets-notebook7-1-builder")
            page.locator(CHART).evaluate("chart => chart.scrollIntoView()")
            screenshot(page, "widgets-notebook7-2-chart-and-generator")
        except Exception:
            screenshot(page, "widgets-notebook7-failure")
            raise
        assert not unexpected_errors(notebook), unexpected_errors(notebook)
        notebook.assert_clean()


def unexpected_errors(notebook) -> list[str]:
    """The page's errors, less Notebook 7's known start-up error thrown by its own code."""
    def known(message: str, stack: str) -> bool:
        urls = re.findall(r"https?://\S+", stack)
        return (message in NOTEBOOK_STARTUP_ERRORS and bool(urls)
                and all(NOTEBOOK_CORE.search(url) for url in urls))

    return [f"{message}\n{stack}" for message, stack in zip(notebook.errors, notebook.stacks)
            if not known(message, stack)]
