"""The Attention inspector panel in a real JupyterLab, in headless Chromium, offline.

One `jupyter lab` serves the module with a run store holding a readable snapshot (saved with
its logit lens) and three
that cannot be opened (a newer format version, an older one, a save cut short), plus a run
folder without a manifest. Screenshots go to the test artifacts (lab_helpers.screenshot).
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
from llmlab.attention import inspect, load_snapshot

PANEL = "#llmlab-attention-inspector"
TEXT = "the animal didn't cross the street"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("lab")
    store = root / "llmlab-runs"
    tok = llmlab.CharTokenizer.train(TEXT + " .", special_tokens="bert")
    cfg = llmlab.ModelConfig(family="gpt", n_layer=2, n_head=4, d_model=32, context_length=64,
                             vocab_size=tok.vocab_size)
    cap = inspect(llmlab.build_model(cfg, seed=0), tok, TEXT, logit_lens=True)
    broken = llmlab.runs.create(store=store, name="broken", capture_git=False)
    for name in ("half", "newer", "older"):
        cap.save(broken, name)
    folder = broken.artifacts_dir / "attention"
    (folder / "half" / "snapshot.json").unlink()
    for name, version in (("newer", 7), ("older", 0)):
        meta = json.loads((folder / name / "snapshot.json").read_text())
        meta["format_version"] = version
        (folder / name / "snapshot.json").write_text(json.dumps(meta))
    broken.finish()
    good = llmlab.runs.create(store=store, name="tired-animal", capture_git=False)
    cap.save(good, "sentence")
    good.finish()
    yield root


def n_tokens(root: Path) -> int:
    run = llmlab.runs.list(root / "llmlab-runs").filter(name="tired-animal")["id"][0]
    meta = json.loads((root / "llmlab-runs" / run / "artifacts" / "attention" / "sentence" /
                       "snapshot.json").read_text())
    return len(meta["sides"]["decoder"]["tokens"])


def open_panel(lab: Lab) -> Any:
    lab.command("llmlab:open-attention-inspector")
    panel = lab.page.locator(PANEL)
    panel.wait_for(state="visible")
    return panel


def drawn_key(lab: Lab, key: str) -> None:
    lab.page.wait_for_function(
        "k => document.querySelector('#llmlab-attention-inspector .llmlab-insp')"
        "?.dataset.drawnKey === k", arg=key, timeout=30_000)


def heatmap_ink(lab: Lab) -> int:
    """Non-white pixels of the panel's heatmap canvas."""
    return lab.page.evaluate(
        """() => { const c = document.querySelector(
          '#llmlab-attention-inspector .llmlab-insp-heatmap canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4)
          if (d[i + 3] > 0 && (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250)) n++;
        return n; }""")


def test_panel_opens_a_snapshot_and_draws_a_head(lab: Lab, root: Path) -> None:
    n = n_tokens(root)
    panel = open_panel(lab)
    run = panel.locator("select.llmlab-SnapshotRun")
    run.locator("option").nth(1).wait_for(state="attached")
    labels = run.locator("option").all_inner_texts()
    assert [label.split(" (")[0] for label in labels] == ["tired-animal", "broken"]
    # the newest run's first snapshot opens by itself: the mean of the last layer
    drawn_key(lab, "decoder|1|mean|0|0")
    info = panel.locator(".llmlab-SnapshotInfo").inner_text()
    assert f"gpt · {n} decoder tokens · heads 4 of 4 · format 1" in info
    assert panel.locator("select.llmlab-SnapshotName").input_value() == "sentence"

    # a head from its thumbnail, fetched from the server when asked for
    lab.page.evaluate(f"() => document.querySelector('{PANEL} .llmlab-insp-grid')"
                      ".scrollIntoView()")
    cell = lab.page.evaluate(f"() => document.querySelector('{PANEL} .llmlab-InspectorHost')"
                             ".llmlabInspector.gridCellCenter(0, 2)")
    lab.page.mouse.click(cell["x"], cell["y"])
    drawn_key(lab, "decoder|0|2|0|0")
    assert heatmap_ink(lab) > 1000
    assert f"layer 0 · head 2 · {n}×{n} tokens" in panel.locator(".llmlab-insp-status").inner_text()
    # and from the Head menu, words merged: both answered by the server
    panel.locator(".llmlab-insp-bar select[title^='One head']").select_option("h3")
    drawn_key(lab, "decoder|0|3|0|0")
    panel.locator(".llmlab-insp-bar label", has_text="words").locator("input").check()
    drawn_key(lab, "decoder|0|3|0|1")
    draws = lab.page.evaluate(
        "() => performance.getEntriesByName('llmlab:attention-draw').length")
    assert draws >= 3
    assert lab.page.evaluate(
        "() => performance.getEntriesByName('llmlab:snapshot-first-draw').length") == 1
    screenshot(lab.page, "attention-inspector-head")


