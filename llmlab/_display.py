"""Notebook outputs that carry a static picture and can be replaced later.

``Snapshot`` is the mixin of every llmlab widget (put it before the ipywidgets base): its
display bundle carries, beside the widget view that live front ends prefer, a ``text/html``
(``static_html()``) and/or ``image/png`` (``static_png()``) rendering of the widget's state,
for places where the widget front end is not live (a saved notebook on GitHub or nbviewer,
an HTML export, a notebook reopened after the kernel stopped).

Every display gets a display id (``Displays``), so ``refresh_snapshot()`` rewrites the
outputs already shown, in the page and in the saved ``.ipynb``, when the state changed
enough to matter (training ended, a generation finished, a calibration was computed). A
rewritten output is drawn again by the front end, as a new view of the same widget model.
Jupyter front ends and ``nbconvert --execute`` (nbclient) both follow display ids, also for
updates sent from a background thread. Outside IPython nothing is published.

>>> shown = Displays()
>>> shown.update({"text/plain": "done"})    # nothing shown yet: nothing to update
False
"""

from __future__ import annotations

import base64
import logging
import threading
import uuid
from typing import Any

log = logging.getLogger(__name__)

#: outputs remembered per object (the most recent ones; older ones keep their last picture)
MAX_DISPLAYS = 16

Bundle = dict[str, Any]


def in_ipython() -> bool:
    """True inside an IPython shell (a kernel, or the terminal IPython)."""
    try:
        from IPython.core.interactiveshell import InteractiveShell
    except ImportError:
        return False
    return InteractiveShell.initialized()


class Displays:
    """The display ids under which one object was shown; :meth:`update` rewrites them all."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._lock = threading.Lock()

    def show(self, data: Bundle, metadata: Bundle | None = None) -> str | None:
        """Publish ``data`` (a mime bundle) as a new output with a fresh display id."""
        if not in_ipython():
            return None
        from IPython.display import display

        display_id = f"llmlab-{uuid.uuid4().hex}"
        with self._lock:
            self.ids = [*self.ids, display_id][-MAX_DISPLAYS:]
        display(data, metadata=metadata or {}, raw=True, display_id=display_id)
        return display_id

    def update(self, data: Bundle, metadata: Bundle | None = None) -> bool:
        """Replace every output shown so far with ``data``; False when there was none."""
        with self._lock:
            ids = list(self.ids)
        if not ids or not in_ipython():
            return False
        from IPython.display import update_display

        for display_id in ids:
            update_display(data, metadata=metadata or {}, raw=True, display_id=display_id)
        return True


_PREPARED: list[str] = []


def prepare_front_end() -> str | None:
    """Make the notebook front end able to draw third-party widgets, once per process, and
    return its name when something was done.

    Google Colab draws only its own widgets until ``google.colab.output.
    enable_custom_widget_manager()`` is called (Colab's documented switch; anywidget views
    such as the attention inspector carry their ES module in the widget state, so nothing
    else is fetched). JupyterLab, Notebook 7 and VS Code need nothing.
    """
    import sys

    colab = sys.modules.get("google.colab")
    if colab is None or "colab" in _PREPARED:
        return None
    _PREPARED.append("colab")
    try:
        colab.output.enable_custom_widget_manager()
    except Exception:  # noqa: BLE001 - an old Colab: the static picture still shows
        log.warning("could not enable Colab's custom widget manager; llmlab widgets show "
                    "their static picture. Run `from google.colab import output; "
                    "output.enable_custom_widget_manager()` and display the widget again.")
        return None
    return "colab"


class Snapshot:
    """Mixin for ipywidgets classes (put it first): static pictures in the display bundle.

    Subclasses override :meth:`static_html` and/or :meth:`static_png`; they call
    :meth:`refresh_snapshot` after a substantial change. A widget inside another snapshot
    widget (the Lab's tabs) refreshes that one too (:meth:`follow`).
    """

    def static_html(self) -> str | None:
        """HTML of the widget's current state (None: no picture)."""
        return None

    def static_png(self) -> bytes | None:
        """PNG bytes of the widget's current state (None: no picture)."""
        return None

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, None)
        data = {**data, **self._static_data()}
        return data if metadata is None else (data, metadata)

    def _ipython_display_(self, **_kwargs: Any) -> None:
        """Show the bundle under a display id of this widget (kept for refresh_snapshot)."""
        prepare_front_end()
        data, metadata = self._bundle()
        self._displays().show(data, metadata)

    def refresh_snapshot(self) -> bool:
        """Rewrite every output of this widget (and of the widgets that contain it) with its
        current picture; False when it was not displayed yet."""
        data, metadata = self._bundle()
        shown = self._displays().update(data, metadata)
        for parent in list(getattr(self, "_snapshot_parents", ())):
            shown = parent.refresh_snapshot() or shown
        return shown

    def follow(self, *children: Snapshot) -> None:
        """Refresh this widget's outputs whenever one of ``children`` refreshes its own."""
        for child in children:
            parents = child.__dict__.setdefault("_snapshot_parents", [])
            if self not in parents:
                parents.append(self)

    # ------------------------------------------------------------------ helpers
    def _bundle(self) -> tuple[dict[str, Any], dict[str, Any]]:
        bundle = self._repr_mimebundle_()
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        return data, metadata or {}

    def _displays(self) -> Displays:
        with _DISPLAYS_LOCK:
            return self.__dict__.setdefault("_snapshot_displays", Displays())

    def _static_data(self) -> dict[str, str]:
        """The static mime types; a failing picture is logged, never hides the widget."""
        data = {}
        try:
            page = self.static_html()
            png = self.static_png()
        except Exception:  # noqa: BLE001 - a missing picture must never hide the widget
            log.exception("no static picture for %s", type(self).__name__)
            return data
        if page is not None:
            data["text/html"] = page
        if png is not None:
            data["image/png"] = base64.b64encode(png).decode("ascii")
        return data


_DISPLAYS_LOCK = threading.Lock()
