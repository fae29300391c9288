import json

import pytest
import torch

import llmlab
from llmlab import ModelConfig
from llmlab.errors import CheckpointError

TEXT = "to be, or not to be: that is the question.\n" * 4


def tiny(family="gpt", **kw):
    base = dict(family=family, vocab_size=40, context_length=16, n_layer=2, n_head=2, d_model=16)
    return ModelConfig(**{**base, **kw})


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("family", ["gpt", "bert", "seq2seq"])
def test_round_trip_keeps_weights_config_and_tokenizer(family, tmp_path):
    tok = llmlab.CharTokenizer.train(TEXT, special_tokens="bert")
    model = llmlab.build_model(tiny(family, vocab_size=tok.vocab_size), seed=1)
    folder = llmlab.save(model, tmp_path / "ckpt", tokenizer=tok)
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "model.safetensors", "tokenizer.json"]
    loaded, tok2 = llmlab.load(folder)
    assert loaded.config == model.config and same_weights(model, loaded)
    assert not loaded.training
    assert tok2.encode("to be") == tok.encode("to be")
    if family != "bert":
        assert loaded.lm_head.weight is loaded.embed.tok.weight  # still tied


def test_checkpoint_without_tokenizer_and_overwrite(tmp_path):
    first = llmlab.build_model(tiny(), seed=1)
    llmlab.save(first, tmp_path / "ckpt")
    second = llmlab.build_model(tiny(), seed=2)
    llmlab.save(second, tmp_path / "ckpt")
    loaded, tok = llmlab.load(tmp_path / "ckpt")
    assert tok is None and same_weights(second, loaded)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no staging folders left


def test_load_to_dtype_and_as_classifier(tmp_path):
    llmlab.save(llmlab.build_model(tiny(), seed=1), tmp_path / "lm")
    half, _ = llmlab.load(tmp_path / "lm", dtype=torch.bfloat16)
    assert half.embed.tok.weight.dtype == torch.bfloat16
    with pytest.warns(UserWarning, match="classifier"):
        clf, _ = llmlab.load(tmp_path / "lm", n_labels=3)
    assert clf.config.n_labels == 3
    lm, _ = llmlab.load(tmp_path / "lm")
    assert torch.equal(clf.decoder.blocks[0].attn.qkv.weight, lm.decoder.blocks[0].attn.qkv.weight)


def test_save_refuses_to_clobber_a_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("precious")
    with pytest.raises(CheckpointError, match="not an llmlab checkpoint"):
        llmlab.save(llmlab.build_model(tiny()), tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "precious"
    with pytest.raises(CheckpointError, match="needs an llmlab model"):
        llmlab.save(torch.nn.Linear(2, 2), tmp_path / "x")


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        llmlab.load(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="is a file"):
        llmlab.load(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="has no config.json"):
        llmlab.load(tmp_path / "empty")

    folder = llmlab.save(llmlab.build_model(tiny()), tmp_path / "ckpt")
    weights = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        llmlab.load(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        llmlab.load(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        llmlab.load(folder)
    (folder / "config.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(CheckpointError, match="not an llmlab checkpoint config"):
        llmlab.load(folder)


def test_mismatched_config_and_weights_name_each_tensor(tmp_path):
    folder = llmlab.save(llmlab.build_model(tiny()), tmp_path / "ckpt")
    header = json.loads((folder / "config.json").read_text())
    header["config"]["d_model"] = 32
    (folder / "config.json").write_text(json.dumps(header))
    with pytest.raises(CheckpointError, match=r"embed.tok.weight: model expects \(40, 32\), "
                                              r"checkpoint has \(40, 16\)"):
        llmlab.load(folder)
    header["config"].update(d_model=16, n_layer=3)
    (folder / "config.json").write_text(json.dumps(header))
    with pytest.raises(CheckpointError, match=r"missing tensors: \['decoder.blocks.2"):
        llmlab.load(folder)
    header["config"].update(n_layer=2, n_head=5)
    (folder / "config.json").write_text(json.dumps(header))
    with pytest.raises(CheckpointError, match="invalid model config.*n_head"):
        llmlab.load(folder)
    header["format_version"] = 99
    (folder / "config.json").write_text(json.dumps(header))
    with pytest.raises(CheckpointError, match="newer llmlab"):
        llmlab.load(folder)


def test_checkpoint_of_another_family(tmp_path):
    folder = llmlab.save(llmlab.build_model(tiny("bert")), tmp_path / "bert")
    with pytest.raises(CheckpointError, match="holds a 'bert' model, not 'gpt'"):
        llmlab.load(folder, family="gpt")
    model, _ = llmlab.load(folder, family="bert")
    assert model.config.family == "bert"


def test_checkpoints_never_use_pickle(tmp_path):
    folder = llmlab.save(llmlab.build_model(tiny()), tmp_path / "ckpt")
    assert (folder / "model.safetensors").read_bytes()[8:9] == b"{"  # safetensors JSON header


def test_a_run_or_its_id_loads_its_trained_model(tmp_path, monkeypatch):
    from llmlab.data import CausalLMData
    from llmlab.runs import RunNotFoundError, RunStore, RunStoreError

    tok = llmlab.CharTokenizer.train(TEXT * 20)
    data = CausalLMData.from_text(TEXT * 20, tok, seq_len=8)
    model = llmlab.build_model(tiny(vocab_size=tok.vocab_size), seed=0)
    run = llmlab.Trainer(model, data, run_dir=tmp_path / "runs", max_steps=4, batch_size=4,
                         eval_interval=2, eval_batches=1, progress=False, cpu=True).fit()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMLAB_RUNS_DIR", str(tmp_path / "runs"))
    by_run, tok_run = llmlab.load(run)
    by_id, _ = llmlab.load(run.id)
    latest, _ = run.load_model()
    at_2, _ = run.load_model(step=2)
    assert same_weights(by_run, model) and same_weights(by_id, model)
    assert same_weights(latest, model) and not same_weights(at_2, model)
    assert tok_run.encode("to be") == tok.encode("to be")
    with pytest.raises(RunStoreError, match=r"no complete checkpoint at step 3.*\[2, 4\]"):
        run.load_model(step=3)
    empty = RunStore(tmp_path / "runs").create(name="empty")
    with pytest.raises(CheckpointError, match="no complete checkpoint to load"):
        llmlab.load(empty)
    with pytest.raises(RunNotFoundError):
        llmlab.load("20990101-000000-abcdef")
