import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import llmlab
from llmlab import ModelConfig, TrainConfig, Trainer
from llmlab.data import CausalLMData, ClassificationData, LabelledTexts, MaskedLMData
from llmlab.errors import ConfigError
from llmlab.train import Callback, TrainingError, lr_at

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TEXT = (SHARED / "tinyshakespeare.txt").read_text()[:60_000]


@pytest.fixture(scope="module")
def tok():
    return llmlab.CharTokenizer.train(TEXT, special_tokens="bert")


@pytest.fixture(scope="module")
def lm_data(tok):
    return CausalLMData.from_text(TEXT, tok, seq_len=32)


def tiny(tok, family="gpt", **kw):
    return ModelConfig(**{**dict(family=family, vocab_size=tok.vocab_size, context_length=32,
                                 n_layer=2, n_head=2, d_model=32, dropout=0.1), **kw})


def quick(**kw):
    return dict(dict(batch_size=8, lr=3e-3, eval_interval=10, eval_batches=2, progress=False), **kw)


def losses(run):
    frame = run.metrics
    return frame.filter(frame["train/loss"].is_not_null())["train/loss"].to_list()


def test_fit_trains_and_records_the_run(tok, lm_data, tmp_path):
    model = llmlab.build_model(tiny(tok), seed=0)
    run = Trainer(model, lm_data, max_steps=40, run_dir=tmp_path, **quick()).fit()
    assert run.status == "finished"
    curve = losses(run)
    assert len(curve) == 40 and curve[-1] < curve[0] - 0.5
    metrics = run.metrics
    assert {"step", "train/loss", "val/loss", "val/perplexity", "lr", "tokens_per_s"} <= set(
        metrics.columns)
    assert metrics["val/loss"].drop_nulls().len() == 4
    listed = llmlab.runs.list(tmp_path)
    assert listed["id"].to_list() == [run.id] and listed["status"][0] == "finished"
    manifest = run.manifest
    assert manifest["config"] == model.config.to_dict()
    assert manifest["data"]["fingerprint"] == lm_data.fingerprint
    assert manifest["training"]["max_steps"] == 40
    # checkpoints: every 10 steps, the last 2 kept, each loadable as an llmlab checkpoint
    steps = [step for step, _ in run.checkpoints()]
    assert steps == [30, 40]
    loaded, loaded_tok = llmlab.load(run.latest_checkpoint() / "model")
    assert torch.equal(loaded.embed.tok.weight, model.embed.tok.weight)
    assert loaded_tok.encode("ROMEO") == tok.encode("ROMEO")


def test_resume_continues_the_same_loss_curve(tok, lm_data, tmp_path):
    settings = quick(checkpoint_interval=10, eval_interval=5, seed=3)
    straight = Trainer(llmlab.build_model(tiny(tok), seed=0), lm_data, max_steps=20,
                       run_dir=tmp_path / "a", **settings).fit()
    first = Trainer(llmlab.build_model(tiny(tok), seed=0), lm_data, max_steps=20,
                    run_dir=tmp_path / "b", callbacks=[StopAt(10)], **settings).fit()
    assert first.status == "interrupted" and first.metrics["step"].max() == 10
    resumed = Trainer(llmlab.build_model(tiny(tok), seed=1), lm_data, max_steps=20,
                      run_dir=tmp_path / "b", **settings).fit(resume_from=first.id)
    assert resumed.id == first.id and resumed.status == "finished"
    assert losses(resumed) == losses(straight)  # bit-identical, dropout included
    val = lambda run: run.metrics["val/loss"].drop_nulls().to_list()  # noqa: E731
    assert val(resumed) == val(straight)


def test_resume_refuses_other_settings(tok, lm_data, tmp_path):
    run = Trainer(llmlab.build_model(tiny(tok)), lm_data, max_steps=10, run_dir=tmp_path,
                  **quick()).fit()
    with pytest.raises(TrainingError, match="lr differ"):
        Trainer(llmlab.build_model(tiny(tok)), lm_data, max_steps=20, run_dir=tmp_path,
                **quick(lr=1e-4)).fit(resume_from=run.id)
    with pytest.raises(TrainingError, match="another model config"):
        Trainer(llmlab.build_model(tiny(tok, n_layer=3)), lm_data, max_steps=20,
                run_dir=tmp_path, **quick()).fit(resume_from=run.id)


