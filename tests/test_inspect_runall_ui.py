"""Example 03 (attention) under JupyterLab's Run All, twice in a row, offline: every
inspector (``cap.show()``) and bertviz view draws each time, with no widget-initialisation
error; then a head switch at 1,024 tokens is answered by the kernel and a quick second pick
is not undone by the echo of the first.

The issue this guards: after Run All, ``cap.show()`` stayed on "loading…" with
``[anywidget] Failed to initialize model`` in the console, until the cell was run again.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from lab_helpers import chromium, open_lab, running_lab, screenshot

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "03_attention.ipynb"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
INSPECTORS = ".jp-OutputArea .llmlab-insp"
#: JavaScript: the inspectors' drawn matrices ("" where one has not drawn)
DRAWN_KEYS = (f"() => [...document.querySelectorAll('{INSPECTORS}')]"
              ".filter(e => !e.dataset.old).map(e => e.dataset.drawnKey || '')")
#: JavaScript: mark the inspectors shown now, so that the next run's views are told apart
MARK_OLD = f"() => document.querySelectorAll('{INSPECTORS}').forEach(e => e.dataset.old = '1')"


#: JavaScript on an inspector: pick layer 1 in its menu; the moment that change is sent to
#: the kernel, pick layer 0 and head 3; resolve once both are sent
PICK_DURING_ECHO = """e => new Promise(done => {
  const model = e.parentElement.llmlabHost.model;
  const save = model.save_changes.bind(model);
  const pick = (title, value) => {
    const s = e.querySelector(`.llmlab-insp-bar select[title^='${title}']`);
    s.value = value;
    s.dispatchEvent(new Event('change'));
  };
  let sent = 0;
  model.save_changes = () => {
    save();
    sent += 1;
    if (sent === 1) { pick('Layer', '0'); pick('One head', 'h3'); }
    if (sent === 2) { model.save_changes = save; done(); }
  };
  pick('Layer', '1');
})"""


@pytest.fixture(autouse=True)
def jp_asyncio_loop():
    """Replaces pytest-jupyter's autouse fixture (playwright's sync API owns the loop)."""
    yield None


@pytest.fixture(autouse=True)
def jp_server_cleanup():
    yield


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_DATA_DIR", str(SHARED_DATA))
    monkeypatch.setenv("LLMLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CI", os.environ.get("CI") or "1")
    shutil.copy(EXAMPLE, tmp_path / EXAMPLE.name)
    with running_lab(tmp_path) as url:
        yield url


def inspectors_drawn(page, count: int, name: str) -> list[str]:
    try:
        page.wait_for_function(
            f"() => {{ const k = ({DRAWN_KEYS})(); return k.length === {count} && k.every(Boolean); }}",
            timeout=240_000)
    except Exception as err:
        screenshot(page, f"example-03-{name}-timeout")
        raise AssertionError(f"{name}: inspectors drawn {page.evaluate(DRAWN_KEYS)}, statuses "
                             + str(page.evaluate("() => [...document.querySelectorAll("
                                                 "'.llmlab-insp-status')].map(e => e.innerText)"))
                             ) from err
    return page.evaluate(DRAWN_KEYS)


def test_example_03_run_all_twice(lab):
    with chromium() as browser:
        jl = open_lab(browser, lab)
        page = jl.page
        page.set_default_timeout(240_000)
        failed = []
        page.on("console", lambda m: failed.append(m.text) if "Failed to initialize" in m.text
                else None)
        jl.open_and_run(EXAMPLE.name)
        first = inspectors_drawn(page, 2, "first")
        page.evaluate(MARK_OLD)
        jl.command("notebook:run-all-cells")
        assert inspectors_drawn(page, 2, "rerun") == first
        assert page.locator(".jp-OutputArea [id^=bertviz] svg").count() >= 1

        # the 1,024-token inspector: a second pick made just after the first was sent to the
        # kernel (so the first one's echo comes back while the second waits to be sent) is
        # what the view ends on
        long_view = page.locator(f"{INSPECTORS}:not([data-old])").nth(1)
        long_view.scroll_into_view_if_needed()
        long_view.evaluate(PICK_DURING_ECHO)
        wanted = "decoder|0|3|1|0"  # hide_first was set by the notebook
        page.wait_for_timeout(1500)  # every echo has come back and been drawn by now
        assert long_view.evaluate("e => e.dataset.drawnKey") == wanted
        bar = long_view.locator(".llmlab-insp-bar")
        assert bar.locator("select[title='Layer']").input_value() == "0"
        assert bar.locator("select[title^='One head']").input_value() == "h3"
        screenshot(page, "example-03-run-all")
        assert not failed, failed
        jl.assert_clean()
