"""Training checkpoints: sealed with checksums, checked before a resume, passed over when
damaged (with a warning naming both), exact or saying it is not, tidy after a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import llmlab
from llmlab import ModelConfig, Trainer
from llmlab.data import CausalLMData
from llmlab.errors import CheckpointError
from llmlab.runs import RunStore, RunStoreWarning
from llmlab.runs.checkpoints import check
from llmlab.train import Callback, TrainingError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TEXT = (SHARED / "tinyshakespeare.txt").read_text()[:20_000]
SETTINGS = dict(batch_size=4, lr=3e-3, eval_interval=2, eval_batches=1, progress=False,
                checkpoint_interval=2, keep_checkpoints=3, seed=5)


class StopAt(Callback):
    def __init__(self, at):
        self.at = at

    def on_step(self, trainer, step, metrics):
        if step == self.at:
            trainer.stop()


@pytest.fixture(scope="module")
def data():
    return CausalLMData.from_text(TEXT, llmlab.CharTokenizer.train(TEXT), seq_len=16)


def model(data):
    cfg = ModelConfig(vocab_size=data.tokenizer.vocab_size, context_length=16, n_layer=1,
                      n_head=2, d_model=16, dropout=0.1)
    return llmlab.build_model(cfg, seed=0)


def losses(run):
    return run.metrics.drop_nulls("train/loss")["train/loss"].to_list()


@pytest.fixture
def stopped(data, tmp_path):
    """A run stopped at step 6 with checkpoints at 2, 4 and 6."""
    run = Trainer(model(data), data, max_steps=8, run_dir=tmp_path, callbacks=[StopAt(6)],
                  **SETTINGS).fit()
    assert [step for step, _ in run.checkpoints()] == [2, 4, 6]
    return run


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory):
    return losses(Trainer(model(data), data, max_steps=8,
                          run_dir=tmp_path_factory.mktemp("straight"), **SETTINGS).fit())


def resume(data, run, **options):
    return Trainer(model(data), data, max_steps=8, run_dir=run.store.path,
                   **SETTINGS).fit(resume_from=run.id, **options)


def test_complete_lists_every_file_with_its_checksum(stopped):
    from llmlab._files import sha256_file

    folder = stopped.latest_checkpoint()
    marker = json.loads((folder / "COMPLETE").read_text())
    assert marker["step"] == 6 and marker["time"]
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*")
               if p.is_file() and p.name != "COMPLETE"}
    assert set(marker["files"]) == on_disk
    assert "accelerate/random_states_0.pkl" in on_disk and "model/model.safetensors" in on_disk
    assert all(sha256_file(folder / n) == d for n, d in marker["files"].items())
    assert check(folder).intact


@pytest.mark.parametrize("damage", ["truncate weights", "garbage optimizer", "bad state json",
                                    "missing weights"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous(data, stopped, straight,
                                                                damage):
    latest = stopped.latest_checkpoint()
    if damage == "truncate weights":
        path = latest / "model" / "model.safetensors"
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "garbage optimizer":
        next(latest.glob("accelerate/optimizer*")).write_bytes(b"\x00garbage")
    elif damage == "bad state json":
        (latest / "trainer_state.json").write_text("{not json")
    else:
        (latest / "model" / "model.safetensors").unlink()
    with pytest.warns(RunStoreWarning, match="from step-00000004.*passed over step-00000006"):
        run = resume(data, stopped)
    assert run.status == "finished" and losses(run) == straight


def test_an_empty_folder_marked_complete_is_passed_over(data, stopped, straight):
    empty = stopped.checkpoint_dir(7)
    empty.mkdir()
    (empty / "COMPLETE").write_text(json.dumps({"step": 7, "time": "x", "files": {}}))
    with pytest.warns(RunStoreWarning, match="passed over step-00000007 .*empty"):
        run = resume(data, stopped)
    assert losses(run) == straight


def test_no_usable_checkpoint_names_each_and_the_fix(data, stopped):
    for _, folder in stopped.checkpoints():
        (folder / "COMPLETE").write_text("{oops")
    with pytest.raises(TrainingError) as err:
        resume(data, stopped)
    message = str(err.value)
    assert all(f"step-0000000{n}" in message for n in (2, 4, 6))
    assert "not valid JSON" in message and "Start a new run" in message


def test_lost_rng_state_stops_the_resume_unless_inexact_is_asked_for(data, stopped):
    for _, folder in stopped.checkpoints():
        (folder / "accelerate" / "random_states_0.pkl").unlink()
    with pytest.raises(TrainingError, match="random_states_0.pkl is missing.*exact=False"):
        resume(data, stopped)
    with pytest.warns(UserWarning, match="resuming inexactly from step-00000006"):
        run = resume(data, stopped, exact=False)
    assert run.status == "finished" and run.manifest["resume_exact"] is False
    assert run.metrics["step"].to_list() == list(range(1, 9))


def test_an_exact_resume_is_recorded_as_exact(data, stopped):
    assert resume(data, stopped).manifest["resume_exact"] is True


def test_a_checkpoint_of_an_older_llmlab_still_resumes(data, stopped, straight):
    (stopped.latest_checkpoint() / "COMPLETE").write_text("6")
    assert check(stopped.latest_checkpoint()).intact
    assert losses(resume(data, stopped)) == straight


def test_leftovers_of_a_dead_writer_go_when_the_run_is_reopened(stopped):
    checkpoints = stopped.path / "checkpoints"
    (checkpoints / "step-00000008.partial" / "accelerate").mkdir(parents=True)
    (checkpoints / ".step-00000002.deleting").mkdir()
    reopened = RunStore(stopped.store.path).get(stopped.id).reopen()
    names = sorted(p.name for p in checkpoints.iterdir())
    assert names == ["step-00000002", "step-00000004", "step-00000006"]
    reopened.finish("interrupted")


def test_pruning_keeps_the_last_k_and_leaves_nothing_half_deleted(data, tmp_path):
    run = Trainer(model(data), data, max_steps=8, run_dir=tmp_path,
                  **{**SETTINGS, "keep_checkpoints": 2}).fit()
    assert sorted(p.name for p in (run.path / "checkpoints").iterdir()) == [
        "step-00000006", "step-00000008"]


@pytest.mark.parametrize("version", ["2", 1.5, True, -1])
def test_a_format_version_of_the_wrong_type_is_a_clear_error(data, tmp_path, version):
    folder = llmlab.save(model(data), tmp_path / "saved")
    config = json.loads((folder / "config.json").read_text())
    config["format_version"] = version
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="format_version.*whole number"):
        llmlab.load(folder)
