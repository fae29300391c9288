"""The Model configs and Run history panels in a real JupyterLab, in headless Chromium, offline.

One `jupyter lab` serves the module, with `--LlmlabServer.run_dir` pointing at a run store
that the tests fill with three runs; each test opens a fresh page on an empty workspace.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_helpers import Lab, screenshot

import llmlab
import llmlab.runs

RUNS = {"alpha": "finished", "beta": "failed", "gamma": "running"}
CONFIGS = "#llmlab-model-configs"
HISTORY = "#llmlab-run-history"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Iterator[Path]:
    """The server root: a store `llmlab-runs` (the default name) with three runs."""
    root = tmp_path_factory.mktemp("lab")
    cfg = llmlab.ModelConfig.preset("baby-char")
    running = None
    for i, (name, status) in enumerate(RUNS.items()):
        run = llmlab.runs.create(store=root / "llmlab-runs", name=name, config=cfg.to_dict(),
                                 capture_git=False)
        for step in range(1, 6):
            run.log_metrics({"train/loss": 3.0 - step * (0.1 + i / 20)}, step=step)
        run.log_metrics({"val/loss": 2.6 - i / 10}, step=5)
        if status == "running":  # this process lives, so the run reads as running
            run.flush()
            running = run
        else:
            run.finish(status=status, error="boom" if status == "failed" else None)
    yield root
    running.finish()


def run_history(lab: Lab) -> Any:
    lab.command("llmlab:open-run-history")
    panel = lab.page.locator(HISTORY)
    panel.locator("tbody tr").first.wait_for()
    return panel


def names_in_table(panel) -> list[str]:
    return panel.locator("tbody .llmlab-RunName").all_inner_texts()


def wait_for_names(panel, expected: list[str]) -> None:
    for _ in range(50):
        if names_in_table(panel) == expected:
            return
        panel.page.wait_for_timeout(100)
    assert names_in_table(panel) == expected


def cell_sources(lab: Lab) -> list[str]:
    return lab.page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.model.sharedModel.cells"
        ".map(c => c.getSource())")


def new_notebook(lab: Lab) -> None:
    lab.command("notebook:create-new", {"kernelName": "python3"})
    lab.page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()


def test_run_history_lists_runs_with_status_badges(lab: Lab) -> None:
    panel = run_history(lab)
    assert names_in_table(panel) == ["gamma", "beta", "alpha"]  # newest first
    for name, status in RUNS.items():
        row = panel.locator("tbody tr", has=lab.page.get_by_text(name, exact=True))
        assert row.locator(f".llmlab-Status-{status}").inner_text() == status
    assert "1 running, refreshing every" in panel.locator(".llmlab-RunInfo").inner_text()


def test_run_history_filters_and_sorts(lab: Lab) -> None:
    panel = run_history(lab)
    panel.locator("th[data-key=name]").click()
    assert names_in_table(panel) == ["alpha", "beta", "gamma"]
    panel.locator("th[data-key=name]").click()
    assert names_in_table(panel) == ["gamma", "beta", "alpha"]

    panel.locator(".llmlab-RunQuery").fill("alp")
    wait_for_names(panel, ["alpha"])
    panel.locator(".llmlab-RunQuery").fill("")
    panel.locator(".llmlab-RunStatus").select_option("failed")
    wait_for_names(panel, ["beta"])
    panel.locator(".llmlab-RunQuery").fill("nothing-like-this")
    panel.locator(".llmlab-Empty", has_text="No runs match").wait_for()


def test_run_history_overlays_the_curves_of_ticked_runs(lab: Lab) -> None:
    panel = run_history(lab)
    for name in ("alpha", "gamma"):
        row = panel.locator("tbody tr", has=lab.page.get_by_text(name, exact=True))
        row.locator("input[type=checkbox]").check()
    lines = panel.locator(".llmlab-ChartHost path.llmlab-LineChart-line")
    lines.nth(1).wait_for()
    assert lines.count() == 2
    assert lines.nth(0).get_attribute("stroke") != lines.nth(1).get_attribute("stroke")
    assert panel.locator(".llmlab-LineChart-legend li").all_inner_texts() == ["alpha", "gamma"]
    metric = panel.locator("select.llmlab-Metric")
    assert metric.input_value() == "train/loss"
    assert metric.locator("option").all_inner_texts() == ["train/loss", "val/loss"]
    metric.select_option("val/loss")  # one point per run: drawn as a marker
    panel.locator(".llmlab-ChartHost circle").nth(1).wait_for()
    assert panel.locator(".llmlab-LineChart-svg text", has_text="val/loss").count() == 1


def test_run_history_polls_without_replacing_unchanged_rows(lab: Lab) -> None:
    """While a run is running the panel re-lists every few seconds. A poll that finds the
    same runs must leave the row nodes alone: a row rebuilt between mouse-down and mouse-up
    loses the user's click (and focus, and the table's scroll position)."""
    panel = run_history(lab)
    panel.locator("tbody tr").first.evaluate("tr => { window.firstRow = tr; }")
    lists: list[str] = []
    lab.page.on("request",
                lambda r: lists.append(r.url) if "/llmlab/api/runs?" in r.url else None)
    for _ in range(150):  # a poll is sent only after the previous one was shown
        if len(lists) >= 2:
            break
        lab.page.wait_for_timeout(100)
    assert len(lists) >= 2, "the panel did not poll while a run is running"
    assert panel.locator("tbody tr").first.evaluate("tr => tr === window.firstRow")
    assert panel.locator("tbody tr").count() == 3


def test_run_history_inserts_code_and_opens_the_folder(lab: Lab, root: Path,
                                                       monkeypatch) -> None:
    panel = run_history(lab)
    alpha = panel.locator("tbody tr", has=lab.page.get_by_text("alpha", exact=True))
    run_id = alpha.get_attribute("data-run-id")

    alpha.get_by_role("button", name="code").click()
    message = panel.locator(".llmlab-Message")
    message.filter(has_text="No notebook is open").wait_for()
    new_notebook(lab)
    alpha.get_by_role("button", name="code").click()
    message.filter(has_text="Inserted code for alpha").wait_for()
    code = cell_sources(lab)[1]
    assert f'llmlab.runs.get("{run_id}")' in code  # the default store beside the notebook
    monkeypatch.chdir(root)  # where the kernel of a notebook at the root runs
    namespace: dict[str, Any] = {}
    exec(code.replace("run.metrics", "metrics = run.metrics"), namespace)
    assert namespace["metrics"]["train/loss"].len() == 5

    alpha.get_by_role("button", name="folder").click()  # the file browser replaces the panel
    message.filter(has_text=f"Showing llmlab-runs/{run_id}").wait_for(state="attached")
    lab.page.wait_for_function(
        "id => window.jupyterapp.shell.widgets('left')"
        ".find(w => w.id === 'filebrowser')?.model.path.endsWith(id)", arg=run_id)


def config_form(lab: Lab) -> Any:
    lab.command("llmlab:open-model-configs")
    panel = lab.page.locator(CONFIGS)
    panel.locator(".llmlab-Estimate[data-params]").wait_for()
    return panel


def params_shown(panel) -> int:
    return int(panel.locator(".llmlab-Estimate").get_attribute("data-params"))


def test_config_panel_lists_presets_validates_and_estimates(lab: Lab) -> None:
    statuses: list[str] = []
    lab.page.on("response", lambda r: statuses.append(f"{r.status} {r.url}")
                if "llmlab/api" in r.url and r.status >= 400 else None)
    panel = config_form(lab)
    save, insert = panel.locator(".llmlab-Save"), panel.locator(".llmlab-InsertConfig")
    options = panel.locator("select.llmlab-ConfigSource option").evaluate_all(
        "options => options.map(o => o.value)")
    assert {f"preset:{name}" for name in llmlab.ModelConfig.presets()} <= set(options)
    baby = llmlab.ModelConfig.preset("baby-char")
    assert params_shown(panel) == baby.estimate().params
    assert panel.locator("[data-field=n_head] .llmlab-Field-help").inner_text().startswith(
        "Attention heads")

    n_head = panel.locator("#llmlab-field-n_head")
    n_head.fill("5")
    error = panel.locator("[data-field=n_head] .llmlab-Field-error")
    error.wait_for()
    assert "not divisible by n_head=5" in error.inner_text()
    assert panel.locator(".llmlab-Estimate.llmlab-mod-stale").count() == 1
    # what the invalid config would invalidate is greyed out, saying why
    assert save.is_disabled() and insert.is_disabled()
    assert "Fix the config first" in save.get_attribute("title")
    assert "not divisible by n_head=5" in insert.get_attribute("title")
    screenshot(panel, "model-configs-invalid")

    n_head.fill("4")
    error.wait_for(state="hidden")
    lab.page.wait_for_function(
        "() => !document.querySelector('#llmlab-model-configs .llmlab-Save').disabled")
    assert not insert.is_disabled() and "Add a cell" in insert.get_attribute("title")
    screenshot(panel, "model-configs-valid")
    # validating as the user types asks the server a question, never gets a 4xx back
    assert not statuses, statuses
    panel.locator("#llmlab-field-n_layer").fill("6")
    bigger = llmlab.ModelConfig.from_dict({**baby.to_dict(), "n_layer": 6}).estimate().params
    lab.page.wait_for_function(
        "p => document.querySelector('#llmlab-model-configs .llmlab-Estimate')"
        ".dataset.params === String(p)", arg=bigger)
    assert panel.locator(".llmlab-Estimate tr[data-key=params] td").inner_text() == (
        f"{bigger / 1e6:.2f}M" if bigger >= 1e6 else f"{bigger / 1e3:.2f}k")

    panel.locator("[data-field=d_ff] .llmlab-Field-auto").uncheck()
    panel.locator("#llmlab-field-d_ff").fill("100")
    lab.page.wait_for_function(
        "p => document.querySelector('#llmlab-model-configs .llmlab-Estimate')"
        ".dataset.params !== String(p)", arg=bigger)


def test_config_panel_saves_under_a_checked_name(lab: Lab, root: Path) -> None:
    panel = config_form(lab)
    panel.locator("#llmlab-field-n_layer").fill("3")
    name = panel.locator(".llmlab-ConfigName")
    message = panel.locator(".llmlab-Message").first

    name.fill("bad name!")
    panel.locator(".llmlab-Save").click()
    assert "cannot be a config name" in message.inner_text()

    name.fill("tiny-3")
    panel.locator(".llmlab-Save").click()
    message.filter(has_text='Saved as "tiny-3"').wait_for()
    saved = json.loads((root / "llmlab-runs" / "configs" / "tiny-3.json").read_text())
    assert saved["n_layer"] == 3 and saved["family"] == "gpt" and saved["name"] == "tiny-3"
    assert panel.locator("select.llmlab-ConfigSource").input_value() == "saved:tiny-3"

    panel.locator(".llmlab-Save").click()  # the name exists now: ask before replacing
    message.filter(has_text="press Save again to replace it").wait_for()


def test_config_panel_inserts_the_config_into_a_notebook(lab: Lab) -> None:
    panel = config_form(lab)
    insert = panel.locator(".llmlab-InsertConfig")
    insert.click()
    panel.locator(".llmlab-Message", has_text="No notebook is open").wait_for()

    new_notebook(lab)
    panel.locator("#llmlab-field-bias").check()
    insert.click()
    panel.locator(".llmlab-Message", has_text="Inserted a cell into").wait_for()
    sources = cell_sources(lab)
    assert len(sources) == 2 and sources[0] == ""
    code = sources[1]
    assert "cfg = llmlab.ModelConfig.from_dict({" in code and '"bias": True,' in code
    namespace: dict[str, Any] = {}
    exec(code.replace("model = llmlab.build_model(cfg)", ""), namespace)
    expected = {**llmlab.ModelConfig.preset("baby-char").to_dict(), "bias": True}
    assert namespace["cfg"] == llmlab.ModelConfig.from_dict(expected)
