"""The run store against damage and hostile input: fuzzed parts and manifests read in a
subprocess (no death, no silently different value), junk entries in the store, the writer lock,
legacy (format 1) runs and a dead writer's leftovers."""

import json
import os
import socket
import subprocess
import sys
import threading
import warnings

import pytest

from llmlab.runs import RunLockedError, RunStore, RunStoreWarning
from llmlab.runs.manifest import manifest_checksum, read_manifest

MUTATIONS_PER_FILE = 1500
RUN_ID = "20261123-071800-3f9a2c"


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


def three_part_run(store):
    """A finished run with three metric parts (steps 0-2, 3-5, 6-8) and one sample part."""
    run = store.create(name="fuzzed", capture_git=False, auto_flush_seconds=None, tags=["t"])
    run.compact_every = 0
    for step in range(9):
        run.log_metrics({"train/loss": 3.0 - step / 10, "lr": 1e-3}, step=step)
        if step % 3 == 2:
            run.flush()
    run.log_sample(8, "To be", " or not")
    run.finish()  # compacts metrics into one range file ...
    for step in range(9, 12):  # ... and two more parts follow it, as after a resume
        run.log_metrics({"train/loss": 2.0}, step=step)
        run.flush()
    return run


FUZZ_READER = r"""
import json, random, sys, warnings
from pathlib import Path
from llmlab.runs import RunStore, RunStoreWarning

store_path, run_id, target, seed, count = sys.argv[1:6]
store = RunStore(store_path)
target = Path(target)
original = target.read_bytes()
rng = random.Random(int(seed))

def snapshot():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = store.list().drop("updated_at").to_dicts()
        run = store.get(run_id)
        metrics = run.metrics_long.select("step", "name", "value").rows()
        samples = run.samples.select("step", "text").rows()
    return rows, metrics, samples, [str(w.message) for w in caught
                                    if issubclass(w.category, RunStoreWarning)]

def mutate(data):
    kind = rng.choice(["flip", "flip", "truncate", "splice"])
    if kind == "flip":
        i = rng.randrange(len(data))
        return kind, data[:i] + bytes([data[i] ^ rng.randrange(1, 256)]) + data[i + 1:]
    if kind == "truncate":
        return kind, data[:rng.randrange(len(data))]
    i, j = sorted(rng.randrange(len(data) + 1) for _ in range(2))
    junk = rng.choice([data[j:i + 64], bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))])
    return kind, data[:i] + junk + data[j:]

print(json.dumps({"baseline": snapshot()}), flush=True)
for n in range(int(count)):
    kind, data = mutate(original)
    target.write_bytes(data)
    print(json.dumps({"n": n, "kind": kind, "same": data == original, "read": snapshot()}),
          flush=True)
target.write_bytes(original)
"""


def fuzz(store, run, target, seed):
    """Mutate ``target`` MUTATIONS_PER_FILE times in a subprocess that reads the run after each."""
    args = map(str, (store.path, run.id, target, seed, MUTATIONS_PER_FILE))
    done = subprocess.run([sys.executable, "-c", FUZZ_READER, *args], capture_output=True,
                          text=True, timeout=600)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0, f"reader died ({done.returncode}) after {lines[-1:]}: " \
                                 f"{done.stderr[-2000:]}"
    assert len(lines) == MUTATIONS_PER_FILE + 1
    return lines[0]["baseline"], lines[1:]


def test_fuzzed_metric_parts_read_right_or_are_skipped_with_a_warning(store):
    run = three_part_run(store)
    folder = run.path / "metrics"
    singles = sorted(p for p in folder.iterdir() if p.name.count("-") == 1)
    (rows, metrics, samples, warned), results = fuzz(store, run, singles[0], seed=1)
    assert not warned and len(metrics) == 2 * 9 + 3
    without_part = metrics[:18] + metrics[19:]  # the first of the two trailing parts: step 9
    skipped = 0
    for result in results:
        got_rows, got_metrics, got_samples, got_warned = result["read"]
        assert (got_rows, got_samples) == (rows, samples), result["kind"]
        if got_metrics == metrics and not got_warned:
            continue
        assert got_metrics == without_part and len(got_warned) == 1, result
        assert singles[0].name in got_warned[0] and not result["same"]
        skipped += 1
    assert skipped > MUTATIONS_PER_FILE * 0.9  # almost every mutation changes the file


