"""Tokenizers: text <-> token ids, with one interface for every kind.

Four kinds share the ``Tokenizer`` interface (``encode``, ``decode``, ``vocab_size``,
``special_tokens``, ``save``):

- ``CharTokenizer``: one id per distinct character of a training text (nanoGPT's char model);
- ``ByteTokenizer``: one id per UTF-8 byte, so it needs no training and reads any text;
- ``BPETokenizer``: byte-level BPE trained with Hugging Face ``tokenizers`` (GPT-2's scheme);
- ``HFTokenizer``: any Hugging Face ``tokenizers.Tokenizer``, e.g. read from a local GPT-2 or
  BERT model directory by ``load_tokenizer``.

>>> tok = CharTokenizer.train("hello world", special_tokens="bert")
>>> tok.decode(tok.encode("hello"))
'hello'

Special tokens have *roles* ("pad", "bos", "eos", "mask", "cls", "sep", "unk"); the data
module and the models ask for ``tok.pad_id`` or ``tok.mask_id`` rather than for names.
Char and byte tokenizers never read special tokens out of text: ``encode("<pad>")`` gives
the ids of its five characters. Hugging Face tokenizers (BPE included) do, as in
``transformers``: ``encode("<|endoftext|>")`` gives the one special id.

This module does not import torch; Hugging Face ``tokenizers`` is imported only when a BPE or
HF tokenizer is built.
"""

from __future__ import annotations

import json
import operator
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from llmlab._files import write_text_atomic
from llmlab.errors import TokenizerError
from llmlab.formats import Format

if TYPE_CHECKING:  # pragma: no cover
    import tokenizers as hf

__all__ = [
    "ROLES",
    "BPETokenizer",
    "ByteTokenizer",
    "CharTokenizer",
    "HFTokenizer",
    "Tokenizer",
    "load_tokenizer",
]

ROLES = ("pad", "bos", "eos", "mask", "cls", "sep", "unk")

# special-token name -> the roles it plays
KNOWN_SPECIAL_TOKENS: dict[str, tuple[str, ...]] = {
    "<pad>": ("pad",),
    "<bos>": ("bos",),
    "<eos>": ("eos",),
    "<mask>": ("mask",),
    "<cls>": ("cls",),
    "<sep>": ("sep",),
    "<unk>": ("unk",),
    "<|endoftext|>": ("bos", "eos"),
    "[PAD]": ("pad",),
    "[CLS]": ("cls",),
    "[SEP]": ("sep",),
    "[MASK]": ("mask",),
    "[UNK]": ("unk",),
    "<s>": ("bos",),
    "</s>": ("eos",),
}

PRESETS: dict[str, tuple[str, ...]] = {
    "bert": ("<pad>", "<mask>", "<cls>", "<sep>"),
    "gpt": (),
}

FORMAT_VERSION = 1
#: The tokenizer.json header: the key "llmlab_tokenizer" holds the version (and marks the
#: file as llmlab's rather than Hugging Face's).
TOKENIZER_FORMAT = Format(None, FORMAT_VERSION, version_key="llmlab_tokenizer",
                          what="an llmlab tokenizer",
                          redo="save the tokenizer again with tok.save(directory)")
FILE_NAME = "tokenizer.json"


# ---------------------------------------------------------------------------------------------
# shared helpers


def _special_names(special_tokens: Sequence[str] | str) -> list[str]:
    """Expand a preset name ("bert", "gpt") or check a sequence of special-token names."""
    if isinstance(special_tokens, str):
        if special_tokens not in PRESETS:
            presets = ", ".join(f"{k!r} = {list(v)}" for k, v in PRESETS.items())
            raise TokenizerError(
                f"special_tokens={special_tokens!r} is not a preset. Use one of {presets}, "
                "or pass a sequence of names such as ('<pad>', '<mask>')."
            )
        return list(PRESETS[special_tokens])
    names = list(special_tokens)
    for name in names:
        if not isinstance(name, str) or not name:
            raise TokenizerError(
                f"special token {name!r} is not a non-empty string. Pass names such as '<pad>'."
            )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise TokenizerError(
            f"special tokens {duplicates} are listed more than once. List each name once."
        )
    return names


def _roles_of(name: str) -> tuple[str, ...]:
    if name not in KNOWN_SPECIAL_TOKENS:
        raise TokenizerError(
            f"special token {name!r} has no known role. Use names from "
            f"{list(KNOWN_SPECIAL_TOKENS)} (roles: {', '.join(ROLES)})."
        )
    return KNOWN_SPECIAL_TOKENS[name]