def test_rerunning_a_cell_with_other_accelerate_settings_works(tok, lm_data, tmp_path):
    for precision in ("no", "bf16", "no"):
        run = Trainer(llmlab.build_model(tiny(tok)), lm_data, max_steps=3, run_dir=tmp_path,
                      mixed_precision=precision, cpu=precision == "bf16", **quick()).fit()
        assert run.status == "finished"


class StopAt(Callback):
    def __init__(self, at):
        self.at = at

    def on_step(self, trainer, step, metrics):
        if step == self.at:
            trainer.stop()


class Interrupt(Callback):
    def __init__(self, at):
        self.at = at

    def on_step(self, trainer, step, metrics):
        if step == self.at:
            raise KeyboardInterrupt


def test_keyboard_interrupt_marks_the_run_and_keeps_the_checkpoint(tok, lm_data, tmp_path):
    trainer = Trainer(llmlab.build_model(tiny(tok)), lm_data, max_steps=40, run_dir=tmp_path,
                      callbacks=[Interrupt(15)], **quick())
    run = trainer.fit()
    assert run.status == "interrupted"
    assert [step for step, _ in run.checkpoints()] == [10]
    resumed = Trainer(llmlab.build_model(tiny(tok)), lm_data, max_steps=40, run_dir=tmp_path,
                      **quick()).fit(resume_from=run.id)
    assert resumed.status == "finished" and resumed.metrics["step"].max() == 40


class Poison(Callback):
    def on_step(self, trainer, step, metrics):
        if step == 3:
            with torch.no_grad():
                trainer.model.embed.tok.weight.fill_(float("nan"))


def test_nan_loss_stops_with_the_step_and_advice(tok, lm_data, tmp_path):
    trainer = Trainer(llmlab.build_model(tiny(tok)), lm_data, max_steps=10, run_dir=tmp_path,
                      callbacks=[Poison()], **quick())
    with pytest.raises(TrainingError, match="at step 4. Try a lower learning rate"):
        trainer.fit()
    assert llmlab.runs.list(tmp_path)["status"][0] == "failed"


def test_masked_lm_objective(tok, tmp_path):
    data = MaskedLMData.from_text(TEXT, tok, seq_len=32)
    model = llmlab.build_model(tiny(tok, family="bert"), seed=0)
    run = Trainer(model, data, max_steps=30, run_dir=tmp_path, **quick()).fit()
    curve = losses(run)
    assert curve[-1] < curve[0] - 0.3


def sentiment(tok):
    # a learnable toy task: the label is whether the text contains "good"
    texts = [("good " if i % 2 else "bad ") + TEXT[i * 7: i * 7 + 20] for i in range(200)]
    return ClassificationData.from_texts(LabelledTexts(texts, [i % 2 for i in range(200)],
                                                       ["neg", "pos"]), tokenizer=tok, seq_len=32)


def test_classification_fine_tuning_from_a_checkpoint(tok, lm_data, tmp_path):
    pre = Trainer(llmlab.build_model(tiny(tok, dropout=0.0)), lm_data, max_steps=10,
                  run_dir=tmp_path, **quick()).fit()
    with pytest.warns(UserWarning, match="new, randomly initialised head"):
        clf, _ = llmlab.load(pre.latest_checkpoint() / "model", n_labels=2)
    run = Trainer(clf.train(), sentiment(tok), max_steps=60, run_dir=tmp_path,
                  **quick(eval_interval=60, eval_batches=4)).fit()
    assert run.metrics["val/accuracy"].drop_nulls()[-1] >= 0.9


