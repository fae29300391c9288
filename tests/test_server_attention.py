"""REST over attention snapshots in the run store: listing, metadata, thumbnails, one matrix
at a time as float16, and the requests that must get a 4xx with a message (unknown ids and
names, malformed arguments, path traversal, snapshots that cannot be read)."""

from __future__ import annotations

import json
import shutil
from typing import Any

import numpy as np
import pytest

import llmlab
import llmlab.runs
from llmlab.attention import inspect, load_snapshot

TEXT = "the animal didn't cross the street"


@pytest.fixture(scope="module")
def tok():
    return llmlab.CharTokenizer.train(TEXT + " .", special_tokens="bert")


def tiny(family: str, tok, **kw) -> Any:
    cfg = llmlab.ModelConfig(family=family, n_layer=2, n_head=4, d_model=32,
                             context_length=64, vocab_size=tok.vocab_size, **kw)
    return llmlab.build_model(cfg, seed=0)


@pytest.fixture(scope="module")
def store(tmp_path_factory, tok) -> Any:
    """Runs: 'gpt' with a full snapshot (with a logit lens) and one of heads 1 and 3 of layer 1, 'seq2seq' with
    encoder, decoder and cross attention, 'plain' with none, and broken snapshots in 'broken'."""
    path = tmp_path_factory.mktemp("store")

    def run(name: str):
        return llmlab.runs.create(store=path, name=name, capture_git=False)

    gpt = run("gpt")
    inspect(tiny("gpt", tok), tok, TEXT, logit_lens=True, top_k=3).save(gpt, "full")
    inspect(tiny("gpt", tok), tok, TEXT, layers=[1], heads=[1, 3]).save(gpt, "some")
    gpt.finish()
    s2s = run("seq2seq")
    inspect(tiny("seq2seq", tok), tok, "the animal", "didn't cross").save(s2s, "pair")
    s2s.finish()
    run("plain").finish()

    broken = run("broken")
    for name in ("newer", "older", "truncated", "half"):
        inspect(tiny("gpt", tok), tok, "the animal").save(broken, name)
    folder = broken.artifacts_dir / "attention"
    for name, version in (("newer", 99), ("older", 0)):
        meta_path = folder / name / "snapshot.json"
        meta = json.loads(meta_path.read_text())
        meta["format_version"] = version
        meta_path.write_text(json.dumps(meta))
    layer = folder / "truncated" / "decoder" / "layer-000.npz"
    layer.write_bytes(layer.read_bytes()[:100])
    (folder / "half" / "snapshot.json").unlink()  # as a save cut short leaves it
    shutil.copytree(folder / "half", folder / ".half.abcd.partial")  # hidden: never listed
    broken.finish()
    (path / "secret.txt").write_text("outside any snapshot")
    return path


@pytest.fixture
def jp_server_config(store) -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"llmlab": True}},
            "LlmlabServer": {"run_dir": str(store)}}


def run_id(store, name: str) -> str:
    runs = llmlab.runs.list(store)
    return runs.filter(runs["name"] == name)["id"][0]


async def fetch(jp_fetch, *path, **params) -> Any:
    return await jp_fetch("llmlab", "api", *path, params=params or None, raise_error=False)


async def get_json(jp_fetch, *path, **params) -> Any:
    response = await fetch(jp_fetch, *path, **params)
    assert response.code == 200, response.body
    return json.loads(response.body)


def as_matrix(response) -> np.ndarray:
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["X-Llmlab-Dtype"] == "float16"
    rows, cols = (int(n) for n in response.headers["X-Llmlab-Shape"].split(","))
    return np.frombuffer(response.body, dtype="<f2").reshape(rows, cols)


async def test_store_listing_names_every_snapshot_and_why_some_cannot_open(jp_fetch, store):
    listing = await get_json(jp_fetch, "attention")
    assert listing["store"] == str(store) and listing["exists"] is True
    found = {(e["run_name"], e["name"]): e for e in listing["snapshots"]}
    assert set(found) == {("gpt", "full"), ("gpt", "some"), ("seq2seq", "pair"),
                          ("broken", "newer"), ("broken", "older"), ("broken", "truncated"),
                          ("broken", "half")}
    full = found["gpt", "full"]
    assert full["error"] is None and full["format_version"] == 1 and full["family"] == "gpt"
    n = len(tok_tokens(store, "gpt", "full"))
    assert full["kinds"] == {"decoder": [n, n]}
    assert set(found["seq2seq", "pair"]["kinds"]) == {"encoder", "decoder", "cross"}
    assert "upgrade llmlab" in found["broken", "newer"]["error"]
    assert "older than this llmlab still reads" in found["broken", "older"]["error"]
    assert "not a complete attention snapshot" in found["broken", "half"]["error"]
    # the truncated layer is only found when it is read
    assert found["broken", "truncated"]["error"] is None

    one_run = await get_json(jp_fetch, "runs", run_id(store, "gpt"), "attention")
    assert [e["name"] for e in one_run["snapshots"]] == ["full", "some"]
    assert (await get_json(jp_fetch, "runs", run_id(store, "plain"), "attention"))[
        "snapshots"] == []


