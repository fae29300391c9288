"""The REST API of the server extension over a real run store: listing, runs, metrics,
configs, and the bad requests that must get a 4xx (never a 500 or a file outside the store)."""

from __future__ import annotations

import io
import json
from typing import Any

import polars as pl
import pytest
from tornado.httpclient import HTTPClientError

import llmlab
import llmlab.runs


@pytest.fixture
def store(tmp_path_factory) -> Any:
    path = tmp_path_factory.mktemp("store")
    cfg = llmlab.ModelConfig.preset("baby-char")
    for name, status in (("alpha", "finished"), ("beta", "failed"), ("gamma", "finished")):
        run = llmlab.runs.create(store=path, name=name, config=cfg.to_dict(), capture_git=False,
                                 tags=["Baseline"] if name == "gamma" else [])
        for step in (1, 2, 3):
            run.log_metrics({"train/loss": 3.0 - step / 10, "lr": 1e-3}, step=step)
        if status == "failed":
            run.log_metrics({"train/loss": float("nan")}, step=4)
        run.log_metrics({"val/loss": 2.5}, step=3)
        run.finish(status=status, error="boom" if status == "failed" else None)
    (path / "not-a-run").mkdir()
    (path / "secret.txt").write_text("outside any run")
    return path


@pytest.fixture
def jp_server_config(store) -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"llmlab": True}},
            "LlmlabServer": {"run_dir": str(store)}}


async def get_json(jp_fetch, *path, **params) -> Any:
    response = await jp_fetch("llmlab", "api", *path, params=params or None)
    return json.loads(response.body)


async def status_of(jp_fetch, *path, method="GET", body=None, **params) -> tuple[int, Any]:
    response = await jp_fetch("llmlab", "api", *path, method=method, body=body,
                              params=params or None, raise_error=False,
                              allow_nonstandard_methods=True)
    try:
        payload = json.loads(response.body)
    except ValueError:
        payload = None
    return response.code, payload


async def test_runs_listing_pages_and_filters(jp_fetch, store):
    listing = await get_json(jp_fetch, "runs")
    assert listing["exists"] is True
    assert listing["total"] == 3
    assert [r["name"] for r in listing["runs"]] == ["gamma", "beta", "alpha"]  # newest first
    assert "path" not in listing["runs"][0]  # no server paths leak to the browser
    page = await get_json(jp_fetch, "runs", offset="1", limit="1")
    assert [r["name"] for r in page["runs"]] == ["beta"] and page["total"] == 3
    failed = await get_json(jp_fetch, "runs", status="failed")
    assert [r["name"] for r in failed["runs"]] == ["beta"]
    found = await get_json(jp_fetch, "runs", q="alp")
    assert [r["name"] for r in found["runs"]] == ["alpha"]
    everyone = ["gamma", "beta", "alpha"]
    for text, names in (("ALP", ["alpha"]), ("baseline", ["gamma"]), ("gpt", everyone)):
        found = await get_json(jp_fetch, "runs", q=text)  # any case; name, id, tag or family
        assert [r["name"] for r in found["runs"]] == names, text


async def test_one_run_and_its_metrics_as_json_and_arrow(jp_fetch, store):
    run_id = llmlab.runs.list(store).filter(pl.col("name") == "alpha")["id"][0]
    run = await get_json(jp_fetch, "runs", run_id)
    assert run["manifest"]["name"] == "alpha" and run["status"] == "finished"
    metrics = await get_json(jp_fetch, "runs", run_id, "metrics")
    assert metrics["columns"]["step"] == [1, 2, 3]
    assert metrics["columns"]["val/loss"] == [None, None, 2.5]
    some = await get_json(jp_fetch, "runs", run_id, "metrics", names="lr")
    assert set(some["columns"]) == {"step", "lr"}
    response = await jp_fetch("llmlab", "api", "runs", run_id, "metrics",
                              params={"format": "arrow"})
    assert response.headers["Content-Type"] == "application/vnd.apache.arrow.file"
    frame = pl.read_ipc(io.BytesIO(response.body))
    assert frame["train/loss"].to_list() == pytest.approx([2.9, 2.8, 2.7])


@pytest.mark.parametrize("bad_id", ["nope", "..", "..%2F..%2Fsecret.txt", "not-a-run",
                                    "20991231-000000-ffffff", "%2e%2e"])
async def test_unknown_and_traversing_run_ids_get_404(jp_fetch, bad_id):
    code, payload = await status_of(jp_fetch, "runs", bad_id)
    assert code == 404, payload
    assert "run" in payload["message"]
    code, _ = await status_of(jp_fetch, "runs", bad_id, "metrics")
    assert code == 404


