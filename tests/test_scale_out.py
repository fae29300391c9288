"""Outgrowing one machine (issue 19): sharding plumbing, sharded checkpoints merged back,
throughput and MFU on every run, the notebook's training as a spec and a launch line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import llmlab
from llmlab import ModelConfig, TrainConfig, Trainer
from llmlab.data import CausalLMData, ClassificationData, LabelledTexts, load_corpus, save_corpus
from llmlab.errors import CheckpointError, ConfigError, DataError, LLMLabError
from llmlab.runs import RunStore, RunStoreError
from llmlab.train import launch, sharding, throughput
from llmlab.train.cli import build_from_spec

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TEXT = (SHARED / "tinyshakespeare.txt").read_text()[:20_000]


@pytest.fixture(scope="module")
def tok():
    return llmlab.CharTokenizer.train(TEXT)


@pytest.fixture(scope="module")
def data(tok):
    return CausalLMData.from_text(TEXT, tok, seq_len=16)


def tiny(tok, **kw):
    return ModelConfig(**{**dict(family="gpt", vocab_size=tok.vocab_size, context_length=16,
                                 n_layer=2, n_head=2, d_model=16, dropout=0.0), **kw})


def quick(**kw):
    return {**dict(max_steps=3, batch_size=4, eval_interval=3, eval_batches=1, progress=False,
                   cpu=True), **kw}


# ------------------------------------------------------------------ settings and plumbing
@pytest.mark.parametrize("bad, words", [
    (dict(sharding="zero"), "sharding"), (dict(sharding="FSDP"), "sharding"),
    (dict(peak_flops=0), "positive"), (dict(peak_flops=-1e12), "positive"),
    (dict(peak_flops=float("nan")), "finite"), (dict(peak_flops="1e12"), "finite"),
])
def test_bad_sharding_and_peak_settings_are_refused(bad, words):
    with pytest.raises(ConfigError, match=words):
        TrainConfig(**bad)


def test_sharding_on_a_cpu_is_refused_before_training(tok, data, tmp_path):
    model = llmlab.build_model(tiny(tok), seed=0)
    for choice in ("fsdp", "deepspeed-zero2", "deepspeed-zero3"):
        with pytest.raises(ConfigError, match="needs GPUs.*sharding=None"):
            Trainer(model, data, run_dir=tmp_path, sharding=choice, **quick())
    assert not any(RunStore(tmp_path).runs())


def test_deepspeed_missing_says_how_to_install(monkeypatch):
    monkeypatch.setattr(sharding.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"pip install 'llmlab\[deepspeed\]'.*sharding='fsdp'"):
        sharding.check_sharding(TrainConfig(sharding="deepspeed-zero3"), device="cuda")
    sharding.check_sharding(TrainConfig(sharding="fsdp"), device="cuda")  # nothing to install


def test_fsdp_plugin_wraps_llmlab_blocks_and_saves_sharded(tok):
    from accelerate.utils import FullyShardedDataParallelPlugin
    from torch.distributed.fsdp import StateDictType
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

    model = llmlab.build_model(tiny(tok), seed=0)
    plugin = sharding.accelerator_plugins(TrainConfig(sharding="fsdp"), model)["fsdp_plugin"]
    assert isinstance(plugin, FullyShardedDataParallelPlugin)
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
    assert plugin.state_dict_type == StateDictType.SHARDED_STATE_DICT
    assert plugin.transformer_cls_names_to_wrap == ["Block"]
    assert plugin.auto_wrap_policy is transformer_auto_wrap_policy
    plugin.set_auto_wrap_policy(model)  # what accelerate does at prepare: names -> classes
    from llmlab.models.layers import Block
    wrapped = plugin.auto_wrap_policy.keywords["transformer_layer_cls"]
    assert wrapped == {Block}
    assert sharding.accelerator_plugins(TrainConfig(), model) == {}


def test_deepspeed_plugin_has_the_stage_and_the_batch_sizes(tok, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    cfg = TrainConfig(sharding="deepspeed-zero3", batch_size=16, grad_accum_steps=2)
    plugin = sharding.accelerator_plugins(cfg, None)["deepspeed_plugin"]
    ds = plugin.deepspeed_config
    assert ds["zero_optimization"]["stage"] == 3
    assert ds["train_micro_batch_size_per_gpu"] == 4 and ds["train_batch_size"] == 16
    assert ds["gradient_accumulation_steps"] == 2 and ds["gradient_clipping"] == 1.0
    monkeypatch.setenv("WORLD_SIZE", "1")
    cfg2 = TrainConfig(sharding="deepspeed-zero2")
    assert sharding.accelerator_plugins(cfg2, None)["deepspeed_plugin"].zero_stage == 2


def test_the_trainer_hands_the_plugin_to_accelerate(tok, data, tmp_path, monkeypatch):
    """On a GPU machine the Trainer gives accelerate the FSDP plugin; here the device check is
    told it is one, and the Accelerator it builds is recorded (accelerate itself then trains
    unsharded on this CPU), and the checkpoint's model folder holds no weights."""
    import accelerate

    from llmlab.train import hardware

    seen = {}
    real = accelerate.Accelerator

    def recording(**kwargs):
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(hardware, "training_device", lambda cfg: "cuda")
    monkeypatch.setattr(accelerate, "Accelerator", recording)
    model = llmlab.build_model(tiny(tok), seed=0)
    run = Trainer(model, data, run_dir=tmp_path, sharding="fsdp",
                  **quick(max_steps=1, eval_interval=1)).fit()
    assert seen["fsdp_plugin"].transformer_cls_names_to_wrap == ["Block"]
    model_dir = run.latest_checkpoint() / "model"
    assert not (model_dir / "model.safetensors").exists()
    with pytest.raises(CheckpointError, match=r"sharded.*consolidate\('out/'\)"):
        llmlab.load(model_dir)


