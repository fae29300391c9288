"""Tests of llmlab.tokenizers: round trips, special tokens, errors, save/load, HF folders."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmlab.errors import TokenizerError
from llmlab.tokenizers import (
    BPETokenizer,
    ByteTokenizer,
    CharTokenizer,
    HFTokenizer,
    Tokenizer,
    load_tokenizer,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HARD_TEXT = "naïve café 🙂👍🏽 世界 e\u0301 \x00 tab\there\r\nend"


@pytest.fixture(scope="module")
def shakespeare() -> str:
    return (DATA / "tinyshakespeare.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def small_bpe(shakespeare: str) -> BPETokenizer:
    return BPETokenizer.train(shakespeare[:50_000], vocab_size=400)


def _hf_bpe(text: str, vocab_size: int = 320):
    """A byte-level BPE built directly with Hugging Face tokenizers, as GPT-2's is."""
    from tokenizers import Tokenizer as HFTok
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tok = HFTok(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([text], trainer)
    return tok


BERT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "##s", "!",
              "the", "un", "##aff", "##able", "Hello", ",", "caf", "##e"]  # fmt: skip


def _bert_dir(tmp_path: Path, config: dict | None = None) -> Path:
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(BERT_VOCAB) + "\n", encoding="utf-8")
    if config is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


# ---------------------------------------------------------------------------------------------
# CharTokenizer


def test_char_vocab_matches_nanogpt_on_shakespeare(shakespeare: str) -> None:
    tok = CharTokenizer.train(shakespeare)
    chars = sorted(set(shakespeare))
    assert tok.vocab_size == len(tok) == 65
    assert tok.tokens(range(65)) == chars
    assert tok.encode("\n !") == [0, 1, 2]
    assert tok.special_tokens == {}
    assert tok.pad_id is None and tok.mask_id is None


def test_char_encodes_whole_corpus_fast_and_round_trips(shakespeare: str) -> None:
    tok = CharTokenizer.train(shakespeare)
    start = time.perf_counter()
    ids = tok.encode(shakespeare)
    elapsed = time.perf_counter() - start
    assert len(ids) == len(shakespeare)
    assert elapsed < 1.0
    assert tok.decode(ids) == shakespeare


def test_char_special_tokens_follow_characters() -> None:
    tok = CharTokenizer.train("abc", special_tokens=("<pad>", "<bos>", "<eos>", "<unk>"))
    assert tok.vocab_size == 7
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (3, 4, 5, 6)
    assert tok.mask_id is None and tok.cls_id is None and tok.sep_id is None
    assert tok.id_to_token(5) == "<eos>"
    assert tok.decode([4, 0, 1, 5, 3]) == "<bos>ab<eos><pad>"
    assert tok.decode([4, 0, 1, 5, 3], skip_special_tokens=True) == "ab"
    # special tokens are never read out of text
    with pytest.raises(TokenizerError):
        tok.encode("<pad>")


def test_char_presets() -> None:
    bert = CharTokenizer.train("ab", special_tokens="bert")
    assert bert.special_tokens == {"pad": 2, "mask": 3, "cls": 4, "sep": 5}
    assert CharTokenizer.train("ab", special_tokens="gpt").vocab_size == 2


def test_char_unk_maps_unknown_characters() -> None:
    tok = CharTokenizer.train("abcab", unk="<unk>")
    assert tok.unk_id == 3
    assert tok.encode("abzq") == [0, 1, 3, 3]
    assert tok.decode(tok.encode("az")) == "a<unk>"
    # an unk already among the special tokens is not added twice
    both = CharTokenizer.train("ab", special_tokens=("<pad>", "<unk>"), unk="<unk>")
    assert both.vocab_size == 4 and both.unk_id == 3


def test_char_unknown_character_error_names_it_and_the_fixes() -> None:
    tok = CharTokenizer.train("hello world")
    with pytest.raises(TokenizerError) as info:
        tok.encode("hello wörld")
    message = str(info.value)
    assert "'ö'" in message and "position 7" in message and "8 characters" in message
    assert "unk='<unk>'" in message and "Retrain" in message


