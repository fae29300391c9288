"""llmlab.runs.reproduce: a finished run trained from a spec reruns to the same metrics."""

import json
import math
from pathlib import Path

import pytest

import llmlab
from llmlab.runs import RunStoreError, reproduce
from llmlab.train.cli import main, recorded_spec, trainer_from_spec
from llmlab.train.reproduce import compare_metrics

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TRAIN = {"max_steps": 6, "batch_size": 4, "lr": 3e-3, "eval_interval": 3, "eval_batches": 2,
         "checkpoint_interval": 0}


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text((SHARED / "tinyshakespeare.txt").read_text()[:20_000])
    return path


def lm_spec(source, store, **train):
    # dropout > 0: the rerun must also draw the same dropout masks
    return {"model": {"preset": "baby-char", "n_layer": 1, "d_model": 32, "n_head": 2,
                      "dropout": 0.1},
            "data": {"kind": "causal_lm", "source": str(source), "seq_len": 16},
            "train": {**TRAIN, **train}, "run_dir": str(store), "run_name": "tiny"}


def test_a_cli_run_reproduces_exactly(corpus, tmp_path, monkeypatch, capsys):
    store = tmp_path / "runs"
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(lm_spec(corpus, store)))
    monkeypatch.chdir(tmp_path)
    assert main([str(spec_file), "--no-progress"]) == 0
    original = llmlab.runs.get(json.loads(capsys.readouterr().out)["run_id"], store)
    assert original.manifest["spec"]["data"]["source"] == str(corpus.resolve())
    assert "run_dir" not in original.manifest["spec"]

    check = reproduce(original.id, run_dir=store)
    assert check.matches
    assert check.original == original and check.run != original
    assert set(check.max_diff) == {"train/loss", "lr", "val/loss", "val/perplexity"}
    assert all(diff == 0.0 for diff in check.max_diff.values())
    assert check.run.manifest["reproduces"] == original.id
    assert check.run.name == "tiny (reproduction)"
    assert check.run.metrics["train/loss"].to_list() == original.metrics["train/loss"].to_list()
    assert check.to_polars()["matches"].all()


def test_a_notebook_run_from_a_spec_reproduces(corpus, tmp_path):
    store = tmp_path / "runs"
    run = trainer_from_spec(lm_spec(corpus, store, seed=3), progress=False).fit()
    check = reproduce(run.id, run_dir=store)
    assert check.matches and check.max_diff["train/loss"] == 0.0


def test_a_fine_tuned_classifier_reproduces(tmp_path):
    # the new classification head is drawn from the training seed, so it is the same again
    tok = llmlab.ByteTokenizer()
    cfg = llmlab.ModelConfig(vocab_size=tok.vocab_size, context_length=32, n_layer=1,
                             n_head=2, d_model=32)
    checkpoint = llmlab.save(llmlab.build_model(cfg, seed=0), tmp_path / "lm", tokenizer=tok)
    store = tmp_path / "runs"
    spec = {"model": {"checkpoint": str(checkpoint), "n_labels": 2},
            "data": {"kind": "classification", "dataset": "sst2", "seq_len": 32},
            "train": TRAIN, "run_dir": str(store)}
    with pytest.MonkeyPatch.context() as patch, pytest.warns(UserWarning):
        patch.setenv("LLMLAB_DATA_DIR", str(SHARED))
        run = trainer_from_spec(spec, progress=False).fit()
        check = reproduce(run.id, run_dir=store)
    assert check.matches and "val/accuracy" in check.max_diff


def test_changed_data_is_refused_before_training(corpus, tmp_path):
    store = tmp_path / "runs"
    run = trainer_from_spec(lm_spec(corpus, store), progress=False).fit()
    corpus.write_text(corpus.read_text()[::-1])
    with pytest.raises(RunStoreError, match="fingerprint"):
        reproduce(run.id, run_dir=store)
    assert llmlab.runs.list(store).height == 1


def test_a_different_outcome_is_reported(corpus, tmp_path):
    store = tmp_path / "runs"
    run = trainer_from_spec(lm_spec(corpus, store), progress=False).fit()
    # tamper with the recorded curve: the rerun must notice
    fake = llmlab.runs.create(store=store, name="tampered", config=run.manifest["config"],
                              training=run.manifest["training"], data=run.manifest["data"])
    for step, name, value in run.metrics_long.select("step", "name", "value").iter_rows():
        fake.log_metrics({name: value + (0.5 if (name, step) == ("train/loss", 2) else 0.0)},
                         step=step)
    fake.update_manifest(spec=run.manifest["spec"])
    fake.finish()
    check = reproduce(fake.id, run_dir=store)
    assert not check.matches
    assert check.max_diff["train/loss"] == pytest.approx(0.5)
    assert check.max_diff["val/loss"] == 0.0
    assert reproduce(fake.id, run_dir=store, atol=0.6).matches


def test_runs_that_cannot_be_rerun_say_why(corpus, tmp_path):
    store = tmp_path / "runs"
    tok = llmlab.CharTokenizer.train(corpus.read_text())
    data = llmlab.data.CausalLMData.from_text(corpus.read_text(), tok, seq_len=16)
    model = llmlab.build_model(llmlab.ModelConfig(vocab_size=tok.vocab_size, context_length=16,
                                                  n_layer=1, n_head=2, d_model=32))
    plain = llmlab.Trainer(model, data, progress=False, run_dir=store, **TRAIN).fit()
    with pytest.raises(RunStoreError, match="no training spec.*trainer_from_spec"):
        reproduce(plain.id, run_dir=store)
    with llmlab.runs.create(store=store, training=TRAIN) as unfinished:
        unfinished.update_manifest(status="interrupted")
    with pytest.raises(RunStoreError, match="'interrupted'.*resume_from"):
        reproduce(unfinished.id, run_dir=store)
    with pytest.raises(ValueError, match="atol"):
        reproduce(plain.id, run_dir=store, atol=-1)


def test_compare_metrics_rules():
    import polars as pl

    def frame(rows):
        return pl.DataFrame(rows, schema=["step", "name", "value"], orient="row")

    a = frame([(1, "loss", 2.0), (1, "tokens_per_s", 10.0), (2, "loss", math.nan)])
    b = frame([(1, "loss", 2.0), (1, "tokens_per_s", 99.0), (2, "loss", math.nan),
               (2, "extra", 1.0)])
    assert compare_metrics(a, b) == {"loss": 0.0, "extra": math.inf}
    resumed = frame([(1, "loss", 5.0), (2, "loss", math.nan), (1, "loss", 2.0)])
    assert compare_metrics(a, resumed) == {"loss": 0.0}  # a step logged twice: the last wins


def test_recorded_spec_makes_paths_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    spec = {"model": {"checkpoint": "ckpt"}, "data": {"source": "notes.txt"},
            "run_dir": "runs", "run_name": "x"}
    assert recorded_spec(spec) == {"model": {"checkpoint": str(tmp_path / "ckpt")},
                                   "data": {"source": str(tmp_path / "notes.txt")}}
    assert recorded_spec({"data": {"source": "tinyshakespeare"}}) == {
        "data": {"source": "tinyshakespeare"}}
