"""An executed notebook as one offline HTML file: widget pictures, live plotly charts, no CDN.

nbconvert's HTML template loads require.js, MathJax and the widget HTML manager from CDNs, so
an exported notebook opened offline shows empty widget outputs. This export instead

- shows every widget output by its static picture (the ``text/html`` / ``image/png`` llmlab
  widgets carry beside the widget view, see ``llmlab._display.Snapshot``); a widget output
  without one keeps its text, and a plotly ``FigureWidget`` whose state was saved with the
  notebook is drawn as a live chart;
- draws plotly figures (``application/vnd.plotly.v1+json`` outputs) live with the plotly.js
  of the installed ``plotly`` package, inlined once in the file;
- loads nothing from the network: no ``<script src>`` at all (equations stay as TeX text).

Command line (``--execute`` runs the notebook first, saving widget state in it)::

    python -m llmlab.export_html notebook.ipynb                  # -> notebook.html
    python -m llmlab.export_html notebook.ipynb -o out.html --execute

>>> path = export_html("examples/01_train_char_gpt.ipynb", execute=True)  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

from llmlab._files import write_atomic

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PLOTLY = "application/vnd.plotly.v1+json"
STATIC = ("text/html", "image/png", "image/svg+xml", "image/jpeg")

# The lab template without the blocks that load scripts from CDNs; plotly.js inline instead.
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}
{%- if resources.llmlab_plotly_js %}<script type="text/javascript">
{{ resources.llmlab_plotly_js }}
</script>{% endif -%}
{%- endblock html_head_js -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
_TEMPLATE_NAME = "llmlab_offline.html.j2"


def offline_notebook(nb: Any) -> tuple[Any, bool]:
    """A copy of ``nb`` whose outputs need no widget manager and no network; and whether it
    holds plotly charts (which need plotly.js in the page)."""
    nb = copy.deepcopy(nb)
    widgets = nb.metadata.pop("widgets", {}) or {}
    states = (widgets.get(WIDGET_STATE) or {}).get("state") or {}
    plotly = False
    for cell in nb.cells:
        for output in cell.get("outputs", ()):
            data = output.get("data")
            if data is not None:
                output["data"], live = _offline_data(data, states)
                plotly = plotly or live
    return nb, plotly


def _offline_data(data: dict[str, Any], states: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """One output's mime bundle for the offline page; True when it is a live plotly chart."""
    if PLOTLY in data:
        return {"text/html": plotly_html(data[PLOTLY])}, True
    if WIDGET_VIEW not in data:
        return data, False
    kept = {k: v for k, v in data.items() if k != WIDGET_VIEW}
    if any(kind in kept for kind in STATIC):
        return kept, False
    figure = _saved_figure(data[WIDGET_VIEW], states)
    if figure is not None:
        return {"text/html": plotly_html(figure)}, True
    return kept, False


def _saved_figure(view: dict[str, Any], states: dict[str, Any]) -> dict[str, Any] | None:
    """The figure of a plotly FigureWidget from the notebook's saved widget state, if it is one."""
    state = (states.get(view.get("model_id")) or {}).get("state") or {}
    if "_widget_data" not in state or "_widget_layout" not in state:
        return None
    return {"data": state["_widget_data"], "layout": state["_widget_layout"]}


def plotly_html(figure: Any) -> str:
    """A plotly figure (dict or object) as a ``<div>`` drawn by the page's plotly.js."""
    import plotly.io as pio

    spec = figure if isinstance(figure, dict) else figure.to_plotly_json()
    spec = {"data": spec.get("data", []), "layout": spec.get("layout", {})}
    return pio.to_html(spec, include_plotlyjs=False, full_html=False, validate=False)


def notebook_html(nb: Any, *, title: str | None = None) -> str:
    """The offline HTML page of a notebook node (see the module docstring)."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    page, plotly = offline_notebook(nb)
    exporter = HTMLExporter(template_name="lab", template_file=_TEMPLATE_NAME,
                            extra_loaders=[DictLoader({_TEMPLATE_NAME: _TEMPLATE})])
    resources: dict[str, Any] = {"metadata": {"name": title or "notebook"}}
    if plotly:
        from plotly.offline import get_plotlyjs

        resources["llmlab_plotly_js"] = get_plotlyjs()
    body, _ = exporter.from_notebook_node(page, resources=resources)
    return body


def execute(nb: Any, *, cwd: Path, timeout: int = 600) -> Any:
    """Run ``nb`` top to bottom in a fresh kernel (in ``cwd``), storing the widget state."""
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def export_html(notebook: str | os.PathLike, output: str | os.PathLike | None = None, *,
                execute_first: bool = False, timeout: int = 600) -> Path:
    """Write ``notebook`` (an ``.ipynb`` path) as an offline HTML file; returns its path.

    ``output`` defaults to the notebook's path with ``.html``; ``execute_first`` runs the
    notebook first (in its folder) and exports what it showed. The file is written atomically.
    """
    import nbformat

    source = Path(notebook)
    if not source.is_file():
        raise FileNotFoundError(f"no notebook at {source}; pass the path of an .ipynb file")
    try:
        nb = nbformat.read(source, as_version=4)
    except (ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"{source} is not a readable notebook ({exc}); pass an .ipynb "
                         "file") from None
    if execute_first:
        nb = execute(nb, cwd=source.resolve().parent, timeout=timeout)
    target = Path(output) if output is not None else source.with_suffix(".html")
    page = notebook_html(nb, title=source.stem)
    write_atomic(target, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return target


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.export_html notebook.ipynb [-o out.html] [--execute]``."""
    parser = argparse.ArgumentParser(
        prog="python -m llmlab.export_html",
        description="Export a notebook as one offline HTML file (widget pictures, live plotly "
                    "charts, nothing loaded from the network).")
    parser.add_argument("notebook", help="the .ipynb file")
    parser.add_argument("-o", "--output", help="the HTML file (default: beside the notebook)")
    parser.add_argument("--execute", action="store_true",
                        help="run the notebook first (widget state saved) and export the run")
    parser.add_argument("--timeout", type=int, default=600,
                        help="seconds a cell may run with --execute (default 600)")
    args = parser.parse_args(argv)
    try:
        path = export_html(args.notebook, args.output, execute_first=args.execute,
                           timeout=args.timeout)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
