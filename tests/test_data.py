"""Tests of llmlab.data: corpus loading, labelled sets and the four batch makers."""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

import pytest
import torch

from llmlab import data as data_module
from llmlab.data import (
    DATASETS,
    SPLITS,
    CausalLMData,
    ClassificationData,
    Dataset,
    LabelledTexts,
    MaskedLMData,
    Seq2SeqData,
    load_classification,
    load_text,
)
from llmlab.errors import DataError
from llmlab.tokenizers import ByteTokenizer, CharTokenizer

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Local data, an empty cache, and a network that fails loudly if anything touches it."""

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the network was touched")

    monkeypatch.setenv("LLMLAB_DATA_DIR", str(SHARED_DATA))
    monkeypatch.setenv("LLMLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def shakespeare() -> str:
    return (SHARED_DATA / "tinyshakespeare.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def bert_tok(shakespeare: str) -> CharTokenizer:
    return CharTokenizer.train(shakespeare, special_tokens="bert")


@pytest.fixture(scope="module")
def seq_tok() -> CharTokenizer:
    return CharTokenizer.train("abcdefgh ", special_tokens=("<pad>", "<bos>", "<eos>"))


# ---------------------------------------------------------------------------------------------
# load_text


def test_load_named_corpus_from_data_dir(shakespeare: str) -> None:
    text = load_text("tinyshakespeare")
    assert len(text) == 1_115_394
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == SHAKESPEARE_SHA256
    assert DATASETS["tinyshakespeare"].sha256 == SHAKESPEARE_SHA256


def test_load_named_corpus_from_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LLMLAB_DATA_DIR")
    cache = tmp_path / "my-cache"
    cache.mkdir()
    (cache / "tinyshakespeare.txt").write_text("cached copy", encoding="utf-8")
    assert load_text("tinyshakespeare", cache_dir=cache) == "cached copy"
    monkeypatch.setenv("LLMLAB_CACHE_DIR", str(cache))
    assert load_text("tinyshakespeare") == "cached copy"


def test_missing_corpus_without_download_says_where_and_how(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, offline: Path
) -> None:
    monkeypatch.setenv("LLMLAB_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(DataError) as info:
        load_text("tinyshakespeare")
    message = str(info.value)
    assert str(tmp_path / "empty" / "tinyshakespeare.txt") in message
    assert str(offline / "tinyshakespeare.txt") in message
    assert "LLMLAB_DATA_DIR" in message and "download=True" in message


def _local_dataset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sha256: str) -> None:
    source = tmp_path / "remote.txt"
    source.write_text("downloaded text", encoding="utf-8")
    dataset = Dataset(file="tiny.txt", url=source.as_uri(), sha256=sha256)
    monkeypatch.setitem(DATASETS, "tiny", dataset)
    monkeypatch.setattr(urllib.request, "urlopen", data_module.urllib.request.build_opener().open)


def test_download_verifies_and_caches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    good = hashlib.sha256(b"downloaded text").hexdigest()
    _local_dataset(monkeypatch, tmp_path, good)
    cache = tmp_path / "dl-cache"
    assert load_text("tiny", download=True, cache_dir=cache) == "downloaded text"
    assert [p.name for p in cache.iterdir()] == ["tiny.txt"]
    (tmp_path / "remote.txt").unlink()
    assert load_text("tiny", cache_dir=cache) == "downloaded text"  # now from the cache


def test_download_with_wrong_checksum_keeps_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _local_dataset(monkeypatch, tmp_path, "0" * 64)
    cache = tmp_path / "dl-cache"
    with pytest.raises(DataError, match="sha256 .* expected 0000.*discarded"):
        load_text("tiny", download=True, cache_dir=cache)
    assert list(cache.iterdir()) == []


def test_download_failure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(DATASETS, "gone", Dataset("gone.txt", (tmp_path / "no").as_uri(), "0"))
    monkeypatch.setattr(urllib.request, "urlopen", data_module.urllib.request.build_opener().open)
    with pytest.raises(DataError, match="downloading .* failed .*LLMLAB_DATA_DIR"):
        load_text("gone", download=True, cache_dir=tmp_path / "c")
    assert list((tmp_path / "c").iterdir()) == []


def test_load_file_and_folder(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("second", encoding="utf-8")
    (tmp_path / "a.txt").write_text("first", encoding="utf-8")
    (tmp_path / "skip.md").write_text("not text", encoding="utf-8")
    assert load_text(tmp_path / "a.txt") == "first"
    assert load_text(str(tmp_path)) == "first\nsecond"


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        ("missing", r"neither a file, a folder, nor a known data set.*\['tinyshakespeare'"),
        ("empty-file", "is empty"),
        ("empty-folder", "holds no .txt files"),
        ("latin1", "not UTF-8"),
    ],
)
def test_load_text_errors(tmp_path: Path, setup: str, match: str) -> None:
    path = tmp_path / "thing.txt"
    if setup == "empty-file":
        path.write_text("", encoding="utf-8")
    elif setup == "empty-folder":
        path = tmp_path / "folder"
        path.mkdir()
    elif setup == "latin1":
        path.write_bytes("café".encode("latin-1"))
    with pytest.raises(DataError, match=match):
        load_text(path)


def test_load_text_rejects_other_types() -> None:
    with pytest.raises(DataError, match="needs a path or a data set name"):
        load_text(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# classification sets


@pytest.mark.parametrize(
    ("name", "split", "rows", "names"),
    [
        ("sst2", "train", 6920, ["negative", "positive"]),
        ("sst2", "dev", 872, ["negative", "positive"]),
        ("sst2", "test", 1821, ["negative", "positive"]),
        ("trec", "train", 5452, ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]),
        ("trec", "test", 500, ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]),
        ("agnews", "test", 7600, ["World", "Sports", "Business", "Science/Tech"]),
    ],
)
def test_classification_sets(name: str, split: str, rows: int, names: list[str]) -> None:
    examples = load_classification(name, split)
    assert len(examples) == rows
    assert examples.label_names == names
    assert set(examples.labels) == set(range(len(names)))
    assert all(text.strip() for text in examples.texts)


def test_classification_contents() -> None:
    sst2 = load_classification("sst2")
    first = (
        "a stirring , funny and finally transporting re-imagining of beauty and the beast "
        "and 1930s horror films"
    )
    assert sst2[0] == (first, 1)
    trec = load_classification("trec", "train")
    assert trec[0] == ("How did serfdom develop in and then leave Russia ?", 1)
    assert trec.labels.count(0) == 86  # ABBR
    agnews = load_classification("agnews", "test")
    first = (
        "Fears for T N pension after talks Unions representing workers at Turner   Newall say "
        "they are 'disappointed' after talks with stricken parent firm Federal Mogul."
    )
    assert agnews[0] == (first, 2)
    assert [agnews.labels.count(i) for i in range(4)] == [1900] * 4


def test_load_classification_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"unknown classification data set 'imdb'.*'sst2'"):
        load_classification("imdb")
    with pytest.raises(DataError, match=r"no split 'val'.*\['train', 'dev', 'test'\]"):
        load_classification("sst2", "val")
    monkeypatch.setenv("LLMLAB_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"'trec' \(test\) is not on this machine.*holds "
                       r"trec/test.txt. Set LLMLAB_DATA_DIR.*download=True"):
        load_classification("trec", "test")
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "stsa.binary.dev").write_text("1 fine\n2 bad label\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2 is '2 bad label'; expected '<0 or 1> <text>'"):
        load_classification("sst2", "dev")
    (tmp_path / "trec").mkdir()
    (tmp_path / "trec" / "test.txt").write_text("XYZ:abc what ?\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 1 is 'XYZ:abc what \\?'"):
        load_classification("trec", "test", data_dir=tmp_path)
    (tmp_path / "agnews").mkdir()
    (tmp_path / "agnews" / "test.csv").write_text('1,"title","text"\n', encoding="utf-8")
    with pytest.raises(DataError, match="holds agnews/test.csv, agnews/classes.txt"):
        load_classification("agnews", "test")
    (tmp_path / "agnews" / "classes.txt").write_text("World\nSports\n", encoding="utf-8")
    (tmp_path / "agnews" / "test.csv").write_text('3,"title","text"\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"does not fit classes.txt.*label 0 is 2"):
        load_classification("agnews", "test")
    (tmp_path / "agnews" / "test.csv").write_text('1,"only title"\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 1 .*'Class Index,Title,Description'"):
        load_classification("agnews", "test")


def test_agnews_classes_one_per_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "agnews").mkdir()
    (tmp_path / "agnews" / "classes.txt").write_text("World\nSports\n", encoding="utf-8")
    (tmp_path / "agnews" / "test.csv").write_text('2,"A","b, c"\n1,"D","e"\n', encoding="utf-8")
    examples = load_classification("agnews", "test", data_dir=tmp_path)
    assert list(examples) == [("A b, c", 1), ("D e", 0)]
    assert examples.label_names == ["World", "Sports"]


# ---------------------------------------------------------------------------------------------
# LabelledTexts


def test_labelled_texts_behaves_like_a_sequence() -> None:
    examples = LabelledTexts(["a", "b", "c"], [0, 1, 1], ["no", "yes"])
    assert len(examples) == 3
    assert list(examples) == [("a", 0), ("b", 1), ("c", 1)]
    assert examples[-1] == ("c", 1)
    part = examples[1:]
    assert isinstance(part, LabelledTexts)
    assert part.texts == ["b", "c"] and part.labels == [1, 1] and part.label_names == ["no", "yes"]
    assert examples.n_labels == 2 and LabelledTexts(["a"], [4]).n_labels == 5


def test_labelled_texts_split_is_seeded() -> None:
    examples = LabelledTexts([str(i) for i in range(100)], [i % 3 for i in range(100)])
    train, val = examples.split(0.2)
    assert (len(train), len(val)) == (80, 20)
    assert sorted(train.texts + val.texts, key=int) == examples.texts
    assert examples.split(0.2)[1].texts == val.texts
    assert examples.split(0.2, seed=1)[1].texts != val.texts
    assert len(examples.split(0)[1]) == 0


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((["a", "b"], [0]), "2 texts but 1 labels"),
        ((["a"], [2], ["x", "y"]), r"label 0 is 2, outside \[0, n_labels\) \(n_labels=2\)"),
        ((["a"], [-1]), "outside"),
        ((["a"], ["pos"]), "not an int"),
    ],
)
def test_labelled_texts_errors(args: tuple, match: str) -> None:
    with pytest.raises(DataError, match=match):
        LabelledTexts(*args)


# ---------------------------------------------------------------------------------------------
# CausalLMData


@pytest.fixture(scope="module")
def causal(shakespeare: str) -> CausalLMData:
    return CausalLMData.from_text(shakespeare, CharTokenizer.train(shakespeare), seq_len=32)


def test_causal_split_by_position_as_nanogpt(causal: CausalLMData, shakespeare: str) -> None:
    ids = torch.tensor(causal.tokenizer.encode(shakespeare))
    n = int(0.9 * len(ids))
    assert torch.equal(causal.train_ids, ids[:n]) and torch.equal(causal.val_ids, ids[n:])
    assert causal.train_ids.dtype == torch.long


def test_causal_batch_is_shifted_by_one(causal: CausalLMData) -> None:
    batch = causal.get_batch("train", 8, torch.Generator().manual_seed(0))
    assert set(batch) == {"input_ids", "targets"}
    x, y = batch["input_ids"], batch["targets"]
    assert x.shape == y.shape == (8, 32) and x.dtype == y.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])
    # the windows nanoGPT's get_batch would cut with the same generator state
    limit = len(causal.train_ids) - 32
    starts = torch.randint(limit, (8,), generator=torch.Generator().manual_seed(0))
    for row, start in enumerate(starts.tolist()):
        assert torch.equal(x[row], causal.train_ids[start : start + 32])
        assert torch.equal(y[row], causal.train_ids[start + 1 : start + 33])


def test_causal_batches_reproducible(causal: CausalLMData) -> None:
    first = causal.get_batch("val", 4, torch.Generator().manual_seed(7))
    second = causal.get_batch("val", 4, torch.Generator().manual_seed(7))
    other = causal.get_batch("val", 4, torch.Generator().manual_seed(8))
    assert torch.equal(first["input_ids"], second["input_ids"])
    assert not torch.equal(first["input_ids"], other["input_ids"])


def test_causal_iter_batches_covers_every_target_once(shakespeare: str) -> None:
    tok = CharTokenizer.train(shakespeare)
    data = CausalLMData.from_text(shakespeare[:1000], tok, seq_len=16, val_fraction=0.25)
    for split, ids in (("train", data.train_ids), ("val", data.val_ids)):
        batches = list(data.iter_batches(split, 5))
        assert all(b["input_ids"].shape[1] == 16 for b in batches)
        assert all(len(b["input_ids"]) <= 5 for b in batches)
        targets = torch.cat([b["targets"].flatten() for b in batches])
        inputs = torch.cat([b["input_ids"].flatten() for b in batches])
        real = targets != -100
        assert torch.equal(targets[real], ids[1:])
        assert torch.equal(inputs[real], ids[:-1])
        assert real.sum() == len(ids) - 1


def test_causal_fingerprint(shakespeare: str) -> None:
    tok = CharTokenizer.train(shakespeare)
    a = CausalLMData.from_text(shakespeare[:5000], tok, seq_len=16)
    b = CausalLMData.from_text(shakespeare[:5000], tok, seq_len=16)
    assert len(a.fingerprint) == 64 and a.fingerprint == b.fingerprint
    assert CausalLMData.from_text(shakespeare[:5000], tok, seq_len=8).fingerprint != a.fingerprint
    assert CausalLMData.from_text(shakespeare[:4000], tok, seq_len=16).fingerprint != a.fingerprint
    assert "train=4500 tokens" in repr(a)


def test_causal_errors(causal: CausalLMData) -> None:
    tok = ByteTokenizer()
    with pytest.raises(DataError, match="text is empty"):
        CausalLMData.from_text("", tok, seq_len=4)
    with pytest.raises(DataError, match="text must be a str"):
        CausalLMData.from_text(["abc"], tok, seq_len=4)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="tokenizer must be an llmlab Tokenizer"):
        CausalLMData.from_text("abc", "gpt2", seq_len=4)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="val split has 10 tokens but seq_len=10 needs at least 11"):
        CausalLMData.from_text("x" * 100, tok, seq_len=10)
    with pytest.raises(DataError, match="train split has 9 tokens .* smaller val_fraction"):
        CausalLMData.from_text("x" * 10, tok, seq_len=9, val_fraction=0.1)
    for bad in (1, 1.5, -0.1, "0.1"):
        with pytest.raises(DataError, match=r"val_fraction must be in \[0, 1\)"):
            CausalLMData.from_text("x" * 100, tok, seq_len=4, val_fraction=bad)
    for bad in (0, -3, 2.0):
        with pytest.raises(DataError, match="seq_len must be an int >= 1"):
            CausalLMData.from_text("x" * 100, tok, seq_len=bad)
    with pytest.raises(DataError, match="batch_size must be an int >= 1"):
        causal.get_batch("train", 0)
    with pytest.raises(DataError, match="batch_size must be an int >= 1"):
        causal.iter_batches("val", -1)  # checked at the call, not at the first batch
    with pytest.raises(DataError, match=r"unknown split 'test'. Use one of \['train', 'val'\]"):
        causal.get_batch("test", 2)
    with pytest.raises(DataError, match="generator must be a torch.Generator"):
        causal.get_batch("train", 2, generator=0)  # type: ignore[arg-type]


def test_corpus_ids_must_fit_the_tokenizer() -> None:
    ids = torch.tensor([0, 1, 2, 300, 4, 5])
    with pytest.raises(DataError, match=r"token id 300 .*\(vocab_size 256\)"):
        CausalLMData(ids, ByteTokenizer(), seq_len=2, val_fraction=0)


def test_causal_without_validation() -> None:
    data = CausalLMData.from_text("abcdefgh" * 4, ByteTokenizer(), seq_len=4, val_fraction=0)
    assert len(data.val_ids) == 0
    assert data.get_batch("train", 2)["input_ids"].shape == (2, 4)
    with pytest.raises(DataError, match="val split is empty .*val_fraction > 0"):
        data.get_batch("val", 2)


# ---------------------------------------------------------------------------------------------
# MaskedLMData


def test_mlm_masking_proportions(bert_tok: CharTokenizer, shakespeare: str) -> None:
    data = MaskedLMData.from_text(shakespeare[:200_000], bert_tok, seq_len=64)
    generator = torch.Generator().manual_seed(0)
    batch = data.get_batch("train", 1024, generator)
    assert set(batch) == {"input_ids", "targets"}
    inputs, targets = batch["input_ids"], batch["targets"]
    assert inputs.shape == targets.shape == (1024, 64)
    chosen = targets != -100
    assert abs(chosen.float().mean().item() - 0.15) < 0.01
    masked = (inputs == bert_tok.mask_id) & chosen
    kept = (inputs == targets) & chosen
    replaced = chosen & ~masked & ~kept
    n = chosen.sum().item()
    assert abs(masked.sum().item() / n - 0.8) < 0.02
    assert abs(kept.sum().item() / n - 0.1) < 0.02  # 10% kept, plus random picks of the same id
    assert abs(replaced.sum().item() / n - 0.1) < 0.02
    assert not (inputs == bert_tok.mask_id)[~chosen].any()
    assert not torch.isin(inputs[replaced], torch.tensor(sorted(bert_tok.special_ids))).any()


def test_mlm_rules_on_known_windows(bert_tok: CharTokenizer, shakespeare: str) -> None:
    data = MaskedLMData.from_text(shakespeare[:20_000], bert_tok, seq_len=50, val_fraction=0.5)
    batches = list(data.iter_batches("val", 64))
    inputs = torch.cat([b["input_ids"] for b in batches]).flatten()
    targets = torch.cat([b["targets"] for b in batches]).flatten()
    real = torch.cat([b["attention_mask"] for b in batches]).flatten()
    assert real.dtype == torch.bool and real.sum() == len(data.val_ids)
    original = data.val_ids
    n = len(original)
    chosen = targets[:n] != -100
    assert torch.equal(targets[:n][chosen], original[chosen])
    assert torch.equal(inputs[:n][~chosen], original[~chosen])  # the rest is untouched
    assert (targets[n:] == -100).all() and not real[n:].any()
    again = torch.cat([b["input_ids"] for b in data.iter_batches("val", 64)]).flatten()
    assert torch.equal(inputs, again)  # evaluation masking is reproducible


def test_mlm_never_chooses_special_tokens(bert_tok: CharTokenizer) -> None:
    body = torch.tensor(bert_tok.encode("to be or not to be"))
    row = torch.cat([torch.tensor([bert_tok.cls_id]), body, torch.tensor([bert_tok.sep_id])])
    ids = row.repeat(200)
    data = MaskedLMData(ids, bert_tok, seq_len=len(row), val_fraction=0.1, mask_prob=1.0)
    batch = data.get_batch("train", 256, torch.Generator().manual_seed(1))
    special = torch.isin(batch["targets"], torch.tensor(sorted(bert_tok.special_ids)))
    assert not special.any()
    chosen = batch["targets"] != -100
    assert chosen.float().mean().item() == pytest.approx(len(body) / len(row))


def test_mlm_errors(shakespeare: str, bert_tok: CharTokenizer) -> None:
    with pytest.raises(
        DataError, match="needs a tokenizer with a mask token.*special_tokens='bert'"
    ):
        MaskedLMData.from_text(shakespeare[:1000], CharTokenizer.train(shakespeare), seq_len=8)
    for bad in (0, 1.5, -0.1):
        with pytest.raises(DataError, match=r"mask_prob must be in \(0, 1\]"):
            MaskedLMData.from_text(shakespeare[:1000], bert_tok, seq_len=8, mask_prob=bad)
    with pytest.raises(DataError, match="val split has 10 tokens but seq_len=20 needs at least 20"):
        MaskedLMData.from_text(shakespeare[:100], bert_tok, seq_len=20)


# ---------------------------------------------------------------------------------------------
# Seq2SeqData


def test_seq2seq_layout(seq_tok: CharTokenizer) -> None:
    data = Seq2SeqData.from_pairs([("abc", "de")], seq_tok, seq_len=5, val_fraction=0)
    batch = next(data.iter_batches("train", 4))
    assert set(batch) == {
        "input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask", "targets"
    }  # fmt: skip
    pad, bos, eos = seq_tok.pad_id, seq_tok.bos_id, seq_tok.eos_id
    a, b, c, d, e = seq_tok.encode("abcde")
    assert batch["input_ids"].tolist() == [[a, b, c, pad, pad]]
    assert batch["attention_mask"].tolist() == [[True, True, True, False, False]]
    assert batch["decoder_input_ids"].tolist() == [[bos, d, e, pad, pad]]
    assert batch["decoder_attention_mask"].tolist() == [[True, True, True, False, False]]
    assert batch["targets"].tolist() == [[d, e, eos, -100, -100]]
    assert batch["attention_mask"].dtype == torch.bool


def test_seq2seq_truncates_to_seq_len(seq_tok: CharTokenizer) -> None:
    data = Seq2SeqData.from_pairs([("abcdefgh", "hgfedcba")], seq_tok, seq_len=4, val_fraction=0)
    batch = data.get_batch("train", 3, torch.Generator().manual_seed(0))
    assert batch["input_ids"].shape == batch["targets"].shape == (3, 4)
    assert batch["input_ids"][0].tolist() == seq_tok.encode("abcd")
    assert batch["decoder_input_ids"][0].tolist() == [seq_tok.bos_id, *seq_tok.encode("hgf")]
    assert batch["targets"][0].tolist() == seq_tok.encode("hgfe")  # eos cut off
    assert batch["decoder_attention_mask"].all()


def test_seq2seq_split_and_iteration(seq_tok: CharTokenizer) -> None:
    pairs = [(f"{'a' * (i % 7 + 1)}", f"{'b' * (i % 5)}") for i in range(40)]
    data = Seq2SeqData.from_pairs(pairs, seq_tok, seq_len=8, val_fraction=0.25)
    assert len(data) == 40
    train = torch.cat([b["input_ids"] for b in data.iter_batches("train", 7)])
    val = torch.cat([b["input_ids"] for b in data.iter_batches("val", 7)])
    assert (len(train), len(val)) == (30, 10)
    rebuilt = Seq2SeqData.from_pairs(pairs, seq_tok, seq_len=8, val_fraction=0.25)
    assert rebuilt.fingerprint == data.fingerprint  # the shuffle is seeded


def test_seq2seq_errors(seq_tok: CharTokenizer) -> None:
    with pytest.raises(DataError, match=r"needs the tokenizer's pad, bos, eos token\(s\)"):
        Seq2SeqData.from_pairs([("a", "b")], CharTokenizer.train("ab"), seq_len=4)
    with pytest.raises(DataError, match="needs the tokenizer's bos token.*<bos>"):
        Seq2SeqData.from_pairs([("a", "b")], CharTokenizer.train("ab", special_tokens=(
            "<pad>", "<eos>")), seq_len=4)  # fmt: skip
    with pytest.raises(DataError, match="no pairs given"):
        Seq2SeqData.from_pairs([], seq_tok, seq_len=4)
    with pytest.raises(DataError, match="pair 1 is .*tuple of two strings"):
        Seq2SeqData.from_pairs([("a", "b"), ("a",)], seq_tok, seq_len=4)
    with pytest.raises(DataError, match="source text 0 encodes to no tokens"):
        Seq2SeqData.from_pairs([("", "b")], seq_tok, seq_len=4, val_fraction=0)


# ---------------------------------------------------------------------------------------------
# ClassificationData


def test_classification_adds_cls_sep_and_pads() -> None:
    tok = CharTokenizer.train("abcdef", special_tokens="bert")
    pad, cls, sep = tok.pad_id, tok.cls_id, tok.sep_id
    data = ClassificationData.from_texts(["ab", "cdefab"], [0, 1], tok, seq_len=5, val_fraction=0)
    batch = next(data.iter_batches("train", 8))
    assert set(batch) == {"input_ids", "attention_mask", "targets"}
    rows = dict(zip(batch["targets"].tolist(), batch["input_ids"].tolist(), strict=False))
    assert rows[0] == [cls, 0, 1, sep, pad]
    assert rows[1] == [cls, 2, 3, 4, sep]  # truncated, cls and sep kept
    assert batch["attention_mask"].sum(1).tolist() == [
        5 if t == 1 else 4 for t in batch["targets"].tolist()
    ]
    assert batch["targets"].shape == (2,) and batch["targets"].dtype == torch.long


def test_classification_without_special_tokens_pads_with_zero() -> None:
    tok = CharTokenizer.train("xyz")
    data = ClassificationData.from_texts(["zz", "y"], [1, 0], tok, seq_len=3, val_fraction=0)
    batch = next(data.iter_batches("train", 2))
    by_label = dict(zip(batch["targets"].tolist(), batch["input_ids"].tolist(), strict=False))
    assert by_label == {1: [2, 2, 0], 0: [1, 0, 0]}
    masks = dict(zip(batch["targets"].tolist(), batch["attention_mask"].tolist(), strict=False))
    assert masks[0] == [True, False, False]
    assert data.n_labels == 2 and data.label_names == []


def test_classification_on_sst2() -> None:
    train, dev = load_classification("sst2", "train"), load_classification("sst2", "dev")
    tok = CharTokenizer.train("".join(train.texts), special_tokens="bert", unk="<unk>")
    data = ClassificationData.from_splits(train, dev, tok, seq_len=24)
    assert data.n_labels == 2 and data.label_names == ["negative", "positive"]
    targets = torch.cat([b["targets"] for b in data.iter_batches("val", 100)])
    assert targets.tolist() == dev.labels  # every example once, in order
    batch = data.get_batch("train", 16, torch.Generator().manual_seed(0))
    assert batch["input_ids"].shape == (16, 24) and batch["targets"].shape == (16,)
    assert (batch["input_ids"][:, 0] == tok.cls_id).all()
    shuffled = ClassificationData.from_texts(dev, tokenizer=tok, seq_len=24)
    sizes = [sum(len(b["targets"]) for b in shuffled.iter_batches(s, 500)) for s in SPLITS]
    assert sizes == [785, 87] and len(shuffled) == 872
    assert shuffled.n_labels == 2 and shuffled.label_names == ["negative", "positive"]


def test_classification_errors() -> None:
    tok = CharTokenizer.train("abc", special_tokens="bert")
    examples = LabelledTexts(["a", "b"], [0, 1], ["no", "yes"])
    with pytest.raises(DataError, match=r"label 1 is 3, outside \[0, n_labels\) \(n_labels=2\)"):
        ClassificationData.from_texts(["a", "b"], [0, 3], tok, seq_len=4, n_labels=2)
    with pytest.raises(DataError, match="2 texts but 1 labels"):
        ClassificationData.from_texts(["a", "b"], [0], tok, seq_len=4)
    with pytest.raises(DataError, match="no texts given"):
        ClassificationData.from_texts([], [], tok, seq_len=4)
    with pytest.raises(DataError, match="labels are missing"):
        ClassificationData.from_texts(["a"], tokenizer=tok, seq_len=4)
    with pytest.raises(DataError, match="already holds its labels"):
        ClassificationData.from_texts(examples, [0, 1], tok, seq_len=4)
    with pytest.raises(DataError, match="texts must be a sequence of str"):
        ClassificationData.from_texts("ab", [0, 1], tok, seq_len=4)
    with pytest.raises(DataError, match="n_labels=3 but 2 label_names"):
        ClassificationData.from_texts(examples, tokenizer=tok, seq_len=4, n_labels=3)
    with pytest.raises(DataError, match="tokenizer must be an llmlab Tokenizer"):
        ClassificationData.from_texts(examples, seq_len=4)
    with pytest.raises(DataError, match="no room for text .* seq_len >= 3"):
        ClassificationData.from_texts(examples, tokenizer=tok, seq_len=2)
    with pytest.raises(DataError, match="text 1 encodes to no tokens"):
        ClassificationData.from_texts(["a", ""], [0, 1], CharTokenizer.train("a"), seq_len=4,
                                      val_fraction=0)  # fmt: skip
    with pytest.raises(DataError, match="train split is empty"):
        ClassificationData.from_splits(LabelledTexts([], []), examples, tok, seq_len=4)
    with pytest.raises(DataError, match="val must be LabelledTexts"):
        ClassificationData.from_splits(examples, [("a", 0)], tok, seq_len=4)  # type: ignore[arg-type]


def test_classification_empty_val(bert_tok: CharTokenizer) -> None:
    examples = LabelledTexts(["a", "b"], [0, 1])
    data = ClassificationData.from_splits(examples, LabelledTexts([], []), bert_tok, seq_len=4)
    with pytest.raises(DataError, match="val split is empty"):
        next(data.iter_batches("val", 2))


def test_classification_download_fetches_every_file_a_split_needs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """AG News's test split also needs classes.txt: both come down, checked, into the cache."""
    monkeypatch.delenv("LLMLAB_DATA_DIR")
    remote = tmp_path / "remote"
    for file in ("agnews/test.csv", "agnews/classes.txt"):
        (remote / file).parent.mkdir(parents=True, exist_ok=True)
        (remote / file).write_bytes((SHARED_DATA / file).read_bytes())
        real = data_module.CLASSIFICATION_FILES[file]
        monkeypatch.setitem(data_module.CLASSIFICATION_FILES, file,
                            Dataset(file=file, url=(remote / file).as_uri(), sha256=real.sha256))
    monkeypatch.setattr(urllib.request, "urlopen", data_module.urllib.request.build_opener().open)
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="download=True"):
        load_classification("agnews", "test", cache_dir=cache)
    fetched = load_classification("agnews", "test", download=True, cache_dir=cache)
    assert len(fetched.texts) == 7600 and fetched.label_names[1] == "Sports"
    assert sorted(p.name for p in (cache / "agnews").iterdir()) == ["classes.txt", "test.csv"]


def test_classification_files_have_the_shared_copies_checksums() -> None:
    for file, dataset in data_module.CLASSIFICATION_FILES.items():
        assert hashlib.sha256((SHARED_DATA / file).read_bytes()).hexdigest() == dataset.sha256
    needed = {f for spec in data_module.CLASSIFICATION_SETS.values()
              for f in (*spec.splits.values(), *spec.needs)}
    assert needed == set(data_module.CLASSIFICATION_FILES)