async def test_diverged_metrics_arrive_as_strict_json(jp_fetch, store):
    run_id = llmlab.runs.list(store).filter(pl.col("name") == "beta")["id"][0]
    response = await jp_fetch("llmlab", "api", "runs", run_id, "metrics")
    assert b"NaN" not in response.body
    assert json.loads(response.body)["columns"]["train/loss"][-1] is None


async def test_bad_query_arguments_get_400(jp_fetch, store):
    assert (await status_of(jp_fetch, "runs", limit="lots"))[0] == 400
    assert (await status_of(jp_fetch, "runs", limit="0"))[0] == 400
    run_id = llmlab.runs.list(store)["id"][0]
    code, payload = await status_of(jp_fetch, "runs", run_id, "metrics", format="xml")
    assert code == 400 and "arrow" in payload["message"]


async def test_presets_schema_and_estimates(jp_fetch):
    presets = await get_json(jp_fetch, "configs", "presets")
    assert presets["baby-char"]["n_layer"] == 4
    schema = await get_json(jp_fetch, "configs", "schema")
    assert schema["properties"]["family"]["enum"] == ["gpt", "bert", "seq2seq"]
    body = json.dumps({"config": presets["baby-char"], "batch_size": 12, "seq_len": 64})
    response = await jp_fetch("llmlab", "api", "configs", "estimate", method="POST", body=body)
    estimate = json.loads(response.body)
    assert estimate["estimate"]["params"] == 804096
    assert "parameters" in estimate["text"]


@pytest.mark.parametrize("body, needle", [
    ("{not json", "not valid JSON"),
    (json.dumps({"config": {"d_model": 100, "n_head": 12}}), "divisible by n_head"),
    (json.dumps({"config": {"n_layers": 2}}), "did you mean 'n_layer'"),
    (json.dumps({"config": {}, "seq_len": 99999}), "context_length"),
    (json.dumps([1, 2]), "send"),
])
async def test_invalid_estimate_requests_say_what_is_wrong(jp_fetch, body, needle):
    code, payload = await status_of(jp_fetch, "configs", "estimate", method="POST", body=body)
    assert code == 400 and needle in payload["message"]


@pytest.mark.parametrize("body, field, related", [
    ({"config": {"d_model": 100, "n_head": 12}}, "d_model", ["n_head"]),
    ({"config": {"family": "rnn"}}, "family", []),
    ({"config": {"n_layers": 2}}, "n_layers", []),
    ({"config": {}, "seq_len": 99999}, "seq_len", ["context_length"]),
    ({"config": {}, "batch_size": 0}, "batch_size", []),
    ({"config": {}, "dtype": 16}, "dtype", []),
    ({"config": {}, "dtype": "float8"}, "dtype", []),
])
async def test_a_refused_config_names_its_field(jp_fetch, body, field, related):
    """The 400 keeps the human message and adds errors: [{field, message, related}]."""
    code, payload = await status_of(jp_fetch, "configs", "estimate", method="POST",
                                    body=json.dumps(body))
    assert code == 400 and payload["status"] == 400
    assert payload["errors"] == [{"field": field, "message": payload["message"],
                                  "related": related}]
    assert field in payload["message"]


async def test_a_form_check_answers_an_invalid_config_without_an_error_status(jp_fetch):
    """check: true (the config form validating as the user types): 200 with valid false and
    the same message and errors as the 400 (a browser logs every 400 as a console error)."""
    bad = {"config": {"d_model": 100, "n_head": 12}}
    code, refused = await status_of(jp_fetch, "configs", "estimate", method="POST",
                                    body=json.dumps(bad))
    response = await jp_fetch("llmlab", "api", "configs", "estimate", method="POST",
                              body=json.dumps({**bad, "check": True}))
    checked = json.loads(response.body)
    assert code == 400 and response.code == 200
    assert checked == {"valid": False, **refused}
    response = await jp_fetch("llmlab", "api", "configs", "estimate", method="POST",
                              body=json.dumps({"config": {}, "check": True}))
    ok = json.loads(response.body)
    assert ok["valid"] is True and ok["estimate"]["params"] > 0
    for body in ([1, 2], {"config": {}, "check": "yes"}):  # not a form's question: still 400
        code, _ = await status_of(jp_fetch, "configs", "estimate", method="POST",
                                  body=json.dumps(body))
        assert code == 400


