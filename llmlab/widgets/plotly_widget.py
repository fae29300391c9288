"""``figure_widget``: a plotly ``FigureWidget`` that is quick to import and quick to draw.

plotly's ``FigureWidget`` is an anywidget whose front end is its whole 5 MB bundle
(plotly.js included) as the widget's ``_esm``; anywidget evaluates a widget's ``_esm`` anew
for every widget model, so each chart on a page cost a second or more of parsing before it
drew, and the widgets with charts (``TrainerWidget``, ``RunHistory``, ``CalibrationWidget``,
the ``Lab`` with all three) painted seconds after their cell ran. Here the ``_esm`` is a small
loader and the bundle travels as a binary trait: the first chart of a page evaluates it, every
later one reuses that module (per plotly version). Views keep plotly's own front end, so
every plotly feature, the saved widget state and the offline export work as before. In
JupyterLab and Notebook 7 the llmlab extension evaluates the Jupyter server's bundle while the
page is idle (``GET llmlab/api/plotly/bundle``) and leaves it under the key the loader
looks for (``BUNDLE_KEY``), so even the first chart of a page draws without waiting for it.

On the Python side, importing ``plotly.basewidget`` imports ``nbformat`` (plotly only reads
its ``__version__``, to refuse ``fig.show()``'s notebook renderers with an old nbformat),
which imports ``jsonschema``, which compiles ``rfc3987_syntax``'s grammars when that package
is installed (it is wherever ``jupyter_server`` is): about two seconds of a kernel's first
chart. ``quick_plotly`` imports plotly's renderers with nbformat held back and gives them
nbformat's version from package metadata instead (``NbformatVersion``); a later
``import nbformat`` is untouched. And every ``FigureWidget``
checks the versions of the Jupyter front end that started the kernel by importing
``jupyterlab`` (or ``notebook``), another 1.4 s in a kernel that ``jupyter lab`` started;
``plotly.basewidget``'s check is replaced by the same check reading the installed versions
from package metadata (``version_warnings``: same warnings, no import).

>>> fig = figure_widget(layout=dict(title="loss"))           # doctest: +SKIP
>>> fig.add_scatter(y=[3, 2, 1])                             # doctest: +SKIP
"""

from __future__ import annotations

import functools
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Where a page keeps the promise of plotly's evaluated widget bundle: this prefix and the
#: plotly version, as a ``Symbol.for`` key on ``globalThis`` (the lab extension's preload,
#: ``labextension/src/plotlyPreload.ts``, uses the same key).
BUNDLE_KEY = "llmlab.plotly-widget-bundle@"

#: The widget's front end: evaluates plotly's bundle (the ``_plotly_bundle`` trait) once per
#: page and plotly version, unless the page has it already, then hands each view to plotly's
#: own initialize and render.
LOADER = """
function plotlyBundle(model) {
  const key = Symbol.for(`BUNDLE_KEY${model.get("_plotly_version")}`);
  if (!globalThis[key]) {
    const url = URL.createObjectURL(
      new Blob([model.get("_plotly_bundle")], { type: "text/javascript" }));
    globalThis[key] = import(/* webpackIgnore: true */ url)
      .catch((error) => { delete globalThis[key]; throw error; })
      .finally(() => URL.revokeObjectURL(url));
  }
  return globalThis[key];
}

export default () => {
  let plotly;
  return {
    async initialize(context) {
      plotly = (await plotlyBundle(context.model)).default();
      return plotly.initialize?.(context);
    },
    render(context) {
      return plotly.render(context);
    },
  };
};
""".replace("BUNDLE_KEY", BUNDLE_KEY)


def figure_widget(*args: Any, **kwargs: Any) -> Any:
    """A plotly ``FigureWidget`` (same arguments) whose bundle is evaluated once per page."""
    return _widget_class()(*args, **kwargs)


#: Held while plotly is imported the quick way or the widget class is made (the background
#: warm-up, ``llmlab.widgets.warm``, may be doing it while a widget is built).
_IMPORTING = threading.RLock()


def quick_plotly() -> None:
    """Import plotly's widget module the quick way (see the module docstring); call it before
    the first plotly import where plotly's other names come first."""
    with _IMPORTING:
        _quick_plotly()


@functools.cache
def _quick_plotly() -> None:
    from _plotly_utils import optional_imports

    held_back = "nbformat" not in sys.modules and "nbformat" not in optional_imports._not_importable
    if held_back:
        optional_imports._not_importable.add("nbformat")
    try:
        import plotly.basewidget
        import plotly.io._renderers as renderers
    finally:
        if held_back:
            optional_imports._not_importable.discard("nbformat")
    version = _installed_version("nbformat") if held_back else None
    if version is not None:
        renderers.nbformat = NbformatVersion(version)
    plotly.basewidget.display_jupyter_version_warnings = version_warnings


@dataclass(frozen=True)
class NbformatVersion:
    """What plotly's renderers read of ``nbformat``: its version."""

    __version__: str


def _widget_class() -> type:
    with _IMPORTING:
        return _make_widget_class()


@functools.cache
def _make_widget_class() -> type:
    quick_plotly()
    import plotly.graph_objects as go
    import traitlets

    version, bundle = installed_bundle()

    class FigureWidget(go.FigureWidget):
        """plotly's ``FigureWidget`` with the bundle as a binary trait behind a small loader."""

        _esm = LOADER
        _plotly_bundle = traitlets.Bytes(bundle).tag(sync=True)
        _plotly_version = traitlets.Unicode(version).tag(sync=True)

    return FigureWidget


@functools.cache
def installed_bundle() -> tuple[str, bytes] | None:
    """The installed plotly's version and its widget bundle (``FigureWidget``'s front end,
    plotly.js included), read without importing plotly; None without plotly."""
    from importlib.util import find_spec

    spec = find_spec("plotly")
    version = _installed_version("plotly")
    if spec is None or spec.origin is None or version is None:
        return None
    path = Path(spec.origin).parent / "package_data" / "widgetbundle.js"
    return (version, path.read_bytes()) if path.is_file() else None


#: Front ends plotly's widget needs: (process name, package, oldest version, upgrade line).
FRONT_ENDS = (("jupyter-notebook", "notebook", 7, "Jupyter Notebook >= 7"),
              ("jupyter-lab", "jupyterlab", 3, "JupyterLab >= 3"))


def version_warnings() -> None:
    """plotly's warning when the front end that started this kernel is too old for its
    widget (Notebook < 7, JupyterLab < 3), with the version read from package metadata."""
    try:
        import psutil

        parent = psutil.Process().parent().cmdline()[-1]
    except Exception:  # noqa: BLE001 - no psutil, no parent, no access: nothing to check
        return
    for process, package, oldest, needed in FRONT_ENDS:
        if process in parent:
            found = _installed_version(package)
            if found is not None and int(found.split(".")[0]) < oldest:
                warnings.warn(f"plotly >= 6 needs {needed} but you have {package} {found}; "
                              f"upgrade it with `pip install --upgrade {package}`",
                              stacklevel=3)
            return


def _installed_version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