# ------------------------------------------------------------------ consolidate
def _sharded_checkpoint(run, model, tokenizer, step: int) -> Path:
    """A checkpoint as the Trainer writes it under FSDP2: model/ without weights, the weights
    in accelerate/pytorch_model_fsdp_0 as accelerate's save_state writes them (a torch
    distributed checkpoint of {"model": state_dict})."""
    import torch.distributed.checkpoint as dcp

    from llmlab.runs import checkpoints
    from llmlab.train.state import TrainerState

    partial = run.checkpoint_dir(step).with_name(run.checkpoint_dir(step).name + ".partial")
    shards = partial / "accelerate" / sharding.FSDP_MODEL_DIR
    shards.mkdir(parents=True)
    dcp.save({"model": model.state_dict()}, storage_writer=dcp.FileSystemWriter(str(shards)),
             no_dist=True)
    llmlab.save(model, partial / "model", tokenizer, weights=False)
    state = TrainerState(seed=0)
    state.step = step
    state.save(partial)
    checkpoints.seal(partial, step)
    final = run.checkpoint_dir(step)
    partial.rename(final)
    return final


def test_consolidate_merges_fsdp_shards_into_one_folder(tok, tmp_path):
    model = llmlab.build_model(tiny(tok, n_kv_head=1), seed=3)
    run = RunStore(tmp_path / "runs").create(name="sharded", config=model.config.to_dict())
    folder = _sharded_checkpoint(run, model, tok, 5)
    assert list((folder / "accelerate" / sharding.FSDP_MODEL_DIR).glob("*.distcp"))
    out = run.consolidate(tmp_path / "final")
    merged, merged_tok = llmlab.load(out)
    for name, tensor in model.state_dict().items():
        assert torch.equal(merged.state_dict()[name], tensor), name
    assert merged_tok.encode("To be") == tok.encode("To be")
    ids = torch.tensor([tok.encode("First Citizen")])
    assert torch.equal(merged(ids).logits, model.eval()(ids).logits)
    assert llmlab.runs.consolidate(folder, tmp_path / "again").is_dir()


