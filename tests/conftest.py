"""Shared pytest set-up: the Jupyter server fixtures (jp_fetch, jp_serverapp, ...) and, for
browser tests, a JupyterLab on a module's ``root`` folder (``lab_url``, ``lab``)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_helpers import Lab, chromium, open_lab, running_lab

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture(scope="module")
def lab_url(root: Path) -> Iterator[str]:
    """`jupyter lab` serving a module's ``root`` fixture (a folder holding ``llmlab-runs``)."""
    with running_lab(root, f"--LlmlabServer.run_dir={root / 'llmlab-runs'}") as url:
        yield url


@pytest.fixture
def lab(lab_url: str) -> Iterator[Lab]:
    """JupyterLab in headless Chromium, checked for console errors and network use at the end.

    A browser per test: Playwright's sync API runs an event loop that must not outlive the
    test, or pytest-jupyter's per-test loop fixture tries to close it.
    """
    with chromium() as browser:
        page = open_lab(browser, lab_url)
        yield page
        page.assert_clean()
