"""The llmlab Jupyter server extension and the hooks Jupyter uses to find it.

Jupyter imports the top-level package ``llmlab`` (enabled by
``etc/jupyter/jupyter_server_config.d/llmlab.json``), which forwards the two
``_jupyter_*`` hooks below to this module:

>>> _jupyter_server_extension_points()
[{'module': 'llmlab.server'}]

Only light modules are imported here: no torch, no polars.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from traitlets import Float, Int, Unicode
from traitlets.config import Configurable

from llmlab.server.handlers import API_PREFIX, setup_handlers
from llmlab.server.pool import DEFAULT_TIMEOUT, DEFAULT_WORKERS

if TYPE_CHECKING:  # pragma: no cover
    from jupyter_server.serverapp import ServerApp

__all__ = [
    "API_PREFIX",
    "LABEXTENSION_NAME",
    "LlmlabServer",
    "_jupyter_labextension_paths",
    "_jupyter_server_extension_points",
    "_load_jupyter_server_extension",
]

#: npm package name of the lab extension (``labextension/package.json``), also the
#: folder it is installed to under ``share/jupyter/labextensions/``.
LABEXTENSION_NAME = "llmlab"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt lab extension lives, for ``jupyter labextension develop``.

    JupyterLab resolves ``src`` against the directory of the module it imported,
    which is the top-level ``llmlab`` package (the hook is reached through
    ``llmlab.__getattr__``), so ``"labextension"`` means ``llmlab/labextension``.
    """
    return [{"src": "labextension", "dest": LABEXTENSION_NAME}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Tell jupyter_server which module holds ``_load_jupyter_server_extension``."""
    return [{"module": "llmlab.server"}]


class LlmlabServer(Configurable):
    """Settings of the llmlab server extension (``c.LlmlabServer.run_dir = ...``)."""

    run_dir = Unicode(
        "llmlab-runs",
        help="The run store to serve: an absolute path, or a path relative to the server's "
        "root_dir (default: llmlab-runs beside the notebooks, as the Trainer writes it). "
        "$LLMLAB_RUNS_DIR overrides the default.",
    ).tag(config=True)
    read_workers = Int(
        DEFAULT_WORKERS,
        help="Threads that read the run store for REST requests (off the event loop).",
    ).tag(config=True)
    read_timeout = Float(
        DEFAULT_TIMEOUT,
        help="Seconds a REST request waits for its run store read before it gets a 504.",
    ).tag(config=True)


def store_path(server_app: ServerApp) -> Path:
    """The run store folder the server reads, resolved against the server's root_dir."""
    import os

    settings = LlmlabServer(parent=server_app)
    configured = settings.run_dir
    if "run_dir" not in server_app.config.get("LlmlabServer", {}):
        configured = os.environ.get("LLMLAB_RUNS_DIR", configured)
    path = Path(configured).expanduser()
    return path if path.is_absolute() else Path(server_app.root_dir) / path


def _load_jupyter_server_extension(server_app: ServerApp) -> None:
    """Register llmlab's REST handlers on a running Jupyter server."""
    store = store_path(server_app)
    settings = LlmlabServer(parent=server_app)
    setup_handlers(server_app.web_app, store, workers=settings.read_workers,
                   timeout=settings.read_timeout)
    server_app.log.info("llmlab server extension loaded; API at /%s/, run store %s",
                        API_PREFIX, store)