def test_consolidate_names_a_missing_shard_and_other_bad_requests(tok, tmp_path):
    model = llmlab.build_model(tiny(tok), seed=0)
    run = RunStore(tmp_path / "runs").create(name="sharded", config=model.config.to_dict())
    with pytest.raises(RunStoreError, match="no complete checkpoint"):
        run.consolidate(tmp_path / "out")
    folder = _sharded_checkpoint(run, model, tok, 2)
    with pytest.raises(RunStoreError, match=r"no complete checkpoint at step 7.*\[2\]"):
        run.consolidate(tmp_path / "out", step=7)
    shard = next((folder / "accelerate" / sharding.FSDP_MODEL_DIR).glob("*.distcp"))
    shard.unlink()
    with pytest.raises(RunStoreError, match=rf"{shard.name} is missing"):
        run.consolidate(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_deepspeed_checkpoint_resumes_only_on_the_count_that_saved_it(tmp_path):
    """Each process saves its RNG state; ZeRO's optimizer partitions load only on the same
    count (FSDP2's distributed checkpoint re-shards, a DDP checkpoint is whole)."""
    checkpoint = tmp_path / "step-8"
    accelerate_dir = checkpoint / "accelerate"
    accelerate_dir.mkdir(parents=True)
    assert sharding.saved_processes(checkpoint) is None
    for rank in range(4):
        (accelerate_dir / f"random_states_{rank}.pkl").write_bytes(b"")
    assert sharding.saved_processes(checkpoint) == 4
    for stage in ("deepspeed-zero2", "deepspeed-zero3"):
        cfg = TrainConfig(sharding=stage)
        sharding.check_resume_processes(cfg, checkpoint, 4)
        with pytest.raises(LLMLabError, match=r"saved by 4 processes.*this job has 2.*"
                                              r"--num_processes 4.*consolidate"):
            sharding.check_resume_processes(cfg, checkpoint, 2)
    for other in (None, "fsdp"):
        sharding.check_resume_processes(TrainConfig(sharding=other), checkpoint, 2)


def test_consolidate_an_unsharded_run(tok, data, tmp_path):
    model = llmlab.build_model(tiny(tok), seed=0)
    run = Trainer(model, data, run_dir=tmp_path / "runs", **quick()).fit()
    out = run.consolidate(tmp_path / "final", step=3)
    merged, _ = llmlab.load(out)
    saved, _ = llmlab.load(run.latest_checkpoint() / "model")
    for name, tensor in saved.state_dict().items():
        assert torch.equal(merged.state_dict()[name], tensor)


# ------------------------------------------------------------------ throughput and MFU
def test_every_run_logs_tokens_per_s_and_mfu_when_the_peak_is_known(tok, data, tmp_path):
    model = llmlab.build_model(tiny(tok), seed=0)
    run = Trainer(model, data, run_dir=tmp_path, peak_flops=1e12,
                  **quick(max_steps=4, log_interval=2)).fit()
    rows = run.metrics.filter(run.metrics["tokens_per_s"].is_not_null())
    assert rows["step"].to_list() == [2, 4]
    per_token = model.config.estimate(seq_len=16).flops_per_token_train
    assert per_token == 6 * model.config.estimate().matmul_params + 12 * 2 * 16 * 16
    for tps, mfu in zip(rows["tokens_per_s"], rows["mfu"], strict=True):
        assert tps > 0 and mfu == pytest.approx(tps * per_token / 1e12, rel=1e-9)
    plain = Trainer(model, data, run_dir=tmp_path, **quick(max_steps=2)).fit()
    assert "tokens_per_s" in plain.metrics.columns and "mfu" not in plain.metrics.columns


def test_peak_table_and_resume_on_another_peak(tok, data, tmp_path):
    assert throughput.peak_flops_for("NVIDIA H100 80GB HBM3", "bf16") == 989.4e12
    assert throughput.peak_flops_for("NVIDIA H100 PCIe", "bf16") == 756e12
    assert throughput.peak_flops_for("NVIDIA H200", "no") == 66.9e12
    assert throughput.peak_flops_for("NVIDIA A100-SXM4-80GB", "fp16") == 312e12
    assert throughput.peak_flops_for("Intel Xeon", "bf16") is None
    assert throughput.run_peak_flops(TrainConfig(), torch.device("cpu")) is None
    assert throughput.run_peak_flops(TrainConfig(peak_flops=5e11), torch.device("cpu")) == 5e11
    model = llmlab.build_model(tiny(tok), seed=0)
    run = Trainer(model, data, run_dir=tmp_path, **quick(max_steps=2, eval_interval=2)).fit()
    resumed = Trainer(model, data, run_dir=tmp_path, peak_flops=2e12,
                      **quick(max_steps=3, eval_interval=2)).fit(resume_from=run.id)
    assert resumed.metrics["mfu"].drop_nulls().len() == 1  # a machine fact, not a setting


# ------------------------------------------------------------------ notebook to cluster
def test_corpus_round_trips_with_its_fingerprint(data, tmp_path):
    back = load_corpus(save_corpus(data, tmp_path / "corpus"))
    assert back.fingerprint == data.fingerprint
    (tmp_path / "corpus" / "corpus.json").write_text('{"format": "x"}')
    with pytest.raises(DataError, match="save_corpus"):
        load_corpus(tmp_path / "corpus")
    with pytest.raises(DataError, match="corpus"):
        load_corpus(tmp_path / "nowhere")


def test_to_spec_of_a_fresh_model_names_its_config(tok, data, tmp_path):
    model = llmlab.build_model(tiny(tok), seed=4)
    trainer = Trainer(model, data, run_dir=tmp_path / "runs", run_name="nb",
                      **quick(seed=4, lr=2e-3))
    written = trainer.to_spec(tmp_path / "spec.json")
    spec = json.loads((tmp_path / "spec.json").read_text())
    assert spec == written.spec and spec["model"] == {"config": model.config.to_dict()}
    assert spec["data"]["kind"] == "causal_lm" and "saved" in spec["data"]
    assert len(written.notes) == 1 and "data was built in Python" in written.notes[0]
    rebuilt, rebuilt_data, train, options = build_from_spec(spec)
    assert rebuilt_data.fingerprint == data.fingerprint
    assert train == trainer.config and options["run_name"] == "nb"
    for name, tensor in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[name], tensor)