async def test_a_refusal_about_no_field_has_no_errors(jp_fetch):
    code, payload = await status_of(jp_fetch, "configs", "estimate", method="POST",
                                    body=json.dumps([1, 2]))
    assert code == 400 and "send" in payload["message"] and "errors" not in payload


async def test_an_unsaveable_config_names_its_field(jp_fetch, store):
    cfg = {**llmlab.ModelConfig.preset("baby-char").to_dict(), "n_kv_head": 3}
    code, payload = await status_of(jp_fetch, "configs", "saved", "gqa", method="PUT",
                                    body=json.dumps(cfg))
    assert code == 400 and "must divide n_head=4" in payload["message"]
    assert payload["errors"] == [{"field": "n_kv_head", "message": payload["message"],
                                  "related": ["n_head"]}]


async def test_routes_are_served_as_declared(jp_fetch):
    from llmlab.server.handlers import ROUTES

    reply = await get_json(jp_fetch, "routes")
    assert reply["prefix"] == "llmlab/api"
    assert reply["routes"] == [route.to_dict() for route in ROUTES]
    estimate = next(r for r in reply["routes"] if r["path"] == "configs/estimate")
    assert estimate == {"method": "POST", "path": "configs/estimate", "summary": estimate[
        "summary"], "query": [], "body": "IEstimateRequest", "reply": "IEstimateReply",
        "client": True}
    assert {(r["method"], r["path"]) for r in reply["routes"]} >= {
        ("GET", "runs/{id}/metrics"), ("PUT", "configs/saved/{name}"), ("GET", "routes")}


async def test_save_and_list_configs(jp_fetch, store):
    cfg = llmlab.ModelConfig.preset("baby-char", n_layer=2).to_dict()
    response = await jp_fetch("llmlab", "api", "configs", "saved", "tiny-2",
                              method="PUT", body=json.dumps(cfg))
    assert response.code == 200
    assert llmlab.ModelConfig.from_json(store / "configs" / "tiny-2.json").n_layer == 2
    saved = await get_json(jp_fetch, "configs", "saved")
    assert saved["tiny-2"]["n_layer"] == 2
    assert (await get_json(jp_fetch, "configs", "saved", "tiny-2"))["n_layer"] == 2
    assert llmlab.runs.list(store).height == 3  # the configs folder is not a run


@pytest.mark.parametrize("name", ["..", ".hidden", "a" * 65, "sp ace", "%2e%2e"])
async def test_config_names_cannot_leave_the_store(jp_fetch, store, name):
    cfg = json.dumps(llmlab.ModelConfig.preset("baby-char").to_dict())
    code, _ = await status_of(jp_fetch, "configs", "saved", name, method="PUT", body=cfg)
    assert code in (400, 404)
    assert not any(p.name.startswith("..") for p in store.parent.iterdir())


async def test_invalid_config_is_not_saved(jp_fetch, store):
    code, payload = await status_of(jp_fetch, "configs", "saved", "bad", method="PUT",
                                    body=json.dumps({"family": "rnn"}))
    assert code == 400 and "family" in payload["message"]
    assert not (store / "configs" / "bad.json").exists()


async def test_missing_saved_config_is_404(jp_fetch):
    assert (await status_of(jp_fetch, "configs", "saved", "ghost"))[0] == 404


async def test_empty_store_lists_nothing(jp_fetch, store, tmp_path, jp_serverapp):
    jp_serverapp.web_app.settings["llmlab_store"] = tmp_path / "empty"
    listing = await get_json(jp_fetch, "runs")
    assert listing["total"] == 0 and listing["runs"] == []
    with pytest.raises(HTTPClientError):
        await jp_fetch("llmlab", "api", "runs", "x", "y", "z")


async def test_plotly_bundle_is_the_servers_plotly_widget_bundle(jp_fetch):
    import plotly

    from llmlab.widgets.plotly_widget import _widget_class

    response = await jp_fetch("llmlab", "api", "plotly", "bundle")
    assert response.headers["X-Llmlab-Version"] == plotly.__version__
    assert response.headers["Content-Type"].startswith("text/javascript")
    # the very bytes a chart of this environment's kernel would send
    assert response.body == _widget_class()._plotly_bundle.default_value


async def test_plotly_bundle_without_plotly_is_a_404_that_says_so(jp_fetch, monkeypatch):
    from llmlab.widgets import plotly_widget

    monkeypatch.setattr(plotly_widget, "installed_bundle", lambda: None)
    code, payload = await status_of(jp_fetch, "plotly", "bundle")
    assert code == 404 and "pip install plotly" in payload["message"]