def test_char_encode_batch_names_the_bad_text() -> None:
    tok = CharTokenizer.train("ab")
    assert tok.encode_batch(["ab", "ba"]) == [[0, 1], [1, 0]]
    with pytest.raises(TokenizerError, match="text 1 of the batch"):
        tok.encode_batch(["ab", "abc"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"text": ""}, "empty text"),
        ({"text": b"abc"}, "needs a str"),
        ({"text": "ab", "special_tokens": ("<pad>", "<foo>")}, r"'<foo>' has no known role.*<pad>"),
        ({"text": "ab", "special_tokens": "roberta"}, "not a preset.*'bert'"),
        ({"text": "ab", "special_tokens": ("<pad>", "<pad>")}, "more than once"),
        ({"text": "ab", "special_tokens": ("<eos>", "<|endoftext|>")}, "second 'eos'"),
        ({"text": "ab", "special_tokens": ("",)}, "non-empty string"),
    ],
)
def test_char_train_errors(kwargs: dict, match: str) -> None:
    text = kwargs.pop("text")
    with pytest.raises(TokenizerError, match=match):
        CharTokenizer.train(text, **kwargs)


@pytest.mark.parametrize(
    ("chars", "match"), [([], "at least one"), (["ab"], "length 1"), (["a", "a"], "duplicates")]
)
def test_char_constructor_errors(chars: list, match: str) -> None:
    with pytest.raises(TokenizerError, match=match):
        CharTokenizer(chars)