def test_panel_shows_the_saved_logit_lens_of_a_token(lab: Lab, root: Path) -> None:
    panel = open_panel(lab)
    drawn_key(lab, "decoder|1|mean|0|0")
    panel.locator(".llmlab-insp-token").nth(12).click()
    lens = panel.locator(".llmlab-insp-lens table")
    lens.wait_for()
    assert lens.locator("tr").count() == 1 + 3  # a header, the embeddings and two layers
    run = llmlab.runs.get(llmlab.runs.list(root / "llmlab-runs").filter(
        name="tired-animal")["id"][0], store=root / "llmlab-runs")
    saved = load_snapshot(run, "sentence").logit_lens().at(12)
    last = lens.locator("tr").nth(3).locator("td").first.inner_text()
    _, prob = saved[-1][1][0]  # the model's own top prediction
    assert last.endswith(f"{100 * prob:.1f}%")
    assert "logit lens at 12" in panel.locator(".llmlab-insp-lens").inner_text()


def test_panel_says_why_a_snapshot_cannot_open(lab: Lab) -> None:
    panel = open_panel(lab)
    drawn_key(lab, "decoder|1|mean|0|0")
    panel.locator("select.llmlab-SnapshotRun").select_option(label=panel.locator(
        "select.llmlab-SnapshotRun option", has_text="broken").inner_text())
    message = panel.locator(".llmlab-Message")
    names = panel.locator("select.llmlab-SnapshotName")
    assert names.locator("option").all_inner_texts() == [
        "half — cannot open", "newer — cannot open", "older — cannot open"]
    for name, needle in (("half", "not a complete attention snapshot"),
                         ("newer", "upgrade llmlab"),
                         ("older", "older than this llmlab still reads")):
        names.select_option(name)
        message.filter(has_text=needle).wait_for()
        assert message.get_attribute("data-kind") == "error"
        assert panel.locator(".llmlab-insp").count() == 0  # no stale picture left behind
    screenshot(lab.page, "attention-inspector-bad-snapshot")


def test_panel_inserts_code_that_loads_the_snapshot(lab: Lab, root: Path, monkeypatch) -> None:
    panel = open_panel(lab)
    drawn_key(lab, "decoder|1|mean|0|0")
    lab.command("notebook:create-new", {"kernelName": "python3"})
    lab.page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
    open_panel(lab).locator(".llmlab-InsertSnapshot").click()
    panel.locator(".llmlab-Message", has_text="Inserted code for sentence").wait_for()
    code = lab.page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.model.sharedModel.cells"
        ".map(c => c.getSource())")[1]
    assert 'load_snapshot(run, "sentence")' in code
    monkeypatch.chdir(root)  # where the kernel of a notebook at the root runs
    namespace: dict[str, Any] = {}
    exec(code.replace("cap.show()", ""), namespace)
    assert namespace["cap"].attention["decoder"].shape == (2, 4, n_tokens(root), n_tokens(root))
    lab.page.evaluate("() => window.jupyterapp.serviceManager.sessions.shutdownAll()")


def test_panel_opens_its_snapshot_in_the_main_area(lab: Lab) -> None:
    """"Open in main area": a document with the same snapshot and view state, its heatmap as
    large as the area allows (the sidebar's is bound by the sidebar), redrawn when the area
    is resized; the palette command opens one as well."""
    panel = open_panel(lab)
    button = panel.locator(".llmlab-OpenMain")
    drawn_key(lab, "decoder|1|mean|0|0")
    panel.locator(".llmlab-insp-bar select[title^='One head']").select_option("h2")
    drawn_key(lab, "decoder|1|2|0|0")
    side_width = panel.locator(".llmlab-insp-heatmap").bounding_box()["width"]
    button.click()
    doc = lab.page.locator("#jp-main-dock-panel .llmlab-AttentionInspector-main")
    doc.locator(".llmlab-insp").wait_for()
    lab.page.wait_for_function(
        "() => document.querySelector('#jp-main-dock-panel .llmlab-AttentionInspector-main "
        ".llmlab-insp')?.dataset.drawnKey === 'decoder|1|2|0|0'", timeout=30_000)
    tab = lab.page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="Attention:")
    assert "tired-animal" in tab.inner_text() and "sentence" in tab.inner_text()
    heat = doc.locator(".llmlab-insp-heatmap")
    main_width = heat.bounding_box()["width"]
    assert main_width > 1.3 * side_width, (main_width, side_width)
    screenshot(lab.page, "attention-inspector-main-area")

    # narrower window: the document's heatmap is redrawn smaller, in the same state
    lab.page.set_viewport_size({"width": 1000, "height": 800})
    lab.page.wait_for_function(
        "w => document.querySelector('#jp-main-dock-panel .llmlab-AttentionInspector-main "
        ".llmlab-insp-heatmap').getBoundingClientRect().width < w", arg=main_width - 20,
        timeout=30_000)
    assert doc.locator(".llmlab-insp").get_attribute("data-drawn-key") == "decoder|1|2|0|0"

    # from the palette, without a snapshot: the newest run's first one
    lab.command("llmlab:open-attention-inspector-main")
    lab.page.wait_for_function(
        "() => [...document.querySelectorAll('#jp-main-dock-panel .llmlab-AttentionInspector-main"
        " .llmlab-insp')].map(e => e.dataset.drawnKey).includes('decoder|1|mean|0|0')",
        timeout=30_000)
    assert doc.count() == 2
