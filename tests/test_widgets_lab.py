"""Lab: every widget in one tabbed app, sharing one builder, model and run store."""

from __future__ import annotations

from pathlib import Path

import ipywidgets
import pytest

import llmlab
from llmlab.widgets import resolve_model
from llmlab.widgets.lab import TABS, Lab

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def data():
    text = (SHARED_DATA / "tinyshakespeare.txt").read_text(encoding="utf-8")[:20_000]
    tok = llmlab.CharTokenizer.train(text)
    return llmlab.data.CausalLMData.from_text(text, tok, seq_len=16)


def tiny(data):
    return llmlab.ModelConfig(family="gpt", n_layer=1, n_head=2, d_model=16, context_length=16,
                              vocab_size=data.tokenizer.vocab_size)


def test_lab_holds_every_widget_in_its_tabs(data, tmp_path):
    lab = Lab(data, run_dir=tmp_path)
    assert isinstance(lab, ipywidgets.VBox) and lab.tabs in lab.children
    assert tuple(lab.tabs.titles) == TABS
    assert list(lab.tabs.children) == [lab.builder, lab.trainer, lab.generator, lab.attention,
                                       lab.calibration, lab.tradeoff, lab.history]
    assert lab.tradeoff.source is lab.trainer
    lab.show("Runs")
    assert lab.tabs.selected_index == TABS.index("Runs")
    with pytest.raises(ValueError, match="no tab 'Plots'"):
        lab.show("Plots")
    assert repr(lab).startswith("Lab [Model | Train |") and "TrainerWidget (idle)" in repr(lab)


def test_the_builder_takes_its_vocabulary_from_the_data(data, tmp_path):
    lab = Lab(data, run_dir=tmp_path)                          # baby-char: 65 ids
    size = data.tokenizer.vocab_size
    assert size < 65
    assert lab.builder.config.vocab_size == size and lab.builder.tokenizer is data.tokenizer
    assert f"vocab_size from 65 to {size}" in lab.trainer.status.message


def test_tabs_share_one_model_from_build_to_training_to_generation(data, tmp_path):
    lab = Lab(data, run_dir=tmp_path, max_steps=4, batch_size=4, eval_interval=2,
              eval_batches=1)
    lab.generator.generate_button.click()                      # no model yet: a message
    lab.generator.wait()
    assert lab.generator.status.kind == "error"
    assert "no model yet" in lab.generator.status.message
    lab.builder.load_config(tiny(data))
    lab.builder.build_button.click()
    model = lab.builder.model
    assert model is not None and lab.trainer.model is model
    assert resolve_model(lab.generator.source)[0] is model
    assert resolve_model(lab.attention.source)[0] is model

    lab.trainer.start_button.click()
    run = lab.trainer.wait()
    assert run.status == "finished" and lab.trainer.trainer.model is model
    assert lab.history.runs["id"].to_list() == [run.id]       # refreshed when training ended
    lab.generator.prompt.value = "First"
    lab.generator.max_new_tokens.value = 5
    assert len(lab.generator.generate().token_ids) == 5       # the trained model generates

    lab.builder.load_config(tiny(data).replace(n_layer=2))
    lab.history.runs_select.value = (run.id,)
    lab.history.open_button.click()                           # the run's config back in the builder
    assert lab.builder.config == run.config


def test_start_builds_again_when_the_form_changed(data, tmp_path):
    lab = Lab(data, run_dir=tmp_path, max_steps=2, batch_size=4, eval_interval=2,
              eval_batches=1)
    lab.builder.load_config(tiny(data))
    lab.trainer.start()                                        # nothing built yet: builds
    lab.trainer.wait()
    first = lab.trainer.model
    assert first is lab.builder.model and "Built the model" not in lab.trainer.status.message
    lab.trainer.start()                                        # same form: trains on
    lab.trainer.wait()
    assert lab.trainer.model is first
    lab.builder.fields["n_layer"].value = 2                    # changed, Build not pressed
    lab.trainer.start()
    assert "Built the model from the builder's form" in lab.trainer.status.message
    lab.trainer.wait()
    assert lab.trainer.model is lab.builder.model and lab.trainer.model.config.n_layer == 2
