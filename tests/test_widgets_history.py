"""RunHistory: the run store as a filterable, sortable table with overlaid curves."""

from pathlib import Path

import pytest

import llmlab
from llmlab.widgets import ModelBuilder, RunHistory

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TEXT = (SHARED / "tinyshakespeare.txt").read_text()[:5_000]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two short training runs and one run without a config, in a fresh store."""
    path = tmp_path_factory.mktemp("runs")
    tok = llmlab.CharTokenizer.train(TEXT)
    data = llmlab.data.CausalLMData.from_text(TEXT, tok, seq_len=16)
    for name, layers in (("one-layer", 1), ("two-layers", 2)):
        cfg = llmlab.ModelConfig.preset("baby-char").replace(
            n_layer=layers, d_model=32, n_head=2, vocab_size=tok.vocab_size, context_length=16)
        llmlab.Trainer(llmlab.build_model(cfg, seed=0), data, max_steps=4, batch_size=4,
                       eval_interval=2, eval_batches=1, run_dir=path, run_name=name,
                       progress=False).fit()
    with llmlab.runs.create(store=path, name="Notes <b>", kind="calibrate") as run:
        run.log_metrics({"ece": 0.1}, step=1)
    return path


def ids_by_name(history):
    return dict(history.runs.select("name", "id").iter_rows())


def test_table_lists_every_run_of_the_store(store):
    history = RunHistory(store)
    assert history.runs.equals(llmlab.runs.list(store))
    assert set(history.runs["name"]) == {"one-layer", "two-layers", "Notes <b>"}
    assert "3 runs in" in history.status.message
    assert "Notes &lt;b&gt;" in history.table.value and "<b>" not in history.table.value
    assert len(history.runs_select.options) == 3
    assert "3 runs" in repr(history)


def test_filter_by_text_and_status_and_sort(store):
    history = RunHistory(store)
    history.search.value = "LAYER"
    assert sorted(history.shown["name"]) == ["one-layer", "two-layers"]
    history.sort_by.value, history.descending.value = "params", False
    assert history.shown["name"].to_list() == ["one-layer", "two-layers"]
    history.descending.value = True
    assert history.shown["name"].to_list() == ["two-layers", "one-layer"]
    history.search.value = ""
    history.status_filter.value = "finished"
    assert history.shown.height == 3 and set(history.shown["status"]) == {"finished"}
    history.status_filter.value = "failed"
    assert history.shown.is_empty() and history.runs_select.options == ()
    assert "failed" in history.status_filter.options and "corrupt" not in history.runs["status"]


def click_header(history, content):
    """What the table's front end sends when a header is clicked (any content it could send)."""
    history.table._handle_custom_msg(content, [])


def arrows(history):
    """The (sort key, arrow) of every header showing one."""
    import re

    return re.findall(r'data-sort="([^"]+)"[^>]*aria-sort="[a-z]+">[^<]* ([▲▼])</th>',
                      history.table.value)


def test_a_header_click_sorts_and_a_second_reverses_with_the_controls_in_step(store):
    history = RunHistory(store)
    assert (history.sort_by.value, history.descending.value) == ("created_at", True)
    assert arrows(history) == [("created_at", "▼")]
    click_header(history, {"sort": "params"})           # a number: largest first
    assert (history.sort_by.value, history.descending.value) == ("params", True)
    assert history.shown["name"].to_list() == ["two-layers", "one-layer", "Notes <b>"]
    assert arrows(history) == [("params", "▼")]
    click_header(history, {"sort": "params"})           # again: reversed, no params still last
    assert (history.sort_by.value, history.descending.value) == ("params", False)
    assert history.shown["name"].to_list() == ["one-layer", "two-layers", "Notes <b>"]
    assert arrows(history) == [("params", "▲")]
    click_header(history, {"sort": "name"})             # text: A to Z first
    assert (history.sort_by.value, history.descending.value) == ("name", False)
    assert history.shown["name"].to_list() == ["Notes <b>", "one-layer", "two-layers"]
    assert [o[1] for o in history.runs_select.options] == history.shown["id"].to_list()
    picture = history.static_html()                      # a saved notebook shows the same sort
    assert history.table.value in picture and 'aria-sort="ascending">name ▲</th>' in picture
    history.sort_by.value = "tokens_per_s"               # keyboard / code: the arrow follows
    assert arrows(history) == [("tokens_per_s", "▲")]
    assert history.shown["name"][-1] == "Notes <b>"
    assert history.status.kind == "info"


