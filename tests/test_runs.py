"""Tests of the run store (llmlab.runs): writing, reading, statuses, crash safety, concurrency."""

import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import polars as pl
import pytest

import llmlab.runs
from llmlab import ModelConfig
from llmlab.estimate import param_count
from llmlab.runs import (
    CHECKPOINT_COMPLETE,
    InvalidRunIdError,
    RunNotFoundError,
    RunStore,
    RunStoreError,
    RunStoreWarning,
    checkpoints,
    is_valid_run_id,
)
from llmlab.runs.manifest import git_info, write_manifest

CFG = ModelConfig(family="gpt", vocab_size=40, context_length=16, n_layer=2, n_head=2, d_model=16)
LIST_COLUMNS = ["id", "name", "kind", "status", "created_at", "updated_at", "ended_at", "family",
                "params", "steps", "train_loss", "val_loss", "tokens_per_s", "mfu", "tags", "path",
                "error"]


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


def part_names(folder):
    """Part file names without the checksum they carry: part-00000001.arrow."""
    return sorted(re.sub(r"\.[0-9a-f]{16}\.arrow$", ".arrow", p.name) for p in folder.iterdir())


def part_path(folder, name):
    """The file of part ``name`` (e.g. part-00000002.arrow), whatever its checksum."""
    pattern = re.escape(name.removesuffix(".arrow")) + r"(\.[0-9a-f]{16})?\.arrow"
    (found,) = [p for p in folder.iterdir() if re.fullmatch(pattern, p.name)]
    return found


def new_run(store, **kw):
    kw = {"capture_git": False, "auto_flush_seconds": None, **kw}
    return store.create(**kw)


def run_python(code, *args, **kw):
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


# -- writing and reading back -----------------------------------------------------------------

def test_the_list_shows_the_last_logged_throughput_and_mfu(store):
    fast = new_run(store, name="gpu")
    fast.log_metrics({"tokens_per_s": 1000.0, "mfu": 0.30}, step=1)
    fast.log_metrics({"tokens_per_s": 1200.0, "mfu": 0.36}, step=2)
    fast.finish()
    cpu = new_run(store, name="cpu")   # no peak known: tokens/s only
    cpu.log_metrics({"tokens_per_s": 80.0}, step=1)
    cpu.finish()
    rows = {r["name"]: r for r in store.list().iter_rows(named=True)}
    assert (rows["gpu"]["tokens_per_s"], rows["gpu"]["mfu"]) == (1200.0, 0.36)
    assert (rows["cpu"]["tokens_per_s"], rows["cpu"]["mfu"]) == (80.0, None)

def test_log_flush_read_back_list_and_compare(store):
    run = new_run(store, name="base", config=CFG, training={"lr": 3e-4}, seed=7,
                  data={"fingerprint": "abc"}, device="cpu", tags=["smoke"])
    run.log_metrics({"train/loss": 3.0, "lr": 0.1}, step=0)
    run.log_metrics({"train/loss": 2.5, "lr": 0.2}, step=1)
    run.flush()
    run.log_metrics({"train/loss": 2.0, "val/loss": 2.2}, step=5)
    run.log_sample(5, "To be", ", or not")
    run.flush()

    wide = run.metrics
    assert wide.columns == ["step", "train/loss", "lr", "val/loss"]
    assert wide["step"].to_list() == [0, 1, 5]
    assert wide["train/loss"].to_list() == [3.0, 2.5, 2.0]
    assert wide["lr"].to_list() == [0.1, 0.2, None]
    assert wide["val/loss"].to_list() == [None, None, 2.2]
    long = run.metrics_long
    assert long.schema == {"step": pl.Int64, "name": pl.String, "value": pl.Float64,
                           "time": pl.Float64}
    assert long.height == 6 and long["time"].min() > 1.6e9
    assert run.samples.select("step", "prompt", "text").rows() == [(5, "To be", ", or not")]
    assert len(list((run.path / "metrics").glob("part-*.arrow"))) == 2

    manifest = run.manifest
    assert manifest["summary"] == {"train/loss": 2.0, "lr": 0.2, "val/loss": 2.2}
    assert manifest["last_step"] == 5 and manifest["status"] == "running"
    assert manifest["seed"] == 7 and manifest["data"] == {"fingerprint": "abc"}
    assert manifest["versions"]["polars"] == pl.__version__ and manifest["pid"] == os.getpid()
    assert run.config == CFG

    row = store.list().row(0, named=True)
    assert row | {"created_at": None, "updated_at": None} == {
        "id": run.id, "name": "base", "kind": "train", "status": "running",
        "created_at": None, "updated_at": None, "ended_at": None, "family": "gpt",
        "params": param_count(CFG), "steps": 5, "train_loss": 2.0, "val_loss": 2.2,
        "tokens_per_s": None, "mfu": None, "tags": ["smoke"], "path": str(run.path),
        "error": None}

    other = new_run(store, name="other")
    other.log_metrics({"train/loss": 9.0}, step=0)
    other.log_metrics({"train/loss": 8.0}, step=0)  # a step logged twice keeps its last value
    other.finish()
    assert other.metrics.rows() == [(0, 8.0)]
    curves = store.compare([run.id, other.id])
    assert curves.rows() == [(run.id, 0, 3.0), (run.id, 1, 2.5), (run.id, 5, 2.0),
                             (other.id, 0, 8.0)]
    assert store.compare(other.id, "val/loss").is_empty()
    assert store.list()["id"].to_list() == [other.id, run.id]  # newest first
    assert [r.id for r in store.runs()] == [other.id, run.id]


