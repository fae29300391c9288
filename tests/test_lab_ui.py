"""JupyterLab loads the llmlab extension in a real browser, offline.

Starts `jupyter lab` from this environment, opens it in headless Chromium
(`/usr/bin/chromium`, from `apt-get install -y chromium`) with every request
outside the local server blocked, and checks the three panels, their palette
commands and the Model configs panel's round trip to the server extension.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import llmlab

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PANELS = {
    "llmlab-model-configs": "llmlab:open-model-configs",
    "llmlab-attention-inspector": "llmlab:open-attention-inspector",
    "llmlab-run-history": "llmlab:open-run-history",
}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def lab_url(tmp_path: Path) -> Iterator[str]:
    """Run `jupyter lab` in a scratch directory; yield its URL with the token."""
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([sysconfig.get_path("scripts"), env.get("PATH", "")])
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
        env[name] = str(tmp_path / name.lower())
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
        "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={tmp_path}", "--expose-app-in-browser",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not start:\n{(tmp_path / 'lab.log').read_text()}")
                time.sleep(0.3)
        yield f"{base}/lab?token={token}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_lab_shows_llmlab_panels_offline(lab_url: str) -> None:
    if not CHROMIUM.exists():
        pytest.fail(
            "Browser tests need Chromium at /usr/bin/chromium: "
            "`apt-get update && apt-get install -y chromium`"
        )
    from playwright.sync_api import Route, sync_playwright

    blocked: list[str] = []

    def local_only(route: Route) -> None:
        if route.request.url.startswith("http://127.0.0.1:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", local_only)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(lab_url)
            page.wait_for_function("() => window.jupyterapp?.commands !== undefined")
            page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)

            for panel_id, command in PANELS.items():
                tab = page.locator(f'.jp-SideBar .lm-TabBar-tab[data-id="{panel_id}"]')
                tab.wait_for(timeout=30_000)
                assert tab.locator("svg").count() == 1, f"{panel_id} tab has no icon"
                label = page.evaluate("c => window.jupyterapp.commands.label(c)", command)
                assert label.startswith("llmlab: Open "), label
                page.evaluate("c => window.jupyterapp.commands.execute(c)", command)
                panel = page.locator(f"#{panel_id}")
                panel.wait_for(state="visible")
                assert "Will " in panel.inner_text()

            page.evaluate("() => window.jupyterapp.commands.execute('llmlab:open-model-configs')")
            version = page.locator("#llmlab-model-configs .llmlab-ServerVersion")
            version.filter(has_text=f"llmlab server version: {llmlab.__version__}").wait_for()
        finally:
            browser.close()

    assert not blocked, f"JupyterLab tried to reach the network: {blocked}"
    assert not [e for e in errors if "llmlab" in e], errors