def test_classification_fine_tuning_from_hugging_face(tok, tmp_path):
    import transformers
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=tok.vocab_size, n_positions=32, n_embd=32, n_layer=2, n_head=2))
    hf.save_pretrained(tmp_path / "hf")
    with pytest.warns(UserWarning):
        clf, _ = llmlab.load(tmp_path / "hf", n_labels=2)
    run = Trainer(clf.train(), sentiment(tok), max_steps=60, run_dir=tmp_path / "runs",
                  **quick(eval_interval=60, eval_batches=4)).fit()
    assert run.metrics["val/accuracy"].drop_nulls()[-1] >= 0.9


def test_bad_inputs(tok, lm_data, tmp_path):
    model = llmlab.build_model(tiny(tok))
    with pytest.raises(ConfigError, match="lr=0 must be a positive number"):
        Trainer(model, lm_data, lr=0, run_dir=tmp_path)
    small = CausalLMData.from_text(TEXT[:400], tok, seq_len=32)
    with pytest.raises(ConfigError, match="larger than the 328 training examples"):
        Trainer(model, small, batch_size=512, run_dir=tmp_path)
    long = CausalLMData.from_text(TEXT, tok, seq_len=64)
    with pytest.raises(ConfigError, match="seq_len=64 is longer than the model's context_length=32"):
        Trainer(model, long, run_dir=tmp_path)
    with pytest.raises(ConfigError, match="MaskedLMData trains a bert"):
        Trainer(model, MaskedLMData.from_text(TEXT, tok, seq_len=32), run_dir=tmp_path)
    with pytest.raises(ConfigError, match="did you mean 'max_steps'"):
        Trainer(model, lm_data, max_step=3, run_dir=tmp_path)
    with pytest.raises(ConfigError, match="divisible by grad_accum_steps"):
        TrainConfig(batch_size=10, grad_accum_steps=3)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(Exception, match="a-file"):
        Trainer(model, lm_data, run_dir=blocker, max_steps=2, **quick()).fit()


