"""Helpers for the browser tests: a real `jupyter lab` and headless Chromium, offline.

`running_lab` starts `jupyter lab` from this Python environment (so it serves the lab
extension installed with this llmlab), `running_notebook` the same for `jupyter notebook`
(Notebook 7); `chromium` launches Debian's Chromium (`apt-get install -y chromium`) through
Playwright; `open_lab` loads JupyterLab in a new page (`open_notebook` one notebook in
Notebook 7) with every request outside the local server blocked and recorded; `screenshot`
keeps a picture of the page as a test artifact (in ``$LLMLAB_TEST_ARTIFACTS``, default
``<temp>/llmlab-test-artifacts``).

>>> with running_lab(tmp_path) as url, chromium() as browser:
...     lab = open_lab(browser, url)
...     lab.command("llmlab:open-run-history")
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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

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
LOCAL = "http://127.0.0.1:"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_lab(root: Path, *args: str) -> Iterator[str]:
    """Run `jupyter lab` serving ``root`` (extra command-line ``args`` appended); yield its
    URL with the token. Jupyter's config, data and runtime folders live in ``root/.jupyter-*``
    so the user's settings cannot change what the test sees."""
    with _running_jupyter("lab", "lab", root, "--LabApp.news_url=None",
                          "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                          *args) as url:
        yield url


@contextmanager
def running_notebook(root: Path, *args: str) -> Iterator[str]:
    """Run `jupyter notebook` (Notebook 7) serving ``root`` like :func:`running_lab`; yield
    the URL of its file browser (``/tree``) with the token."""
    with _running_jupyter("notebook", "tree", root, *args) as url:
        yield url


@contextmanager
def _running_jupyter(app: str, page: str, root: Path, *args: str) -> Iterator[str]:
    """Run `jupyter <app>` serving ``root``, offline and isolated; yield ``<base>/<page>?token``."""
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([sysconfig.get_path("scripts"), env.get("PATH", "")])
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
        env[name] = str(root / f".{name.lower()}")
    command = [
        sys.executable, "-m", "jupyter", app, "--no-browser", "--allow-root",
        "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}", "--expose-app-in-browser",
        *args,
    ]  # fmt: skip
    log_path = root / f".{app}.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=log)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                        break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"jupyter {app} did not start:\n{log_path.read_text()}")
                    time.sleep(0.3)
            yield f"{base}/{page}?token={token}"
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:  # stuck shutting kernels down on a busy machine
                server.kill()
                server.wait(timeout=30)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium from /usr/bin/chromium, or a failure that says how to install it."""
    if not CHROMIUM.exists():
        pytest.fail("Browser tests need Chromium at /usr/bin/chromium: "
                    "`apt-get update && apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Lab:
    """A JupyterLab (or Notebook 7) page, the non-local requests it tried and the page errors
    it raised (``errors``: their messages, ``stacks``: their stack traces)."""

    page: Page
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stacks: list[str] = field(default_factory=list)

    def command(self, name: str, args: dict[str, Any] | None = None) -> Any:
        """Run a JupyterLab command (`window.jupyterapp.commands.execute`) and wait for it."""
        return self.page.evaluate("([c, a]) => window.jupyterapp.commands.execute(c, a)",
                                  [name, args or {}])

    def open_and_run(self, path: str, command: str = "notebook:run-all-cells") -> None:
        """Open the notebook ``path``, wait for its kernel to be idle, then run ``command``
        (none when "")."""
        self.command("docmanager:open", {"path": path})
        self.page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=90_000)
        if command:
            self.command(command)

    def assert_clean(self) -> None:
        """Nothing went to the network and no llmlab code threw."""
        assert not self.blocked, f"JupyterLab tried to reach the network: {self.blocked}"
        assert not [e for e in self.errors if "llmlab" in e], self.errors


#: JavaScript for ``locator.evaluate`` on a table: the cells whose text is wider than the cell,
#: the cells of a row that overlap each other, and a table wider than its parent.
LAYOUT_PROBLEMS = """table => {
  const problems = [];
  const box = el => el.getBoundingClientRect();
  for (const row of table.querySelectorAll('tr')) {
    const cells = [...row.children].filter(c => box(c).width > 0);
    for (const cell of cells) {
      if (cell.scrollWidth > cell.clientWidth + 1) {
        problems.push(`clipped: ${cell.dataset.col ?? cell.cellIndex} "${cell.innerText}"`);
      }
    }
    cells.forEach((a, i) => cells.slice(i + 1).forEach(b => {
      const [p, q] = [box(a), box(b)];
      const x = Math.min(p.right, q.right) - Math.max(p.left, q.left);
      const y = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
      if (x > 1 && y > 1) {
        problems.push(`overlap: ${a.dataset.col ?? a.cellIndex} / ${b.dataset.col ?? b.cellIndex}`);
      }
    }));
  }
  const scroll = table.parentElement;
  if (scroll.scrollWidth > scroll.clientWidth + 1) {
    problems.push(`table ${scroll.scrollWidth}px wide in ${scroll.clientWidth}px`);
  }
  return problems;
}"""


def artifacts_dir() -> Path:
    """Where browser tests leave screenshots: ``$LLMLAB_TEST_ARTIFACTS`` (CI can collect it),
    else ``llmlab-test-artifacts`` in the temp folder."""
    import tempfile

    folder = Path(os.environ.get("LLMLAB_TEST_ARTIFACTS")
                  or Path(tempfile.gettempdir()) / "llmlab-test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page: Page | Locator, name: str) -> Path:
    """Save a PNG of ``page`` (or of one element, a ``Locator``) as ``<artifacts>/<name>.png``
    and return its path."""
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path))
    return path


#: JupyterLab's notifications (its "get Jupyter news?" question) hidden from widget pictures
NO_NOTIFICATIONS = ".Toastify { display: none !important; }"


def widget_screenshot(element: Locator, name: str) -> Path:
    """:func:`screenshot` of one widget's element for the docs (docs/widgets.md): JupyterLab's
    notifications hidden so that none covers it, and the page made tall enough (for this
    picture only) that the whole widget shows inside the notebook's scrolling area."""
    page = element.page
    page.add_style_tag(content=NO_NOTIFICATIONS)
    size = page.viewport_size
    height = element.bounding_box()["height"] + 300  # JupyterLab's menus, toolbar, status bar
    if size and height > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": int(height)})
    try:
        element.scroll_into_view_if_needed()
        return screenshot(element, name)
    finally:
        if size and height > size["height"]:
            page.set_viewport_size(size)


def open_lab(browser: Browser, url: str, *, reset: bool = True) -> Lab:
    """Load JupyterLab at ``url`` in a new page, offline; ``reset`` starts from an empty
    workspace (no panels or documents left open by an earlier page)."""
    lab = _offline_page(browser)
    lab.page.goto(url.replace("/lab?", "/lab?reset&") if reset else url)
    lab.page.wait_for_function("() => window.jupyterapp?.commands !== undefined")
    lab.page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
    return lab


def open_notebook(browser: Browser, url: str, path: str) -> Lab:
    """Open the notebook ``path`` of the Notebook 7 server at ``url`` (from
    :func:`running_notebook`) in a new page, offline, once its kernel is idle."""
    lab = _offline_page(browser)
    lab.page.goto(url.replace("/tree?", f"/notebooks/{path}?"))
    lab.page.wait_for_function("() => window.jupyterapp?.commands !== undefined")
    lab.page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    lab.page.wait_for_function(
        "() => document.querySelector('.jp-Notebook') && window.jupyterapp.shell.currentWidget"
        "?.sessionContext?.session?.kernel?.status === 'idle'", timeout=90_000)
    return lab


def _offline_page(browser: Browser) -> Lab:
    """A new page whose requests outside the local server are blocked and recorded, and
    whose page errors are recorded."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    lab = Lab(page)

    def local_only(route: Any) -> None:
        if route.request.url.startswith(LOCAL):
            route.continue_()
        else:
            lab.blocked.append(route.request.url)
            route.abort()

    page.route("**/*", local_only)
    page.on("pageerror", lambda error: lab.errors.append(str(error)))
    page.on("pageerror", lambda error: lab.stacks.append(error.stack or ""))
    return lab