def test_reads_include_buffered_rows_and_auto_flush_writes_parts(store):
    run = new_run(store)
    run.log_metrics({"a": 1.0}, step=1)
    assert run.metrics.rows() == [(1, 1.0)] and run.last_step == 1
    assert not (run.path / "metrics").exists()
    assert store.get(run.id).metrics.is_empty()  # another reader sees only flushed rows

    run.auto_flush_seconds = 0.0
    run.log_metrics({"a": 2.0}, step=2)
    run.log_sample(2, "p", "t")
    assert store.get(run.id).metrics["a"].to_list() == [1.0, 2.0]
    assert store.get(run.id).samples.height == 1


def test_compaction_merges_parts_without_losing_rows(store):
    run = new_run(store)
    run.compact_every = 3
    for step in range(7):
        run.log_metrics({"loss": float(step)}, step=step)
        run.flush()
    metrics = run.path / "metrics"
    assert part_names(metrics) == ["part-00000001-00000003.arrow", "part-00000004-00000006.arrow",
                                   "part-00000007.arrow"]
    assert run.metrics["loss"].to_list() == [float(s) for s in range(7)]
    # a crash between writing a range file and deleting its singles reads the same rows
    last = part_path(metrics, "part-00000007.arrow")
    (metrics / last.name.replace("00000007", "00000002")).write_bytes(last.read_bytes())
    assert run.metrics_long.height == 7
    run.finish()
    assert part_names(metrics) == ["part-00000001-00000007.arrow"]
    assert run.metrics["step"].to_list() == list(range(7))


def test_listed_params_come_from_the_manifest_count_before_the_config(store):
    built = new_run(store, name="built", config=CFG)
    pruned = new_run(store, name="pruned", config=CFG, params=1234)
    listed = dict(llmlab.runs.list(store.path).select("name", "params").rows())
    assert listed == {"built": param_count(CFG), "pruned": 1234}
    assert built.manifest["params"] is None and pruned.manifest["params"] == 1234
    for bad in (-1, 2.5, True, "12"):
        with pytest.raises(ValueError, match="run params must be a non-negative int"):
            new_run(store, params=bad)


def test_manifest_values_are_strict_json(store):
    run = new_run(store, training={"out": Path("/tmp/x"), "betas": (0.9, 0.95)})
    run.log_metrics({"train/loss": math.nan, "ok": 1.0}, step=3)
    run.flush()
    text = (run.path / "manifest.json").read_text()
    assert "NaN" not in text
    manifest = json.loads(text)
    assert manifest["training"] == {"out": "/tmp/x", "betas": [0.9, 0.95]}
    assert manifest["summary"] == {"train/loss": None, "ok": 1.0}
    assert math.isnan(run.metrics["train/loss"][0])  # the part files keep the real value


