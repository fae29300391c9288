"""The widgets whose first paint is measured (benchmarks/first_paint.py) and tested
(tests/test_widgets_first_paint_ui.py): each one's notebook and what "painted" means.

A widget's notebook has three cells: ``SETUP`` plus the widget's own inputs (not timed),
then the widget's cell twice (a first display, then a second instance in the same kernel).
The widget's cell times itself with ``time.perf_counter`` (its imports, construction and
display) and prints ``kernel_ms=...``. ``PAINTED[name]`` is a JavaScript function of the
cell's DOM node that is true once the widget's main element is visible with its content.

>>> notebook_for("builder", tmp_path)          # doctest: +SKIP
PosixPath('.../builder.ipynb')
"""

from __future__ import annotations

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

SETUP = f"""\
import os, time
os.environ.setdefault("LLMLAB_DATA_DIR", {str(SHARED_DATA)!r})
import llmlab
text = llmlab.data.load_text("tinyshakespeare")[:100_000]
tok = llmlab.CharTokenizer.train(text)
data = llmlab.data.CausalLMData.from_text(text, tok, seq_len=64)
"""

#: widget -> (its inputs, made in the setup cell; the expression that makes the widget)
WIDGETS: dict[str, tuple[str, str]] = {
    "builder": ("", 'llmlab.widgets.ModelBuilder(preset="baby-char")'),
    "trainer": ('builder = llmlab.widgets.ModelBuilder(preset="baby-char")',
                'llmlab.widgets.TrainerWidget(builder, data, run_dir="runs", max_steps=10)'),
    "generate": ("model = llmlab.build_model(llmlab.ModelConfig.preset('baby-char', "
                 "vocab_size=tok.vocab_size), seed=0)",
                 "llmlab.widgets.GenerateWidget((model, tok))"),
    "calibration": ("import numpy as np\nrng = np.random.default_rng(0)\n"
                    "probs = rng.dirichlet([1, 1, 1], size=300)\n"
                    "labels = rng.integers(0, 3, size=300)",
                    "llmlab.widgets.CalibrationWidget(probs, labels)"),
    "history": ("for i in range(3):\n"
                "    run = llmlab.runs.create(store='runs', name=f'run-{i}', capture_git=False)\n"
                "    for step in range(1, 6):\n"
                "        run.log_metrics({'train/loss': 3 - step / 10 - i / 10}, step=step)\n"
                "    run.finish()",
                'llmlab.widgets.RunHistory("runs")'),
    "tradeoff": ("model = llmlab.build_model(llmlab.ModelConfig.preset('baby-char', "
                 "vocab_size=tok.vocab_size), seed=0)",
                 'llmlab.widgets.TradeoffWidget(data, source=(model, tok), run_dir="runs")'),
    "lab": ("", 'llmlab.Lab(data, run_dir="runs")'),
}

_VISIBLE = "const shown = el => !!el && el.getBoundingClientRect().height > 0;"


def _painted(*selectors: str) -> str:
    """JavaScript: every selector matches a visible element inside the cell."""
    checks = " && ".join(f"shown(cell.querySelector({s!r}))" for s in selectors)
    return f"cell => {{ {_VISIBLE} return {checks}; }}"


PLOT = ".js-plotly-plot .main-svg .xtick"  # the axes drawn: an empty chart has no traces
PAINTED: dict[str, str] = {
    "builder": _painted(".llmlab-model-builder svg", ".llmlab-model-builder table"),
    "trainer": _painted(f".llmlab-trainer {PLOT}", ".llmlab-trainer button"),
    "generate": _painted(".llmlab-generate textarea", ".llmlab-generate button"),
    "calibration": _painted(f".llmlab-calibration {PLOT}", ".llmlab-calibration button"),
    "history": _painted(".llmlab-run-history table tr td", f".llmlab-run-history {PLOT}"),
    "tradeoff": _painted(".llmlab-tradeoff select", ".llmlab-tradeoff button"),
    "lab": _painted(".llmlab-lab .lm-TabBar-tab", ".llmlab-lab .llmlab-model-builder svg"),
}


def widget_cell(expression: str) -> str:
    """A cell that makes and displays the widget, timing itself."""
    return ("_t0 = time.perf_counter()\n"
            f"widget = {expression}\n"
            "display(widget)\n"
            'print(f"kernel_ms={(time.perf_counter() - _t0) * 1e3:.1f}")')


def notebook_for(name: str, folder: Path) -> Path:
    """Write ``<folder>/<name>.ipynb``: setup, then the widget's cell twice."""
    inputs, expression = WIDGETS[name]
    cells = [SETUP + "import llmlab.widgets\n" + inputs, widget_cell(expression),
             widget_cell(expression)]
    return write_notebook(folder / f"{name}.ipynb", cells)


def all_widgets_notebook(folder: Path) -> Path:
    """Write ``<folder>/widgets.ipynb``: one setup cell for every widget, then one cell per
    widget in ``WIDGETS``' order."""
    inputs = "\n".join(dict.fromkeys(i for i, _ in WIDGETS.values() if i))
    cells = [SETUP + "import llmlab.widgets\n" + inputs]
    cells += [widget_cell(expression) for _, expression in WIDGETS.values()]
    return write_notebook(folder / "widgets.ipynb", cells)


def write_notebook(path: Path, cells: list[str]) -> Path:
    """Write a Python 3 notebook of these code cells at ``path``."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path
