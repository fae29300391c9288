"""The run store folder vanishes while the lab's panels show it (deleted, moved, a disk
unmounted): Run history and the Attention inspector say so in words for the person at the
screen, and come back when it is back. JupyterLab in headless Chromium, offline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_helpers import Lab, screenshot

import llmlab
import llmlab.runs
from llmlab.attention import inspect

TEXT = "the animal didn't cross the street"
HISTORY, INSPECTOR = "#llmlab-run-history", "#llmlab-attention-inspector"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("lab")
    tok = llmlab.CharTokenizer.train(TEXT)
    cfg = llmlab.ModelConfig(family="gpt", n_layer=1, n_head=2, d_model=16, context_length=64,
                             vocab_size=tok.vocab_size)
    run = llmlab.runs.create(store=root / "llmlab-runs", name="kept", capture_git=False)
    inspect(llmlab.build_model(cfg, seed=0), tok, TEXT).save(run, "sentence")
    run.finish()
    yield root


def test_panels_say_the_store_is_gone_and_recover(lab: Lab, root: Path) -> None:
    page = lab.page
    lab.command("llmlab:open-run-history")
    page.locator(f"{HISTORY} tr[data-run-id]").first.wait_for()
    lab.command("llmlab:open-attention-inspector")
    page.locator(f"{INSPECTOR} .llmlab-insp").wait_for()

    store, away = root / "llmlab-runs", root / "moved-away"
    store.rename(away)
    try:
        page.locator(f"{INSPECTOR} .llmlab-Refresh").click()
        gone = page.locator(f"{INSPECTOR} .llmlab-Message", has_text="is gone")
        gone.wait_for()
        assert "deleted or moved while this panel showed it" in gone.inner_text()
        assert page.locator(f"{INSPECTOR} .llmlab-insp").count() == 0  # no stale picture
        lab.command("llmlab:open-run-history")
        page.locator(f"{HISTORY} .llmlab-Refresh").click()
        message = page.locator(f"{HISTORY} .llmlab-Message", has_text="is gone")
        message.wait_for()
        assert str(store) in message.inner_text()
        screenshot(page, "run-history-store-gone")
    finally:
        away.rename(store)
    page.locator(f"{HISTORY} .llmlab-Refresh").click()
    page.locator(f"{HISTORY} .llmlab-Message", has_text="is gone").wait_for(state="hidden")
    page.locator(f"{HISTORY} tr[data-run-id]").first.wait_for()