def test_bad_logging_arguments_name_the_fix(store):
    run = new_run(store)
    with pytest.raises(TypeError, match="log_sample"):
        run.log_metrics({"note": "hello"}, step=1)
    with pytest.raises(ValueError, match="other than 'step'"):
        run.log_metrics({"step": 1.0}, step=1)
    with pytest.raises(ValueError, match=">= 0"):
        run.log_metrics({"a": 1.0}, step=-1)
    with pytest.raises(TypeError, match="must be an int"):
        run.log_metrics({"a": 1.0}, step=1.5)
    with pytest.raises(TypeError, match="ModelConfig"):
        store.create(config=42, capture_git=False)
    with pytest.raises(ValueError, match="identify the run"):
        run.update_manifest(id="x")
    with pytest.raises(ValueError, match="status must be one of"):
        run.update_manifest(status="done")
    assert run.metrics_long.is_empty()


# -- statuses ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("raised", "status", "error"), [
    (None, "finished", None),
    (KeyboardInterrupt, "interrupted", "KeyboardInterrupt"),
    (ValueError("loss is NaN"), "failed", "ValueError: loss is NaN"),
])
def test_context_manager_records_how_the_run_ended(store, raised, status, error):
    def body():
        with new_run(store) as run:
            run.log_metrics({"a": 1.0}, step=1)
            if raised is not None:
                raise raised
        return run

    if raised is None:
        run = body()
    else:
        with pytest.raises(raised if isinstance(raised, type) else type(raised)):
            body()
        run = store.runs()[0]
    manifest = run.manifest
    assert (run.status, manifest["error"]) == (status, error)
    assert manifest["ended_at"] and run.metrics["a"].to_list() == [1.0]


def test_explicit_finish_and_reopen(store):
    with new_run(store) as run:
        run.finish("failed", error=RuntimeError("diverged"))
    assert (run.status, run.manifest["error"]) == ("failed", "diverged")
    run.reopen()
    assert run.status == "running" and run.manifest["ended_at"] is None
    with pytest.raises(ValueError, match="finish status"):
        run.finish("running")


def test_a_resume_supersedes_what_the_abandoned_attempt_logged_past_its_checkpoint(store):
    # a process killed at step 120 whose last checkpoint was step 100, resumed to step 110
    with new_run(store) as run:
        for step in range(1, 121):
            run.log_metrics({"train/loss": 1.0}, step=step)
        run.finish("interrupted")
    run = store.get(run.id)
    assert run.last_step == 120
    time.sleep(0.01)
    run.reopen(from_step=100)
    assert run.last_step == 100
    for step in range(101, 111):
        run.log_metrics({"train/loss": 2.0}, step=step)
    run.finish("finished")
    again = store.get(run.id)
    assert again.last_step == 110 and store.list()["steps"].to_list() == [110]
    wide = again.metrics
    assert wide["step"].to_list() == list(range(1, 111))
    assert wide["train/loss"].to_list() == [1.0] * 100 + [2.0] * 10
    assert again.metrics_long.height == 130  # the log keeps every row it was given
    assert again.manifest["resumes"][0]["step"] == 100
    with pytest.raises(ValueError, match="step must be >= 0"):
        again.reopen(from_step=-1)
    with pytest.raises(TypeError, match="step must be an int"):
        again.reopen(from_step="100")


def test_running_run_of_a_dead_or_replaced_process_reads_interrupted(store):
    run = new_run(store)
    assert run.status == "running"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run.update_manifest(pid=dead.pid)
    assert run.status == "interrupted"
    assert store.list()["status"].to_list() == ["interrupted"]
    assert run.manifest["status"] == "running"  # readers never write
    run.update_manifest(pid=os.getpid(), started_at="2000-01-01T00:00:00.000Z")
    assert run.status == "interrupted"  # our pid, but a process started after the run: reused
    run.update_manifest(host="another-host", pid=dead.pid)
    assert run.status == "running"  # cannot tell for another host


