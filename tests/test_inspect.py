"""Attention inspection (llmlab.attention): capture, rollout, words, logit lens, bertviz offline
HTML, the inspector widget's Python side, snapshots, and bad input. Tiny models only."""

from __future__ import annotations

import json
import re
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

import llmlab
from llmlab.attention import (
    Capture,
    SnapshotError,
    SnapshotReader,
    fallback,
    inspect,
    list_snapshots,
    load_snapshot,
    ops,
)
from llmlab.errors import InputError

TEXT = "The animal didn't cross the street because it was too tired"


@pytest.fixture(scope="module")
def tok():
    return llmlab.CharTokenizer.train(TEXT + " .", special_tokens="bert")


def tiny(family: str, tok, **kw):
    cfg = llmlab.ModelConfig(family=family, n_layer=2, n_head=4, d_model=32, context_length=80,
                             vocab_size=tok.vocab_size, **kw)
    return llmlab.build_model(cfg, seed=0)


@pytest.fixture(scope="module")
def gpt(tok):
    return tiny("gpt", tok)


@pytest.fixture(scope="module")
def gpt_cap(gpt, tok):
    return inspect(gpt, tok, TEXT)


# --------------------------------------------------------------------------- capture
@pytest.mark.parametrize("family", ["gpt", "bert", "seq2seq"])
def test_capture_matches_return_attention(family, tok):
    model = tiny(family, tok, **({"n_decoder_layer": 3} if family == "seq2seq" else {}))
    second = None if family == "gpt" else "the street"
    cap = inspect(model, tok, "The animal didn't", second)
    ids = {n: torch.tensor([s.ids]) for n, s in cap.sides.items()}
    with torch.no_grad():
        if family == "seq2seq":
            out = model(ids["encoder"], ids["decoder"], return_attention=True)
            expected = {"encoder": out.encoder_attentions, "decoder": out.attentions,
                        "cross": out.cross_attentions}
        elif family == "bert":
            types = torch.tensor([[0 if i < cap.sentence_b_start else 1
                                   for i in range(len(cap.sides["encoder"].ids))]])
            out = model(ids["encoder"], token_type_ids=types, return_attention=True)
            expected = {"encoder": out.attentions}
        else:
            expected = {"decoder": model(ids["decoder"], return_attention=True).attentions}
    assert cap.kinds == list(expected)
    for kind, weights in expected.items():
        assert cap.attention[kind].shape == (len(weights), 4, *weights[0].shape[-2:])
        torch.testing.assert_close(cap.attention[kind], torch.cat(weights), atol=1e-6, rtol=0)
    for attn in model.modules():  # hooks are gone
        assert not attn._forward_hooks and not attn._forward_pre_hooks
    assert cap.default_kind == ("cross" if family == "seq2seq" else cap.kinds[0])


def test_bert_pair_and_special_tokens(tok):
    cap = inspect(tiny("bert", tok), tok, "the animal", "was tired")
    side = cap.sides["encoder"]
    assert side.tokens[0] == "<cls>" and side.tokens[-1] == "<sep>"
    assert side.tokens[cap.sentence_b_start - 1] == "<sep>"
    assert side.special[0] and not side.special[1]


def test_seq2seq_needs_decoder_input(tok):
    with pytest.raises(InputError, match="target_text"):
        inspect(tiny("seq2seq", tok), tok, "the animal")


def test_layers_heads_subset_and_dtype(gpt, tok, monkeypatch):
    cap = inspect(gpt, tok, TEXT, layers=[-1], heads=[0, 3], dtype="float16")
    assert cap.layers == {"decoder": [1]} and cap.heads == [0, 3]
    assert cap.attention["decoder"].dtype == torch.float16
    full = inspect(gpt, tok, TEXT)
    torch.testing.assert_close(cap.attention["decoder"][0].float(),
                               full.attention["decoder"][1, [0, 3]], atol=1e-3, rtol=0)
    assert torch.equal(cap.matrix(layer=1, head=3), cap.attention["decoder"][0, 1].float())
    with pytest.raises(InputError, match="was not captured"):
        cap.matrix(layer=0, head=0)
    with pytest.raises(InputError, match="head 1 was not captured"):
        cap.matrix(layer=1, head=1)
    # "auto" switches to float16 once a float32 capture would be large
    monkeypatch.setattr("llmlab.attention.capture.AUTO_FLOAT16_BYTES", 100)
    assert inspect(gpt, tok, TEXT).dtype == torch.float16


