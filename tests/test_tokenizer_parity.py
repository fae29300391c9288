"""Tokenizers of Hugging Face folders give transformers' ids, special tokens and chat prompts.

Each folder is written by transformers' ``save_pretrained`` from a tokenizer this file trains,
then read by ``llmlab.load_tokenizer`` and by ``AutoTokenizer``; the two must agree.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from real_models import byte_bpe, save_llama_tokenizer

from llmlab.errors import TokenizerError
from llmlab.tokenizers import HFTokenizer, load_tokenizer

TEXTS = [
    "The capital of France is Paris.",
    "Café naïve résumé – déjà vu",
    "emoji 🤖🎉 and CJK 東京",
    "spaces   and\ttabs\n\nnew  lines   ",
    "  leading and trailing  ",
    "UPPER lower MiXeD 12345",
    "",
]
CORPUS = TEXTS * 20 + ["the quick brown fox jumps over the lazy dog"] * 50  # BERT's words

CHAT = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Où est la gare? 🚉"},
    {"role": "assistant", "content": "Tout droit."},
    {"role": "user", "content": "Merci"},
]


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BertTokenizerFast

    folder = tmp_path_factory.mktemp("bert")
    words = sorted({w.lower() for t in CORPUS for w in t.replace("?", " ").split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *list("abcdefghijklmnopqrstuvwxyz"),
             *[f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"], *words]
    ids = {token: i for i, token in enumerate(dict.fromkeys(vocab))}
    BertTokenizerFast(vocab=ids).save_pretrained(folder)
    (folder / "vocab.txt").write_text("".join(f"{token}\n" for token in ids))  # older layout
    return folder


@pytest.fixture(scope="module")
def llama_style_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Byte-level BPE that adds a BOS, with a ChatML chat template (SmolLM2/Qwen style)."""
    folder = tmp_path_factory.mktemp("llama")
    save_llama_tokenizer(folder)
    return folder


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import GPT2TokenizerFast

    folder = tmp_path_factory.mktemp("gpt2")
    tok = byte_bpe(["<|endoftext|>"])
    GPT2TokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                      eos_token="<|endoftext|>").save_pretrained(folder)
    return folder


def _assert_same_ids(folder: Path, ours: HFTokenizer) -> None:
    from transformers import AutoTokenizer

    theirs = AutoTokenizer.from_pretrained(folder)
    for text in TEXTS:
        for special in (False, True):
            expected = theirs(text, add_special_tokens=special)["input_ids"]
            assert ours.encode(text, add_special_tokens=special) == expected, (text, special)
    assert ours.encode_batch(TEXTS, add_special_tokens=True) == [
        theirs(t)["input_ids"] for t in TEXTS]


def test_bert_folder_ids_and_cls_sep_match_transformers(bert_folder: Path) -> None:
    tok = load_tokenizer(bert_folder)
    _assert_same_ids(bert_folder, tok)
    ids = tok.encode("paris", add_special_tokens=True)
    assert ids[0] == tok.cls_id and ids[-1] == tok.sep_id
    assert tok.unk_id not in tok.encode("The capital of France is")


def test_a_bert_folder_with_only_vocab_txt_adds_cls_and_sep(bert_folder: Path,
                                                            tmp_path: Path) -> None:
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (bert_folder / name).exists():
            (tmp_path / name).write_bytes((bert_folder / name).read_bytes())
    _assert_same_ids(bert_folder, load_tokenizer(tmp_path))


def test_gpt2_folder_ids_match_transformers(gpt2_folder: Path) -> None:
    _assert_same_ids(gpt2_folder, load_tokenizer(gpt2_folder))


def test_llama_style_folder_adds_bos_like_transformers(llama_style_folder: Path) -> None:
    tok = load_tokenizer(llama_style_folder)
    _assert_same_ids(llama_style_folder, tok)
    assert tok.encode("hi", add_special_tokens=True)[0] == tok.bos_id
    assert tok.eos_id == tok.hf_tokenizer.token_to_id("</s>")


@pytest.mark.parametrize("add_generation_prompt", [False, True])
def test_chat_template_renders_as_transformers_does(llama_style_folder: Path,
                                                    add_generation_prompt: bool) -> None:
    from transformers import AutoTokenizer

    theirs = AutoTokenizer.from_pretrained(llama_style_folder)
    ours = load_tokenizer(llama_style_folder)
    options = {"add_generation_prompt": add_generation_prompt}
    text = ours.apply_chat_template(CHAT, tokenize=False, **options)
    assert text == theirs.apply_chat_template(CHAT, tokenize=False, **options)
    ids = theirs.apply_chat_template(CHAT, tokenize=True, **options)
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    assert ours.apply_chat_template(CHAT, **options) == list(ids)


def test_chat_template_jinja_file_and_save_round_trip(llama_style_folder: Path,
                                                      tmp_path: Path) -> None:
    folder = tmp_path / "with-jinja"
    folder.mkdir()
    (folder / "tokenizer.json").write_bytes((llama_style_folder / "tokenizer.json").read_bytes())
    (folder / "chat_template.jinja").write_text("{{ messages | length }} turns")
    tok = load_tokenizer(folder)
    assert tok.apply_chat_template(CHAT, tokenize=False) == "4 turns"
    tok.save(tmp_path / "saved")
    assert load_tokenizer(tmp_path / "saved").apply_chat_template(CHAT, tokenize=False) == "4 turns"


def test_chat_template_bad_input_is_a_clear_error(gpt2_folder: Path,
                                                  llama_style_folder: Path) -> None:
    with pytest.raises(TokenizerError, match="no chat template"):
        load_tokenizer(gpt2_folder).apply_chat_template(CHAT)
    tok = load_tokenizer(llama_style_folder)
    with pytest.raises(TokenizerError, match="list of"):
        tok.apply_chat_template("hello")
    with pytest.raises(TokenizerError, match="message 1"):
        tok.apply_chat_template([{"role": "user", "content": "a"}, "b"])
    strict = HFTokenizer(tok.hf_tokenizer, tok.roles, chat_template=(
        "{% if messages[0]['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}ok"))
    with pytest.raises(TokenizerError, match="System role not supported"):
        strict.apply_chat_template(CHAT)
    broken = HFTokenizer(tok.hf_tokenizer, tok.roles, chat_template="{% for %}")
    with pytest.raises(TokenizerError, match="not valid Jinja"):
        broken.apply_chat_template(CHAT)


def test_a_chat_template_of_the_wrong_type_names_the_file(llama_style_folder: Path,
                                                          tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_bytes((llama_style_folder / "tokenizer.json").read_bytes())
    (tmp_path / "tokenizer_config.json").write_text('{"chat_template": 5}')
    with pytest.raises(TokenizerError, match="tokenizer_config.json.*chat_template"):
        load_tokenizer(tmp_path)


def test_an_exported_folder_keeps_the_chat_template(llama_style_folder: Path,
                                                    tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from llmlab.interop._hf import save_tokenizer

    tok = load_tokenizer(llama_style_folder)
    save_tokenizer(tok, tmp_path, vocab_size=tok.vocab_size, context_length=64)
    expected = tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    theirs = AutoTokenizer.from_pretrained(tmp_path)
    assert theirs.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True) == expected
    assert load_tokenizer(tmp_path).encode("hi", add_special_tokens=True)[0] == tok.bos_id
