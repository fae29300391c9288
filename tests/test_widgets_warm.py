"""The background warm-up of the first widget's imports (``llmlab.widgets.warm``): it starts in
a Jupyter kernel only, can be turned off, and a widget made while it runs is made whole."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from llmlab.widgets import warm


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_outside_a_kernel_importing_the_widgets_starts_and_imports_nothing():
    out = run_python("""
        import sys, threading
        import llmlab.widgets
        print(sorted(t.name for t in threading.enumerate()),
              [m for m in ("ipywidgets", "plotly", "matplotlib", "IPython") if m in sys.modules])
    """)
    assert out == "['MainThread'] []"


def test_in_a_kernel_importing_the_widgets_warms_what_a_first_display_needs():
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3")
    try:
        code = ("import sys, threading, llmlab.widgets\n"
                "[t.join(120) for t in threading.enumerate() if t.name == 'llmlab-warm-imports']\n"
                "print([m for m in ('ipywidgets', 'anywidget', 'plotly.graph_objects', "
                "'matplotlib.figure', 'matplotlib.backends.backend_agg') if m not in sys.modules])")
        printed = []
        reply = client.execute_interactive(
            code, timeout=180,
            output_hook=lambda msg: printed.append(msg["content"].get("text", "")))
        assert reply["content"]["status"] == "ok"
        assert "".join(printed).strip() == "[]"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_the_environment_turns_it_off(monkeypatch):
    monkeypatch.setattr(warm, "_in_kernel", lambda: True)
    monkeypatch.setattr(warm, "_started", warm.threading.Event())
    monkeypatch.setenv(warm.ENV, "0")
    assert warm.warm_in_background() is False
    monkeypatch.delenv(warm.ENV)
    assert warm.warm_in_background() is True
    assert warm.warm_in_background() is False  # once per process


def test_a_widget_made_while_the_warm_up_runs_is_whole():
    out = run_python("""
        import threading
        import numpy as np
        from llmlab.widgets.warm import warm_imports
        thread = threading.Thread(target=warm_imports)
        thread.start()
        from llmlab.widgets.calibration import CalibrationWidget
        rng = np.random.default_rng(0)
        widget = CalibrationWidget(rng.dirichlet([1, 1, 1], size=200), rng.integers(0, 3, 200))
        widget.calibrate()
        bundle = widget._repr_mimebundle_()
        thread.join()
        print("application/vnd.jupyter.widget-view+json" in bundle,
              "reliability diagrams" in bundle["text/html"])
    """)
    assert out == "True True"