def tok_tokens(store, run_name: str, name: str) -> list[str]:
    cap = load_snapshot(llmlab.runs.get(run_id(store, run_name), store=store), name)
    return cap.sides["decoder"].tokens


async def test_metadata_describes_the_snapshot_for_the_inspector(jp_fetch, store):
    rid = run_id(store, "gpt")
    meta = await get_json(jp_fetch, "runs", rid, "attention", "some")
    cap = load_snapshot(llmlab.runs.get(rid, store=store), "some")
    assert meta["format_version"] == 1 and meta["heads"] == [1, 3] and meta["n_heads"] == 4
    assert meta["sides"]["decoder"]["tokens"] == cap.sides["decoder"].tokens
    assert meta["kinds"]["decoder"]["layers"] == [1]
    inspector = meta["inspector"]
    assert inspector["title"] == "gpt / some" and inspector["lens_side"] == ""
    (kind,) = inspector["kinds"]
    n = len(cap.sides["decoder"].tokens)
    assert kind["name"] == "decoder" and (kind["rows"], kind["cols"]) == (n, n)
    assert kind["rollout"] is False  # layer 0 is missing
    assert inspector["sides"]["decoder"]["words"] == cap.sides["decoder"].words

    full = (await get_json(jp_fetch, "runs", rid, "attention", "full"))["inspector"]
    assert full["kinds"][0]["rollout"] is True
    assert full["lens_side"] == "decoder"  # saved with its logit lens
    thumbs = await fetch(jp_fetch, "runs", rid, "attention", "full", "thumbs")
    k = full["kinds"][0]
    assert len(thumbs.body) == 2 * 4 * k["thumb_rows"] * k["thumb_cols"]
    assert thumbs.body[:16] == bytes(np.load(
        store / rid / "artifacts/attention/full/decoder/thumbs.npy").ravel()[:16])


@pytest.mark.parametrize("head, flags", [
    ("2", {}), ("mean", {}), ("max", {}), ("rollout", {}),
    ("0", {"hide_first": "1"}), ("mean", {"merge_words": "1", "hide_first": "true"}),
])
async def test_matrices_equal_what_the_widget_computes(jp_fetch, store, head, flags):
    rid = run_id(store, "gpt")
    response = await fetch(jp_fetch, "runs", rid, "attention", "full", "matrix",
                           kind="decoder", layer="1", head=head, **flags)
    assert response.code == 200, response.body
    got = as_matrix(response)
    cap = load_snapshot(llmlab.runs.get(rid, store=store), "full")
    expected = cap.matrix("decoder", 1, int(head) if head.isdigit() else head,
                          hide_first=bool(flags.get("hide_first")),
                          merge_words=bool(flags.get("merge_words"))).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.astype(np.float32), expected, atol=1e-3)


async def test_cross_attention_matrix_is_queries_by_keys(jp_fetch, store):
    rid = run_id(store, "seq2seq")
    meta = await get_json(jp_fetch, "runs", rid, "attention", "pair")
    response = await fetch(jp_fetch, "runs", rid, "attention", "pair", "matrix",
                           kind="cross", layer="0", head="1")
    assert as_matrix(response).shape == tuple(meta["kinds"]["cross"]["shape"])


async def test_lens_gives_what_the_widget_sends_at_a_position(jp_fetch, store):
    rid = run_id(store, "gpt")
    rows = await get_json(jp_fetch, "runs", rid, "attention", "full", "lens", position="4")
    cap = load_snapshot(llmlab.runs.get(rid, store=store), "full")
    widget_rows = llmlab.attention.AttentionInspector(cap).lens_message(4)
    assert rows == {k: v for k, v in widget_rows.items() if k != "type"}
    assert rows["layers"] == ["embeddings", "layer 0", "layer 1"]
    assert len(rows["tokens"]) == 3 and all(len(top) == 3 for top in rows["tokens"])
    assert rows["tokens"][-1] == [t for t, _ in cap.logit_lens().at(4)[-1][1]]


