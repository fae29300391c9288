"""figure_widget: plotly's FigureWidget with its bundle as a binary trait behind a small
loader, imported without nbformat's heavy import chain; plotly's behaviour kept."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import plotly
from ipywidgets.widgets.widget import _remove_buffers

from llmlab.widgets import plotly_widget
from llmlab.widgets.plotly_widget import LOADER, figure_widget

BUNDLE = Path(plotly.__file__).parent / "package_data" / "widgetbundle.js"


def test_the_bundle_travels_as_bytes_beside_a_small_loader():
    fig = figure_widget(layout={"title": {"text": "loss"}})
    state = fig.get_state()
    assert state["_esm"] == LOADER and len(LOADER) < 2000
    assert bytes(state["_plotly_bundle"]) == BUNDLE.read_bytes()
    assert state["_plotly_version"] == plotly.__version__
    _, buffer_paths, buffers = _remove_buffers(state)
    assert ["_plotly_bundle"] in buffer_paths        # binary, not a JSON string
    assert sum(len(b) for b in buffers) >= BUNDLE.stat().st_size


def test_it_is_still_a_plotly_figure_widget():
    import plotly.graph_objects as go

    fig = figure_widget(go.Figure(go.Scatter(y=[3, 2, 1], name="loss")))
    assert isinstance(fig, go.FigureWidget)
    fig.add_bar(y=[1, 2])
    assert [t.type for t in fig.data] == ["scatter", "bar"]
    assert fig._widget_data[0]["y"] == [3, 2, 1]     # the synced state the views start from


def test_the_first_chart_imports_neither_nbformat_nor_jsonschema_nor_jupyterlab():
    code = textwrap.dedent("""
        import sys
        from llmlab.widgets.plotly_widget import figure_widget
        figure_widget().add_scatter(y=[1, 2])
        print(sorted(m for m in ("nbformat", "jsonschema", "rfc3987_syntax", "jupyterlab")
                     if m in sys.modules))
        import plotly.io._renderers as renderers, nbformat
        print(renderers.nbformat.__version__ == nbformat.__version__, nbformat.v4.new_notebook)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0] == "[]"
    assert out[1].startswith("True <function new_notebook")   # a later import is the real one


def test_the_front_end_version_warning_reads_package_metadata(monkeypatch):
    class Parent:
        def cmdline(self):
            return ["python", "/usr/bin/jupyter-notebook"]

    class Process:
        def parent(self):
            return Parent()

    import psutil

    monkeypatch.setattr(psutil, "Process", Process)
    monkeypatch.setattr(plotly_widget, "_installed_version", lambda package: "6.5.2")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plotly_widget.version_warnings()
    assert len(caught) == 1 and "Jupyter Notebook >= 7" in str(caught[0].message)
    assert "pip install --upgrade notebook" in str(caught[0].message)
    monkeypatch.setattr(plotly_widget, "_installed_version", lambda package: "7.4.0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plotly_widget.version_warnings()
    assert not caught


def test_the_lab_extension_preloads_under_the_key_the_loader_reads():
    from llmlab.widgets.plotly_widget import BUNDLE_KEY, LOADER

    preload = (Path(__file__).resolve().parents[1] / "labextension" / "src"
               / "plotlyPreload.ts").read_text(encoding="utf-8")
    assert f"export const BUNDLE_KEY = '{BUNDLE_KEY}';" in preload
    assert f"Symbol.for(`{BUNDLE_KEY}${{model.get(\"_plotly_version\")}}`)" in LOADER