def _assign_role(roles: dict[str, int], role: str, token_id: int, name: str) -> None:
    if role in roles and roles[role] != token_id:
        raise TokenizerError(
            f"special token {name!r} would be a second {role!r} token. Keep one special token "
            f"per role (roles: {', '.join(ROLES)})."
        )
    roles[role] = token_id


def _as_ids(ids: Iterable[int]) -> list[int]:
    """A plain list of ints from a list, tuple, numpy array or 1-D torch tensor."""
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if isinstance(ids, (str, bytes)):
        raise TokenizerError(
            f"expected token ids, got {type(ids).__name__} {ids!r:.40}. "
            "Pass a list of ints (use encode() to turn text into ids)."
        )
    ids = list(ids)
    try:
        return [operator.index(i) for i in ids]
    except TypeError:
        bad = next(i for i in ids if not _is_int(i))
        raise TokenizerError(
            f"token id {bad!r} is a {type(bad).__name__}, not an int. Pass a flat sequence of "
            "ints (for a batch, decode each row separately)."
        ) from None


def _is_int(value: object) -> bool:
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# the interface


class Tokenizer:
    """What every llmlab tokenizer offers. Subclasses fill in the vocabulary.

    >>> tok = ByteTokenizer(special_tokens=("<eos>",))
    >>> tok.encode("hi"), tok.eos_id, tok.vocab_size
    ([104, 105], 256, 257)
    """

    type_name: ClassVar[str] = ""
    special_tokens: dict[str, int]

    @property
    def vocab_size(self) -> int:
        """Number of ids: every id is in ``range(vocab_size)``."""
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``."""
        raise NotImplementedError

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        """``encode`` of each text.

        >>> ByteTokenizer().encode_batch(["a", "bc"])
        [[97], [98, 99]]
        """
        out = []
        for index, text in enumerate(texts):
            try:
                out.append(self.encode(text))
            except TokenizerError as e:
                raise TokenizerError(f"text {index} of the batch: {e}") from None
        return out

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Text of ``ids``; with ``skip_special_tokens`` special tokens are left out."""
        ids = self._checked(ids)
        if skip_special_tokens:
            specials = self.special_ids
            ids = [i for i in ids if i not in specials]
        return self._decode(ids)

    def _decode(self, ids: list[int]) -> str:
        raise NotImplementedError

    def id_to_token(self, i: int) -> str:
        """Display string of one id (see each class for how tokens are shown)."""
        return self._token(self._checked([i])[0])

    def _token(self, i: int) -> str:
        raise NotImplementedError

    def tokens(self, ids: Iterable[int]) -> list[str]:
        """Display strings of ``ids``, e.g. for the labels of an attention view.

        >>> CharTokenizer.train("abc").tokens([0, 2])
        ['a', 'c']
        """
        return [self._token(i) for i in self._checked(ids)]

    @property
    def special_ids(self) -> set[int]:
        """Ids of all special tokens."""
        return set(self.special_tokens.values())

    def _checked(self, ids: Iterable[int]) -> list[int]:
        ids = _as_ids(ids)
        n = self.vocab_size
        if ids and (min(ids) < 0 or max(ids) >= n):
            bad = next(i for i in ids if not 0 <= i < n)
            raise TokenizerError(
                f"token id {bad} is outside this {type(self).__name__}'s vocabulary "
                f"(vocab_size {n}, ids 0..{n - 1}). Decode ids made by this tokenizer, or check "
                "that the model's vocab_size matches the tokenizer's."
            )
        return ids

    def _role_id(self, role: str) -> int | None:
        return self.special_tokens.get(role)

    @property
    def pad_id(self) -> int | None:
        """Id of the padding token, or None."""
        return self._role_id("pad")

    @property
    def bos_id(self) -> int | None:
        """Id of the beginning-of-sequence token, or None."""
        return self._role_id("bos")

    @property
    def eos_id(self) -> int | None:
        """Id of the end-of-sequence token, or None."""
        return self._role_id("eos")

    @property
    def mask_id(self) -> int | None:
        """Id of the mask token (masked LM), or None."""
        return self._role_id("mask")

    @property
    def cls_id(self) -> int | None:
        """Id of the classification token, or None."""
        return self._role_id("cls")

    @property
    def sep_id(self) -> int | None:
        """Id of the separator token, or None."""
        return self._role_id("sep")

    @property
    def unk_id(self) -> int | None:
        """Id of the unknown token, or None."""
        return self._role_id("unk")

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(vocab_size={self.vocab_size}, "
            f"special_tokens={self.special_tokens})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description, read back by ``load_tokenizer``."""
        return {**TOKENIZER_FORMAT.header(), "type": self.type_name, **self._fields()}

    def _fields(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tokenizer:
        """Rebuild a tokenizer from ``to_dict()``'s output."""
        raise NotImplementedError

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``directory/tokenizer.json`` atomically (creating the directory); return its path.

        >>> path = CharTokenizer.train("abc").save(tmp_dir)  # doctest: +SKIP
        >>> load_tokenizer(path.parent)  # doctest: +SKIP
        """
        path = Path(directory) / FILE_NAME
        write_text_atomic(path, json.dumps(self.to_dict(), ensure_ascii=False))
        return path


# ---------------------------------------------------------------------------------------------
# characters and bytes


class CharTokenizer(Tokenizer):
    """One id per character: ids 0..n-1 are the sorted characters, special tokens follow.

    ``id_to_token`` shows a character as itself (a newline is "\\n") and a special token by
    its name. ``encode`` is a dict lookup per character in one list comprehension: about
    50 ms for a 1 MB corpus.

    >>> tok = CharTokenizer.train("hello", special_tokens=("<eos>",))
    >>> tok.encode("hole"), tok.eos_id
    ([1, 3, 2, 0], 4)
    """

    type_name = "char"

    def __init__(
        self, chars: Sequence[str], special_tokens: Sequence[str] | str = (), unk: str | None = None
    ) -> None:
        self.chars = self._checked_chars(chars)
        self.specials = _special_names(special_tokens)
        self.unk = unk
        self._itos = self.chars + self.specials
        if unk is not None and unk not in self._itos:
            self._itos.append(unk)
        self._stoi = {s: i for i, s in enumerate(self._itos)}
        self.special_tokens = {}
        for name in self.specials:
            for role in _roles_of(name):
                _assign_role(self.special_tokens, role, self._stoi[name], name)
        if unk is not None:
            _assign_role(self.special_tokens, "unk", self._stoi[unk], unk)

    @staticmethod
    def _checked_chars(chars: Sequence[str]) -> list[str]:
        chars = list(chars)
        if not chars:
            raise TokenizerError(
                "a CharTokenizer needs at least one character. Train it on non-empty text: "
                "CharTokenizer.train(text)."
            )
        bad = [c for c in chars if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise TokenizerError(
                f"CharTokenizer characters must be strings of length 1; got {bad[0]!r}. "
                "Pass the characters of the vocabulary, e.g. sorted(set(text))."
            )
        if len(set(chars)) != len(chars):
            raise TokenizerError(
                "CharTokenizer characters contain duplicates. Pass each character once, "
                "e.g. sorted(set(text))."
            )
        return chars

    @classmethod
    def train(
        cls, text: str, *, special_tokens: Sequence[str] | str = (), unk: str | None = None
    ) -> CharTokenizer:
        """Vocabulary = the sorted distinct characters of ``text``, then ``special_tokens``.

        ``special_tokens`` is a sequence of names (``<pad> <bos> <eos> <mask> <cls> <sep>
        <unk>``...) or a preset: ``"bert"`` (pad, mask, cls, sep) or ``"gpt"`` (none).
        With ``unk`` (e.g. ``"<unk>"``), characters not in the vocabulary encode to that token
        instead of raising.

        >>> tok = CharTokenizer.train("abcab", unk="<unk>")
        >>> tok.encode("abz")
        [0, 1, 3]
        """
        if not isinstance(text, str):
            raise TokenizerError(
                f"CharTokenizer.train needs a str, got {type(text).__name__}. "
                "Read the corpus first, e.g. llmlab.data.load_text(path)."
            )
        if not text:
            raise TokenizerError(
                "CharTokenizer.train got empty text. Pass the corpus the model will see, "
                "e.g. llmlab.data.load_text('tinyshakespeare')."
            )
        return cls(sorted(set(text)), special_tokens, unk)

    @property
    def vocab_size(self) -> int:
        return len(self._itos)

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TokenizerError(f"encode needs a str, got {type(text).__name__}.")
        stoi = self._stoi
        if self.unk is not None:
            unk_id = stoi[self.unk]
            return [stoi.get(c, unk_id) for c in text]
        try:
            return [stoi[c] for c in text]
        except KeyError as e:
            char = e.args[0]
            raise TokenizerError(
                f"character {char!r} at position {text.index(char)} is not in this "
                f"CharTokenizer's vocabulary ({len(self.chars)} characters). Retrain the "
                "tokenizer on text that contains it, or pass unk='<unk>' to "
                "CharTokenizer.train to map unknown characters to an unknown token."
            ) from None

    def _decode(self, ids: list[int]) -> str:
        itos = self._itos
        return "".join([itos[i] for i in ids])

    def _token(self, i: int) -> str:
        return self._itos[i]

    def _fields(self) -> dict[str, Any]:
        return {"chars": self.chars, "special_tokens": self.specials, "unk": self.unk}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CharTokenizer:
        return cls(data["chars"], data.get("special_tokens", ()), data.get("unk"))


class ByteTokenizer(Tokenizer):
    """Ids 0..255 are the UTF-8 bytes of the text; special tokens follow from 256.

    Any text round-trips. ``decode`` of a byte sequence that is not valid UTF-8 (a model's
    sample may hold one) puts U+FFFD "\N{REPLACEMENT CHARACTER}" where the bad bytes were
    (``errors="replace"``). ``id_to_token`` shows printable ASCII bytes as themselves, other
    bytes as ``<0xNN>`` and special tokens by name.

    >>> tok = ByteTokenizer()
    >>> tok.encode("é"), tok.decode([195, 169]), tok.id_to_token(10)
    ([195, 169], 'é', '<0x0A>')
    """

    type_name = "byte"

    def __init__(self, special_tokens: Sequence[str] | str = ()) -> None:
        self.specials = _special_names(special_tokens)
        self.special_tokens = {}
        for offset, name in enumerate(self.specials):
            for role in _roles_of(name):
                _assign_role(self.special_tokens, role, 256 + offset, name)

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.specials)

    def encode(self, text: str) -> list[int]:
        try:
            return list(text.encode("utf-8"))
        except UnicodeEncodeError as e:
            raise TokenizerError(
                f"character {text[e.start]!r} at position {e.start} cannot be written as UTF-8 "
                "(a lone surrogate). Clean the text first, e.g. "
                "text.encode('utf-8', 'replace').decode('utf-8')."
            ) from None
        except AttributeError:
            raise TokenizerError(
                f"ByteTokenizer.encode needs a str, got {type(text).__name__}."
                " Decode bytes to str first."
            ) from None

    def _decode(self, ids: list[int]) -> str:
        parts: list[str] = []
        run: list[int] = []
        for i in ids:
            if i < 256:
                run.append(i)
                continue
            parts.append(bytes(run).decode("utf-8", errors="replace"))
            parts.append(self.specials[i - 256])
            run = []
        parts.append(bytes(run).decode("utf-8", errors="replace"))
        return "".join(parts)

    def _token(self, i: int) -> str:
        if i >= 256:
            return self.specials[i - 256]
        return chr(i) if 0x20 <= i < 0x7F else f"<0x{i:02X}>"

    def _fields(self) -> dict[str, Any]:
        return {"special_tokens": self.specials}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ByteTokenizer:
        return cls(data.get("special_tokens", ()))


# ---------------------------------------------------------------------------------------------
# Hugging Face tokenizers


class HFTokenizer(Tokenizer):
    """A Hugging Face ``tokenizers.Tokenizer`` plus a role -> token map and, for chat
    models, the chat template of their folder.

    ``encode`` adds no special tokens unless asked: the data module adds them where a task
    wants them. ``encode(text, add_special_tokens=True)`` adds what the tokenizer's
    post-processor adds, as ``transformers`` does ([CLS] ... [SEP] for BERT, <s> for Llama).
    ``apply_chat_template`` renders a conversation with the folder's template (Jinja, in a
    sandbox, as ``transformers`` renders it). ``id_to_token`` returns the vocabulary entry
    as the model stores it: byte-level BPE shows a leading space as "Ġ" ("Ġthe"), WordPiece
    shows a word's continuation as "##ing".

    >>> from tokenizers import Tokenizer, models
    >>> hf_tok = Tokenizer(models.WordLevel({"[UNK]": 0, "hi": 1}, "[UNK]"))
    >>> HFTokenizer(hf_tok, roles={"unk": "[UNK]"}).unk_id
    0
    """

    type_name = "hf"

    def __init__(self, tokenizer: hf.Tokenizer, roles: Mapping[str, str] | None = None,
                 chat_template: str | None = None) -> None:
        from tokenizers import Tokenizer as HFTok

        if not isinstance(tokenizer, HFTok):
            raise TokenizerError(
                f"HFTokenizer wraps a tokenizers.Tokenizer, got {type(tokenizer).__name__}. For "
                "a transformers tokenizer pass its .backend_tokenizer; for a model folder use "
                "load_tokenizer(folder)."
            )
        if tokenizer.padding is not None or tokenizer.truncation is not None:
            tokenizer = type(tokenizer).from_str(tokenizer.to_str())
            tokenizer.no_padding()
            tokenizer.no_truncation()
        self.hf_tokenizer = tokenizer
        vocab = tokenizer.get_vocab(with_added_tokens=True)
        if not vocab:
            raise TokenizerError(
                "this Hugging Face tokenizer has an empty vocabulary. Train it (or load a "
                "trained one) before wrapping it."
            )
        self._vocab_size = max(vocab.values()) + 1
        self.roles = dict(_infer_roles(tokenizer) if roles is None else roles)
        self.special_tokens = {}
        for role, token in self.roles.items():
            self.special_tokens[role] = self._role_token_id(role, token, vocab)
        if chat_template is not None and not isinstance(chat_template, str):
            raise TokenizerError(f"chat_template must be a Jinja template string, got "
                                 f"{type(chat_template).__name__}.")
        self.chat_template = chat_template

    @staticmethod
    def _role_token_id(role: str, token: str, vocab: Mapping[str, int]) -> int:
        if role not in ROLES:
            raise TokenizerError(
                f"unknown special-token role {role!r}. Use roles from {', '.join(ROLES)}."
            )
        if token not in vocab:
            raise TokenizerError(
                f"the {role!r} token {token!r} is not in the tokenizer's vocabulary. Add it "
                "with tokenizer.add_special_tokens([...]) first, or drop the role."
            )
        return vocab[token]

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Token ids of ``text``; ``add_special_tokens`` adds the post-processor's tokens.

        >>> from tokenizers import Tokenizer, models, processors
        >>> hf_tok = Tokenizer(models.WordLevel({"[UNK]": 0, "hi": 1, "<s>": 2}, "[UNK]"))
        >>> hf_tok.post_processor = processors.TemplateProcessing(
        ...     single="<s> $A", special_tokens=[("<s>", 2)])
        >>> tok = HFTokenizer(hf_tok)
        >>> tok.encode("hi"), tok.encode("hi", add_special_tokens=True)
        ([1], [2, 1])
        """
        if not isinstance(text, str):
            raise TokenizerError(f"encode needs a str, got {type(text).__name__}.")
        return self.hf_tokenizer.encode(text, add_special_tokens=add_special_tokens).ids

    def encode_batch(self, texts: Iterable[str],
                     add_special_tokens: bool = False) -> list[list[int]]:
        """``encode`` of each text, run in parallel by the Rust library."""
        texts = list(texts)
        bad = [t for t in texts if not isinstance(t, str)]
        if bad:
            raise TokenizerError(
                f"encode_batch needs strs, got {type(bad[0]).__name__}. Pass a list of str."
            )
        encodings = self.hf_tokenizer.encode_batch(texts, add_special_tokens=add_special_tokens)
        return [e.ids for e in encodings]

    def apply_chat_template(
        self, messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = False,
        tokenize: bool = True, **variables: Any,
    ) -> list[int] | str:
        """A conversation rendered with this tokenizer's chat template: its ids (``tokenize``)
        or its text. ``add_generation_prompt`` ends it with the cue for the assistant's turn;
        other keywords (``tools=...``) reach the template as variables.

        >>> tok.apply_chat_template([{"role": "user", "content": "Hi"}],   # doctest: +SKIP
        ...                         add_generation_prompt=True, tokenize=False)
        '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n'
        """
        if self.chat_template is None:
            raise TokenizerError(
                "this tokenizer has no chat template (its folder's tokenizer_config.json has "
                "no chat_template and there is no chat_template.jinja). Load the tokenizer of a "
                "chat (instruct) model, or format the prompt yourself.")
        from llmlab.chat_template import render_chat

        specials = {f"{role}_token": token for role, token in self.roles.items()}
        text = render_chat(self.chat_template, messages, add_generation_prompt=add_generation_prompt,
                           **specials, **variables)
        return self.encode(text) if tokenize else text

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        ids = self._checked(ids)
        if skip_special_tokens:
            specials = self.special_ids
            ids = [i for i in ids if i not in specials]
        return self.hf_tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)

    def _token(self, i: int) -> str:
        token = self.hf_tokenizer.id_to_token(i)
        return "" if token is None else token

    def _fields(self) -> dict[str, Any]:
        fields = {"roles": self.roles, "hf_tokenizer": json.loads(self.hf_tokenizer.to_str())}
        if self.chat_template is not None:
            fields["chat_template"] = self.chat_template
        return fields

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HFTokenizer:
        from tokenizers import Tokenizer as HFTok

        try:
            tokenizer = HFTok.from_str(json.dumps(data["hf_tokenizer"]))
        except Exception as e:  # noqa: BLE001 - the Rust parser raises a bare Exception
            raise TokenizerError(
                f"the embedded Hugging Face tokenizer could not be read ({e}). Save the "
                "tokenizer again with tok.save(directory)."
            ) from None
        return cls(tokenizer, data.get("roles", {}), data.get("chat_template"))


