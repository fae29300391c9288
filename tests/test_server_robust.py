"""The server over a damaged run store and hostile requests: every problem is a 4xx with a
message naming it (never a 500 or a Python error text), reads run off the event loop so a
slow or blocking file cannot stall other routes, and the handler base turns anything
unexpected into a JSON 500 without taking the server down."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from typing import Any

import pytest

import llmlab
import llmlab.runs
from llmlab.attention import inspect
from llmlab.runs import RunStore
from llmlab.server.pool import ReadPool

TEXT = "the animal didn't cross"
BAD_META = {"kinds": "abc", "created_at": 5, "sides": {"decoder": {"tokens": {}}}}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Any:
    """Runs 'good' (a readable snapshot 'ok' and damaged copies of it), 'corrupt' (a manifest
    that is not JSON), 'fifo' (a FIFO as its manifest), 'pipe-part' (a FIFO as a metrics
    part); saved configs 'fine', 'broken' (not JSON) and 'pipe' (a FIFO)."""
    path = tmp_path_factory.mktemp("store")
    cfg = llmlab.ModelConfig(family="gpt", n_layer=1, n_head=2, d_model=16,
                             context_length=32, vocab_size=32)
    tok = llmlab.CharTokenizer.train(TEXT + " .")
    good = llmlab.runs.create(store=path, name="good", config=cfg.to_dict(), capture_git=False)
    model = llmlab.build_model(cfg.replace(vocab_size=tok.vocab_size), seed=0)
    folder = inspect(model, tok, TEXT).save(good, "ok")
    meta = json.loads((folder / "snapshot.json").read_text())
    for field, value in BAD_META.items():
        damaged = folder.parent / f"bad-{field}"
        damaged.mkdir()
        (damaged / "snapshot.json").write_text(json.dumps(
            {**meta, field: value} if field != "sides" else {**meta, "sides": value}))
    good.finish()
    for name in ("corrupt", "fifo", "pipe-part"):
        run = llmlab.runs.create(store=path, name=name, capture_git=False)
        run.log_metrics({"train/loss": 1.0}, step=1)
        run.finish()
    (_run(path, "corrupt").path / "manifest.json").write_text("{not json")
    fifo = _run(path, "fifo").path / "manifest.json"
    fifo.unlink()
    os.mkfifo(fifo)
    os.mkfifo(_run(path, "pipe-part").path / "metrics" / "part-00000009.0123456789abcdef.arrow")
    configs = path / "configs"
    configs.mkdir()
    (configs / "fine.json").write_text(cfg.to_json())
    (configs / "broken.json").write_text("{\"n_layer\": ")
    os.mkfifo(configs / "pipe.json")
    return path


def _run(store_path, name: str):
    """The run named ``name`` (found by id order: manifests may be unreadable later)."""
    for run in RunStore(store_path).runs():
        if run.name == name:
            return run
    raise LookupError(name)


@pytest.fixture(scope="module")
def ids(store) -> dict[str, str]:
    found = {row["name"]: row["id"] for row in llmlab.runs.list(store).to_dicts()}
    assert {"good", "pipe-part"} <= set(found)
    return found


@pytest.fixture
def jp_server_config(store) -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"llmlab": True}},
            "LlmlabServer": {"run_dir": str(store)}}


async def call(jp_fetch, *path, method="GET", body=None, **params) -> tuple[int, Any]:
    """(status, JSON body or None), within a generous liveness bound."""
    response = await asyncio.wait_for(jp_fetch(
        "llmlab", "api", *path, method=method, body=body, params=params or None,
        raise_error=False, allow_nonstandard_methods=True), timeout=15)
    try:
        return response.code, json.loads(response.body)
    except ValueError:
        return response.code, None


def corrupt_id(store) -> str:
    return next(r["id"] for r in llmlab.runs.list(store).to_dicts()
                if r["status"] == "corrupt" and "not valid JSON" in (r["error"] or ""))


# ---------------------------------------------------------------------- damaged store
async def test_run_whose_manifest_is_not_json_gets_422_saying_why(jp_fetch, store):
    code, listing = await call(jp_fetch, "runs")
    assert code == 200 and listing["total"] == 4
    code, payload = await call(jp_fetch, "runs", corrupt_id(store))
    assert code == 422, payload
    assert "manifest.json is not valid JSON" in payload["message"]
    assert "restore or delete the run" in payload["message"]


async def test_fifo_manifest_is_refused_promptly(jp_fetch, store):
    fifo_id = next(r["id"] for r in llmlab.runs.list(store).to_dicts()
                   if "not a regular file" in (r["error"] or ""))
    code, payload = await call(jp_fetch, "runs", fifo_id)
    assert code == 422 and "not a regular file (a FIFO)" in payload["message"]


@pytest.mark.filterwarnings("ignore:skipping unreadable part")
async def test_fifo_metrics_part_is_skipped_promptly(jp_fetch, ids):
    code, payload = await call(jp_fetch, "runs", ids["pipe-part"], "metrics")
    assert code == 200, payload  # the store reads the other parts and warns about the FIFO
    assert payload["columns"]["step"] == [1]


@pytest.mark.parametrize("field", list(BAD_META))
async def test_snapshot_with_wrong_field_types_is_listed_with_its_reason(jp_fetch, ids, field):
    code, listing = await call(jp_fetch, "attention")
    assert code == 200, listing
    entries = {e["name"]: e for e in listing["snapshots"]}
    assert entries["ok"]["error"] is None and entries["ok"]["kinds"]
    error = entries[f"bad-{field}"]["error"]
    assert error and field in error and "save the capture again" in error
    code, listing = await call(jp_fetch, "runs", ids["good"], "attention")
    assert code == 200 and len(listing["snapshots"]) == 1 + len(BAD_META)
    code, payload = await call(jp_fetch, "runs", ids["good"], "attention", f"bad-{field}")
    assert code == 422 and field in payload["message"]


async def test_saved_config_that_is_not_json_or_a_fifo(jp_fetch):
    code, saved = await call(jp_fetch, "configs", "saved")
    assert code == 200 and set(saved) == {"fine"}  # the damaged ones are left out
    code, payload = await call(jp_fetch, "configs", "saved", "broken")
    assert code == 422 and "not valid JSON" in payload["message"]
    assert "Save it again" in payload["message"]
    code, payload = await call(jp_fetch, "configs", "saved", "pipe")
    assert code == 422 and "not a regular file" in payload["message"]


# ---------------------------------------------------------------------- hostile requests
DEEP = {"array": "[" * 100_000 + "]" * 100_000,
        "object": '{"a":' * 100_000 + "1" + "}" * 100_000}


@pytest.mark.parametrize("route, method", [(("configs", "estimate"), "POST"),
                                           (("configs", "saved", "x"), "PUT")])
@pytest.mark.parametrize("shape", list(DEEP))
async def test_deeply_nested_bodies_get_400(jp_fetch, store, route, method, shape):
    code, payload = await call(jp_fetch, *route, method=method, body=DEEP[shape])
    assert code == 400, payload
    assert "nests JSON" in payload["message"] and "too deeply" in payload["message"]
    assert not (store / "configs" / "x.json").exists()


async def test_integer_with_more_digits_than_python_parses_gets_400(jp_fetch):
    body = '{"config": {"d_model": ' + "9" * 5000 + "}}"
    code, payload = await call(jp_fetch, "configs", "estimate", method="POST", body=body)
    assert code == 400 and "not valid JSON" in payload["message"]


async def test_astronomical_d_model_gets_400_naming_the_bound(jp_fetch):
    body = json.dumps({"config": {"d_model": 10**400}})
    code, payload = await call(jp_fetch, "configs", "estimate", method="POST", body=body)
    assert code == 400, payload
    assert "d_model" in payload["message"] and "at most 65,536" in payload["message"]


@pytest.mark.parametrize("body, needles", [
    ({"config": {}, "dtype": ["float32"]}, ["dtype must be a string", "an array"]),
    ({"config": {}, "batch_size": [1]}, ["batch_size must be a whole number", "an array"]),
    ({"config": {}, "batch_size": True}, ["batch_size must be a whole number"]),
    ({"config": {}, "seq_len": 3.5}, ["seq_len must be a whole number", "a number"]),
    ({"config": {}, "batch_size": 10**30}, ["batch_size must be a whole number from 1"]),
    ({"config": {"family": ["gpt"]}}, ["ModelConfig.family", "Use one of"]),
    ({"config": {"n_layer": [2]}}, ["ModelConfig.n_layer must be int", "list"]),
    ({"config": {"n_layer": 2.5}}, ["ModelConfig.n_layer must be int", "float"]),
    ({"config": {"name": {"a": 1}}}, ["ModelConfig.name must be str"]),
    ({"config": {"dropout": "0.1"}}, ["ModelConfig.dropout must be float"]),
    ({"config": {"rope_theta": 1e300}}, ["rope_theta", "out of range"]),
    ({"config": {"vocab_size": 10**8}}, ["vocab_size", "at most 10,000,000"]),
])
async def test_estimate_type_errors_name_the_field(jp_fetch, body, needles):
    code, payload = await call(jp_fetch, "configs", "estimate", method="POST",
                               body=json.dumps(body))
    assert code == 400, payload
    for needle in needles:
        assert needle in payload["message"]
    assert "unhashable" not in payload["message"] and "Traceback" not in payload["message"]


# ---------------------------------------------------------------------- never blocked
@pytest.fixture
def slow_list(monkeypatch):
    """RunStore.list blocks until the test sets the returned event (or 10 s pass)."""
    release = threading.Event()
    real = RunStore.list

    def slow(self):
        release.wait(10)
        return real(self)

    monkeypatch.setattr(RunStore, "list", slow)
    yield release
    release.set()


async def test_slow_store_read_does_not_stall_other_routes(jp_fetch, slow_list):
    listing = asyncio.ensure_future(call(jp_fetch, "runs"))
    await asyncio.sleep(0.2)
    start = time.monotonic()
    code, payload = await call(jp_fetch, "version")
    assert code == 200 and payload["version"] == llmlab.__version__
    response = await jp_fetch("api", "status")
    assert response.code == 200
    assert time.monotonic() - start < 2.0
    assert not listing.done()  # the listing was in flight all along
    slow_list.set()
    code, payload = await listing
    assert code == 200 and payload["total"] == 4


async def test_overlapping_listings_share_a_read_that_started_after_them(jp_fetch, monkeypatch):
    release, calls = threading.Event(), []
    real = RunStore.list

    def counted(self):
        calls.append(1)
        release.wait(10)
        return real(self)

    monkeypatch.setattr(RunStore, "list", counted)
    first = asyncio.ensure_future(call(jp_fetch, "runs"))
    await asyncio.sleep(0.2)  # the first listing is running: the next three must not join it
    later = [asyncio.ensure_future(call(jp_fetch, "runs")) for _ in range(3)]
    await asyncio.sleep(0.2)
    release.set()
    answers = await asyncio.gather(first, *later)
    assert [code for code, _ in answers] == [200] * 4
    assert len(calls) == 2


async def test_read_longer_than_the_timeout_gets_504(jp_fetch, jp_serverapp, slow_list):
    jp_serverapp.web_app.settings["llmlab_pool"] = ReadPool(workers=2, timeout=0.5)
    code, payload = await call(jp_fetch, "runs")
    assert code == 504, payload
    assert "took longer than 0.5 s" in payload["message"]
    assert (await call(jp_fetch, "version"))[0] == 200


# ---------------------------------------------------------------------- safety net
class Panic(BaseException):
    """Like pyo3's PanicException (what a polars panic raises): not an Exception."""


@pytest.mark.parametrize("error", [RuntimeError("secret internals"), Panic("secret internals")])
async def test_unexpected_errors_in_a_read_give_a_generic_500(jp_fetch, monkeypatch, error):
    def boom(self):
        raise error

    monkeypatch.setattr(RunStore, "list", boom)
    code, payload = await call(jp_fetch, "runs")
    assert code == 500, payload
    assert "unexpected error" in payload["message"] and "server log" in payload["message"]
    assert "secret" not in payload["message"]
    assert (await call(jp_fetch, "version"))[0] == 200  # the server lives on


async def test_unexpected_base_exception_on_the_event_loop_gives_a_500(jp_fetch, monkeypatch):
    def boom(cls):
        raise Panic("secret internals")

    monkeypatch.setattr(llmlab.ModelConfig, "json_schema", classmethod(boom))
    code, payload = await call(jp_fetch, "configs", "schema")
    assert code == 500 and "unexpected error" in payload["message"]
    assert (await call(jp_fetch, "version"))[0] == 200
