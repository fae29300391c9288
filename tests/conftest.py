"""Shared pytest set-up: the Jupyter server fixtures (jp_fetch, jp_serverapp, ...), for
browser tests a JupyterLab on a module's ``root`` folder (``lab_url``, ``lab``), and the
example notebooks executed once per session (``executed_example``)."""

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def executed_example(tmp_path_factory) -> Callable[[str], tuple[Any, Path]]:
    """``executed_example(stem)``: ``examples/<stem>.ipynb`` run top to bottom once per
    session, as ``nbconvert --execute --ExecutePreprocessor.store_widget_state=True`` runs it
    (``CI=1`` small settings, data from ``LLMLAB_DATA_DIR``), in a folder of its own; returns
    (the executed notebook, that folder). The tests of one example share its run: read it,
    do not change it."""
    from llmlab.export_html import execute

    done: dict[str, tuple[Any, Path]] = {}

    def run(stem: str) -> tuple[Any, Path]:
        if stem not in done:
            import nbformat

            folder = tmp_path_factory.mktemp(stem)
            nb = nbformat.read(EXAMPLES / f"{stem}.ipynb", as_version=4)
            with _environment(CI=os.environ.get("CI") or "1", LLMLAB_DATA_DIR=str(SHARED_DATA),
                              LLMLAB_CACHE_DIR=str(folder / "cache")):
                done[stem] = (execute(nb, cwd=folder, timeout=600), folder)
        return done[stem]

    return run


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """``os.environ`` with ``values`` set (a kernel started meanwhile inherits them)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