def test_a_header_click_keeps_the_filter_and_the_selection(store):
    history = RunHistory(store)
    ids = ids_by_name(history)
    history.search.value = "layer"
    history.runs_select.value = (ids["one-layer"],)
    click_header(history, {"sort": "name"})
    click_header(history, {"sort": "name"})
    assert history.shown["name"].to_list() == ["two-layers", "one-layer"]
    assert history.selected == [ids["one-layer"]]
    assert history.chart.series_names == [f"one-layer ({ids['one-layer'][-6:]})"]


@pytest.mark.parametrize("content", [{"sort": "train_loss<script>"}, {"sort": None},
                                     {"sort": ["name"]}, {"other": 1}, "name"])
def test_a_bad_header_message_is_refused_and_the_table_keeps_working(store, content):
    history = RunHistory(store)
    before = history.shown
    click_header(history, content)
    assert history.status.kind == "error"
    assert "sorting the table failed" in history.status.message
    assert "click a column header" in history.status.message
    assert (history.sort_by.value, history.descending.value) == ("created_at", True)
    assert history.shown.equals(before)
    click_header(history, {"sort": "steps"})
    assert history.sort_by.value == "steps"
    with pytest.raises(ValueError, match="cannot be sorted by 'size'"):
        history.sort_on("size")


def test_every_table_header_sorts_by_its_listing_column(store):
    history = RunHistory(store)
    import re

    keys = re.findall(r'data-sort="([^"]+)"', history.table.value)
    assert keys == ["name", "status", "family", "params", "steps", "train_loss", "val_loss",
                    "tokens_per_s", "mfu", "created_at", "id"]
    for key in keys:
        history.sort_on(key)
        assert history.sort_by.value == key and arrows(history)[0][0] == key


def test_selecting_runs_overlays_their_curves(store):
    history = RunHistory(store)
    ids = ids_by_name(history)
    history.runs_select.value = (ids["one-layer"], ids["two-layers"])
    assert history.metric.value == "train/loss"
    assert {"val/loss", "lr"} <= set(history.metric.options)
    assert len(history.chart.series_names) == 2
    expected = llmlab.runs.compare([ids["one-layer"]], "train/loss", store=store)
    name = f"one-layer ({ids['one-layer'][-6:]})"
    assert history.chart.points(name) == (expected["step"].to_list(),
                                          expected["value"].to_list())
    history.metric.value = "val/loss"
    assert history.chart.points(name)[0] == [2, 4]
    history.runs_select.value = (ids["two-layers"],)
    assert history.chart.series_names == [f"two-layers ({ids['two-layers'][-6:]})"]


def test_selection_survives_refresh_and_filters(store):
    history = RunHistory(store)
    ids = ids_by_name(history)
    history.runs_select.value = (ids["one-layer"],)
    history.refresh_button.click()
    assert history.selected == [ids["one-layer"]]
    history.search.value = "two"
    assert history.selected == []


def test_open_in_builder_loads_the_runs_config(store):
    builder = ModelBuilder()
    history = RunHistory(store, builder=builder)
    ids = ids_by_name(history)
    history.runs_select.value = (ids["two-layers"],)
    history.open_button.click()
    assert history.status.kind == "ok", history.status.message
    assert builder.config == llmlab.runs.get(ids["two-layers"], store=store).config
    assert builder.config.n_layer == 2
    history.runs_select.value = (ids["Notes <b>"],)
    history.open_button.click()
    assert "has no model config" in history.status.message
    history.runs_select.value = (ids["one-layer"], ids["two-layers"])
    with pytest.raises(ValueError, match="select exactly one run"):
        history.open_in(builder)
    alone = RunHistory(store)
    alone.runs_select.value = (ids["one-layer"],)
    alone.open_button.click()
    assert "no ModelBuilder is attached" in alone.status.message
    assert alone.open_in(builder).n_layer == 1


