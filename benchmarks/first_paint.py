"""First paint of every widget in JupyterLab: from running its cell to its view on screen.

A real ``jupyter lab`` (this environment's) and headless Chromium, offline. For each widget a
fresh notebook (its own kernel) is opened in a fresh browser context; a setup cell loads the
data, then the widget's cell runs twice (a first display, then a second instance in the same
page and kernel). Each time is taken from the moment the page asks JupyterLab to run the
cell to the first animation frame in which the widget's main element is visible with its
content (``PAINTED``: e.g. the plotly chart's SVG for widgets with a chart), and split into
kernel time (the cell's own ``time.perf_counter`` span: imports, construction, display) and
front-end time (the rest: messages, widget models, views, layout, plotly).

Cases (one JSON line each on stdout; see benchmarks/README.md): ``<widget>_first`` and
``<widget>_second`` (ms, vs the 1 s budget, 2 s for the Lab), with the kernel and front-end
parts on stderr and in ``kernel_ms`` / ``front_ms``.

Run with the environment that has the built extension installed, e.g.
``.venv/bin/python benchmarks/first_paint.py [--quick] [--only trainer,lab]``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from _common import emit, environment, log, parse_args  # noqa: E402
from lab_helpers import chromium, open_lab, running_lab, screenshot  # noqa: E402
from paint_cases import PAINTED, WIDGETS, notebook_for  # noqa: E402

BENCH = "first_paint"

#: JavaScript: run cell ``index`` of the current notebook and resolve with the ms from the
#: run request to the first animation frame where ``painted(cellNode)`` holds.
RUN_AND_TIME = """async ([index, painted]) => {
  const check = new Function('cell', `return (${painted})(cell);`);
  const panel = window.jupyterapp.shell.currentWidget;
  const notebook = panel.content;
  notebook.activeCellIndex = index;
  const cell = notebook.widgets[index].node;
  cell.scrollIntoView({block: 'start'});
  const start = performance.now();
  const done = new Promise((resolve, reject) => {
    const frame = () => {
      if (check(cell)) resolve(performance.now() - start);
      else if (performance.now() - start > 120000) {
        reject(new Error(`not painted after 120 s; the cell shows: ${cell.innerText}`));
      } else requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  });
  window.jupyterapp.commands.execute('notebook:run-cell');
  return await done;
}"""

KERNEL_MS = """index => {
  const cell = window.jupyterapp.shell.currentWidget.content.widgets[index].node;
  const m = cell.innerText.match(/kernel_ms=([0-9.]+)/);
  return m ? parseFloat(m[1]) : null;
}"""

IDLE = ("() => window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel"
        "?.status === 'idle'")


def time_widget(browser, url: str, name: str) -> list[dict]:
    """[first, second] display timings of widget ``name``: total, kernel and front-end ms."""
    lab = open_lab(browser, url)
    page = lab.page
    page.set_default_timeout(180_000)
    lab.open_and_run(f"{name}.ipynb", "notebook:run-cell")   # the setup cell
    page.wait_for_function(IDLE)
    page.wait_for_timeout(500)
    page.wait_for_function(IDLE)
    results = []
    for index in (1, 2):
        try:
            total = page.evaluate(RUN_AND_TIME, [index, PAINTED[name]])
        except Exception:
            log(f"{name}: see {screenshot(page, f'first-paint-{name}-failure')}")
            raise
        page.wait_for_function(f"() => ({KERNEL_MS})({index}) !== null")
        kernel = page.evaluate(KERNEL_MS, index)
        page.wait_for_function(IDLE)
        results.append({"total_ms": total, "kernel_ms": kernel, "front_ms": total - kernel})
    lab.assert_clean()
    page.context.close()
    return results


def main() -> None:
    def options(parser) -> None:
        parser.add_argument("--only", default="",
                            help="comma-separated widget names (default: all of "
                                 + ", ".join(WIDGETS) + ")")

    args = parse_args(__doc__.splitlines()[0], extra=options)
    env = environment(args.device)
    log(json.dumps(env))
    names = [n for n in args.only.split(",") if n] or list(WIDGETS)
    unknown = sorted(set(names) - set(WIDGETS))
    if unknown:
        raise SystemExit(f"no widget {unknown}; choose from {', '.join(WIDGETS)}")
    with tempfile.TemporaryDirectory(prefix="llmlab-bench-paint-") as tmp:
        root = Path(tmp)
        for name in names:
            notebook_for(name, root)
        with running_lab(root) as url, chromium() as browser:
            for name in names:
                first, second = time_widget(browser, url, name)
                budget = 2000.0 if name == "lab" else 1000.0
                for which, r in (("first", first), ("second", second)):
                    log(f"{name} {which}: {r['total_ms']:.0f} ms (kernel {r['kernel_ms']:.0f}, "
                        f"front end {r['front_ms']:.0f})")
                    emit(BENCH, f"{name}_{which}", "ms", r["total_ms"], budget,
                         f"{budget:.0f} ms budget", higher_is_better=False, target=1.0)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
