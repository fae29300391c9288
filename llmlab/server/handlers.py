"""REST handlers of the llmlab server extension, under ``<base_url>/llmlab/api/``.

>>> # GET /llmlab/api/version  ->  {"version": "0.1.0"}

Every handler is authenticated (token or login) and authorized against the
``llmlab`` resource, as the design asks of anything that reads the run store.
"""

from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from llmlab._version import __version__

#: URL prefix of every llmlab endpoint, relative to the server's base URL.
API_PREFIX = "llmlab/api"

#: Resource name that jupyter_server authorizers see for llmlab requests.
AUTH_RESOURCE = "llmlab"


class LlmlabAPIHandler(APIHandler):
    """Base class: JSON replies, jupyter_server auth, llmlab auth resource."""

    auth_resource = AUTH_RESOURCE


class VersionHandler(LlmlabAPIHandler):
    """``GET /llmlab/api/version``: the llmlab version the server runs."""

    @web.authenticated
    @authorized
    def get(self) -> None:
        """Reply ``{"version": "<llmlab.__version__>"}``."""
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"version": __version__}))


def setup_handlers(web_app: web.Application) -> None:
    """Add llmlab's handlers to a Jupyter server's tornado application."""
    base_url = web_app.settings["base_url"]
    route = url_path_join(base_url, API_PREFIX, "version")
    web_app.add_handlers(".*$", [(route, VersionHandler)])
