"""Loading, in the background, what the first widget of a kernel needs.

The first widget a kernel displays pays for importing ipywidgets, anywidget, plotly (with its
figure validators and the chart template, built on first use) and matplotlib (the static
picture beside the view): ~1 s on a small machine, more than its first paint may take. So
importing ``llmlab.widgets`` in a Jupyter kernel starts :func:`warm_in_background`: a daemon
thread does that work while the user reads or runs the next cells. A widget made before the
thread is done imports what it still needs itself; Python's per-module import locks make the
two wait for each other, so nothing is imported twice or half. Scripts and tests (no kernel)
start no thread; ``LLMLAB_WARM_IMPORTS=0`` turns it off in a kernel too.

>>> warm_imports()            # what the thread runs, here in the calling thread
>>> import sys; "ipywidgets" in sys.modules
True
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

#: Set to "0" to keep kernels from warming the widget imports in the background.
ENV = "LLMLAB_WARM_IMPORTS"

_started = threading.Event()


def warm_imports() -> None:
    """Import, and build once, what a first widget display needs (see the module docstring)."""
    import anywidget  # noqa: F401 - imported for its side effect: a warm module cache
    import ipywidgets  # noqa: F401

    from llmlab.widgets.plotly_widget import _widget_class, quick_plotly

    quick_plotly()
    _widget_class()
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    make_subplots(rows=1, cols=2).update_layout(  # validators and the template, built once
        title=dict(text="", x=0.02), height=300, template="plotly_white", xaxis_title="",
        legend=dict(orientation="h"), margin=dict(l=1), uirevision="keep")
    go.Scatter(x=[0], y=[0], mode="lines", name="")
    go.Bar(x=[0], y=[0])
    import llmlab._figures  # noqa: F401 - matplotlib, for static pictures


def warm_in_background() -> bool:
    """Start :func:`warm_imports` on a daemon thread, once per process, when running in a
    Jupyter kernel and not turned off by ``LLMLAB_WARM_IMPORTS=0``; True if it started."""
    if _started.is_set() or os.environ.get(ENV, "1") == "0" or not _in_kernel():
        return False
    _started.set()
    threading.Thread(target=_warm_quietly, name="llmlab-warm-imports", daemon=True).start()
    return True


def _warm_quietly() -> None:
    try:
        warm_imports()
    except Exception:  # noqa: BLE001 - a failed warm-up only means the first widget imports it
        log.debug("warming the widget imports failed", exc_info=True)


def _in_kernel() -> bool:
    """True in a Jupyter kernel (not in a script, a test or the terminal IPython); imports
    nothing where there is no kernel."""
    if "ipykernel" not in sys.modules:
        return False
    from IPython import get_ipython

    return getattr(get_ipython(), "kernel", None) is not None