def test_training_mode_is_restored(tok):
    model = tiny("gpt", tok).train()
    inspect(model, tok, "abc")
    assert model.training


def test_custom_model_with_return_attention(gpt, tok):
    class Wrapped(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner, self.config = inner, inner.config

        def forward(self, input_ids, return_attention=False):
            return self.inner(input_ids, return_attention=return_attention)

    cap = inspect(Wrapped(gpt), tok, "the animal")
    assert cap.family == "custom" and cap.kinds == ["decoder"]
    torch.testing.assert_close(cap.attention["decoder"],
                               inspect(gpt, tok, "the animal").attention["decoder"])


# --------------------------------------------------------------------------- bad input
def test_too_long_text_names_max_tokens(gpt, tok):
    long = TEXT * 3
    with pytest.raises(InputError, match=r"max_tokens=80"):
        inspect(gpt, tok, long)
    cap = inspect(gpt, tok, long, max_tokens=50)
    assert len(cap.sides["decoder"].ids) == 50
    with pytest.raises(InputError, match="max_tokens"):
        inspect(gpt, tok, long, max_tokens=500)


def test_empty_text(gpt, tok):
    with pytest.raises(InputError, match="empty"):
        inspect(gpt, tok, "")
    with pytest.raises(InputError, match="empty"):
        inspect(gpt, tok, [])


def test_models_without_attention_capture(tok):
    with pytest.raises(InputError, match="return_attention"):
        inspect(nn.Linear(3, 3), tok, "abc")

    class NoFlag(nn.Module):
        def forward(self, input_ids):
            return input_ids

    with pytest.raises(InputError, match=r"NoFlag\.forward has no return_attention"):
        inspect(NoFlag(), tok, "abc")
    with pytest.raises(InputError, match="torch.nn.Module"):
        inspect("gpt2", tok, "abc")


def test_bad_options(gpt, tok):
    with pytest.raises(InputError, match="dtype"):
        inspect(gpt, tok, "abc", dtype="int8")
    with pytest.raises(InputError, match="layers"):
        inspect(gpt, tok, "abc", layers=[5])
    with pytest.raises(InputError, match="one text"):
        inspect(gpt, tok, "abc", "def")


# --------------------------------------------------------------------------- ops
def test_rollout_by_hand(gpt_cap):
    att = gpt_cap.attention["decoder"]
    T = att.shape[-1]
    a = [att[i].mean(0) + torch.eye(T) for i in range(2)]
    a = [x / x.sum(-1, keepdim=True) for x in a]
    expected = torch.stack([a[0], a[1] @ a[0]])
    roll = gpt_cap.rollout()
    torch.testing.assert_close(roll, expected)
    torch.testing.assert_close(roll.sum(-1), torch.ones(2, T))
    assert torch.equal(gpt_cap.matrix(layer=0, head="rollout"), roll[0])


@pytest.mark.parametrize("causal", [True, False])
def test_rollout_long_inputs_match_the_formula(causal):
    """At 300 tokens causal products take the block-triangular path; both must equal the
    plain formula (float16 capture, as long inputs are kept)."""
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(3, 4, 300, 300, generator=g)
    if causal:
        scores = scores.masked_fill(torch.ones(300, 300).triu(1).bool(), float("-inf"))
    att = torch.softmax(scores, -1).half()
    eye, joint, expected = torch.eye(300), torch.eye(300), []
    for layer in att:
        a = layer.float().mean(0) + eye
        joint = (a / a.sum(-1, keepdim=True)) @ joint
        expected.append(joint)
    torch.testing.assert_close(ops.rollout(att), torch.stack(expected), rtol=1e-5, atol=1e-6)
    steps = ops.rollout_steps(att)
    torch.testing.assert_close(next(steps), expected[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ops.aggregate_heads(att[1], "max"), att[1].float().amax(0))


def test_rollout_refuses_cross_and_gaps(tok, gpt):
    cap = inspect(tiny("seq2seq", tok), tok, "the animal", "street")
    with pytest.raises(InputError, match="self-attention"):
        cap.rollout("cross")
    with pytest.raises(InputError, match="every layer"):
        inspect(gpt, tok, "abc", layers=[1]).rollout()


def test_hide_first_and_aggregates(gpt_cap):
    m = gpt_cap.matrix(layer=1, head="mean", hide_first=True)
    assert torch.all(m[:, 0] == 0)
    torch.testing.assert_close(m[1:].sum(-1), torch.ones(m.shape[0] - 1))
    assert torch.all(m[0] == 0)  # causal row 0 saw only the first token
    mx = gpt_cap.matrix(layer=1, head="max")
    assert torch.equal(mx, gpt_cap.attention["decoder"][1].amax(0))


@pytest.mark.parametrize(("tokens", "words"), [
    (["The", "Ġanim", "al", "Ġdidn", "'t", "Ġcross", "."], [0, 1, 1, 2, 2, 3, 4]),
    (["[CLS]", "the", "anim", "##al", "didn", "'", "t", "[SEP]"], [0, 1, 2, 2, 3, 4, 5, 6]),
    (["t", "h", "e", " ", "c", "a", "t", "."], [0, 0, 0, 1, 1, 1, 1, 2]),
    (["▁The", "▁cat", "s"], [0, 1, 1]),
    (["<0xC3>", "<0xA9>", "t", "<0x20>", "a"], [0, 0, 0, 1, 1]),
])
def test_word_index(tokens, words):
    special = [t.startswith("[") for t in tokens]
    assert ops.word_index(tokens, special) == words


def test_merge_words_keeps_rows_stochastic(gpt_cap):
    m = gpt_cap.matrix(layer=1, head=2, merge_words=True)
    side = gpt_cap.sides["decoder"]
    assert m.shape == (len(side.words), len(side.words))
    torch.testing.assert_close(m.sum(-1), torch.ones(m.shape[0]))
    assert side.words[:3] == ["The", "animal", "didn't"]


def test_quantize_rows_round_trip():
    m = torch.softmax(torch.randn(7, 9) * 3, -1)
    m[3] = 0
    q, scales = ops.quantize_rows(m)
    back = (np.frombuffer(q, np.uint8).reshape(7, 9) / 255
            * np.frombuffer(scales, "<f4")[:, None])
    assert np.abs(back - m.numpy()).max() <= m.max(-1).values.max().item() / 510 + 1e-7
    assert np.all(back[3] == 0)


def test_thumbnails():
    att = torch.softmax(torch.randn(2, 3, 100, 70), -1)
    th = ops.thumbnails(att, 32)
    assert th.shape == (2, 3, 32, 32) and th.dtype == torch.uint8
    assert torch.all(th.flatten(2).amax(-1) == 255)
    assert ops.thumbnails(att[:, :, :10, :10]).shape == (2, 3, 10, 10)


# --------------------------------------------------------------------------- logit lens
def test_logit_lens_gpt(gpt, tok):
    cap = inspect(gpt, tok, TEXT, logit_lens=True, top_k=3)
    lens = cap.logit_lens(k=3)
    T = len(cap.sides["decoder"].ids)
    assert lens.ids.shape == (3, T, 3) and lens.layer_names[0] == "embeddings"
    with torch.no_grad():
        probs = gpt(torch.tensor([cap.sides["decoder"].ids])).logits[0].softmax(-1)
        h = gpt(torch.tensor([cap.sides["decoder"].ids]), return_hidden=True).hidden_states
        first = gpt.lm_head(gpt.decoder.norm(h[0][0])).softmax(-1)
    torch.testing.assert_close(lens.probs[-1], probs.topk(3).values)
    torch.testing.assert_close(lens.probs[0], first.topk(3).values)  # final norm applied
    torch.testing.assert_close(cap.predictions.probs, probs.topk(3).values)
    assert lens.at(2)[0][0] == "embeddings" and len(lens.at(2)[0][1]) == 3
    assert lens.to_polars().height == 3 * T * 3
    assert cap.logit_lens(k=2).ids.shape[-1] == 2


def test_logit_lens_on_demand_bert_and_classifier(tok):
    bert = tiny("bert", tok)
    cap = inspect(bert, tok, "the animal")
    lens = cap.logit_lens(k=2)  # computed now from the model
    assert lens.side == "encoder" and lens.what == "masked token"
    with pytest.raises(InputError, match="classifier"):
        inspect(tiny("gpt", tok, n_labels=2), tok, "abc").logit_lens()


# --------------------------------------------------------------------------- bertviz offline
# anything that would make the page load a script: a script source, a require.js config
CDN = re.compile(r"<script[^>]*\bsrc\s*=|require(js)?\s*\.\s*config\s*\(", re.I)


def bertviz_part(html: str) -> str:
    """The page after llmlab's two inlined-library <script> elements (require.js itself has
    `paths:{}` in its defaults)."""
    return html.split("</script>\n", 2)[2]


@pytest.mark.parametrize("view", ["head_view", "model_view"])
def test_bertviz_html_is_self_contained(gpt_cap, view):
    html = getattr(gpt_cap, view)(html=True)
    assert not CDN.search(html)
    assert "paths:" not in bertviz_part(html)  # bertviz's CDN paths are gone
    assert 'define("d3"' in html and 'define("jquery"' in html and "requirejs([" in html
    assert "@license RequireJS" in html


def test_bertviz_seq2seq_and_pairs(tok):
    cap = inspect(tiny("seq2seq", tok), tok, "the animal", "street")
    html = cap.head_view(html=True)
    assert '"name": "Cross"' in html and not CDN.search(html)
    bert = inspect(tiny("bert", tok), tok, "the animal", "was tired")
    assert "Sentence A -> Sentence B" in bert.head_view(html=True)


def test_bertviz_rewrite_is_structural():
    from llmlab.attention.views import offline_html

    page = ("<script src='https://example.invalid/require.min.js'></script><div></div>"
            "<script>requirejs.config({ paths: { d3: 'x/d3', jquery: \"y/jq\", } });"
            "requirejs(['jquery','d3'], function($, d3){});</script>")
    out = offline_html(page)
    assert "example.invalid" not in out and "x/d3" not in out and "requirejs([" in out
    with pytest.raises(RuntimeError, match="does not recognise"):
        offline_html("<script>require.config({baseUrl: 'z', paths: {a: 'b'}})</script>")


def test_bertviz_size_guard(gpt_cap):
    with pytest.raises(InputError, match="cap.show"):
        gpt_cap.head_view(html=True, max_html_mb=0.01)


def test_bertviz_display_returns_html(gpt_cap):
    from IPython.display import HTML

    out = gpt_cap.head_view()  # no IPython shell: nothing displayed, the object is returned
    assert isinstance(out, HTML) and "bertviz" in out.data


# --------------------------------------------------------------------------- widget
def test_widget_state_and_answers(gpt_cap):
    w = gpt_cap.show(layer=0, head=2)
    assert (w.kind, w.layer, w.head, w.agg) == ("decoder", 0, 2, "head")
    kind = w.meta["kinds"][0]
    T = len(gpt_cap.sides["decoder"].ids)
    assert len(w.thumbs) == 2 * 4 * kind["thumb_rows"] * kind["thumb_cols"]
    assert w.meta["sides"]["decoder"]["tokens"] == gpt_cap.sides["decoder"].tokens
    msg, bufs = w.answer({"type": "matrix", "id": 7, "kind": "decoder", "layer": 1, "head": 3,
                          "agg": "head", "hide_first": True, "merge_words": False})
    assert msg["id"] == 7 and (msg["rows"], msg["cols"]) == (T, T)
    values = (np.frombuffer(bufs[0], np.uint8).reshape(T, T) / 255
              * np.frombuffer(bufs[1], "<f4")[:, None])
    np.testing.assert_allclose(values, gpt_cap.matrix(layer=1, head=3, hide_first=True).numpy(),
                               atol=1 / 255)
    err, _ = w.answer({"type": "matrix", "id": 8, "kind": "cross", "layer": 0, "head": 0,
                       "agg": "head"})
    assert err["type"] == "error" and "cross" in err["message"]
    lens, _ = w.answer({"type": "lens", "id": 9, "position": 3})
    assert len(lens["layers"]) == 3 and len(lens["tokens"][0]) == 5


def test_widget_validates_and_has_fallback_png(gpt_cap):
    import traitlets

    w = gpt_cap.show(head="max")
    assert w.agg == "max"
    with pytest.raises(traitlets.TraitError, match="not a layer"):
        w.layer = 9
    with pytest.raises(traitlets.TraitError, match="agg"):
        w.agg = "median"
    with pytest.raises(InputError, match="unknown inspector option"):
        gpt_cap.show(colour="red")
    with pytest.raises(traitlets.TraitError, match="scale"):
        w.scale = "log"
    assert w.scale == "auto"
    data, _ = w._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    import base64

    assert base64.b64decode(data["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"


def test_views_without_built_front_end(gpt_cap, monkeypatch, tmp_path):
    """An install that skipped the JS build (HATCH_JUPYTER_BUILDER_SKIP_NPM=1) says how to fix it."""
    from llmlab.attention import FrontendNotBuiltError, static, views

    monkeypatch.setattr(static, "STATIC", tmp_path)
    static.vendor_versions.cache_clear()
    views._prelude.cache_clear()
    try:
        with pytest.raises(FrontendNotBuiltError, match="npm run build:widget"):
            gpt_cap.show()
        with pytest.raises(FrontendNotBuiltError, match="Node.js"):
            gpt_cap.head_view(html=True)
    finally:
        static.vendor_versions.cache_clear()
        views._prelude.cache_clear()


def test_plot(gpt_cap):
    fig = gpt_cap.plot(layer=1, head=0)
    assert fig.axes[0].get_title() == "decoder · layer 1 · head 0"


def even_causal(n):
    """Causal attention spread evenly over the past: row i holds 1/(i+1) on columns 0..i."""
    return torch.ones(n, n).tril() / torch.arange(1, n + 1)[:, None]


def test_auto_scale_cases():
    """The same cases as choose_scale's twin in labextension/test/data.test.ts."""
    assert ops.choose_scale(even_causal(64)) == "row"
    assert ops.choose_scale(even_causal(8)) == "linear"
    assert ops.choose_scale(torch.eye(32)) == "linear"
    spread = torch.full((10, 10), 0.001)
    spread[:, 0] = 1
    assert ops.choose_scale(spread) == "sqrt"
    assert ops.choose_scale(torch.zeros(2, 2)) == "linear"
    rows = ops.scaled_for_display(even_causal(64), "auto")
    torch.testing.assert_close(rows.amax(-1), torch.ones(64))  # every row peaks at 1
    torch.testing.assert_close(ops.scaled_for_display(spread, "sqrt"), spread.sqrt())
    with pytest.raises(ValueError, match="scale"):
        ops.scaled_for_display(spread, "log")


def test_plot_of_a_long_input_thins_its_labels_and_colours_per_row(tok):
    model = tiny("gpt", tok)
    cap = inspect(model, tok, TEXT + " " + TEXT[:19])
    n = cap.attention["decoder"].shape[-1]
    assert n > fallback.MAX_LABELS
    ax = cap.plot(layer=1, head="mean").axes
    labels = [t.get_text() for t in ax[0].get_xticklabels()]
    assert 0 < len(labels) <= fallback.MAX_LABELS
    assert labels[1].endswith(f"({-(-n // fallback.MAX_LABELS)})")  # thinned: with positions
    assert ax[1].get_ylabel() == "share of the row's maximum"  # the colour bar
    linear = cap.plot(layer=1, head="mean", scale="linear").axes[1]
    assert linear.get_ylabel() == "share of maximum"


# --------------------------------------------------------------------------- snapshots
@pytest.fixture
def run(tmp_path):
    return llmlab.runs.create(store=tmp_path / "store", name="inspect")


def test_snapshot_round_trip(gpt, tok, run):
    cap = inspect(gpt, tok, TEXT, logit_lens=True)
    path = cap.save(run, "first")
    assert path == run.artifacts_dir / "attention" / "first"
    assert list_snapshots(run) == ["first"]
    back = load_snapshot(run, "first")
    assert isinstance(back, Capture) and back.dtype == torch.float16
    torch.testing.assert_close(back.attention["decoder"].float(), cap.attention["decoder"],
                               atol=1e-3, rtol=0)
    assert back.sides["decoder"].tokens == cap.sides["decoder"].tokens
    assert back.logit_lens().tokens == cap.logit_lens().tokens
    assert back.predictions.tokens == cap.predictions.tokens
    reader = SnapshotReader(path)
    head = reader.head("decoder", 1, 2)
    assert head.dtype == np.float16
    np.testing.assert_allclose(head, cap.attention["decoder"][1, 2].numpy(), atol=1e-3)
    assert reader.thumbs("decoder").shape[:2] == (2, 4)
    with pytest.raises(SnapshotError, match="already exists"):
        cap.save(run, "first")
    cap.save(run, "first", overwrite=True)
    assert list_snapshots(run) == ["first"]
    with pytest.raises(SnapshotError, match="name"):
        cap.save(run, "../escape")


def test_snapshot_with_a_short_lens_still_shows_it(gpt, tok, tmp_path):
    """A lens saved with top_k=3 is what a loaded capture (and its widget) shows; asking for
    more than was saved, without a model, says why not."""
    cap = inspect(gpt, tok, TEXT, logit_lens=True, top_k=3)
    back = load_snapshot(cap.save(tmp_path / "snap"))
    assert back.logit_lens().ids.shape[-1] == 3
    lens, _ = back.show().answer({"type": "lens", "id": 1, "position": 2})
    assert lens["tokens"] == cap.logit_lens().rows(2)["tokens"]
    assert all(len(top) == 3 for top in lens["tokens"])
    with pytest.raises(InputError, match="no model"):
        back.logit_lens(k=5)


def test_snapshot_seq2seq_without_model_has_no_lens(tok, tmp_path):
    cap = inspect(tiny("seq2seq", tok), tok, "the animal", "street")
    back = load_snapshot(cap.save(tmp_path / "snap"))
    assert back.kinds == ["encoder", "decoder", "cross"]
    with pytest.raises(InputError, match="no model"):
        back.logit_lens()
    assert back.show().meta["lens_side"] == ""


def test_truncated_and_corrupt_snapshots(gpt_cap, tmp_path):
    path = gpt_cap.save(tmp_path / "snap")
    layer = path / "decoder" / "layer-001.npz"
    data = layer.read_bytes()
    layer.write_bytes(data[: len(data) // 2])
    with pytest.raises(SnapshotError, match="truncated"):
        load_snapshot(path)
    with pytest.raises(SnapshotError, match="truncated"):
        SnapshotReader(path).head("decoder", 1, 0)
    SnapshotReader(path).head("decoder", 0, 0)  # the other layer still reads
    layer.write_bytes(b"\0" * len(data))  # right size, garbage inside
    with pytest.raises(SnapshotError, match="corrupt"):
        load_snapshot(path)
    meta = path / "snapshot.json"
    meta.write_text(meta.read_text()[:100])
    with pytest.raises(SnapshotError, match="truncated or corrupt"):
        load_snapshot(path)
    with pytest.raises(SnapshotError, match="no attention snapshot"):
        load_snapshot(tmp_path / "missing")
    assert zipfile.is_zipfile(path / "decoder" / "layer-000.npz")


# --------------------------------------------------------------------------- Hugging Face
def test_imported_hf_gpt2_matches_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(vocab_size=50, n_positions=32, n_embd=16, n_layer=2, n_head=2,
                                  bos_token_id=None, eos_token_id=None)
    cfg._attn_implementation = "eager"  # explicit softmax: attentions are returned
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(cfg).eval()
    hf.save_pretrained(tmp_path)
    model, _ = llmlab.load(tmp_path)
    ids = [1, 5, 7, 9, 3]
    cap = inspect(model, None, ids)
    with torch.no_grad():
        expected = hf(torch.tensor([ids]), output_attentions=True).attentions
    torch.testing.assert_close(cap.attention["decoder"], torch.cat(expected), atol=1e-4, rtol=0)


@pytest.mark.parametrize(("version", "message"), [(0, "older than this llmlab still reads"),
                                                  (99, "upgrade llmlab")])
def test_snapshot_format_versions_outside_what_this_llmlab_reads(gpt_cap, tmp_path, version,
                                                                 message):
    path = gpt_cap.save(tmp_path / "snap")
    meta_path = path / "snapshot.json"
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()),
                                     "format_version": version}))
    with pytest.raises(SnapshotError, match=message):
        SnapshotReader(path)


def test_plot_shows_itself_as_png_without_an_inline_backend(gpt_cap):
    png = gpt_cap.plot()._repr_png_()
    assert png.startswith(b"\x89PNG")


def test_the_inspector_warms_up_the_rollout_of_a_long_input_after_its_first_answer(tok):
    import threading

    cfg = llmlab.ModelConfig(family="gpt", n_layer=2, n_head=4, d_model=32, context_length=320,
                             vocab_size=tok.vocab_size)
    cap = inspect(llmlab.build_model(cfg, seed=0), tok, " ".join([TEXT] * 5))
    assert cap.attention["decoder"].shape[-1] >= 256
    w = cap.show()
    w.send = lambda *args, **kwargs: None  # no front end here
    w._on_msg(w, {"type": "matrix", "id": 1, "kind": "decoder", "layer": 1, "agg": "mean",
                  "head": 0}, [])
    for thread in [t for t in threading.enumerate() if t.name == "llmlab-rollout"]:
        thread.join(timeout=60)
    done, _ = cap._rollouts[("decoder", True)]
    assert len(done) == 2  # every layer, ready before anyone asked
    torch.testing.assert_close(cap.matrix(layer=1, head="rollout"), ops.rollout(
        cap.attention["decoder"])[1])