def test_sigkill_mid_write_leaves_readable_interrupted_runs(store):
    child = """
        import sys, llmlab.runs
        run = llmlab.runs.create(store=sys.argv[1], name="victim", capture_git=False,
                                 auto_flush_seconds=None)
        run.compact_every = 4
        step = 0
        while True:
            run.log_metrics({"train/loss": 1.0 / (step + 1), "lr": 0.1}, step=step)
            if step % 3 == 0:
                run.log_sample(step, "prompt", "text " * 50)
            run.flush()
            run.update_manifest(note=step)
            if step == 0:  # something is on disk: the parent may start its kill timer
                print(run.id, flush=True)
            step += 1
    """
    procs = [run_python(child, store.path) for _ in range(3)]
    ids = [p.stdout.readline().strip() for p in procs]
    assert all(is_valid_run_id(i) for i in ids), [p.stderr.read() for p in procs]
    delays = sorted(random.uniform(0.2, 0.8) for _ in procs)
    start, reads = time.monotonic(), 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunStoreWarning)  # nothing may need skipping
        for proc, delay in zip(procs, delays, strict=True):
            while time.monotonic() < start + delay:  # read while the writers flush and compact
                steps = store.get(ids[reads % 3]).metrics["step"].to_list()
                assert steps == list(range(len(steps))), "a live reader saw a gap"
                reads += 1
            proc.send_signal(signal.SIGKILL)
    for proc in procs:
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()

    with warnings.catch_warnings():
        warnings.simplefilter("error", RunStoreWarning)
        table = store.list()
        assert sorted(table["id"]) == sorted(ids)
        assert table["status"].to_list() == ["interrupted"] * 3, delays
        for run_id in ids:
            run = store.get(run_id)
            steps = run.metrics["step"].to_list()
            assert steps == list(range(len(steps))), f"gap in steps after kill at {delays}"
            last = run.manifest["last_step"]
            assert (last is None and len(steps) <= 1) or len(steps) - 2 <= last < len(steps)
            assert set(run.samples["step"].to_list()) <= set(range(0, len(steps), 3))
    assert reads > 0 and sum(len(store.get(i).metrics_long) for i in ids) > 0


# -- readers never break ----------------------------------------------------------------------

def test_corrupt_and_missing_manifests_are_listed_as_corrupt(store):
    good = new_run(store, name="good")
    garbage = new_run(store, name="garbage")
    (garbage.path / "manifest.json").write_text("{not json")
    missing = new_run(store, name="missing")
    (missing.path / "manifest.json").unlink()
    unknown = new_run(store, name="unknown")
    write_manifest(unknown.path, {**unknown.manifest, "status": "exploded"})
    newer = new_run(store, name="newer")
    write_manifest(newer.path, {**newer.manifest, "format_version": 99})
    edited = new_run(store, name="edited")
    data = json.loads((edited.path / "manifest.json").read_text())
    (edited.path / "manifest.json").write_text(json.dumps({**data, "name": "renamed"}))

    rows = {r["id"]: r for r in store.list().iter_rows(named=True)}
    assert rows[good.id]["status"] == "running"
    for run, fragment in [(garbage, "not valid JSON"), (missing, "missing"),
                          (unknown, "not one of"), (newer, "upgrade llmlab"),
                          (edited, "does not match its checksum")]:
        assert rows[run.id]["status"] == "corrupt"
        assert fragment in rows[run.id]["error"]
        assert store.get(run.id).status == "corrupt"
    with pytest.raises(RunStoreError, match="not valid JSON"):
        _ = garbage.manifest
    assert garbage.metrics.is_empty() and garbage.name == garbage.id


def test_truncated_part_is_skipped_with_a_warning(store):
    run = new_run(store)
    for step in range(3):
        run.log_metrics({"a": float(step)}, step=step)
        run.flush()
    part = part_path(run.path / "metrics", "part-00000002.arrow")
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2])
    (run.path / "metrics" / "part-00000009.arrow").write_bytes(b"")  # no checksum: foreign
    with pytest.warns(RunStoreWarning) as record:
        assert run.metrics["a"].to_list() == [0.0, 2.0]
    skipped = sorted(Path(str(w.message).split()[3]).name for w in record)
    assert skipped == [part.name, "part-00000009.arrow"]
    assert "checksum mismatch" in str(record[0].message) + str(record[1].message)