def test_to_spec_of_a_trained_model_saves_it_and_the_spec_trains(tok, data, tmp_path):
    model = llmlab.build_model(tiny(tok), seed=0)
    Trainer(model, data, run_dir=tmp_path / "runs", **quick()).fit()
    trainer = Trainer(model, data, run_dir=tmp_path / "runs", **quick(max_steps=2))
    written = trainer.to_spec(tmp_path / "cluster.json")
    assert written.spec["model"] == {"checkpoint": str(tmp_path / "cluster-model")}
    assert any("not those build_model" in note for note in written.notes)
    assert "cluster-model" in repr(written)
    line = trainer.launch_command(num_processes=1)
    assert line == ("accelerate launch --num_processes 1 --num_machines 1 -m llmlab.train "
                    f"{tmp_path / 'cluster.json'}")
    done = subprocess.run([sys.executable, "-m", "llmlab.train", str(tmp_path / "cluster.json"),
                           "--no-progress"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    run = llmlab.runs.get(result["run_id"], tmp_path / "runs")
    assert run.status == "finished" and run.last_step == 2
    loaded, _ = llmlab.load(tmp_path / "cluster-model")
    ids = torch.tensor([tok.encode("ROMEO:")])
    assert torch.allclose(loaded(ids).logits, model.eval()(ids).logits)


def test_to_spec_of_a_spec_trainer_keeps_its_data_and_refuses_what_it_cannot_name(
        tok, tmp_path):
    source = tmp_path / "text.txt"
    source.write_text(TEXT)
    from llmlab.train import trainer_from_spec

    spec = {"model": {"preset": "baby-char", "n_layer": 1, "d_model": 16, "n_head": 2},
            "data": {"source": str(source), "seq_len": 16},
            "train": {"max_steps": 2, "batch_size": 4, "cpu": True}, "run_dir": str(tmp_path)}
    written = trainer_from_spec(spec, progress=False).to_spec(tmp_path / "again.json")
    assert written.spec["data"] == {"source": str(source), "seq_len": 16}
    assert written.notes == []
    texts = LabelledTexts(["good film", "bad film"] * 8, [1, 0] * 8, ["neg", "pos"])
    cls_data = ClassificationData.from_texts(texts, tokenizer=tok, seq_len=8, val_fraction=0.25)
    clf = llmlab.build_model(tiny(tok, n_labels=2, family="bert"), seed=0)
    trainer = Trainer(clf, cls_data, run_dir=tmp_path, **quick())
    with pytest.raises(ConfigError, match="cannot be described by a spec.*trainer_from_spec"):
        trainer.to_spec(tmp_path / "cls.json")
    with pytest.raises(ConfigError, match=r"\.json"):
        trainer.to_spec(tmp_path / "spec.yaml")
    with pytest.raises(ConfigError, match="to_spec"):
        trainer.launch_command(num_processes=2)


def test_launch_command_for_machines_and_bad_counts():
    line = launch.launch_command("/a b/spec.json", num_processes=16, num_machines=2)
    assert line.startswith("accelerate launch --num_processes 16 --num_machines 2 "
                           "--machine_rank $MACHINE_RANK --main_process_ip $MAIN_PROCESS_IP")
    assert line.endswith("-m llmlab.train '/a b/spec.json'")
    for bad in (dict(num_processes=0), dict(num_processes=True), dict(num_machines=0),
                dict(num_processes=3, num_machines=2)):
        with pytest.raises(ConfigError):
            launch.launch_command("s.json", **bad)


def test_notebook_launch_refuses_after_cuda_and_runs_in_process(tok, data, tmp_path,
                                                                monkeypatch):
    model = llmlab.build_model(tiny(tok), seed=0)
    trainer = Trainer(model, data, run_dir=tmp_path, **quick(max_steps=2, eval_interval=2))
    with pytest.raises(ConfigError):
        trainer.launch_in_notebook(0)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    with pytest.raises(LLMLabError, match="Restart the kernel"):
        trainer.launch_in_notebook(2)
    monkeypatch.undo()
    Trainer(model, data, run_dir=tmp_path, **quick(max_steps=1, eval_interval=1)).fit()
    run = trainer.launch_in_notebook(1)  # after an Accelerator in this process: still works
    assert run is not None and run.status == "finished" and run.last_step == 2


def test_the_gpu_check_runs_dry_on_a_cpu():
    """benchmarks/gpu.sh --dry-run: every case of the GPU check, tiny and on the CPU."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.sh"
    done = subprocess.run([str(script), "--dry-run"], capture_output=True, text=True,
                          timeout=600, env={**__import__("os").environ, "PYTHON": sys.executable})
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {row["case"]: row for row in map(json.loads, done.stdout.strip().splitlines())}
    assert set(rows) == {
        "gpu_baby-char_bf16_mfu", "gpu_baby-char_bf16_vs_hf", "gpu_baby-char_bf16_compile_mfu",
        "gpu_baby-char_bf16_vs_hf_compile", "gpu_fsdp2_resume_exact", "gpu_fsdp2_consolidate",
        "gpu_smollm2_b1_8", "gpu_smollm2_b8_8"}
    assert rows["gpu_fsdp2_resume_exact"]["llmlab"] == 0.0  # an exact resume, same losses
    assert rows["gpu_fsdp2_consolidate"]["meets_target"]
    assert all(row["llmlab"] > 0 for name, row in rows.items() if "resume" not in name)
