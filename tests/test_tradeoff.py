from pathlib import Path

import plotly.graph_objects as go
import polars as pl
import pytest

import llmlab
from llmlab import ModelConfig, compress
from llmlab.data import CausalLMData
from llmlab.errors import InputError
from llmlab.tradeoff import COLUMNS, pareto_front, plot_tradeoff, sweep

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TEXT = (SHARED / "tinyshakespeare.txt").read_text()[:30_000]


@pytest.fixture(scope="module")
def data():
    return CausalLMData.from_text(TEXT, llmlab.CharTokenizer.train(TEXT), seq_len=16)


def tiny(data, **kw):
    return ModelConfig(**{**dict(vocab_size=data.tokenizer.vocab_size, context_length=32,
                                 n_layer=1, n_head=2, d_model=32, bias=False), **kw})


FAST = dict(batch_size=4, eval_batches=2, gen_tokens=4, checkpoint_interval=0)


def test_sweep_trains_and_evaluates_every_entry_as_a_run(data, tmp_path):
    small, wide = tiny(data), tiny(data, d_model=64)
    model = llmlab.build_model(small, seed=0)
    entries = {"small": small, "wide": wide, "small-int8": compress.quantize(model, "int8"),
               "small-half-heads": compress.prune(model, 0.5, structured="heads")}
    table = sweep(entries, data, steps=3, run_dir=tmp_path, **FAST)
    assert table.columns == list(COLUMNS)
    assert table["name"].to_list() == list(entries)
    assert table["kind"].to_list() == ["train", "train", "evaluate", "evaluate"]
    for column in ("params", "flops_per_token", "val_loss", "gen_tokens_per_s",
                   "peak_memory_mb", "wall_s"):
        assert table[column].null_count() == 0 and (table[column] > 0).all(), column
    assert table["train_tokens_per_s"].null_count() == 2
    rows = {r["name"]: r for r in table.iter_rows(named=True)}
    for name, cfg in (("small", small), ("wide", wide)):
        est = cfg.estimate(seq_len=16)
        assert rows[name]["params"] == est.params
        assert rows[name]["flops_per_token"] == est.flops_per_token_forward
    assert rows["small-half-heads"]["params"] < rows["small"]["params"]
    assert rows["small-half-heads"]["flops_per_token"] < rows["small"]["flops_per_token"]
    stored = llmlab.runs.list(tmp_path)
    assert set(stored["id"].to_list()) == set(table["run_id"].to_list())
    run = llmlab.runs.get(rows["wide"]["run_id"], tmp_path)
    assert run.status == "finished"
    assert run.manifest["sweep"]["val_loss"] == pytest.approx(rows["wide"]["val_loss"])
    assert run.manifest["config"]["d_model"] == 64


def test_sweep_bad_input(data, tmp_path):
    with pytest.raises(InputError, match="no entries"):
        sweep([], data, steps=2, run_dir=tmp_path)
    with pytest.raises(InputError, match="ModelConfig"):
        sweep(["gpt2"], data, steps=2, run_dir=tmp_path)
    with pytest.raises(InputError, match="steps"):
        sweep([tiny(data)], data, steps=0, run_dir=tmp_path)
    with pytest.raises(InputError, match="positive"):
        sweep([tiny(data)], data, steps=True, run_dir=tmp_path)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_sweep_names_list_entries_uniquely(data, tmp_path):
    model = llmlab.build_model(tiny(data), seed=0)
    table = sweep([tiny(data), tiny(data), compress.quantize(model, "int8-weight")], data,
                  steps=1, run_dir=tmp_path, **FAST)
    assert table["name"].to_list() == ["gpt-L1-H2-d32", "gpt-L1-H2-d32-1",
                                       "gpt-L1-H2-d32 model int8-weight"]


def test_pareto_front_follows_each_axis_direction():
    table = pl.DataFrame({"name": list("abcd"), "params": [10, 20, 30, 20],
                          "val_loss": [3.0, 2.0, 2.5, 2.0],
                          "gen_tokens_per_s": [100.0, 50.0, 80.0, 40.0]})
    assert pareto_front(table)["pareto"].to_list() == [True, True, False, True]
    faster = pareto_front(table, x="gen_tokens_per_s", y="val_loss")["pareto"].to_list()
    assert faster == [True, True, True, False]
    with pytest.raises(InputError, match="no column 'accuracy'"):
        pareto_front(table, y="accuracy")


def test_plot_tradeoff_highlights_the_front():
    table = pl.DataFrame({"name": list("abc"), "params": [30, 10, 20],
                          "val_loss": [1.0, 3.0, 3.5]})
    fig = plot_tradeoff(table)
    assert isinstance(fig, go.Figure)
    points, front = fig.data
    assert list(points.text) == ["a", "b", "c"]
    assert list(front.x) == [10, 30] and list(front.y) == [3.0, 1.0]
    assert fig.layout.xaxis.title.text == "params"
    with pytest.raises(InputError, match="empty"):
        plot_tradeoff(table.clear())


def test_tradeoff_widget_runs_a_sweep_and_plots(data, tmp_path):
    from llmlab.widgets.tradeoff import TradeoffWidget

    model = llmlab.build_model(tiny(data), seed=0)
    widget = TradeoffWidget(data, {"tiny": tiny(data)}, source=(model, data.tokenizer),
                            steps=2, run_dir=tmp_path, **FAST)
    widget.choice.value = ("tiny", "source: int8")
    widget.run_button.click()
    assert widget.status.kind == "ok", widget.status.message
    assert widget.table["name"].to_list() == ["tiny", "source: int8"]
    shown = widget.table_view.value
    assert "val_loss" in shown and ">None<" not in shown       # missing values read "–"
    assert shown.count('class="llmlab-num"') >= 2 * 3          # numbers right-aligned
    assert "overflow-x:auto" in shown                          # never wider than the widget
    widget.x_axis.value = "wall_s"
    assert widget.figure.layout.xaxis.title.text == "wall_s"
    widget.choice.value = ()
    widget.run_button.click()
    assert widget.status.kind == "error" and "no entries" in widget.status.message
    empty = TradeoffWidget(data, {}, source=(None, None), run_dir=tmp_path)
    empty.choice.value = ("source: float32",)
    empty.run()
    assert empty.status.kind == "error" and "no model yet" in empty.status.message
