"""The Run history panel's table at the sidebar's default width, in headless Chromium, offline:
every cell readable (nothing clipped, nothing overlapping its neighbour), full names, runs
that share a name told apart, sorting by value and filtering by any part of a run.
Screenshots of its main states go to the test artifacts (lab_helpers.screenshot).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_helpers import LAYOUT_PROBLEMS, Lab, screenshot

import llmlab
import llmlab.runs

HISTORY = "#llmlab-run-history"
LONG = "20261205-152941-8d1f2a-char-gpt-with-a-long-descriptive-name"
#: name, steps, tags: three runs of one name and a long one, step counts that sort
#: differently as text (1000 < 60 < 9) and as numbers
RUNS = [("03-attention", 9, []), ("03-attention", 1000, []), ("03-attention", 60, []),
        (LONG, 300, ["Baseline"])]

#: Whether an input's placeholder fits inside it, measured in the input's own font.
PLACEHOLDER_FITS = """input => {
  const style = getComputedStyle(input);
  const context = document.createElement('canvas').getContext('2d');
  context.font = `${style.fontSize} ${style.fontFamily}`;
  const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return context.measureText(input.placeholder).width <= room;
}"""


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("lab")
    cfg = llmlab.ModelConfig.preset("baby-char").to_dict()
    for name, steps, tags in RUNS:
        with llmlab.runs.create(store=root / "llmlab-runs", name=name, config=cfg, tags=tags,
                                capture_git=False) as run:
            run.log_metrics({"train/loss": 3.0 - steps / 1000}, step=steps)
    yield root


def open_history(lab: Lab) -> Any:
    lab.command("llmlab:open-run-history")
    panel = lab.page.locator(HISTORY)
    panel.locator("tbody tr").nth(len(RUNS) - 1).wait_for()
    return panel


def names(panel) -> list[str]:
    return panel.locator("tbody .llmlab-RunName").all_inner_texts()


def steps_shown(panel) -> list[int]:
    return [int(s) for s in panel.locator("tbody td[data-col=steps]").all_inner_texts()]


def wait_for(panel, read, expected) -> None:
    for _ in range(50):
        if read(panel) == expected:
            return
        panel.page.wait_for_timeout(100)
    assert read(panel) == expected


def test_table_is_readable_at_the_sidebars_default_width(lab: Lab, root: Path) -> None:
    panel = open_history(lab)
    width = panel.evaluate("p => p.clientWidth")
    assert width < 460, f"the sidebar opened {width}px wide; this test is about a narrow one"
    assert panel.locator("table").evaluate(LAYOUT_PROBLEMS) == []
    assert panel.locator(".llmlab-RunQuery").evaluate(PLACEHOLDER_FITS)

    shown = names(panel)
    assert LONG in shown  # the whole name, wrapped, not cut
    ids = {r["name"] + " · " + r["id"][-6:] for r in llmlab.runs.list(root / "llmlab-runs")
           .to_dicts() if r["name"] == "03-attention"}
    assert {name for name in shown if name.startswith("03-attention")} == ids
    assert panel.locator("tbody td[data-col=params]").first.inner_text().endswith("k")
    # headers cannot line up over four-line rows: each value carries its own label, and the
    # headers are one wrapped line of sort buttons
    labels = panel.locator("tbody tr").first.evaluate("""tr => Object.fromEntries(
      [...tr.querySelectorAll('td[data-col]')].map(td => [td.dataset.col,
        getComputedStyle(td, '::before').content]))""")
    assert labels["train_loss"] == '"train loss"' and labels["steps"] == '"steps"'
    assert labels["params"] == '"params"' and labels["name"] == "none"
    assert panel.locator("thead tr").evaluate("tr => getComputedStyle(tr).display") == "flex"
    screenshot(panel, "run-history-sidebar")


def test_table_stays_readable_when_the_sidebar_is_widened(lab: Lab) -> None:
    panel = open_history(lab)
    lab.page.evaluate("""() => {  // drag the sidebar's edge: half the window
      const split = window.jupyterapp.shell._hsplitPanel;
      const sizes = split.relativeSizes();
      const rest = sizes.slice(1).reduce((a, b) => a + b, 0);
      split.setRelativeSizes([0.5, ...sizes.slice(1).map(s => s * 0.5 / rest)]);
    }""")
    lab.page.wait_for_function("() => document.querySelector('#llmlab-run-history')"
                               ".clientWidth > 600")
    assert panel.locator("table").evaluate(LAYOUT_PROBLEMS) == []
    assert panel.locator("tbody tr").first.evaluate("tr => getComputedStyle(tr).display") == (
        "table-row")  # one line per run when there is room, under the column headers
    assert panel.locator("tbody td[data-col=steps]").first.evaluate(
        "td => getComputedStyle(td, '::before').content") == "none"
    screenshot(panel, "run-history-wide")


def test_headers_sort_by_value_and_reverse_on_a_second_click(lab: Lab) -> None:
    panel = open_history(lab)
    steps = panel.locator("th[data-key=steps]")
    steps.click()
    assert steps_shown(panel) == [1000, 300, 60, 9]  # numbers, largest first
    assert steps.get_attribute("aria-sort") == "descending"
    steps.click()
    assert steps_shown(panel) == [9, 60, 300, 1000]
    assert steps.get_attribute("aria-sort") == "ascending"
    screenshot(panel, "run-history-sorted-by-steps")

    created = panel.locator("th[data-key=created_at]")
    created.click()  # newest first, by the moment each run was created
    newest_first = [steps for _, steps, _ in reversed(RUNS)]
    assert steps_shown(panel) == newest_first
    created.click()
    assert steps_shown(panel) == newest_first[::-1]


def test_filter_matches_name_id_family_and_tags_in_any_case(lab: Lab, root: Path) -> None:
    panel = open_history(lab)
    query = panel.locator(".llmlab-RunQuery")
    query.fill("baseline")  # a tag
    wait_for(panel, names, [LONG])
    screenshot(panel, "run-history-filtered")
    query.fill("ATTENTION")
    wait_for(panel, lambda p: len(names(p)), 3)
    one = llmlab.runs.list(root / "llmlab-runs").row(0, named=True)["id"]
    query.fill(one[-6:])
    wait_for(panel, lambda p: p.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.runId)"), [one])
    query.fill("GPT")  # the family of every run
    wait_for(panel, lambda p: len(names(p)), len(RUNS))