class BPETokenizer(HFTokenizer):
    """Byte-level BPE (GPT-2's scheme) trained with Hugging Face ``tokenizers``.

    Text is split into UTF-8 bytes first, so any text round-trips and nothing is unknown.

    >>> tok = BPETokenizer.train("low lower lowest " * 50, vocab_size=270)
    >>> tok.decode(tok.encode("lowest 🙂"))
    'lowest 🙂'
    """

    type_name = "bpe"

    @classmethod
    def train(
        cls,
        text_or_texts: str | Iterable[str],
        vocab_size: int,
        *,
        special_tokens: Sequence[str] | str = ("<|endoftext|>",),
        min_frequency: int = 2,
    ) -> BPETokenizer:
        """Learn merges from text until the vocabulary holds ``vocab_size`` ids.

        Special tokens take the first ids (``<|endoftext|>`` is both bos and eos), then the
        256 byte symbols, then the merges. Fewer ids result when the text has no more pairs
        seen ``min_frequency`` times.

        >>> BPETokenizer.train(["a b", "a c"], vocab_size=300).eos_id
        0
        """
        from tokenizers import Tokenizer as HFTok
        from tokenizers import decoders, models, pre_tokenizers, trainers

        names = _special_names(special_tokens)
        roles = _roles_from_names(names)
        texts = _training_texts(text_or_texts)
        cls._check_vocab_size(vocab_size, len(names))
        if not isinstance(min_frequency, int) or min_frequency < 0:
            raise TokenizerError(
                f"min_frequency must be an int >= 0, got {min_frequency!r}. The default, 2, "
                "merges only pairs seen at least twice."
            )
        tokenizer = HFTok(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=names,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(texts, trainer)
        return cls(tokenizer, roles)

    @staticmethod
    def _check_vocab_size(vocab_size: int, n_special: int) -> None:
        minimum = 256 + n_special
        if not isinstance(vocab_size, int) or isinstance(vocab_size, bool):
            raise TokenizerError(
                f"vocab_size must be an int, got {vocab_size!r}. Pass e.g. vocab_size=1024."
            )
        if vocab_size < minimum:
            raise TokenizerError(
                f"vocab_size={vocab_size} is too small for byte-level BPE: it needs at least "
                f"{minimum} (256 byte symbols + {n_special} special tokens). Pass "
                f"vocab_size >= {minimum}; a few hundred merges more is typical."
            )


def _training_texts(text_or_texts: str | Iterable[str]) -> list[str]:
    if isinstance(text_or_texts, str):
        texts = [text_or_texts]
    else:
        texts = list(text_or_texts)
        bad = [t for t in texts if not isinstance(t, str)]
        if bad:
            raise TokenizerError(
                f"BPETokenizer.train needs a str or an iterable of str; got a "
                f"{type(bad[0]).__name__} inside. Pass text, not ids or bytes."
            )
    if not any(texts):
        raise TokenizerError(
            "BPETokenizer.train got empty text. Pass the corpus to learn merges from."
        )
    return texts


def _roles_from_names(names: Sequence[str]) -> dict[str, str]:
    """Role -> token name, every name required to have a known role."""
    roles: dict[str, str] = {}
    ids: dict[str, int] = {}
    for index, name in enumerate(names):
        for role in _roles_of(name):
            _assign_role(ids, role, index, name)
            roles[role] = name
    return roles


def _infer_roles(tokenizer: hf.Tokenizer) -> dict[str, str]:
    """Roles of a Hugging Face tokenizer's special added tokens whose names are known."""
    roles: dict[str, str] = {}
    for added in tokenizer.get_added_tokens_decoder().values():
        if added.special:
            for role in KNOWN_SPECIAL_TOKENS.get(added.content, ()):
                roles.setdefault(role, added.content)
    return roles


# ---------------------------------------------------------------------------------------------
# loading


TYPES: dict[str, type[Tokenizer]] = {
    "char": CharTokenizer,
    "byte": ByteTokenizer,
    "bpe": BPETokenizer,
    "hf": HFTokenizer,
}


def load_tokenizer(directory_or_file: str | os.PathLike, *,
                   revision: str | None = None) -> Tokenizer:
    """Read a tokenizer saved by ``Tokenizer.save``, found in a Hugging Face model folder, or
    of a model on the Hub (its tokenizer files only, through the Hugging Face cache as
    ``llmlab.load`` resolves names; ``revision`` pins a branch, tag or commit).

    A folder is searched for, in order: ``tokenizer.json`` (llmlab's or Hugging Face's),
    GPT-2's ``vocab.json`` + ``merges.txt`` (byte-level BPE) and BERT's ``vocab.txt``
    (WordPiece, lower-cased unless ``tokenizer_config.json`` says ``do_lower_case: false``).

    >>> tok = load_tokenizer("runs/char-shakespeare")  # doctest: +SKIP
    >>> tok = load_tokenizer("~/models/gpt2")          # doctest: +SKIP
    >>> tok = load_tokenizer("EleutherAI/gpt-neo-125M")  # doctest: +SKIP
    """
    from llmlab.interop.hub import resolve_folder

    path = resolve_folder(directory_or_file, revision=revision, tokenizer_only=True)
    if path.is_dir():
        return _load_directory(path)
    if path.is_file():
        return _load_file(path)
    raise TokenizerError(
        f"no tokenizer file or folder at {str(path)!r}. Pass the folder given to tok.save(), "
        "its tokenizer.json, or a Hugging Face model folder (tokenizer.json, vocab.json + "
        "merges.txt, or vocab.txt)."
    )


def _load_directory(directory: Path) -> Tokenizer:
    for name in (FILE_NAME, "vocab.json", "vocab.txt"):
        if (directory / name).is_file():
            return _load_file(directory / name)
    raise TokenizerError(
        f"folder {str(directory)!r} holds no tokenizer: expected tokenizer.json (llmlab or "
        "Hugging Face), vocab.json + merges.txt (GPT-2) or vocab.txt (BERT). Save one there "
        "with tok.save(folder), or pass the folder that holds these files."
    )


def _load_file(path: Path) -> Tokenizer:
    if path.name == "vocab.txt":
        return _load_wordpiece(path)
    if path.name == "vocab.json":
        return _load_gpt2(path)
    data = _read_json(path, "a tokenizer.json written by llmlab or Hugging Face")
    if not isinstance(data, dict):
        raise TokenizerError(
            f"{str(path)!r} holds JSON {type(data).__name__}, not an object. Expected a "
            "tokenizer.json written by tok.save() or by Hugging Face."
        )
    if "llmlab_tokenizer" in data:
        return _from_llmlab_dict(data, path)
    return _load_hf_json(path)


def _from_llmlab_dict(data: dict[str, Any], path: Path) -> Tokenizer:
    TOKENIZER_FORMAT.check(data, repr(str(path)), TokenizerError)
    kind = data.get("type")
    if kind not in TYPES:
        raise TokenizerError(
            f"{str(path)!r} names tokenizer type {kind!r}; known types are {list(TYPES)}. "
            "Save the tokenizer again with tok.save(directory)."
        )
    try:
        return TYPES[kind].from_dict(data)
    except (KeyError, TypeError) as e:
        raise TokenizerError(
            f"{str(path)!r} is a damaged llmlab {kind!r} tokenizer (missing or wrong field {e}). "
            "Save the tokenizer again with tok.save(directory)."
        ) from None
    except TokenizerError as e:
        raise TokenizerError(f"{str(path)!r} holds a bad tokenizer: {e}") from None


def _read_text(path: Path, expected: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TokenizerError(
            f"could not read {str(path)!r} ({e}). Expected {expected}; check the file exists "
            "and is UTF-8 text."
        ) from None


def _read_json(path: Path, expected: str) -> Any:
    text = _read_text(path, expected)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise TokenizerError(
            f"{str(path)!r} is not valid JSON ({e}). Expected {expected}; the file may be "
            "truncated: download or save it again."
        ) from None


def _load_hf_json(path: Path) -> HFTokenizer:
    from tokenizers import Tokenizer as HFTok

    try:
        tokenizer = HFTok.from_file(str(path))
    except Exception as e:  # noqa: BLE001 - the Rust parser raises a bare Exception
        raise TokenizerError(
            f"{str(path)!r} is JSON but not a Hugging Face tokenizer ({e}). Expected a "
            "tokenizer.json from tokenizers/transformers (save_pretrained) or from tok.save()."
        ) from None
    roles = _infer_roles(tokenizer)
    roles.update(_config_roles(path.parent, tokenizer.get_vocab(with_added_tokens=True)))
    return HFTokenizer(tokenizer, roles, _chat_template(path.parent))


def _chat_template(directory: Path) -> str | None:
    """The folder's chat template: ``chat_template.jinja``, else ``tokenizer_config.json``'s
    ``chat_template`` (a string, or a list of named templates of which "default" is used)."""
    jinja = directory / "chat_template.jinja"
    if jinja.is_file():
        return _read_text(jinja, "a Jinja chat template")
    template = _optional_config(directory / "tokenizer_config.json").get("chat_template")
    if isinstance(template, list):
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    if template is not None and not isinstance(template, str):
        raise TokenizerError(
            f"{str(directory / 'tokenizer_config.json')!r} has a chat_template that is "
            f"{type(template).__name__}, not a string or a list of {{name, template}}; fix or "
            "remove that field.")
    return template


def _config_roles(directory: Path, vocab: Mapping[str, int]) -> dict[str, str]:
    """Role -> token from special_tokens_map.json / tokenizer_config.json, when present."""
    roles: dict[str, str] = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        config = _optional_config(directory / name)
        for role in ROLES:
            value = config.get(f"{role}_token")
            if isinstance(value, dict):
                value = value.get("content")
            if isinstance(value, str) and value in vocab:
                roles[role] = value
    return roles


def _optional_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = _read_json(path, "a Hugging Face tokenizer config (a JSON object)")
    if not isinstance(data, dict):
        raise TokenizerError(
            f"{str(path)!r} holds JSON {type(data).__name__}, not an object. Expected a "
            "Hugging Face tokenizer config; fix or delete the file."
        )
    return data


def _load_gpt2(vocab_path: Path) -> HFTokenizer:
    from tokenizers import Tokenizer as HFTok
    from tokenizers import decoders, models, pre_tokenizers

    vocab = _read_json(vocab_path, "GPT-2's vocab.json: an object mapping token -> id")
    if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
        raise TokenizerError(
            f"{str(vocab_path)!r} is not a token -> id object. Expected GPT-2's vocab.json; "
            "download or save it again."
        )
    merges = _read_merges(vocab_path.parent / "merges.txt")
    try:
        tokenizer = HFTok(models.BPE(vocab, merges))
    except Exception as e:  # noqa: BLE001 - the Rust side raises a bare Exception
        raise TokenizerError(
            f"vocab.json and merges.txt in {str(vocab_path.parent)!r} do not fit together "
            f"({e}). Use the pair saved with the same model."
        ) from None
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    roles = {"bos": "<|endoftext|>", "eos": "<|endoftext|>"} if "<|endoftext|>" in vocab else {}
    roles.update(_config_roles(vocab_path.parent, vocab))
    tokenizer.add_special_tokens(sorted(set(roles.values())))
    return HFTokenizer(tokenizer, roles)


def _read_merges(path: Path) -> list[tuple[str, str]]:
    if not path.is_file():
        raise TokenizerError(
            f"{str(path)!r} is missing: GPT-2's vocab.json needs merges.txt beside it. Copy "
            "merges.txt from the same model into that folder."
        )
    merges = []
    for number, line in enumerate(_read_text(path, "GPT-2's merges.txt").splitlines(), 1):
        if not line.strip() or (number == 1 and line.startswith("#version")):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise TokenizerError(
                f"{str(path)!r} line {number} is {line!r}; each merge line must be two tokens "
                "separated by a space. The file may be damaged: copy it again."
            )
        merges.append((parts[0], parts[1]))
    return merges


def _load_wordpiece(vocab_path: Path) -> HFTokenizer:
    from tokenizers import Tokenizer as HFTok
    from tokenizers import decoders, models, normalizers, pre_tokenizers, processors

    lines = _read_text(vocab_path, "BERT's vocab.txt: one token a line").splitlines()
    vocab = {token: i for i, token in enumerate(lines)}
    if not vocab:
        raise TokenizerError(
            f"{str(vocab_path)!r} is empty. Expected BERT's vocab.txt, one token a line."
        )
    bert_roles = {"pad": "[PAD]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]", "unk": "[UNK]"}
    roles = {role: token for role, token in bert_roles.items() if token in vocab}
    roles.update(_config_roles(vocab_path.parent, vocab))
    config = _optional_config(vocab_path.parent / "tokenizer_config.json")
    lowercase = bool(config.get("do_lower_case", True))
    tokenizer = HFTok(models.WordPiece(vocab, unk_token=roles.get("unk", "[UNK]")))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    tokenizer.add_special_tokens(sorted(set(roles.values())))
    if "cls" in roles and "sep" in roles:
        tokenizer.post_processor = processors.BertProcessing(
            (roles["sep"], vocab[roles["sep"]]), (roles["cls"], vocab[roles["cls"]]))
    return HFTokenizer(tokenizer, roles)