@pytest.mark.parametrize("snapshot, params, expected", [
    ("full", {}, (400, "give the token position")),
    ("full", {"position": "x"}, (400, "not an integer")),
    ("full", {"position": "-1"}, (400, "must be between")),
    ("full", {"position": "999"}, (400, "position=999 is not a token position (0 .. ")),
    ("some", {"position": "0"}, (404, "has no logit lens; save one from llmlab.inspect(")),
])
async def test_bad_lens_requests_say_what_to_fix(jp_fetch, store, snapshot, params, expected):
    code, needle = expected
    response = await fetch(jp_fetch, "runs", run_id(store, "gpt"), "attention", snapshot,
                           "lens", **params)
    assert response.code == code, response.body
    assert needle in json.loads(response.body)["message"]


@pytest.mark.parametrize("params, needle", [
    ({"kind": "encoder", "layer": "0"}, "this snapshot holds ['decoder']"),
    ({"kind": "decoder", "layer": "7"}, "layer=7 is not in this snapshot"),
    ({"kind": "decoder", "layer": "one"}, "not an integer"),
    ({"kind": "decoder"}, "give the layer"),
    ({"kind": "decoder", "layer": "1", "head": "9"}, "head=9 is not in this snapshot"),
    ({"kind": "decoder", "layer": "1", "head": "most"}, "give a head number"),
    ({"kind": "decoder", "layer": "1", "hide_first": "yes"}, "use 1 or 0"),
])
async def test_malformed_matrix_requests_get_400(jp_fetch, store, params, needle):
    response = await fetch(jp_fetch, "runs", run_id(store, "gpt"), "attention", "full",
                           "matrix", **params)
    assert response.code == 400, response.body
    assert needle in json.loads(response.body)["message"]


async def test_rollout_needs_every_layer(jp_fetch, store):
    response = await fetch(jp_fetch, "runs", run_id(store, "gpt"), "attention", "some",
                           "matrix", kind="decoder", layer="1", head="rollout")
    assert response.code == 400 and "rollout" in json.loads(response.body)["message"]


@pytest.mark.parametrize("name, code", [
    ("ghost", 404), ("..", 400), ("..%2F..%2Fsecret.txt", 400), ("%2e%2e", 400),
    (".half.abcd.partial", 400), ("-x", 400),
])
async def test_unknown_and_traversing_snapshot_names(jp_fetch, store, name, code):
    rid = run_id(store, "gpt")
    for tail in ((), ("thumbs",), ("matrix",)):
        response = await fetch(jp_fetch, "runs", rid, "attention", name, *tail,
                               kind="decoder", layer="0", head="0")
        assert response.code == code, (tail, response.body)
        assert "snapshot" in json.loads(response.body)["message"]


@pytest.mark.parametrize("bad_id", ["nope", "..", "%2e%2e", "20991231-000000-ffffff"])
async def test_unknown_run_ids_get_404(jp_fetch, bad_id):
    for tail in (("attention",), ("attention", "full"), ("attention", "full", "matrix")):
        response = await fetch(jp_fetch, "runs", bad_id, *tail, layer="0")
        assert response.code == 404, (tail, response.body)


@pytest.mark.parametrize("name, needle", [
    ("newer", "upgrade llmlab"), ("older", "older than this llmlab still reads"),
    ("half", "not a complete attention snapshot"),
])
async def test_unreadable_snapshots_get_422_saying_why(jp_fetch, store, name, needle):
    response = await fetch(jp_fetch, "runs", run_id(store, "broken"), "attention", name)
    assert response.code == 422
    assert needle in json.loads(response.body)["message"]


async def test_truncated_layer_is_reported_when_read(jp_fetch, store):
    rid = run_id(store, "broken")
    assert (await fetch(jp_fetch, "runs", rid, "attention", "truncated")).code == 200
    response = await fetch(jp_fetch, "runs", rid, "attention", "truncated", "matrix",
                           kind="decoder", layer="0", head="0")
    assert response.code == 422
    assert "truncated" in json.loads(response.body)["message"]


async def test_missing_store_lists_no_snapshots(jp_fetch, jp_serverapp, tmp_path):
    jp_serverapp.web_app.settings["llmlab_store"] = tmp_path / "nowhere"
    listing = await get_json(jp_fetch, "attention")
    assert listing["snapshots"] == [] and listing["store"].endswith("nowhere")
    assert listing["exists"] is False


@pytest.mark.parametrize("path", [("attention",), ("runs", "x", "attention", "y", "matrix")])
async def test_snapshot_endpoints_need_authentication(http_server_client, jp_base_url, path):
    from jupyter_server.utils import url_path_join

    # jp_fetch always adds the server's token, so send a raw request instead
    url = url_path_join(jp_base_url, "llmlab", "api", *path)
    response = await http_server_client.fetch(url, raise_error=False)
    assert response.code == 403