def test_empty_and_missing_stores_say_so(tmp_path):
    history = RunHistory(tmp_path / "nowhere")
    assert history.runs.is_empty() and history.status.kind == "info"
    assert "no runs in" in history.status.message and "does not exist" in history.status.message
    (tmp_path / "empty").mkdir()
    history = RunHistory(tmp_path / "empty")
    assert "no runs in" in history.status.message and "does not exist" not in \
        history.status.message
    (tmp_path / "a-file").write_text("x")
    history = RunHistory(tmp_path / "a-file")
    assert history.status.kind == "error" and "is a file" in history.status.message
    history.refresh_button.click()
    assert "no readable run store" in history.status.message


def test_filter_matches_family_and_id_and_tables_keep_numbers_apart(store):
    history = RunHistory(store)
    history.search.value = "GPT"  # the family of both training runs
    assert sorted(history.shown["name"]) == ["one-layer", "two-layers"]
    one = ids_by_name(history)["one-layer"]
    history.search.value = one[-6:].upper()
    assert history.shown["id"].to_list() == [one]
    params = history.shown["params"][0]
    assert f'<td class="llmlab-num">{params:,}</td>' in history.table.value
    assert "padding:2px 8px" in history.table.value


def test_runs_that_share_a_name_are_told_apart(tmp_path):
    ids = []
    for _ in range(3):
        with llmlab.runs.create(store=tmp_path, name="03-attention") as run:
            ids.append(run.id)
    history = RunHistory(tmp_path)
    for run_id in ids:
        assert f"<td>03-attention · {run_id[-6:]}</td>" in history.table.value
    created = history.shown["created_at"][0]
    assert f"<td>{created[:10]} {created[11:16]}</td>" in history.table.value


def test_the_table_shows_tokens_per_second_and_mfu_with_a_dash_when_absent(store):
    history = RunHistory(store)
    table = history.table.value
    assert '<th class="llmlab-num" data-sort="tokens_per_s"' in table and "MFU %" in table
    speeds = history.runs.filter(history.runs["name"] == "one-layer")["tokens_per_s"]
    assert f">{round(speeds[0]):,}</td>" in table          # the CPU runs log tokens/s...
    assert history.runs["mfu"].is_null().all()              # ...but no MFU (no peak known)
    row = next(r for r in table.split("<tr>") if "Notes" in r)
    assert row.count("–") >= 2                              # a dash for each missing number
    history.sort_by.value, history.descending.value = "tokens_per_s", True
    assert history.shown["name"][-1] == "Notes <b>"        # no tokens/s: sorted last


def test_a_running_run_is_marked_and_updated_live_until_it_ends(tmp_path):
    import time

    def wait_for(condition, timeout=30.0):
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "the history did not update in time"
            time.sleep(0.02)

    store = llmlab.runs.RunStore(tmp_path / "runs")
    run = store.create(name="live", auto_flush_seconds=None)
    run.log_metrics({"train/loss": 3.0, "tokens_per_s": 500.0}, step=1)
    run.flush()
    history = RunHistory(store.path, poll=0.05)
    assert history.runs["status"].to_list() == ["running"]
    assert "1 running, read every 0.05 s" in history.status.message
    history.runs_select.value = (run.id,)
    run.log_metrics({"train/loss": 2.5, "tokens_per_s": 700.0}, step=2)
    run.flush()                                   # the training goes on: the table follows
    wait_for(lambda: history.runs["steps"].to_list() == [2])
    wait_for(lambda: ">700</td>" in history.table.value)  # drawn just after .runs is read
    curve = f"live ({run.id[-6:]})"
    wait_for(lambda: curve in history.chart.series_names
             and history.chart.points(curve)[0] == [1, 2])   # the selected curve too
    run.finish()
    wait_for(lambda: history.runs["status"].to_list() == ["finished"])
    wait_for(lambda: not history._poller.running)  # nothing running: no more reads
    assert "running, read every" not in history.status.message
    history.close()