def test_learning_rate_schedule():
    cfg = TrainConfig(max_steps=100, lr=1.0, warmup_steps=10, min_lr=0.1)
    assert lr_at(cfg, 0) == pytest.approx(0.1) and lr_at(cfg, 9) == pytest.approx(1.0)
    assert lr_at(cfg, 100) == pytest.approx(0.1)
    values = [lr_at(cfg, s) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    assert lr_at(cfg.replace(decay="constant"), 50) == 1.0


def test_gradient_accumulation_matches_a_full_batch(tok, lm_data, tmp_path):
    whole = Trainer(llmlab.build_model(tiny(tok, dropout=0.0), seed=0), lm_data, max_steps=5,
                    run_dir=tmp_path, **quick()).fit()
    split = Trainer(llmlab.build_model(tiny(tok, dropout=0.0), seed=0), lm_data, max_steps=5,
                    run_dir=tmp_path, grad_accum_steps=4, **quick()).fit()
    assert losses(split) == pytest.approx(losses(whole), abs=1e-4)


def write_spec(path, run_dir, **train):
    spec = {"model": {"preset": "baby-char", "n_layer": 2, "d_model": 32, "n_head": 2,
                      "context_length": 32},
            "data": {"kind": "causal_lm", "source": str(SHARED / "tinyshakespeare.txt"),
                     "seq_len": 32},
            "train": {"max_steps": 8, "batch_size": 8, "lr": 3e-3, "eval_interval": 4,
                      "eval_batches": 2, "cpu": True, **train},
            "run_dir": str(run_dir)}
    path.write_text(json.dumps(spec))
    return path


def test_two_processes_match_one_process_and_resume_on_the_other_count(tmp_path):
    """Every process draws the same batch and trains on its rows, so 2 processes train as 1
    does; and a checkpoint saved by one count resumes exactly on the other (the model and
    optimizer state are whole; accelerate restores each process's RNG state it finds)."""
    # on CPUs, accelerate's torchrun launcher (--multi_gpu) starts the processes and
    # Accelerator(cpu=True) (spec "cpu": true) joins them in a gloo group; --cpu alone runs one
    launchers = {1: ["--cpu", "--num_processes", "1"], 2: ["--multi_gpu", "--num_processes", "2"]}

    def train(processes, store, max_steps, resume=None):
        spec = write_spec(tmp_path / f"{store}-{max_steps}.json", tmp_path / store,
                          max_steps=max_steps, checkpoint_interval=4)
        extra = ["--resume", resume] if resume else []
        done = subprocess.run([sys.executable, "-m", "accelerate.commands.launch",
                               *launchers[processes], "-m", "llmlab.train", str(spec),
                               "--no-progress", *extra],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        runs = llmlab.runs.list(tmp_path / store)
        assert runs.height == 1  # only the main process of the 2-process job wrote a run
        return llmlab.runs.get(runs["id"][0], tmp_path / store)

    single, double = train(1, "one", 4), train(2, "two", 4)
    assert "x2" in double.manifest["device"]
    assert losses(double) == pytest.approx(losses(single), abs=2e-3)
    # each resumes to step 8 on the other count, into the same run
    to_two, to_one = train(2, "one", 8, resume=single.id), train(1, "two", 8, resume=double.id)
    assert to_two.id == single.id and to_one.id == double.id
    assert to_two.manifest["resume_exact"] and to_one.manifest["resume_exact"]
    assert "x2" in to_two.manifest["device"] and "x1" in to_one.manifest["device"]
    assert len(losses(to_one)) == 8
    assert losses(to_one) == pytest.approx(losses(to_two), abs=2e-3)


def test_other_accelerate_trackers_receive_the_metrics(tok, lm_data, tmp_path):
    mirror = llmlab.runs.create(store=tmp_path / "mirror", name="mirror")
    run = Trainer(llmlab.build_model(tiny(tok)), lm_data, max_steps=6, run_dir=tmp_path / "runs",
                  log_with=[llmlab.runs.RunTracker(mirror)], **quick(eval_interval=3)).fit()
    mirror.flush()
    assert mirror.metrics["train/loss"].to_list() == run.metrics["train/loss"].to_list()
    assert mirror.manifest["hparams"]["max_steps"] == 6


def test_torch_compile_is_opt_in_and_trains_the_same(tok, lm_data, tmp_path):
    cfg = tiny(tok, n_layer=1, dropout=0.0)
    settings = quick(max_steps=3, eval_interval=3, eval_batches=1)
    eager = Trainer(llmlab.build_model(cfg, seed=0), lm_data, run_dir=tmp_path, **settings).fit()
    compiled = Trainer(llmlab.build_model(cfg, seed=0), lm_data, run_dir=tmp_path, compile=True,
                       **settings).fit()
    assert compiled.manifest["training"]["compile"] is True
    assert losses(compiled) == pytest.approx(losses(eager), abs=1e-4)
    model, _ = llmlab.load(compiled.latest_checkpoint() / "model")  # plain names, no wrapper
    assert model.config == cfg


def test_every_step_trains_in_training_mode_even_after_a_callback_switched_to_eval(
        tok, lm_data, tmp_path):
    """The step sets training mode only when it is off; a callback that calls eval() (a
    widget drawing a sample, say) must not leave the next steps without dropout."""

    class SamplesInEval(Callback):
        def on_step(self, trainer, step, metrics):
            trainer.model.eval()

    model = llmlab.build_model(tiny(tok), seed=0)
    modes = []
    model.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    Trainer(model, lm_data, max_steps=6, run_dir=tmp_path, callbacks=[SamplesInEval()],
            **quick(eval_interval=100, eval_batches=1)).fit()
    train_calls = modes[:6]  # six training forwards, then the closing evaluation batch
    assert train_calls == [True] * 6 and modes[6:] == [False]


def test_dropout_acts_only_in_training_mode():
    model = llmlab.build_model(ModelConfig.preset("baby-char", dropout=0.5), seed=0)
    ids = torch.zeros(1, 8, dtype=torch.long)
    torch.manual_seed(0)
    model.train()
    assert not torch.equal(model(ids).logits, model(ids).logits)  # a fresh mask each call
    model.eval()
    assert torch.equal(model(ids).logits, model(ids).logits)
