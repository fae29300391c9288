"""The TrainerWidget in a real JupyterLab, offline: run the training example, press Start,
watch the loss curve grow, press Stop and see training stop.

Starts `jupyter lab` on a scratch folder holding examples/01_train_char_gpt.ipynb (with CI
set, so the notebook trains a few steps only), opens it in headless Chromium
(`/usr/bin/chromium`) with every request outside the local server blocked, and saves
screenshots as test artifacts (``lab_helpers.screenshot``: ``$LLMLAB_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lab_helpers import chromium, open_lab, running_lab, screenshot, widget_screenshot

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "01_train_char_gpt.ipynb"
SHARED_DATA = ROOT.parent / "shared" / "data"

TRAINER = ".jp-OutputArea .llmlab-trainer"
BUILDER = ".jp-OutputArea .llmlab-model-builder"
# points of the training-loss line that plotly.js holds in the page (gd.data)
PLOTTED = f"""() => {{
    const plot = document.querySelector('{TRAINER} .js-plotly-plot');
    const line = plot && plot.data && plot.data.find(trace => trace.name === 'train/loss');
    return line && line.x ? line.x.length : 0;   // a trace just added may have no x yet
}}"""


def test_trainer_widget_trains_and_stops_in_jupyterlab(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CI", "1")
    monkeypatch.setenv("LLMLAB_DATA_DIR", str(SHARED_DATA))
    monkeypatch.setenv("LLMLAB_CACHE_DIR", str(tmp_path / ".cache"))
    shutil.copy(EXAMPLE, tmp_path / EXAMPLE.name)

    with running_lab(tmp_path) as url, chromium() as browser:
        lab = open_lab(browser, url)
        page = lab.page
        page.set_default_timeout(60_000)
        try:
            lab.open_and_run(EXAMPLE.name)
            # the training cell (start + wait) finished, then the last cell generated
            page.locator(f"{TRAINER} .llmlab-status", has_text="finished run").wait_for(
                timeout=120_000)
            page.locator(".jp-OutputArea-output", has_text="ROMEO:").last.wait_for(
                timeout=120_000)
            page.get_by_text("Python 3 (ipykernel) | Idle").wait_for()
            page.wait_for_function(f"() => ({PLOTTED})() === 10")   # the notebook's CI run: 10 steps
            page.locator(TRAINER).scroll_into_view_if_needed()
            screenshot(page, "widgets-trainer-1-notebook-ran")
            widget_screenshot(page.locator(BUILDER), "widget-builder")      # for docs/widgets.md
            widget_screenshot(page.locator(TRAINER), "widget-trainer-finished")

            steps = page.locator(f"{TRAINER} .widget-text", has_text="max steps").locator("input")
            steps.fill("100000")
            steps.press("Enter")
            page.locator(f"{TRAINER} button", has_text="Start").click()
            page.locator(f"{TRAINER} .llmlab-status", has_text="training 100,000 steps").wait_for()
            page.wait_for_function(f"() => ({PLOTTED})() >= 3")    # a fresh run's curve...
            first = page.evaluate(PLOTTED)
            page.wait_for_function(f"() => ({PLOTTED})() > {first}")   # ...that grows
            screenshot(page, "widgets-trainer-2-training")
            widget_screenshot(page.locator(TRAINER), "widget-trainer-training")

            page.locator(f"{TRAINER} button", has_text="Stop").click()
            stopped = page.locator(f"{TRAINER} .llmlab-status", has_text="stopped at step")
            stopped.wait_for()
            page.wait_for_timeout(1500)                     # the last throttled update lands
            final = page.evaluate(PLOTTED)
            page.wait_for_timeout(1500)
            assert page.evaluate(PLOTTED) == final          # nothing is added after the stop
            step = int(stopped.inner_text().split("stopped at step ")[1].split(":")[0]
                       .replace(",", ""))
            assert final == step and first < step < 100_000
            screenshot(page, "widgets-trainer-3-stopped")
        except Exception:
            screenshot(page, "widgets-trainer-failure")
            raise
        lab.assert_clean()
