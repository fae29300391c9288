"""The RunHistory widget in a real JupyterLab, offline: its table readable (no cell clipped
or overlapping its neighbour, numbers apart), runs that share a name told apart, the filter,
the sort controls and a click on a column header (again to reverse, an arrow on it) working.
Screenshots go to the test artifacts (lab_helpers.screenshot).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from lab_helpers import LAYOUT_PROBLEMS, chromium, open_lab, running_lab, screenshot

import llmlab
import llmlab.runs
from llmlab.widgets.history import TABLE_COLUMNS

HISTORY = ".jp-OutputArea .llmlab-run-history"
TABLE = f"{HISTORY} table.llmlab-table"
#: name, steps: three runs of one name; step counts that sort differently as text
RUNS = [("03-attention", 9), ("03-attention", 1000), ("03-attention", 60), ("baseline", 300)]


def make_store(root: Path) -> list[str]:
    cfg = llmlab.ModelConfig.preset("baby-char").to_dict()
    ids = []
    for name, steps in RUNS:
        with llmlab.runs.create(store=root / "llmlab-runs", name=name, config=cfg,
                                tags=["Ablation"] if steps == 60 else [],
                                capture_git=False) as run:
            run.log_metrics({"train/loss": 3.0 - steps / 1000}, step=steps)
            ids.append(run.id)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from llmlab.widgets import RunHistory\nRunHistory('llmlab-runs')")], metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                           "language": "python"}})
    nbformat.write(notebook, root / "history.ipynb")
    return ids


def column(page, name: str) -> list[str]:
    index = TABLE_COLUMNS.index(name) + 1
    return page.locator(f"{TABLE} tbody tr td:nth-child({index})").all_inner_texts()


def test_run_history_widget_is_readable_sortable_and_filterable(tmp_path: Path) -> None:
    ids = make_store(tmp_path)
    with running_lab(tmp_path) as url, chromium() as browser:
        lab = open_lab(browser, url)
        page = lab.page
        page.set_default_timeout(60_000)
        try:
            lab.open_and_run("history.ipynb")
            page.locator(f"{TABLE} tbody tr").nth(len(RUNS) - 1).wait_for(timeout=90_000)
            assert page.locator(TABLE).evaluate(LAYOUT_PROBLEMS) == []
            names = column(page, "name")
            assert sorted(n for n in names if n.startswith("03-attention")) == sorted(
                f"03-attention · {run_id[-6:]}" for run_id in ids[:3])
            assert "baseline" in names
            screenshot(page.locator(HISTORY), "widgets-run-history")

            sort = page.locator(f"{HISTORY} .widget-dropdown", has_text="sort by").locator(
                "select")
            sort.select_option("steps")
            page.wait_for_function(f"() => document.querySelector('{TABLE} td:nth-child(5)')"
                                   ".innerText === '1,000'")
            assert column(page, "steps") == ["1,000", "300", "60", "9"]  # numbers, largest first
            page.locator(f"{HISTORY} .widget-checkbox", has_text="descending").locator(
                "input").uncheck()
            page.wait_for_function(f"() => document.querySelector('{TABLE} td:nth-child(5)')"
                                   ".innerText === '9'")
            assert column(page, "steps") == ["9", "60", "300", "1,000"]

            page.locator(f"{TABLE} th[data-sort=steps]").click()  # the sorted column: reversed
            page.wait_for_function(f"() => document.querySelector('{TABLE} td:nth-child(5)')"
                                   ".innerText === '1,000'")
            assert column(page, "steps") == ["1,000", "300", "60", "9"]
            assert page.locator(f"{TABLE} th[aria-sort]").all_inner_texts() == ["steps ▼"]
            assert page.locator(f"{HISTORY} .widget-checkbox input").is_checked()
            page.locator(f"{TABLE} th[data-sort=name]").click()   # another column: A to Z
            page.wait_for_function(f"() => document.querySelector('{TABLE} th[aria-sort]')"
                                   ".innerText === 'name ▲'")
            assert column(page, "name")[-1] == "baseline"
            assert [n.split(" · ")[1] for n in column(page, "name")[:3]] == [
                run_id[-6:] for run_id in sorted(ids[:3])]   # one name: in id order
            assert sort.input_value() == "name"
            assert not page.locator(f"{HISTORY} .widget-checkbox input").is_checked()
            assert page.locator(TABLE).evaluate(LAYOUT_PROBLEMS) == []
            screenshot(page.locator(HISTORY), "widgets-run-history-sorted")
            page.locator(f"{TABLE} th[data-sort=name]").press("Enter")  # from the keyboard
            page.wait_for_function(f"() => document.querySelector('{TABLE} th[aria-sort]')"
                                   ".innerText === 'name ▼'")
            assert column(page, "name")[0] == "baseline"
            assert page.evaluate("document.activeElement.dataset.sort") == "name"  # focus kept

            search = page.locator(f"{HISTORY} .widget-text", has_text="filter").locator("input")
            search.fill("ablation")  # a tag, in another case
            page.wait_for_function(f"() => document.querySelectorAll('{TABLE} tbody tr')"
                                   ".length === 1")
            assert column(page, "name") == ["03-attention"]  # no other run of that name shown
            assert ids[2] in column(page, "id")
            screenshot(page.locator(HISTORY), "widgets-run-history-filtered")
        except Exception:
            screenshot(page, "widgets-run-history-failure")
            raise
        lab.assert_clean()
