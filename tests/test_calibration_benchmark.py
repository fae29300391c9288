"""The calibration benchmark's table and fit-time code on tiny data (a smoke test: the
numbers of a random tiny model mean nothing, the shapes and the bookkeeping do)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import llmlab
from llmlab import ModelConfig
from llmlab.data import LabelledTexts
from llmlab.prompting import PromptClassifier

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("calibration_bench",
                                                  BENCHMARKS / "calibration.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


GOOD = ["a fine film", "great cast", "so good", "loved it", "fun", "a joy", "nice", "superb"]
BAD = ["dull", "a mess", "boring plot", "awful", "meh", "weak", "bland", "poor"]


@pytest.fixture(scope="module")
def toy(bench):
    task = bench.Task("toy", "Toy", "Review: {text}\nSentiment: {label}\n", ("bad", "good"))
    texts = [t for pair in zip(GOOD, BAD) for t in pair]
    data = LabelledTexts(texts * 2, [1, 0] * 16, ["negative", "positive"])
    tok = llmlab.CharTokenizer.train("abcdefghijklmnopqrstuvwxyz .:\nRS[]MASKN/")
    cfg = ModelConfig(family="gpt", vocab_size=tok.vocab_size, context_length=128, n_layer=1,
                      n_head=2, d_model=16)
    model = llmlab.build_model(cfg, seed=0).eval()

    def clf_of(demos):
        return PromptClassifier(model, tok, task.template, list(task.words), separator="\n",
                                demonstrations=demos)

    return task, data, clf_of


def test_table_inputs_fit_the_context_and_draw_a_set_per_seed(bench, toy):
    task, data, clf_of = toy
    texts, labels, sets = bench.table_inputs(task, data, data, clf_of, n_texts=20, shots=2,
                                             seeds=3, context=128)
    assert len(texts) == len(labels) == 20 and len(sets) == 3
    assert all(len(s) == 2 for s in sets) and sets[0] != sets[1]
    again = bench.table_inputs(task, data, data, clf_of, n_texts=20, shots=2, seeds=3,
                               context=128)
    assert again[0] == texts  # seeded
    tok = clf_of(sets[0]).tokenizer
    block = max(len(tok.encode(clf_of(s).prompt(""))) for s in sets)
    context = block + len(tok.encode(" good")) + 8 + 5  # texts of <= 5 characters fit
    short = bench.table_inputs(task, data, data, clf_of, n_texts=20, shots=2, seeds=3,
                               context=context)
    assert short[0] and all(len(t) <= 5 for t in short[0])


def test_method_runs_summarise_and_markdown(bench, toy, capsys):
    task, data, clf_of = toy
    texts, labels, sets = bench.table_inputs(task, data, data, clf_of, n_texts=24, shots=2,
                                             seeds=2, context=128)
    methods = ["none", "contextual", "batch", "linc", "hidden"]
    runs = bench.method_runs(clf_of, texts, labels, sets, methods=methods, n_boot=20)
    assert list(runs) == methods
    assert all(len(v) == 2 for m in runs.values() for v in m.values())
    report = clf_of(sets[1]).calibration_report(texts, labels, methods=methods, n_boot=20,
                                                seed=1)
    assert runs["linc"]["accuracy"][1] == report.filter(
        report["method"] == "linc")["accuracy"].item()
    rows = bench.summarise(runs)
    none = rows[0]
    assert none["method"] == "none"
    assert none["ece_mean"] == pytest.approx(np.mean(runs["none"]["ece"]))
    assert none["ece_std"] == pytest.approx(np.std(runs["none"]["ece"], ddof=1))
    table = bench.markdown_table(rows)
    lines = table.splitlines()
    assert lines[0] == "| method | accuracy | macro-F1 | ECE | smECE |"
    assert len(lines) == 2 + len(methods) and lines[2].startswith("| none | ")
    assert table.count("**") >= 8  # the best of each column in bold
    bench.emit_table_rows(task, rows)
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["unit"] for o in out] == ["accuracy", "macro_f1", "smece"]
    assert all(o["peer_name"] == "none (uncalibrated)" and o["bench"] == "calibration"
               for o in out)


def test_a_method_that_cannot_be_fit_is_marked_failed_and_the_others_kept(bench, toy):
    task, data, clf_of = toy
    sets = [[(GOOD[0], 1)], [(BAD[0], 0)]]
    texts, labels = ["dull", "fun", "meh"], np.array([0, 1, 0])  # prototypical needs 4
    runs = bench.method_runs(clf_of, texts, labels, sets, methods=["none", "prototypical"],
                             n_boot=10)
    assert not np.isnan(runs["none"]["accuracy"]).any()
    assert np.isnan(runs["prototypical"]["accuracy"]).all()
    rows = bench.summarise(runs)
    table = bench.markdown_table(rows)
    assert "| prototypical (0 runs) | failed | failed | failed | failed |" in table
    assert "| none | **" in table


def test_synthetic_log_probs_and_every_method_fits_them(bench):
    from llmlab.calibrate.prompted import inputs_of, make_calibrator
    from llmlab.prompting import ALL_METHODS

    lp, y, hidden = bench.synthetic_log_probs(200, 4, 16)
    assert lp.shape == (200, 4) and hidden.shape == (200, 16)
    np.testing.assert_allclose(np.exp(lp).sum(1), 1.0)
    assert np.bincount(lp.argmax(1), minlength=4)[0] > 60  # biased to label 0
    for method in ALL_METHODS:
        cal = make_calibrator(method, 4)
        x = hidden if inputs_of(cal) == "hidden" else lp
        needs = inputs_of(cal) in ("labelled", "hidden")
        cal.fit(x, y if needs else None, kind="logits")
        assert cal.is_fitted, method


def test_no_cached_real_lm_in_an_empty_hugging_face_cache(bench, tmp_path):
    assert bench.cached_real_lm(cache_dir=tmp_path) is None
    assert bench.cached_real_lm(cache_dir=tmp_path / "missing") is None


def fake_hub_cache(root: Path, repo_id: str, folder: Path) -> None:
    """``folder``'s files laid out as the Hugging Face cache holds a downloaded repo: blobs,
    a snapshot of links to them, and refs/main."""
    import hashlib

    repo = root / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for file in folder.iterdir():
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / file.name).symlink_to(blob)


def test_a_cached_causal_lm_is_found_and_loaded(bench, tmp_path):
    transformers = pytest.importorskip("transformers")
    from real_models import byte_bpe

    folder = tmp_path / "gpt2"
    tok = byte_bpe(["<|endoftext|>"])
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                                         eos_token="<|endoftext|>").save_pretrained(folder)
    config = transformers.GPT2Config(vocab_size=tok.get_vocab_size(), n_positions=64,
                                     n_embd=16, n_layer=1, n_head=2, bos_token_id=0,
                                     eos_token_id=0)
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    cache = tmp_path / "hub"
    fake_hub_cache(cache, "someone/tiny-gpt2", folder)
    found = bench.cached_real_lm(cache_dir=cache)
    assert found is not None and found[0] == "someone/tiny-gpt2"
    model, _ = llmlab.load(found[1])
    assert model.config.n_layer == 1
    assert bench.cached_real_lm(max_bytes=10, cache_dir=cache) is None  # too big for a CPU