def test_char_encode_rejects_non_str() -> None:
    with pytest.raises(TokenizerError, match="needs a str"):
        CharTokenizer.train("ab").encode(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# decode / tokens errors (shared by every tokenizer)


@pytest.mark.parametrize("bad", [65, 1000, -1])
def test_decode_outside_vocab_names_id_and_size(shakespeare: str, bad: int) -> None:
    tok = CharTokenizer.train(shakespeare)
    with pytest.raises(TokenizerError) as info:
        tok.decode([0, bad])
    assert f"token id {bad}" in str(info.value) and "vocab_size 65" in str(info.value)
    with pytest.raises(TokenizerError, match=f"token id {bad}"):
        tok.id_to_token(bad)
    with pytest.raises(TokenizerError, match=f"token id {bad}"):
        tok.tokens([bad])


def test_decode_outside_vocab_for_byte_and_bpe(small_bpe: BPETokenizer) -> None:
    with pytest.raises(TokenizerError, match="token id 256 .*vocab_size 256"):
        ByteTokenizer().decode([256])
    with pytest.raises(TokenizerError, match=f"vocab_size {small_bpe.vocab_size}"):
        small_bpe.decode([small_bpe.vocab_size])


@pytest.mark.parametrize("bad", ["abc", [1.5], [[1, 2]], [None]])
def test_decode_rejects_non_ids(bad: object) -> None:
    with pytest.raises(TokenizerError):
        ByteTokenizer().decode(bad)  # type: ignore[arg-type]


def test_decode_accepts_arrays_and_generators() -> None:
    import numpy  # torch tensors take the same .tolist() path
    tok = ByteTokenizer()
    assert tok.decode(numpy.array([104, 105])) == "hi"
    assert tok.decode(i for i in (104, 105)) == "hi"


# ---------------------------------------------------------------------------------------------
# ByteTokenizer


@pytest.mark.parametrize(
    "text", [HARD_TEXT, "", "\x00", "日本語のテキスト", "a\u0308\u0301", "🏳️‍🌈"]
)
def test_byte_round_trips_any_text(text: str) -> None:
    tok = ByteTokenizer()
    ids = tok.encode(text)
    assert ids == list(text.encode("utf-8"))
    assert tok.decode(ids) == text


def test_byte_special_tokens_start_at_256() -> None:
    tok = ByteTokenizer(special_tokens=("<pad>", "<eos>"))
    assert tok.vocab_size == 258 and tok.pad_id == 256 and tok.eos_id == 257
    ids = tok.encode("é") + [tok.eos_id] + tok.encode("x") + [tok.pad_id]
    assert tok.decode(ids) == "é<eos>x<pad>"
    assert tok.decode(ids, skip_special_tokens=True) == "éx"
    assert ByteTokenizer(special_tokens="bert").mask_id == 257


def test_byte_decode_replaces_invalid_utf8() -> None:
    tok = ByteTokenizer()
    assert tok.decode([0xFF, 104, 105]) == "\ufffdhi"
    assert tok.decode(tok.encode("é")[:1]) == "\ufffd"


def test_byte_token_display() -> None:
    tok = ByteTokenizer(special_tokens=("<eos>",))
    assert tok.tokens([104, 32, 10, 0xC3, 256]) == ["h", " ", "<0x0A>", "<0xC3>", "<eos>"]


def test_byte_errors() -> None:
    with pytest.raises(TokenizerError, match="lone surrogate"):
        ByteTokenizer().encode("a\ud800b")
    with pytest.raises(TokenizerError, match="needs a str"):
        ByteTokenizer().encode(b"abc")  # type: ignore[arg-type]
    with pytest.raises(TokenizerError, match="no known role"):
        ByteTokenizer(special_tokens=("<nope>",))


# ---------------------------------------------------------------------------------------------
# BPETokenizer / HFTokenizer


def test_bpe_train_round_trips_any_text(small_bpe: BPETokenizer) -> None:
    assert isinstance(small_bpe, HFTokenizer)
    assert small_bpe.vocab_size == 400
    assert small_bpe.eos_id == small_bpe.bos_id == 0
    for text in (HARD_TEXT, "First Citizen:\nBefore we proceed", "  leading and trailing  "):
        assert small_bpe.decode(small_bpe.encode(text)) == text
    ids = small_bpe.encode("First Citizen")
    assert len(ids) < len("First Citizen")  # merges were learned


def test_bpe_special_tokens_in_text_and_decode(small_bpe: BPETokenizer) -> None:
    ids = small_bpe.encode("a<|endoftext|>b")
    assert ids.count(small_bpe.eos_id) == 1
    assert small_bpe.decode(ids) == "a<|endoftext|>b"
    assert small_bpe.decode(ids, skip_special_tokens=True) == "ab"
    assert small_bpe.id_to_token(0) == "<|endoftext|>"
    assert small_bpe.tokens(small_bpe.encode(" the"))[0].startswith("Ġ")


def test_bpe_encode_batch_matches_encode(small_bpe: BPETokenizer) -> None:
    texts = ["To be, or not to be", HARD_TEXT, ""]
    assert small_bpe.encode_batch(texts) == [small_bpe.encode(t) for t in texts]
    with pytest.raises(TokenizerError, match="needs strs"):
        small_bpe.encode_batch(["a", 3])  # type: ignore[list-item]
    with pytest.raises(TokenizerError, match="needs a str"):
        small_bpe.encode(3)  # type: ignore[arg-type]


def test_bpe_train_options() -> None:
    texts = ["low lower lowest", "new newer newest"] * 20
    tok = BPETokenizer.train(texts, vocab_size=300, special_tokens="bert")
    assert tok.special_tokens == {"pad": 0, "mask": 1, "cls": 2, "sep": 3}
    assert tok.eos_id is None
    assert tok.decode(tok.encode("lowest newer")) == "lowest newer"


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("abc", 200), {}, r"at least 257 \(256 byte symbols \+ 1 special"),
        (("abc", 258), {"special_tokens": "bert"}, "at least 260"),
        (("abc", "300"), {}, "must be an int"),
        (("", 300), {}, "empty text"),
        (([], 300), {}, "empty text"),
        ((["a", 1], 300), {}, "iterable of str"),
        (("abc", 300), {"min_frequency": -1}, "min_frequency"),
        (("abc", 300), {"special_tokens": ("<what>",)}, "no known role"),
    ],
)
def test_bpe_train_errors(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(TokenizerError, match=match):
        BPETokenizer.train(*args, **kwargs)


def test_hf_wrapper_roles_are_checked() -> None:
    hf_tok = _hf_bpe("some text to learn from " * 10, vocab_size=270)
    assert HFTokenizer(hf_tok).special_tokens == {"bos": 0, "eos": 0}  # inferred
    assert HFTokenizer(hf_tok, roles={"pad": "<|endoftext|>"}).special_tokens == {"pad": 0}
    with pytest.raises(TokenizerError, match="unknown special-token role 'start'"):
        HFTokenizer(hf_tok, roles={"start": "<|endoftext|>"})
    with pytest.raises(TokenizerError, match="'<pad>' is not in the tokenizer's vocabulary"):
        HFTokenizer(hf_tok, roles={"pad": "<pad>"})
    with pytest.raises(TokenizerError, match="wraps a tokenizers.Tokenizer, got str"):
        HFTokenizer("gpt2")  # type: ignore[arg-type]


def test_hf_wrapper_ignores_padding_and_truncation_settings() -> None:
    hf_tok = _hf_bpe("some text to learn from " * 10, vocab_size=270)
    hf_tok.enable_padding(length=50)
    hf_tok.enable_truncation(max_length=2)
    tok = HFTokenizer(hf_tok)
    assert tok.decode(tok.encode("some text")) == "some text"
    assert hf_tok.padding is not None  # the caller's object is left as it was


# ---------------------------------------------------------------------------------------------
# save / load


def _check_round_trip(tok: Tokenizer, folder: Path, text: str) -> Tokenizer:
    path = tok.save(folder)
    assert path == folder / "tokenizer.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["llmlab_tokenizer"] == 1 and data["type"] == tok.type_name
    assert list(folder.iterdir()) == [path]  # no temporary file left behind
    loaded = load_tokenizer(folder)
    assert type(loaded) is type(tok)
    assert loaded.to_dict() == tok.to_dict()
    assert loaded.special_tokens == tok.special_tokens
    assert loaded.vocab_size == tok.vocab_size
    assert loaded.encode(text) == tok.encode(text)
    assert load_tokenizer(path).encode(text) == tok.encode(text)
    return loaded


def test_save_load_char(tmp_path: Path, shakespeare: str) -> None:
    tok = CharTokenizer.train(shakespeare, special_tokens="bert", unk="<unk>")
    loaded = _check_round_trip(tok, tmp_path / "new" / "dir", shakespeare[:500] + "ü")
    assert loaded.unk_id == tok.unk_id == 69


def test_save_load_byte(tmp_path: Path) -> None:
    _check_round_trip(ByteTokenizer(special_tokens=("<pad>", "<eos>")), tmp_path, HARD_TEXT)


def test_save_load_bpe(tmp_path: Path, small_bpe: BPETokenizer) -> None:
    _check_round_trip(small_bpe, tmp_path, HARD_TEXT + " thou art")


def test_save_load_hf_read_tokenizers(tmp_path: Path) -> None:
    bert = load_tokenizer(_bert_dir(tmp_path))
    loaded = _check_round_trip(bert, tmp_path / "saved-bert", "Hello, worlds! [MASK]")
    assert loaded.mask_id == 4
    gpt_dir = tmp_path / "gpt2"
    gpt_dir.mkdir()
    _hf_bpe("the quick brown fox " * 20).model.save(str(gpt_dir))
    _check_round_trip(load_tokenizer(gpt_dir), tmp_path / "saved-gpt2", "the fox 🙂")


def test_save_overwrites_atomically(tmp_path: Path) -> None:
    CharTokenizer.train("ab").save(tmp_path)
    CharTokenizer.train("xyz").save(tmp_path)
    assert load_tokenizer(tmp_path).vocab_size == 3
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer.json"]


# ---------------------------------------------------------------------------------------------
# Hugging Face folders


def test_load_hf_tokenizer_json(tmp_path: Path) -> None:
    hf_tok = _hf_bpe("the quick brown fox jumps " * 20)
    hf_tok.save(str(tmp_path / "tokenizer.json"))
    tok = load_tokenizer(tmp_path)
    assert type(tok) is HFTokenizer
    assert tok.eos_id == tok.bos_id == 0 and tok.pad_id is None
    text = "the quick 🙂 fox<|endoftext|>"
    assert tok.encode(text) == hf_tok.encode(text).ids
    assert tok.decode(tok.encode(text)) == text


def test_load_hf_tokenizer_json_reads_config_roles(tmp_path: Path) -> None:
    _hf_bpe("the quick brown fox jumps " * 20).save(str(tmp_path / "tokenizer.json"))
    config = {"pad_token": {"content": "<|endoftext|>"}, "mask_token": "<not-in-vocab>"}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    tok = load_tokenizer(tmp_path / "tokenizer.json")
    assert tok.special_tokens == {"bos": 0, "eos": 0, "pad": 0}


def test_load_gpt2_vocab_and_merges(tmp_path: Path) -> None:
    hf_tok = _hf_bpe("the quick brown fox jumps over the lazy dog " * 20)
    files = hf_tok.model.save(str(tmp_path))
    assert sorted(Path(f).name for f in files) == ["merges.txt", "vocab.json"]
    tok = load_tokenizer(tmp_path)
    assert type(tok) is HFTokenizer
    assert tok.eos_id == tok.bos_id == hf_tok.token_to_id("<|endoftext|>")
    text = "the lazy fox, quickly!  🙂<|endoftext|>"
    assert tok.encode(text) == hf_tok.encode(text).ids
    assert tok.decode(tok.encode(text)) == text
    assert load_tokenizer(tmp_path / "vocab.json").encode(text) == tok.encode(text)


def test_load_bert_vocab_txt(tmp_path: Path) -> None:
    tok = load_tokenizer(_bert_dir(tmp_path))
    assert type(tok) is HFTokenizer
    assert tok.special_tokens == {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
    ids = tok.encode("HELLO worlds! unaffable [MASK] zzz")
    assert tok.tokens(ids) == ["hello", "world", "##s", "!", "un", "##aff", "##able", "[MASK]",
                               "[UNK]"]  # fmt: skip
    assert tok.decode(ids[:4]) == "hello worlds!"
    assert tok.decode(tok.encode("café")) == "cafe"  # BERT-uncased strips accents


def test_load_bert_vocab_txt_cased(tmp_path: Path) -> None:
    tok = load_tokenizer(_bert_dir(tmp_path, {"do_lower_case": False}))
    assert tok.tokens(tok.encode("Hello hello")) == ["Hello", "hello"]


def test_hf_folders_match_transformers(tmp_path: Path) -> None:
    import transformers  # a test dependency
    bert_dir = _bert_dir(tmp_path)
    ours = load_tokenizer(bert_dir)
    theirs = transformers.BertTokenizerFast.from_pretrained(bert_dir, local_files_only=True)
    for text in ("Hello, worlds! unaffable", "the café [MASK] zzz", "Héllo\tWORLD"):
        assert ours.encode(text) == theirs(text, add_special_tokens=False)["input_ids"]
    gpt_dir = tmp_path / "gpt2"
    gpt_dir.mkdir()
    _hf_bpe("the quick brown fox jumps over the lazy dog " * 20).model.save(str(gpt_dir))
    ours = load_tokenizer(gpt_dir)
    theirs = transformers.GPT2TokenizerFast.from_pretrained(gpt_dir, local_files_only=True)
    for text in ("the lazy dog", " quick  brown\n\nfox 🙂", "x<|endoftext|>y"):
        assert ours.encode(text) == theirs(text)["input_ids"]
    assert ours.eos_id == theirs.eos_token_id


# ---------------------------------------------------------------------------------------------
# load errors


def test_load_missing_path(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="no tokenizer file or folder at .*nowhere"):
        load_tokenizer(tmp_path / "nowhere")


def test_load_folder_without_tokenizer(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi", encoding="utf-8")
    with pytest.raises(TokenizerError, match="holds no tokenizer: expected tokenizer.json"):
        load_tokenizer(tmp_path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"llmlab_tokenizer": 1, "type": "char", "chars": ["a"', "not valid JSON"),
        ("[1, 2]", "JSON list, not an object"),
        ('{"llmlab_tokenizer": 2, "type": "char"}', "format 2 of an llmlab tokenizer, written by a newer llmlab"),
        ('{"llmlab_tokenizer": 1, "type": "wordy"}', r"type 'wordy'; known types are \['char'"),
        ('{"llmlab_tokenizer": 1, "type": "char"}', "damaged llmlab 'char' tokenizer"),
        ('{"llmlab_tokenizer": 1, "type": "char", "chars": ["ab"]}', "length 1"),
        ('{"llmlab_tokenizer": 1, "type": "bpe", "hf_tokenizer": {}}', "could not be read"),
        ('{"model": 3}', "not a Hugging Face tokenizer"),
    ],
)
def test_load_bad_tokenizer_json(tmp_path: Path, content: str, match: str) -> None:
    (tmp_path / "tokenizer.json").write_text(content, encoding="utf-8")
    with pytest.raises(TokenizerError, match=match) as info:
        load_tokenizer(tmp_path)
    assert "tokenizer.json" in str(info.value) or "tok.save" in str(info.value)


def test_load_non_utf8_file(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(TokenizerError, match="could not read .*tokenizer.json"):
        load_tokenizer(tmp_path)


def test_load_gpt2_errors(tmp_path: Path) -> None:
    (tmp_path / "vocab.json").write_text('{"a": 0, "b": 1, "ab": 2}', encoding="utf-8")
    with pytest.raises(TokenizerError, match="merges.txt.* is missing"):
        load_tokenizer(tmp_path)
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\nab\n", encoding="utf-8")
    with pytest.raises(TokenizerError, match="line 3 is 'ab'; each merge line must be two"):
        load_tokenizer(tmp_path)
    (tmp_path / "merges.txt").write_text("#version: 0.2\na c\n", encoding="utf-8")
    with pytest.raises(TokenizerError, match="do not fit together"):
        load_tokenizer(tmp_path)
    (tmp_path / "vocab.json").write_text('["a", "b"]', encoding="utf-8")
    with pytest.raises(TokenizerError, match="not a token -> id object"):
        load_tokenizer(tmp_path)
    (tmp_path / "vocab.json").write_text('{"a": 0', encoding="utf-8")
    with pytest.raises(TokenizerError, match="vocab.json' is not valid JSON"):
        load_tokenizer(tmp_path)


def test_load_bert_errors(tmp_path: Path) -> None:
    (tmp_path / "vocab.txt").write_text("", encoding="utf-8")
    with pytest.raises(TokenizerError, match="vocab.txt' is empty"):
        load_tokenizer(tmp_path)
    folder = _bert_dir(tmp_path)
    (folder / "tokenizer_config.json").write_text("{oops", encoding="utf-8")
    with pytest.raises(TokenizerError, match="tokenizer_config.json' is not valid JSON"):
        load_tokenizer(folder)
    (folder / "tokenizer_config.json").write_text("[]", encoding="utf-8")
    with pytest.raises(TokenizerError, match="not an object"):
        load_tokenizer(folder)


# ---------------------------------------------------------------------------------------------
# import cost


def test_import_does_not_pull_in_torch_or_tokenizers() -> None:
    code = (
        "import llmlab.tokenizers, sys; "
        "assert 'torch' not in sys.modules; assert 'tokenizers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