def test_temp_files_and_foreign_names_are_ignored(store):
    run = new_run(store)
    run.log_metrics({"a": 1.0}, step=1)
    run.flush()
    (run.path / "metrics" / ".part-00000002.arrow.x1y2.tmp").write_bytes(b"ARROW1 half")
    (run.path / "metrics" / "notes.txt").write_text("hi")
    (run.path / ".manifest.json.abc.tmp").write_text("{")
    (store.path / "not-a-run").mkdir()
    (store.path / ".20261123-071800-3f9a2c.0a0b.creating").mkdir()
    (store.path / "20261123-071800-aaaaaa").write_text("a file, not a folder")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunStoreWarning)
        assert store.list()["id"].to_list() == [run.id]
        assert run.metrics.rows() == [(1, 1.0)]


def test_empty_or_missing_store_lists_nothing_without_creating_it(tmp_path):
    for store in (RunStore(tmp_path), RunStore(tmp_path / "absent")):
        table = store.list()
        assert table.columns == LIST_COLUMNS and table.is_empty()
        assert table.schema["params"] == pl.Int64 and table.schema["val_loss"] == pl.Float64
        assert store.runs() == []
    assert not (tmp_path / "absent").exists()


def test_unusable_store_paths_raise_clear_errors(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(RunStoreError, match="is a file, not a folder"):
        RunStore(a_file)
    with pytest.raises(RunStoreError, match="cannot create run store folder") as info:
        RunStore(a_file / "runs").create(capture_git=False)
    assert isinstance(info.value, OSError)


def test_run_ids_are_validated(store):
    assert is_valid_run_id("20261123-071800-3f9a2c")
    for bad in ["../etc", "20261123-071800-3F9A2C", "20261123-071800-3f9a2c\n",
                "2026112३-071800-3f9a2c", "", None, "x/20261123-071800-3f9a2c"]:
        assert not is_valid_run_id(bad)
    with pytest.raises(InvalidRunIdError) as info:
        store.get("../../etc")
    assert isinstance(info.value, ValueError)
    with pytest.raises(RunNotFoundError, match="no run") as info:
        store.get("20261123-071800-3f9a2c")
    assert isinstance(info.value, FileNotFoundError)


# -- concurrency ------------------------------------------------------------------------------

def test_id_collisions_are_retried(store, monkeypatch):
    first = new_run(store)
    fresh = "20261123-071800-000001"
    ids = iter([first.id, first.id, fresh])
    monkeypatch.setattr("llmlab.runs.store.new_run_id", lambda: next(ids))
    assert new_run(store).id == fresh
    assert first.manifest["id"] == first.id
    assert sorted(p.name for p in store.path.iterdir()) == sorted([first.id, fresh])


def test_two_processes_creating_runs_at_once_never_collide(store, tmp_path):
    # Both processes draw ids from the same 256 values, so they contend for ids for real.
    child = """
        import os, random, sys, time
        import llmlab.runs, llmlab.runs.store as s
        s.new_run_id = lambda: "20261123-071800-0000" + format(random.randrange(256), "02x")
        while not os.path.exists(sys.argv[2]):
            time.sleep(0.001)
        store = llmlab.runs.RunStore(sys.argv[1])
        ids = [store.create(name=f"{sys.argv[3]}-{i}", capture_git=False).id for i in range(20)]
        print(" ".join(ids))
    """
    go = tmp_path / "go"
    procs = [run_python(child, store.path, go, name) for name in ("a", "b")]
    time.sleep(0.3)
    go.touch()
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    ids = [i for out, _ in outs for i in out.split()]
    assert len(set(ids)) == 40
    table = store.list()
    assert table.height == 40 and set(table["id"]) == set(ids)
    assert set(table["status"]) == {"interrupted"}  # the creators have exited
    names = {store.get(i).manifest["name"] for i in ids}
    assert names == {f"{p}-{i}" for p in "ab" for i in range(20)}
    assert [p.name for p in store.path.iterdir() if p.name.startswith(".")] == []


# -- checkpoints, deletion, configuration -----------------------------------------------------

def test_checkpoints_count_only_when_complete(store):
    run = new_run(store)
    assert run.checkpoint_dir(100) == run.path / "checkpoints" / "step-00000100"
    assert run.checkpoints() == [] and run.latest_checkpoint() is None
    for step in (100, 300, 200):
        run.checkpoint_dir(step).mkdir(parents=True)
    checkpoints.seal(run.checkpoint_dir(100), 100)
    (run.checkpoint_dir(200) / CHECKPOINT_COMPLETE).write_text("{}")
    (run.path / "checkpoints" / ".step-00000400.tmp").mkdir()
    assert run.checkpoints() == [(100, run.checkpoint_dir(100)), (200, run.checkpoint_dir(200))]
    assert run.latest_checkpoint() == run.checkpoint_dir(200)
    assert run.artifacts_dir == run.path / "artifacts"


def test_delete_refuses_a_live_run_unless_forced(store):
    live, done = new_run(store), new_run(store)
    done.finish()
    store.delete(done.id)
    with pytest.raises(RunStoreError, match="still running"):
        store.delete(live.id)
    store.delete(live.id, force=True)
    assert store.list().is_empty() and list(store.path.iterdir()) == []
    with pytest.raises(RunNotFoundError):
        store.delete(live.id)


def test_default_store_and_module_functions(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_RUNS_DIR", str(tmp_path / "env-runs"))
    assert RunStore().path == tmp_path / "env-runs"
    monkeypatch.delenv("LLMLAB_RUNS_DIR")
    monkeypatch.chdir(tmp_path)
    assert RunStore().path == tmp_path / "llmlab-runs"
    run = llmlab.runs.create(name="m", capture_git=False)
    run.log_metrics({"train/loss": 1.0}, step=1)
    run.finish()
    assert llmlab.runs.list()["name"].to_list() == ["m"]
    assert llmlab.runs.get(run.id).metrics.rows() == [(1, 1.0)]
    assert llmlab.runs.compare([run.id], store="llmlab-runs").height == 1
    assert llmlab.runs.runs() == [run]
    llmlab.runs.delete(run.id)
    assert llmlab.runs.list(store=tmp_path / "llmlab-runs").is_empty()


def test_git_info(tmp_path):
    assert git_info(tmp_path) is None
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "f").write_text("1")
    subprocess.run([*git, "add", "f"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "c"], cwd=tmp_path, check=True)
    (tmp_path / "untracked").write_text("u")
    info = git_info(tmp_path)
    assert len(info["commit"]) == 40 and info["dirty"] is False
    (tmp_path / "f").write_text("2")
    assert git_info(tmp_path)["dirty"] is True


# -- accelerate tracker and import cost -------------------------------------------------------

@pytest.fixture
def clean_accelerate_state():
    from accelerate.state import AcceleratorState, GradientState

    def reset():
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()

    reset()
    yield
    reset()


def test_run_tracker_with_a_real_accelerator(store, clean_accelerate_state):
    import torch
    from accelerate import Accelerator

    run = new_run(store)
    tracker = llmlab.runs.RunTracker(run)
    accelerator = Accelerator(cpu=True, log_with=[tracker])
    accelerator.init_trackers("demo", config={"lr": 0.1, "out": Path("/tmp/o")})
    accelerator.log({"a": 1.0, "note": "text", "t": torch.tensor(2.0), "val": {"acc": 0.5},
                     "flag": True}, step=1)
    accelerator.log({"a": 3.0})  # no step: the run's last step
    accelerator.end_training()
    assert accelerator.get_tracker("llmlab", unwrap=True) is run
    fresh = store.get(run.id)
    assert fresh.metrics.rows() == [(1, 3.0, 2.0, 0.5)]
    assert fresh.metrics.columns == ["step", "a", "t", "val/acc"]
    assert fresh.manifest["hparams"] == {"lr": 0.1, "out": "/tmp/o"}
    assert fresh.status == "running"  # the trainer, not the tracker, ends the run
    with pytest.raises(TypeError, match="llmlab.runs.create"):
        llmlab.runs.RunTracker("not a run")


def test_import_loads_no_heavy_modules():
    code = ("import sys, llmlab.runs; "
            "print(sorted(m for m in ('torch', 'polars', 'accelerate') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
