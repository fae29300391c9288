"""The llmlab Jupyter server extension: discovery hooks, the version endpoint, auth."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.utils import url_path_join

import llmlab

VERSION_PATH = ("llmlab", "api", "version")


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    """Start the test server with llmlab enabled, as the shipped config file does."""
    return {"ServerApp": {"jpserver_extensions": {"llmlab": True}}}


def test_hooks_point_jupyter_at_llmlab() -> None:
    assert llmlab._jupyter_server_extension_points() == [{"module": "llmlab.server"}]
    assert llmlab._jupyter_labextension_paths() == [{"src": "labextension", "dest": "llmlab"}]


def test_server_extension_imports_no_heavy_modules() -> None:
    code = (
        "import sys, llmlab.server, llmlab;"
        "llmlab._jupyter_server_extension_points();"
        "print(sorted(m for m in ('torch', 'polars', 'accelerate') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_extension_is_loaded(jp_serverapp: Any) -> None:
    extension = jp_serverapp.extension_manager.extensions["llmlab"]
    assert extension.enabled
    assert extension.extension_points["llmlab.server"].module.__name__ == "llmlab.server"


async def test_version_endpoint_returns_llmlab_version(jp_fetch: Any) -> None:
    response = await jp_fetch(*VERSION_PATH)
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert json.loads(response.body) == {"version": llmlab.__version__}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "token not-the-token"}],
    ids=["no-token", "wrong-token"],
)
async def test_version_endpoint_refuses_unauthenticated(
    http_server_client: Any, jp_base_url: str, headers: dict[str, str]
) -> None:
    # jp_fetch always adds the server's token, so send a raw request instead
    url = url_path_join(jp_base_url, *VERSION_PATH)
    response = await http_server_client.fetch(url, headers=headers, raise_error=False)
    assert response.code == 403


class DenyLlmlab(Authorizer):
    """An authorizer that lets a user do anything except use llmlab's API."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource != "llmlab"


class TestAuthorization:
    @pytest.fixture
    def jp_server_config(self) -> dict[str, Any]:
        return {
            "ServerApp": {
                "jpserver_extensions": {"llmlab": True},
                "authorizer_class": DenyLlmlab,
            }
        }

    async def test_authorizer_can_deny_llmlab(self, jp_fetch: Any) -> None:
        response = await jp_fetch(*VERSION_PATH, raise_error=False)
        assert response.code == 403
        # the rest of the server still answers the same user
        assert (await jp_fetch("api", "status")).code == 200


def test_run_store_defaults_to_llmlab_runs_beside_the_notebooks(jp_serverapp: Any,
                                                                monkeypatch) -> None:
    from pathlib import Path

    monkeypatch.delenv("LLMLAB_RUNS_DIR", raising=False)
    from llmlab.server import store_path

    assert store_path(jp_serverapp) == Path(jp_serverapp.root_dir) / "llmlab-runs"
    monkeypatch.setenv("LLMLAB_RUNS_DIR", "/data/runs")
    assert store_path(jp_serverapp) == Path("/data/runs")
