"""JupyterLab loads the llmlab extension in a real browser, offline.

Starts `jupyter lab` from this environment, opens it in headless Chromium
(`/usr/bin/chromium`, from `apt-get install -y chromium`) with every request
outside the local server blocked, and checks the three panels, their palette
commands and the Model configs panel's round trip to the server extension.
The panels' features are tested in test_lab_panels.py.
"""

from __future__ import annotations

from pathlib import Path

from lab_helpers import chromium, open_lab, running_lab, screenshot

PANELS = {
    "llmlab-model-configs": ("llmlab:open-model-configs", "Model configs"),
    "llmlab-attention-inspector": ("llmlab:open-attention-inspector", "Attention inspector"),
    "llmlab-run-history": ("llmlab:open-run-history", "Run history"),
}


def test_lab_shows_llmlab_panels_offline(tmp_path: Path) -> None:
    with running_lab(tmp_path) as url, chromium() as browser:
        lab = open_lab(browser, url)
        page = lab.page
        for panel_id, (command, label) in PANELS.items():
            tab = page.locator(f'.jp-SideBar .lm-TabBar-tab[data-id="{panel_id}"]')
            tab.wait_for(timeout=30_000)
            assert tab.locator("svg").count() == 1, f"{panel_id} tab has no icon"
            title = page.evaluate("c => window.jupyterapp.commands.label(c)", command)
            assert title == f"llmlab: Open {label}", title
            lab.command(command)
            panel = page.locator(f"#{panel_id}")
            panel.wait_for(state="visible")
            assert panel.locator(".llmlab-Panel-heading").inner_text() == label

        lab.command("llmlab:open-model-configs")  # its lists come from the server extension
        source = page.locator("#llmlab-model-configs select.llmlab-ConfigSource")
        source.locator('option[value="preset:baby-char"]').wait_for(state="attached")

        # no run store in this root: the Attention inspector says so and how to fill it
        lab.command("llmlab:open-attention-inspector")
        message = page.locator("#llmlab-attention-inspector .llmlab-Message")
        message.filter(has_text="does not exist yet").wait_for()
        assert 'cap.save(run, "name")' in message.inner_text()

        # the launcher has an item per panel; clicking one opens its panel
        lab.command("launcher:create")
        items = page.locator(".jp-Launcher-section:has-text('llmlab') .jp-LauncherCard")
        items.first.wait_for()
        assert items.all_inner_texts() == [label for _, label in PANELS.values()]
        screenshot(page, "lab-launcher")
        items.filter(has_text="Run history").click()
        page.locator("#llmlab-run-history").wait_for(state="visible")
        lab.assert_clean()