def test_fuzzed_range_part_and_manifest_never_read_as_other_values(store):
    run = three_part_run(store)
    (ranged,) = [p for p in (run.path / "metrics").iterdir() if p.name.count("-") == 2]
    (rows, metrics, samples, _), results = fuzz(store, run, ranged, seed=2)
    for result in results:
        got_rows, got_metrics, _, got_warned = result["read"]
        assert got_metrics in (metrics, metrics[18:]) and got_rows == rows
        assert (got_metrics == metrics) == (not got_warned)

    (rows, metrics, samples, _), results = fuzz(store, run, run.path / "manifest.json", seed=3)
    corrupt = 0
    for result in results:
        (got_row,), got_metrics, got_samples, _ = result["read"]
        assert (got_metrics, got_samples) == (metrics, samples)  # parts check themselves
        if got_row != rows[0]:
            assert got_row["status"] == "corrupt" and got_row["error"], got_row
            assert got_row["id"] == run.id and got_row["path"] == rows[0]["path"]
            corrupt += 1
    assert corrupt > MUTATIONS_PER_FILE * 0.5  # whitespace flips may keep the manifest valid


def write_raw_manifest(folder, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(text, encoding="utf-8")


def valid_manifest_text(store, **fields):
    """JSON text of a valid manifest with ``fields`` changed (checksum recomputed)."""
    run = store.create(capture_git=False)
    manifest = {**read_manifest(run.path), **fields}
    run.finish()
    store.delete(run.id)
    body = {**manifest, "checksum": manifest_checksum(manifest)}
    return json.dumps(body, ensure_ascii=True)


def list_in_thread(store, timeout=20):
    """``store.list()`` run in a thread: a blocking read fails the test instead of hanging it."""
    result = {}
    worker = threading.Thread(target=lambda: result.update(table=store.list()), daemon=True)
    worker.start()
    worker.join(timeout)
    assert not worker.is_alive(), "store.list() blocked"
    return result["table"]


def fill_with_junk(store):
    """A good run beside every kind of junk named like a run; returns (good run, {id: reason}
    of the entries that must list as corrupt, {id: expected row values} of the odd ones)."""
    good = store.create(name="good", capture_git=False)
    ids = iter(f"20261123-0718{n:02d}-3f9a2c" for n in range(10, 60))
    junk = {}
    loop = store.path / next(ids)
    os.symlink(loop.name, loop)  # a link to itself: ELOOP
    junk[loop.name] = "Too many levels of symbolic links"
    deep = store.path / next(ids)
    write_raw_manifest(deep, "[" * 100_000)
    junk[deep.name] = "nests too deeply"
    fifo = store.path / next(ids)
    fifo.mkdir()
    os.mkfifo(fifo / "manifest.json")
    junk[fifo.name] = "not a regular file (a FIFO)"
    folder_manifest = store.path / next(ids)
    (folder_manifest / "manifest.json").mkdir(parents=True)
    junk[folder_manifest.name] = "manifest.json"
    binary = store.path / next(ids)
    write_raw_manifest(binary, "")
    (binary / "manifest.json").write_bytes(b"\xff\xfe{}")
    junk[binary.name] = "not valid JSON"
    empty = store.path / next(ids)
    empty.mkdir()
    junk[empty.name] = "missing"
    odd = {}
    surrogate = store.path / next(ids)
    write_raw_manifest(surrogate, valid_manifest_text(store, id=surrogate.name, name="bad\udc80"))
    odd[surrogate.name] = {"name": "bad?"}
    pid_text = store.path / next(ids)
    write_raw_manifest(pid_text, valid_manifest_text(
        store, id=pid_text.name, pid="123", host=socket.gethostname(), status="running"))
    odd[pid_text.name] = {"status": "interrupted"}  # no process id, so no live writer
    tags_text = store.path / next(ids)
    write_raw_manifest(tags_text, valid_manifest_text(store, id=tags_text.name, tags="abc"))
    odd[tags_text.name] = {"tags": ["abc"]}
    return good, junk, odd


def check_junk_rows(rows, good_id, junk, odd):
    assert set(rows) == {good_id, *junk, *odd}
    for run_id, reason in junk.items():
        assert rows[run_id]["status"] == "corrupt" and reason in rows[run_id]["error"], run_id
    assert rows[good_id]["status"] == "running"
    for run_id, values in odd.items():
        assert {k: rows[run_id][k] for k in values} == values


def test_a_folder_of_junk_is_listed_row_by_row(store):
    good, junk, odd = fill_with_junk(store)
    table = list_in_thread(store)
    check_junk_rows({row["id"]: row for row in table.iter_rows(named=True)}, good.id, junk, odd)
    fifo_id = next(i for i, reason in junk.items() if "FIFO" in reason)
    with pytest.raises(Exception, match="not a regular file"):
        _ = store.get(fifo_id).manifest


@pytest.fixture
def junk_store(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("junk") / "runs")
    return store, *fill_with_junk(store)


@pytest.fixture
def jp_server_config(junk_store):
    return {"ServerApp": {"jpserver_extensions": {"llmlab": True}},
            "LlmlabServer": {"run_dir": str(junk_store[0].path)}}


async def test_rest_lists_a_store_of_junk_with_200_and_a_row_each(jp_fetch, junk_store):
    store, good, junk, odd = junk_store
    good.log_metrics({"train/loss": 1.5}, step=1)
    good.flush()
    response = await jp_fetch("llmlab", "api", "runs", params={"limit": "100"})
    assert response.code == 200
    rows = {row["id"]: row for row in json.loads(response.body)["runs"]}
    check_junk_rows(rows, good.id, junk, odd)
    metrics = await jp_fetch("llmlab", "api", "runs", good.id, "metrics")
    assert metrics.code == 200
    version = await jp_fetch("llmlab", "api", "version")
    assert version.code == 200


def test_a_fifo_named_like_a_part_is_skipped_without_blocking(store):
    run = store.create(capture_git=False, auto_flush_seconds=None)
    run.log_metrics({"a": 1.0}, step=1)
    run.flush()
    os.mkfifo(run.path / "metrics" / "part-00000002.0123456789abcdef.arrow")
    result = {}

    def read():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result.update(rows=store.get(run.id).metrics.rows(), warned=[str(w.message)
                                                                         for w in caught])
    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "reading a FIFO part blocked"
    assert result["rows"] == [(1, 1.0)]
    assert any("not a regular file" in w for w in result["warned"])


HOLD_LOCK = r"""
import sys, time
from llmlab.runs import RunStore
run = RunStore(sys.argv[1]).get(sys.argv[2]).reopen()
print("holding", flush=True)
time.sleep(60)
"""


def test_one_writer_per_run_and_a_dead_writers_lock_is_taken_over(store):
    run = store.create(capture_git=False)
    with pytest.raises(RunLockedError, match=f"run {run.id} is being written by pid {os.getpid()}"):
        store.get(run.id).reopen()  # a second writer, even in the same process
    run.finish()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, store.path, run.id],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(RunLockedError, match=f"being written by pid {holder.pid}"):
            store.get(run.id).reopen()
    finally:
        holder.kill()
        holder.wait()
    assert store.get(run.id).status == "interrupted"
    reopened = store.get(run.id).reopen()  # the dead process's lock is gone with it
    assert reopened.status == "running"
    reopened.finish()


