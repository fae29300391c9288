"""Generation and scoring: KV-cached decoding against a recompute-everything reference,
sampling options, batching, streaming, beam search, the context window, Hugging Face parity,
and the errors bad input gets."""

import math

import pytest
import torch

import llmlab
from llmlab import ByteTokenizer, CharTokenizer, ModelConfig
from llmlab.errors import InputError, TokenizerError
from llmlab.generation import Generation, Score, TokenEvent, generate, sampling, score
from llmlab.generation.text import IncrementalDecoder, RowText

TEXT = ("First Citizen: Before we proceed any further, hear me speak.\nROMEO: wherefore art "
        "thou? To be, or not to be: abcdefghijklmnopqrstuvwxyz\n")
CTX = 64


def tiny(family="gpt", vocab=None, **kw):
    base = dict(family=family, vocab_size=vocab or CHAR.vocab_size, context_length=CTX,
                n_layer=2, n_head=4, d_model=32, init_std=0.3, dropout=0.0)
    return ModelConfig(**{**base, **kw})


CHAR = CharTokenizer.train(TEXT, special_tokens=("<pad>", "<bos>", "<eos>"))
PROMPTS = ["ROMEO:", "First Citizen: hear me", "w"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy machine they cost a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def gpt():
    return llmlab.build_model(tiny(), seed=0).eval()


@pytest.fixture(scope="module")
def s2s():
    return llmlab.build_model(tiny("seq2seq", pos_encoding="sinusoidal"), seed=0).eval()


def reference_greedy(model, ids, n, stop=()):
    """Greedy decoding that recomputes the whole sequence every step: no cache at all."""
    ids = list(ids)
    out = []
    for _ in range(n):
        with torch.no_grad():
            nxt = int(model(torch.tensor([ids])).logits[0, -1].argmax())
        out.append(nxt)
        ids.append(nxt)
        if nxt in stop:
            break
    return out


def greedy(model, prompt, n=20, **kw):
    return generate(model, CHAR, prompt, max_new_tokens=n, temperature=0, **kw)


# --------------------------------------------------------------------------- the KV cache
@pytest.mark.parametrize("extra", [
    {}, dict(pos_encoding="rope", n_kv_head=2, norm="rmsnorm", activation="swiglu"),
    dict(pos_encoding="sinusoidal", norm_position="post", bias=False),
])
def test_cached_greedy_equals_recomputing_reference(extra):
    model = llmlab.build_model(tiny(**extra), seed=1).eval()
    out = greedy(model, "ROMEO:", 30, stop_token_ids=[])
    assert out.token_ids == reference_greedy(model, CHAR.encode("ROMEO:"), 30)
    assert greedy(model, "ROMEO:", 30, stop_token_ids=[], use_cache=False).token_ids == out.token_ids
    assert out.text == CHAR.decode(out.token_ids, skip_special_tokens=True)
    assert out.finish_reason == "length"
    assert out.full_text == "ROMEO:" + out.text and out.prompt == "ROMEO:"


def test_seq2seq_cached_equals_uncached_and_reference(s2s):
    out = generate(s2s, CHAR, "hear me speak", max_new_tokens=25, temperature=0,
                   stop_token_ids=[])
    uncached = generate(s2s, CHAR, "hear me speak", max_new_tokens=25, temperature=0,
                        stop_token_ids=[], use_cache=False)
    assert out.token_ids == uncached.token_ids
    src = torch.tensor([CHAR.encode("hear me speak")])
    dec = [CHAR.bos_id]
    with torch.no_grad():
        for _ in range(25):
            dec.append(int(s2s(src, torch.tensor([dec])).logits[0, -1].argmax()))
    assert out.token_ids == dec[1:]


# --------------------------------------------------------------------------- sampling
def test_same_seed_same_sample_different_seeds_differ(gpt):
    a = generate(gpt, CHAR, "ROMEO:", max_new_tokens=40, seed=7, stop_token_ids=[])
    b = generate(gpt, CHAR, "ROMEO:", max_new_tokens=40, seed=7, stop_token_ids=[])
    c = generate(gpt, CHAR, "ROMEO:", max_new_tokens=40, seed=8, stop_token_ids=[])
    assert a.token_ids == b.token_ids and a.seed == 7
    assert a.token_ids != c.token_ids
    unseeded = generate(gpt, CHAR, "ROMEO:", max_new_tokens=40, stop_token_ids=[])
    again = generate(gpt, CHAR, "ROMEO:", max_new_tokens=40, seed=unseeded.seed,
                     stop_token_ids=[])
    assert again.token_ids == unseeded.token_ids  # the reported seed reproduces the sample


def test_sampling_never_touches_the_global_rng(gpt):
    state = torch.random.get_rng_state()
    generate(gpt, CHAR, "ROMEO:", max_new_tokens=10, seed=1)
    generate(gpt, CHAR, "ROMEO:", max_new_tokens=10)
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize("kw", [dict(top_k=1), dict(top_p=1e-6), dict(min_p=0.999),
                                dict(temperature=1e-4)])
def test_narrow_sampling_equals_greedy(gpt, kw):
    sampled = generate(gpt, CHAR, "ROMEO:", max_new_tokens=30, seed=3, stop_token_ids=[], **kw)
    assert sampled.token_ids == greedy(gpt, "ROMEO:", 30, stop_token_ids=[]).token_ids


def test_filters_and_penalty_on_known_scores():
    s = torch.tensor([[3.0, 2.0, 1.0, -1.0]])
    assert sampling.filter_top_k(s, 2).isinf().tolist() == [[False, False, True, True]]
    probs = s.softmax(-1)[0]  # 0.66, 0.24, 0.09, 0.01
    assert sampling.filter_top_p(s, 0.8).isinf().tolist() == [[False, False, True, True]]
    assert sampling.filter_top_p(s, float(probs[0]) - 1e-3).isinf().sum() == 3
    assert sampling.filter_min_p(s, 0.2).isinf().tolist() == [[False, False, True, True]]
    seen = torch.tensor([[True, False, False, True]])
    assert sampling.penalise_repeats(s, seen, 2.0).tolist() == [[1.5, 2.0, 1.0, -2.0]]
    # inverse-CDF draws follow the distribution
    p = torch.tensor([[0.5, 0.0, 0.25, 0.25]]).expand(4, 4)
    u = torch.tensor([0.0, 0.49, 0.5, 0.99], dtype=torch.float64)
    assert sampling.draw(p, u).tolist() == [0, 0, 2, 3]


def test_repetition_penalty_reduces_repeats(gpt):
    plain = greedy(gpt, "ROMEO:", 40, stop_token_ids=[])
    penalised = greedy(gpt, "ROMEO:", 40, stop_token_ids=[], repetition_penalty=3.0)
    repeats = lambda ids: len(ids) - len(set(ids))
    assert repeats(penalised.token_ids) < repeats(plain.token_ids)


def test_sampling_distribution_matches_the_model():
    """Many one-token draws (a batch of one prompt, one seed per row) follow the softmax."""
    model = llmlab.build_model(tiny(init_std=0.05), seed=0).eval()
    n = 4000
    out = generate(model, CHAR, ["ROMEO:"] * n, max_new_tokens=1, seed=0, stop_token_ids=[])
    counts = torch.bincount(torch.tensor([g.token_ids[0] for g in out]),
                            minlength=CHAR.vocab_size).float() / n
    with torch.no_grad():
        probs = model(torch.tensor([CHAR.encode("ROMEO:")])).logits[0, -1].softmax(-1)
    assert (counts - probs).abs().max() < 0.03


# --------------------------------------------------------------------------- stopping
def test_stop_strings_cut_the_text_and_stream_holds_them_back(gpt):
    full = greedy(gpt, "ROMEO:", 40, stop_token_ids=[])
    stop = full.text[10:13]
    cut = full.text.index(stop)
    out = greedy(gpt, "ROMEO:", 40, stop_token_ids=[], stop=[stop, "never appears"])
    assert out.text == full.text[:cut] and out.finish_reason == "stop"
    # the tokens go up to the one that completed the stop string
    n = next(i for i in range(1, 41)
             if stop in CHAR.decode(full.token_ids[:i], skip_special_tokens=True))
    assert out.token_ids == full.token_ids[:n]
    pieces = list(greedy(gpt, "ROMEO:", 40, stop_token_ids=[], stop=stop, stream=True))
    assert "".join(pieces) == out.text


def test_row_text_releases_only_what_cannot_start_a_stop_string():
    row = RowText(ByteTokenizer(), [], ["END"])
    pieces = [row.push(b) for b in b"abEN"]
    assert "".join(pieces) == "ab"  # "EN" may be the start of "END"
    assert row.push(ord("X")) == "ENX"
    assert row.push(ord("E")) + row.push(ord("N")) + row.push(ord("D")) == ""
    assert row.stopped and row.text == "abENX"


def test_eos_stops_and_is_not_in_the_text():
    model = llmlab.build_model(tiny(tie_embeddings=False), seed=0).eval()
    plain = greedy(model, "ROMEO:", 20, stop_token_ids=[])
    with torch.no_grad():  # make eos twice as likely as the 4th greedy token wherever it wins
        model.lm_head.weight[CHAR.eos_id] = 2 * model.lm_head.weight[plain.token_ids[3]]
    out = greedy(model, "ROMEO:", 20)
    assert out.finish_reason == "eos" and out.token_ids[-1] == CHAR.eos_id
    assert len(out.token_ids) <= 4 and "<eos>" not in out.text
    assert out.text == CHAR.decode(out.token_ids[:-1], skip_special_tokens=True)
    stopped = greedy(model, "ROMEO:", 20, stop_token_ids=[plain.token_ids[1]])
    assert stopped.finish_reason == "stop" and len(stopped.token_ids) <= 2


# --------------------------------------------------------------------------- batches
def test_batched_greedy_and_sampling_equal_each_prompt_alone(gpt):
    batch = generate(gpt, CHAR, PROMPTS, max_new_tokens=25, temperature=0, stop_token_ids=[])
    assert [g.token_ids for g in batch] == [
        greedy(gpt, p, 25, stop_token_ids=[]).token_ids for p in PROMPTS]
    sampled = generate(gpt, CHAR, PROMPTS, max_new_tokens=25, seed=11, top_k=20, top_p=0.9)
    for i, (g, p) in enumerate(zip(sampled, PROMPTS, strict=True)):
        alone = generate(gpt, CHAR, p, max_new_tokens=25, seed=11 + i, top_k=20, top_p=0.9)
        assert g.token_ids == alone.token_ids and g.seed == 11 + i
        assert g.text == alone.text and g.finish_reason == alone.finish_reason


def test_rows_finishing_early_leave_the_others_unchanged(gpt):
    alone = [greedy(gpt, p, 30, stop_token_ids=[]) for p in PROMPTS]
    stop_id = alone[0].token_ids[2]  # the first row stops at step 3 (or earlier)
    batch = generate(gpt, CHAR, PROMPTS, max_new_tokens=30, temperature=0,
                     stop_token_ids=[stop_id])
    for g, a in zip(batch, alone, strict=True):
        n = a.token_ids.index(stop_id) + 1 if stop_id in a.token_ids else 30
        assert g.token_ids == a.token_ids[:n]
    assert batch[0].finish_reason == "stop" and len(batch[0].token_ids) <= 3


def test_dropping_finished_rows_keeps_the_sampled_rows_unchanged(gpt):
    """Three equal rows stop early, so the batch shrinks to the last row (seeded sampling)."""
    prompts, seeds = ["ROMEO:"] * 3 + ["hear me"], [5, 5, 5, 9]
    first = generate(gpt, CHAR, "ROMEO:", max_new_tokens=30, seed=5, stop_token_ids=[])
    stop_id = first.token_ids[2]
    batch = generate(gpt, CHAR, prompts, max_new_tokens=30, seed=seeds, stop_token_ids=[stop_id],
                     return_logprobs=True)
    for g, p, s in zip(batch, prompts, seeds, strict=True):
        alone = generate(gpt, CHAR, p, max_new_tokens=30, seed=s, stop_token_ids=[stop_id],
                         return_logprobs=True)
        assert g.token_ids == alone.token_ids and g.finish_reason == alone.finish_reason
        assert g.logprobs == pytest.approx(alone.logprobs, abs=1e-5)
    assert len(batch[0].token_ids) <= 3 < len(batch[3].token_ids)


def test_token_ids_prompts_and_tensor_prompts(gpt):
    ids = CHAR.encode("ROMEO:")
    by_text = greedy(gpt, "ROMEO:", 10)
    by_ids = generate(gpt, None, ids, max_new_tokens=10, temperature=0)
    by_tensor = generate(gpt, CHAR, torch.tensor([ids, ids]), max_new_tokens=10, temperature=0)
    assert by_ids.token_ids == by_text.token_ids == by_tensor[1].token_ids
    assert by_ids.text == "" and by_tensor[0].text == by_text.text


# --------------------------------------------------------------------------- streaming
def test_stream_pieces_add_up_to_the_text(gpt):
    out = generate(gpt, CHAR, "ROMEO:", max_new_tokens=30, seed=5)
    stream = generate(gpt, CHAR, "ROMEO:", max_new_tokens=30, seed=5, stream=True)
    assert "".join(stream) == out.text
    assert stream.result.token_ids == out.token_ids


def test_closing_a_stream_keeps_what_was_generated(gpt):
    full = generate(gpt, CHAR, PROMPTS[:2], max_new_tokens=30, seed=5, stop_token_ids=[],
                    return_logprobs=True)
    stream = generate(gpt, CHAR, PROMPTS[:2], max_new_tokens=30, seed=5, stop_token_ids=[],
                      return_logprobs=True, stream="events")
    seen = [next(stream) for _ in range(10)]  # 5 steps of 2 rows
    stream.close()
    assert list(stream) == []
    for row, g in enumerate(stream.result):
        mine = [e for e in seen if e.row == row]
        assert g.finish_reason == "stopped"
        assert g.token_ids == full[row].token_ids[:5] == [e.token_id for e in mine]
        assert g.text == "".join(e.text for e in mine) and full[row].text.startswith(g.text)
        assert g.logprobs == pytest.approx(full[row].logprobs[:5])
    stream.close()  # closing twice changes nothing
    assert stream.result[0].finish_reason == "stopped"


def test_byte_model_streams_multibyte_characters_whole():
    tok = ByteTokenizer(special_tokens=("<eos>",))
    model = llmlab.build_model(tiny(vocab=tok.vocab_size), seed=2).eval()
    for seed in range(3):
        out = generate(model, tok, "héllo 🙂", max_new_tokens=40, seed=seed)
        pieces = list(generate(model, tok, "héllo 🙂", max_new_tokens=40, seed=seed, stream=True))
        assert "".join(pieces) == out.text
    dec = IncrementalDecoder(tok, context=tok.encode("ab"))
    pieces = [dec.push(b) for b in "é🙂x".encode()]
    assert pieces == ["", "é", "", "", "", "🙂", "x"]


def test_bpe_incremental_decoding_matches_decoding_at_once():
    text = "hello wonderful world, héllo 🙂 wörld " * 20
    tok = llmlab.BPETokenizer.train(text, vocab_size=300)
    ids = tok.encode("héllo 🙂 wonderful wörld")
    dec = IncrementalDecoder(tok, context=tok.encode("say"))
    pieces = [dec.push(i) for i in ids] + [dec.flush()]
    assert "".join(pieces) == "héllo 🙂 wonderful wörld"
    assert all("\ufffd" not in p for p in pieces)


def test_events_carry_ids_logprobs_alternatives_and_finish(gpt):
    kw = dict(max_new_tokens=12, seed=4, return_logprobs=True, top_alternatives=3)
    result = generate(gpt, CHAR, PROMPTS[:2], **kw)
    stream = generate(gpt, CHAR, PROMPTS[:2], stream="events", **kw)
    events = list(stream)
    assert all(isinstance(e, TokenEvent) for e in events)
    for row, g in enumerate(result):
        mine = [e for e in events if e.row == row]
        assert [e.token_id for e in mine] == g.token_ids
        assert "".join(e.text for e in mine) == g.text
        assert [e.logprob for e in mine] == pytest.approx(g.logprobs)
        assert [e.alternatives for e in mine] == g.alternatives
        assert mine[-1].finish_reason == g.finish_reason
        assert all(e.finish_reason is None for e in mine[:-1])
        assert [e.index for e in mine] == list(range(len(mine)))
    assert [g.token_ids for g in stream.result] == [g.token_ids for g in result]
    alt = result[0].alternatives[0]
    assert len(alt) == 3 and alt[0].logprob >= alt[1].logprob >= alt[2].logprob
    assert alt[0].token == CHAR.id_to_token(alt[0].token_id)


def test_generation_logprobs_equal_score_of_the_continuation(gpt):
    out = greedy(gpt, "ROMEO:", 20, stop_token_ids=[], return_logprobs=True)
    scored = score(gpt, CHAR, CHAR.encode("ROMEO:") + out.token_ids)
    n = len(out.token_ids)
    assert scored.logprobs[-n:] == pytest.approx(out.logprobs, abs=1e-5)
    assert out.to_polars().shape == (n, 4)


# --------------------------------------------------------------------------- beam search
def test_beam_search_with_one_beam_is_greedy_and_more_beams_score_higher(gpt):
    from llmlab.generation.beam import beam_search
    from llmlab.generation.core import _prepare, inference
    from llmlab.generation.options import Options

    options = Options(max_new_tokens=25, do_sample=False, stop_token_ids=[],
                      on_overflow="error", return_logprobs=True)
    with inference(gpt):
        one_beam = beam_search(_prepare(gpt, CHAR, "ROMEO:", options))[0]
    plain = greedy(gpt, "ROMEO:", 25, stop_token_ids=[], return_logprobs=True)
    assert one_beam.token_ids == plain.token_ids
    beams = generate(gpt, CHAR, "ROMEO:", max_new_tokens=25, num_beams=4, stop_token_ids=[],
                     return_logprobs=True)
    assert sum(beams.logprobs) >= sum(plain.logprobs) - 1e-4
    assert beams.score == pytest.approx(sum(beams.logprobs) / 25, abs=1e-4)


def test_beam_search_batch_and_cache_agree(gpt, s2s):
    kw = dict(max_new_tokens=15, num_beams=3, stop_token_ids=[CHAR.encode("e")[0]])
    batch = generate(gpt, CHAR, PROMPTS, **kw)
    assert [g.token_ids for g in batch] == [generate(gpt, CHAR, p, **kw).token_ids
                                            for p in PROMPTS]
    assert generate(gpt, CHAR, "ROMEO:", use_cache=False, **kw).token_ids == batch[0].token_ids
    cached = generate(s2s, CHAR, ["hear me", "speak"], **kw)
    uncached = generate(s2s, CHAR, ["hear me", "speak"], use_cache=False, **kw)
    assert [g.token_ids for g in cached] == [g.token_ids for g in uncached]
    slide = dict(max_new_tokens=70, num_beams=2, stop_token_ids=[], on_overflow="slide")
    cached = generate(gpt, CHAR, PROMPTS[:2], **slide)  # the window slides under the beams
    uncached = generate(gpt, CHAR, PROMPTS[:2], use_cache=False, **slide)
    assert [g.token_ids for g in cached] == [g.token_ids for g in uncached]


# --------------------------------------------------------------------------- seq2seq
def test_seq2seq_batch_of_sources_equals_each_alone(s2s):
    sources = ["hear me speak", "ROMEO", "First Citizen: Before we proceed"]
    batch = generate(s2s, CHAR, sources, max_new_tokens=15, temperature=0)
    for g, src in zip(batch, sources, strict=True):
        assert g.token_ids == generate(s2s, CHAR, src, max_new_tokens=15,
                                       temperature=0).token_ids
        assert g.prompt == src


# --------------------------------------------------------------------------- the context
def test_overflow_is_an_error_that_names_the_numbers_and_the_fixes(gpt):
    with pytest.raises(InputError, match=r"6 tokens and max_new_tokens=60.*read 65 tokens"
                                         r".*context_length 64.*max_new_tokens=59.*slide"):
        greedy(gpt, "ROMEO:", 60, on_overflow="error")
    greedy(gpt, "ROMEO:", 59, on_overflow="error")  # the last new token is never read back
    with pytest.raises(InputError, match="has 70 tokens but the model's context_length is 64"):
        greedy(gpt, "ROMEO:" * 11 + "wewe", 5, on_overflow="error")


def test_a_causal_lm_slides_by_default_and_seq2seq_refuses(gpt, s2s):
    """nanoGPT's sampler keeps generating with the most recent context; so does generate,
    unless on_overflow="error" (the default for seq2seq, whose source would be cut)."""
    default = greedy(gpt, "ROMEO:", 150, stop_token_ids=[])
    assert len(default.token_ids) == 150
    assert default.token_ids == greedy(gpt, "ROMEO:", 150, stop_token_ids=[],
                                       on_overflow="slide").token_ids
    long_prompt = greedy(gpt, "ROMEO:" * 11 + "wewe", 5, stop_token_ids=[])
    assert len(long_prompt.token_ids) == 5
    with pytest.raises(InputError, match="on_overflow='slide'"):
        generate(s2s, CHAR, "hear me " * 10, max_new_tokens=5, temperature=0)


def test_slide_keeps_generating_and_cache_equals_uncached(gpt):
    out = greedy(gpt, "ROMEO:", 150, stop_token_ids=[], on_overflow="slide")
    uncached = greedy(gpt, "ROMEO:", 150, stop_token_ids=[], on_overflow="slide",
                      use_cache=False)
    assert len(out.token_ids) == 150 and out.token_ids == uncached.token_ids
    # until the window is full, sliding changes nothing
    assert out.token_ids[:58] == greedy(gpt, "ROMEO:", 58, stop_token_ids=[]).token_ids
    keep = greedy(gpt, "ROMEO:", 150, stop_token_ids=[], on_overflow="slide", slide_keep=63)
    assert keep.token_ids[:59] == out.token_ids[:59]


def test_slide_keeps_the_tail_of_a_long_prompt(gpt):
    prompt = (TEXT * 2)[:100]
    out = greedy(gpt, prompt, 10, on_overflow="slide", stop_token_ids=[])
    tail = greedy(gpt, prompt[-CTX // 2:], 10, stop_token_ids=[])
    assert out.token_ids == tail.token_ids


def test_seq2seq_decoder_slides(s2s):
    out = generate(s2s, CHAR, "hear me", max_new_tokens=80, temperature=0, stop_token_ids=[],
                   on_overflow="slide")
    uncached = generate(s2s, CHAR, "hear me", max_new_tokens=80, temperature=0,
                        stop_token_ids=[], on_overflow="slide", use_cache=False)
    assert len(out.token_ids) == 80 and out.token_ids == uncached.token_ids
    with pytest.raises(InputError, match="max_new_tokens=80 needs the decoder to read 80"):
        generate(s2s, CHAR, "hear me", max_new_tokens=80)


# --------------------------------------------------------------------------- Hugging Face
@pytest.fixture(scope="module")
def hf_gpt2(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(vocab_size=100, n_positions=CTX, n_embd=32, n_layer=2,
                                     n_head=4, bos_token_id=None, eos_token_id=None)
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(config)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # large random weights, so that a wrong detail changes the tokens
        for name, p in hf.named_parameters():
            gain = 1.0 if p.dim() == 1 and name.endswith("weight") else 0.0
            p.copy_(gain + 0.3 * torch.randn(p.shape, generator=gen))
    directory = tmp_path_factory.mktemp("hf-gpt2")
    hf.eval().save_pretrained(directory)
    model, _ = llmlab.load(directory)
    return hf, model


def test_imported_gpt2_greedy_and_beams_match_transformers(hf_gpt2):
    hf, model = hf_gpt2
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randint(0, 100, (7,), generator=gen), torch.randint(0, 100, (4,), generator=gen)
    batch = torch.stack([a, torch.cat([torch.zeros(3, dtype=torch.long), b])])
    mask = torch.ones_like(batch)
    mask[1, :3] = 0
    hf_kw = dict(attention_mask=mask, do_sample=False, max_new_tokens=30, pad_token_id=0)
    with torch.no_grad():
        theirs = hf.generate(batch, **hf_kw)[:, 7:].tolist()
        theirs_beam = hf.generate(batch[:1], **{**hf_kw, "attention_mask": mask[:1]},
                                  num_beams=3, eos_token_id=theirs[0][9])[0, 7:].tolist()
    ours = generate(model, None, [a.tolist(), b.tolist()], max_new_tokens=30, temperature=0)
    assert [g.token_ids for g in ours] == theirs
    beam = generate(model, None, a.tolist(), max_new_tokens=30, num_beams=3,
                    stop_token_ids=[theirs[0][9]])
    if theirs[0][9] in theirs_beam:
        theirs_beam = theirs_beam[:theirs_beam.index(theirs[0][9]) + 1]
    assert beam.token_ids == theirs_beam


# --------------------------------------------------------------------------- score
def test_score_matches_the_training_loss_and_batches(gpt):
    texts = ["To be, or not", "ROMEO: wherefore art thou", "hear"]
    singles = [score(gpt, CHAR, t) for t in texts]
    batch = score(gpt, CHAR, texts)
    for s, b, text in zip(singles, batch, texts, strict=True):
        ids = torch.tensor([CHAR.encode(text)])
        with torch.no_grad():
            loss = gpt(ids[:, :-1], targets=ids[:, 1:]).loss
        assert isinstance(s, Score) and s.n_tokens == ids.shape[1] - 1
        assert s.perplexity == pytest.approx(math.exp(loss), rel=1e-5)
        assert b.logprobs == pytest.approx(s.logprobs, abs=1e-5)
        assert s.tokens == CHAR.tokens(ids[0, 1:].tolist())
    assert batch[0].to_polars().columns == ["position", "token", "token_id", "logprob"]


@pytest.mark.parametrize("stride", [1, 20, CTX])
def test_score_slides_over_long_texts(gpt, stride):
    ids = CHAR.encode(TEXT * 2)[:150]
    s = score(gpt, None, ids, stride=stride)
    assert len(s.logprobs) == len(ids) - 1
    with torch.no_grad():
        first = gpt(torch.tensor([ids[:CTX]])).logits[0].log_softmax(-1)
    expected = first[torch.arange(CTX - 1), torch.tensor(ids[1:CTX])]
    assert s.logprobs[:CTX - 1] == pytest.approx(expected.tolist(), abs=1e-5)
    if stride == 1:  # every later token sees the full context before it
        for p in (CTX, 100, 149):
            with torch.no_grad():
                logits = gpt(torch.tensor([ids[p - CTX:p]])).logits[0, -1]
            assert s.logprobs[p - 1] == pytest.approx(float(logits.log_softmax(-1)[ids[p]]),
                                                      abs=1e-5)


def test_seq2seq_score_matches_the_training_loss(s2s):
    from llmlab.data import Seq2SeqData

    pairs = [("hear me", "speak"), ("ROMEO", "wherefore art")]
    data = Seq2SeqData.from_pairs(pairs, CHAR, seq_len=20, val_fraction=0)
    batch = data.get_batch("train", 2, torch.Generator().manual_seed(0))
    src_texts = [CHAR.decode([i for i, m in zip(r, mk) if m])
                 for r, mk in zip(batch["input_ids"].tolist(), batch["attention_mask"].tolist())]
    tgt_texts = [dict(pairs)[s] for s in src_texts]
    scores = score(s2s, CHAR, tgt_texts, source=src_texts)
    with torch.no_grad():
        loss = s2s(**batch).loss
    total = sum(-sum(s.logprobs) for s in scores) / sum(s.n_tokens for s in scores)
    assert total == pytest.approx(float(loss), rel=1e-5)
    assert scores[0].token_ids[-1] == CHAR.eos_id


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kw, match", [
    (dict(temperature=-0.5), "temperature=-0.5 is negative"),
    (dict(top_p=0.0), r"top_p=0.0 is outside \(0, 1\]"),
    (dict(top_p=1.5), r"top_p=1.5 is outside \(0, 1\]"),
    (dict(top_k=-1), "top_k=-1 must be >= 0"),
    (dict(min_p=1.0), r"min_p=1.0 is outside \[0, 1\)"),
    (dict(max_new_tokens=0), "max_new_tokens=0 must be >= 1"),
    (dict(max_new_tokens=2.5), "max_new_tokens=2.5 must be an int"),
    (dict(repetition_penalty=0), "repetition_penalty=0 must be > 0"),
    (dict(num_beams=3, temperature=0.7), "num_beams=3 is beam search.*temperature=0.7"),
    (dict(num_beams=2, do_sample=True), "do_sample=True asks for sampling"),
    (dict(temperature=0, do_sample=True), "temperature=0 means greedy"),
    (dict(on_overflow="wrap"), "on_overflow='wrap' is not one of"),
    (dict(slide_keep=64), "slide_keep=64 must be below the model's context_length 64"),
    (dict(stream="yes"), "stream='yes' must be False"),
    (dict(stream=True, num_beams=2), "beam search cannot stream"),
    (dict(stop=""), "stop='' must be a non-empty string"),
    (dict(stop_token_ids=[999]), r"stop_token_ids holds 999, outside the model's vocabulary"),
    (dict(seed="x"), "seed='x' must be an int"),
    (dict(top_alternatives=-2), "top_alternatives=-2 must be >= 0"),
    (dict(early_stopping="no"), "early_stopping='no' must be True or False"),
    (dict(return_logprobs=1), "return_logprobs=1 must be True or False"),
    (dict(use_cache=None), "use_cache=None must be True or False"),
    (dict(length_penalty="x"), "length_penalty='x' must be a finite number"),
])
def test_bad_options_are_named_with_a_fix(gpt, kw, match):
    with pytest.raises(InputError, match=match):
        generate(gpt, CHAR, "ROMEO:", **{"max_new_tokens": 5, **kw})


def test_generate_keywords_are_the_declared_options():
    """generate spells its options out (for help() and IDEs); they are Options' fields, in
    order, with the same defaults and annotations."""
    import dataclasses
    import inspect

    from llmlab.generation.options import Options

    keywords = [p for p in inspect.signature(generate).parameters.values()
                if p.kind is inspect.Parameter.KEYWORD_ONLY]
    declared = dataclasses.fields(Options)
    assert [p.name for p in keywords] == [f.name for f in declared]
    assert [p.default for p in keywords] == [f.default for f in declared]
    assert [str(p.annotation) for p in keywords] == [str(f.type) for f in declared]


def test_options_of_a_call_and_resolved_defaults():
    import dataclasses

    from llmlab.generation.options import Options, resolve

    defaults = {f.name: f.default for f in dataclasses.fields(Options)}
    given = Options.of({**defaults, "max_new_tokens": 7, "model": object()})
    assert given == Options(max_new_tokens=7)
    opts = resolve(given, model_vocab=50, context_length=64, eos_id=3, has_tokenizer=True,
                   batched=False)
    assert (opts.temperature, opts.do_sample, opts.top_k, opts.top_p, opts.min_p) == (
        1.0, True, 0, 1.0, 0.0)
    assert (opts.stop, opts.stop_token_ids, opts.slide_keep) == ((), (3,), 32)
    beams = resolve(Options(num_beams=4, top_alternatives=99), model_vocab=50,
                    context_length=64, eos_id=None, has_tokenizer=False, batched=True)
    assert (beams.do_sample, beams.stop_token_ids, beams.top_alternatives) == (False, (), 50)
    with pytest.raises(KeyError, match="temperature"):
        Options.of({"max_new_tokens": 7})


def test_bad_prompts_and_models(gpt, s2s):
    with pytest.raises(InputError, match="prompt is empty and the tokenizer has no bos"):
        generate(gpt, CharTokenizer.train("abc"), "", max_new_tokens=3)
    out = generate(gpt, CHAR, "", max_new_tokens=3, temperature=0)  # starts from bos
    assert out.token_ids == greedy(gpt, [CHAR.bos_id], 3).token_ids
    with pytest.raises(TokenizerError, match="character 'Z' at position 2 is not in"):
        generate(gpt, CHAR, "ROZ", max_new_tokens=3)
    with pytest.raises(InputError, match="stream=True yields plain text and needs a single"):
        generate(gpt, CHAR, ["a", "b"], max_new_tokens=3, stream=True)
    with pytest.raises(InputError, match="source\\) has 70 tokens"):
        generate(s2s, CHAR, "ROMEO:" * 11 + "wewe", max_new_tokens=3)
    bert = llmlab.build_model(tiny("bert"))
    with pytest.raises(InputError, match="family='bert'.*Build a 'gpt' model to generate"):
        generate(bert, CHAR, "ROMEO:")
    with pytest.raises(InputError, match="family='bert'"):
        score(bert, CHAR, "ROMEO:")
    classifier = llmlab.build_model(tiny(n_labels=2))
    with pytest.raises(InputError, match="classifier"):
        generate(classifier, CHAR, "ROMEO:")
    with pytest.raises(InputError, match="needs an llmlab model"):
        generate(torch.nn.Linear(2, 2), CHAR, "ROMEO:")
    with pytest.raises(InputError, match="has 1 token.*at least two"):
        score(gpt, CHAR, "R")
    with pytest.raises(InputError, match="pass source=text"):
        score(s2s, CHAR, "speak")


def test_train_mode_is_restored_and_dropout_is_off():
    model = llmlab.build_model(tiny(dropout=0.5), seed=0)
    model.train()
    out = greedy(model, "ROMEO:", 15, stop_token_ids=[])
    assert model.training
    assert out.token_ids == greedy(model.eval(), "ROMEO:", 15, stop_token_ids=[]).token_ids


def test_logits_beyond_the_tokenizer_are_never_chosen():
    model = llmlab.build_model(tiny(vocab=CHAR.vocab_size + 40), seed=0).eval()
    for seed in range(3):
        out = generate(model, CHAR, "ROMEO:", max_new_tokens=30, seed=seed, temperature=2.0)
        assert max(out.token_ids) < CHAR.vocab_size
    assert isinstance(out, Generation)