def test_reopening_removes_a_dead_writers_temp_files(store):
    run = store.create(capture_git=False, auto_flush_seconds=None)
    run.log_metrics({"a": 1.0}, step=1)
    run.finish()
    leftovers = [run.path / ".manifest.json.k3j2.tmp", run.path / "metrics" / ".part-2.arrow.x.tmp",
                 run.path / "samples" / ".part-1.arrow.y.tmp"]
    for path in leftovers:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"half")
    (run.path / "notes.tmp").write_text("a user's file, not ours")
    store.get(run.id).reopen().finish()
    assert not any(p.exists() for p in leftovers)
    assert (run.path / "notes.tmp").exists()


def test_format_1_runs_read_their_unsummed_parts_and_format_2_runs_refuse_them(store):
    import polars as pl

    legacy = store.path / RUN_ID
    (legacy / "metrics").mkdir(parents=True)
    manifest = {"format": "llmlab-run", "format_version": 1, "id": RUN_ID, "name": "old",
                "status": "finished", "created_at": "2026-11-23T07:18:00.000Z", "tags": []}
    (legacy / "manifest.json").write_text(json.dumps(manifest))
    frame = pl.DataFrame({"step": [1], "name": ["loss"], "value": [2.5], "time": [0.0]})
    frame.write_ipc(legacy / "metrics" / "part-00000001.arrow")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunStoreWarning)
        assert store.get(RUN_ID).metrics["loss"].to_list() == [2.5]
        assert store.list()["name"].to_list() == ["old"]

    current = store.create(capture_git=False)
    (current.path / "metrics").mkdir()
    frame.write_ipc(current.path / "metrics" / "part-00000001.arrow")
    with pytest.warns(RunStoreWarning, match="no checksum in its name"):
        assert current.metrics.is_empty()
