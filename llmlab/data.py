"""Corpora, labelled data sets and the batch makers that feed llmlab models.

Every batch is a ``dict`` whose keys are the keyword names of the model's ``forward``, so a
training step is ``model(**batch)``:

>>> text = load_text("tinyshakespeare")                       # doctest: +SKIP
>>> tok = llmlab.CharTokenizer.train(text)                    # doctest: +SKIP
>>> data = CausalLMData.from_text(text, tok, seq_len=256)     # doctest: +SKIP
>>> out = model(**data.get_batch("train", 32))                # doctest: +SKIP

Nothing here touches the network unless ``download=True`` is passed. Set ``LLMLAB_DATA_DIR``
to a folder holding local copies of the data sets (the layout of ``DATASETS`` and
``CLASSIFICATION_SETS``) to use them offline.

Reproducibility: ``get_batch`` draws from the ``torch.Generator`` you pass; labelled examples
and pairs are shuffled into train / val with ``random.Random(SPLIT_SEED)`` (seed 0); corpora
are split by position (the last ``val_fraction`` is validation), never shuffled; the masking
of ``MaskedLMData.iter_batches`` uses a generator seeded with ``EVAL_SEED`` (0).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import torch

from llmlab._files import write_atomic
from llmlab.errors import DataError
from llmlab.tokenizers import Tokenizer

__all__ = [
    "CLASSIFICATION_SETS",
    "DATASETS",
    "CausalLMData",
    "ClassificationData",
    "Dataset",
    "LabelledTexts",
    "MaskedLMData",
    "Seq2SeqData",
    "load_classification",
    "load_corpus",
    "load_text",
    "save_corpus",
]

DATA_DIR_ENV = "LLMLAB_DATA_DIR"
CACHE_DIR_ENV = "LLMLAB_CACHE_DIR"
IGNORE_INDEX = -100
SPLIT_SEED = 0
EVAL_SEED = 0
SPLITS = ("train", "val")


# ---------------------------------------------------------------------------------------------
# named corpora


@dataclass(frozen=True)
class Dataset:
    """A corpus ``load_text`` can find by name: its file name, where to fetch it, its sha256."""

    file: str
    url: str
    sha256: str
    description: str = ""


DATASETS: dict[str, Dataset] = {
    "tinyshakespeare": Dataset(
        file="tinyshakespeare.txt",
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        description="tiny-shakespeare, 1,115,394 characters (karpathy/char-rnn)",
    ),
}


def default_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir`` if given, else ``$LLMLAB_CACHE_DIR``, else ``~/.cache/llmlab``.

    >>> default_cache_dir("/tmp/c")
    PosixPath('/tmp/c')
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    return Path.home() / ".cache" / "llmlab"


def load_text(
    source: str | os.PathLike,
    *,
    download: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> str:
    """Text of a file, of a folder's ``*.txt`` files (sorted, joined by "\\n"), or a named corpus.

    A name from ``DATASETS`` is looked up in ``$LLMLAB_DATA_DIR``, then in the cache
    (``cache_dir``, ``$LLMLAB_CACHE_DIR`` or ``~/.cache/llmlab``); with ``download=True`` a
    missing corpus is fetched into the cache and its sha256 checked.

    >>> text = load_text("tinyshakespeare", download=True)  # doctest: +SKIP
    >>> len(text)                                            # doctest: +SKIP
    1115394
    """
    if isinstance(source, str) and source in DATASETS:
        return _read_text_file(_dataset_path(source, download, cache_dir))
    if not isinstance(source, (str, os.PathLike)):
        raise DataError(
            f"load_text needs a path or a data set name, got {type(source).__name__}. "
            f"Pass a file, a folder of .txt files, or one of {list(DATASETS)}."
        )
    path = Path(source).expanduser()
    if path.is_file():
        return _read_text_file(path)
    if path.is_dir():
        return _read_folder(path)
    raise DataError(
        f"{str(source)!r} is neither a file, a folder, nor a known data set. Pass a path "
        f"that exists, or one of the named data sets {list(DATASETS)}."
    )


def _read_text_file(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{str(path)!r} is not UTF-8 text ({e}). Convert it to UTF-8, e.g. "
            "iconv -f latin1 -t utf-8."
        ) from None
    except OSError as e:
        raise DataError(f"could not read {str(path)!r} ({e}). Check the path and permissions.") from e
    if not text:
        raise DataError(f"{str(path)!r} is empty. Pass a file that holds the corpus.")
    return text


def _read_folder(folder: Path) -> str:
    files = sorted(p for p in folder.glob("*.txt") if p.is_file())
    if not files:
        raise DataError(
            f"folder {str(folder)!r} holds no .txt files. Put the corpus there as .txt "
            "files, or pass the path of the file itself."
        )
    text = "\n".join(_read_text_file(p) for p in files)
    return text


def _dataset_path(name: str, download: bool, cache_dir: str | os.PathLike | None) -> Path:
    dataset = DATASETS[name]
    places = []
    if os.environ.get(DATA_DIR_ENV):
        places.append(Path(os.environ[DATA_DIR_ENV]).expanduser())
    cache = default_cache_dir(cache_dir)
    places.append(cache)
    for place in places:
        if (place / dataset.file).is_file():
            return place / dataset.file
    if download:
        return _download(dataset, cache)
    looked = ", ".join(repr(str(p / dataset.file)) for p in places)
    raise DataError(
        f"data set {name!r} is not on this machine (looked at {looked}). Set "
        f"{DATA_DIR_ENV} to a folder that holds {dataset.file}, or pass download=True to "
        f"fetch it from {dataset.url} into {str(cache)!r}."
    )


def _download(dataset: Dataset, cache: Path) -> Path:
    """Fetch ``dataset`` into ``cache`` through a temporary file, kept only if its sha256 fits."""
    target = cache / dataset.file
    write_atomic(target, lambda tmp: _fetch_verified(dataset, tmp))
    return target


def _fetch_verified(dataset: Dataset, tmp: Path) -> None:
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as f, urllib.request.urlopen(dataset.url, timeout=60) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                f.write(chunk)
    except OSError as e:  # urllib's URLError is an OSError
        raise DataError(
            f"downloading {dataset.url} failed ({e}). Check the network, or fetch the file "
            f"yourself and set {DATA_DIR_ENV} to the folder that holds {dataset.file}."
        ) from None
    if digest.hexdigest() != dataset.sha256:
        raise DataError(
            f"the file downloaded from {dataset.url} has sha256 {digest.hexdigest()}, expected "
            f"{dataset.sha256}; it was discarded. Try again later, or place a good copy of "
            f"{dataset.file} in a folder named by {DATA_DIR_ENV}."
        )


# ---------------------------------------------------------------------------------------------
# labelled texts


@dataclass
class LabelledTexts:
    """Texts with integer class labels; ``label_names[label]`` names a class.

    >>> data = LabelledTexts(["good", "bad"], [1, 0], ["negative", "positive"])
    >>> len(data), data[0], data[:1].texts
    (2, ('good', 1), ['good'])
    """

    texts: list[str]
    labels: list[int]
    label_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.texts, self.labels = list(self.texts), list(self.labels)
        self.label_names = list(self.label_names)
        if len(self.texts) != len(self.labels):
            raise DataError(
                f"{len(self.texts)} texts but {len(self.labels)} labels. Pass one label per text."
            )
        _check_labels(self.labels, len(self.label_names) or None)

    @property
    def n_labels(self) -> int:
        """Number of classes: ``len(label_names)``, else the largest label + 1."""
        return len(self.label_names) or (max(self.labels, default=-1) + 1)

    def __len__(self) -> int:
        return len(self.texts)

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return iter(zip(self.texts, self.labels, strict=False))

    @overload
    def __getitem__(self, index: int) -> tuple[str, int]: ...

    @overload
    def __getitem__(self, index: slice) -> LabelledTexts: ...

    def __getitem__(self, index: int | slice) -> tuple[str, int] | LabelledTexts:
        if isinstance(index, slice):
            return LabelledTexts(self.texts[index], self.labels[index], self.label_names)
        return self.texts[index], self.labels[index]

    def split(
        self, val_fraction: float = 0.1, seed: int = SPLIT_SEED
    ) -> tuple[LabelledTexts, LabelledTexts]:
        """Shuffle with ``random.Random(seed)`` and cut off the last ``val_fraction`` as val.

        >>> train, val = LabelledTexts(list("abcdefghij"), [0] * 10).split(0.2)
        >>> len(train), len(val)
        (8, 2)
        """
        train_rows, val_rows = _split_rows(len(self), val_fraction, seed)
        return self._take(train_rows), self._take(val_rows)

    def _take(self, rows: list[int]) -> LabelledTexts:
        texts = [self.texts[i] for i in rows]
        return LabelledTexts(texts, [self.labels[i] for i in rows], self.label_names)

    def __repr__(self) -> str:
        return f"LabelledTexts({len(self)} texts, label_names={self.label_names})"


def _check_labels(labels: Sequence[int], n_labels: int | None) -> None:
    for index, label in enumerate(labels):
        if not isinstance(label, int) or isinstance(label, bool):
            raise DataError(
                f"label {index} is {label!r}, not an int. Give class ids 0, 1, 2, ... "
                "(keep the names in label_names)."
            )
        if label < 0 or (n_labels is not None and label >= n_labels):
            bound = "" if n_labels is None else f" (n_labels={n_labels})"
            raise DataError(
                f"label {index} is {label}, outside [0, n_labels){bound}. Use class ids "
                "0..n_labels-1, or pass a larger n_labels / more label_names."
            )


def _split_rows(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    _check_val_fraction(val_fraction)
    rows = list(range(n))
    random.Random(seed).shuffle(rows)
    n_val = round(n * val_fraction)
    if val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    return rows[: n - n_val], rows[n - n_val :]


# ---------------------------------------------------------------------------------------------
# classification data sets


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, line) of the non-blank lines; "\\n" only ends a line."""
    text = _read_text_file(path)
    lines = [line.rstrip("\r") for line in text.split("\n")]
    return [(number, line) for number, line in enumerate(lines, 1) if line.strip()]


def _malformed(path: Path, number: int, line: str, expected: str) -> DataError:
    return DataError(
        f"{str(path)!r} line {number} is {line[:60]!r}; expected {expected}. Fix or remove "
        "the line, or copy the file again."
    )


def _parse_sst2(path: Path) -> LabelledTexts:
    texts, labels = [], []
    for number, line in _read_lines(path):
        label, _, text = line.partition(" ")
        if label not in ("0", "1") or not text:
            raise _malformed(path, number, line, "'<0 or 1> <text>'")
        texts.append(text)
        labels.append(int(label))
    return LabelledTexts(texts, labels, ["negative", "positive"])


TREC_LABELS = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


def _parse_trec(path: Path) -> LabelledTexts:
    texts, labels = [], []
    for number, line in _read_lines(path):
        label, _, text = line.partition(" ")
        coarse = label.partition(":")[0]
        if coarse not in TREC_LABELS or not text:
            raise _malformed(path, number, line, f"'LABEL:fine text' with LABEL in {TREC_LABELS}")
        texts.append(text)
        labels.append(TREC_LABELS.index(coarse))
    return LabelledTexts(texts, labels, TREC_LABELS)


def _parse_agnews(path: Path) -> LabelledTexts:
    names = _agnews_classes(path.parent / "classes.txt")
    texts, labels = [], []
    rows = csv.reader(io.StringIO(_read_text_file(path), newline=""))
    for number, row in enumerate(rows, 1):
        if number == 1 and row and not row[0].strip().isdigit():
            continue  # the header: Class Index,Title,Description
        if not row:
            continue
        if len(row) != 3 or not row[0].strip().isdigit():
            raise _malformed(path, number, ",".join(row), "'Class Index,Title,Description'")
        texts.append(f"{row[1]} {row[2]}")
        labels.append(int(row[0]) - 1)
    try:
        return LabelledTexts(texts, labels, names)
    except DataError as e:
        raise DataError(f"{str(path)!r} does not fit classes.txt: {e}") from None


def _agnews_classes(path: Path) -> list[str]:
    """Class names from "1-World, 2-Sports, ..." (one line) or one name a line."""
    if not path.is_file():
        raise DataError(
            f"{str(path)!r} is missing; AG News needs classes.txt beside test.csv. Copy it "
            "from the same source as test.csv."
        )
    parts = _read_text_file(path).replace("\n", ",").split(",")
    names = [part.strip() for part in parts if part.strip()]
    return [name.split("-", 1)[1] if name[0].isdigit() and "-" in name else name for name in names]


@dataclass(frozen=True)
class ClassificationSet:
    """Where a labelled data set's splits live (relative to the data folder) and how to read them.

    ``needs`` lists files every split also reads (AG News's ``classes.txt``).
    """

    splits: dict[str, str]
    parse: Callable[[Path], LabelledTexts]
    needs: tuple[str, ...] = ()


CLASSIFICATION_SETS: dict[str, ClassificationSet] = {
    "sst2": ClassificationSet(
        {split: f"sst2/stsa.binary.{split}" for split in ("train", "dev", "test")}, _parse_sst2
    ),
    "trec": ClassificationSet({"train": "trec/train.txt", "test": "trec/test.txt"}, _parse_trec),
    "agnews": ClassificationSet({"test": "agnews/test.csv"}, _parse_agnews,
                                needs=("agnews/classes.txt",)),
}

# The copies "Calibrate Before Use" (Zhao et al. 2021) published, pinned to one commit.
_FEW_SHOT_DATA = ("https://raw.githubusercontent.com/tonyzhaozh/few-shot-learning/"
                  "9d35e2628f6705b753a7c721fb74bcf1b7b7e6df/data/")
CLASSIFICATION_FILES: dict[str, Dataset] = {
    file: Dataset(file=file, url=_FEW_SHOT_DATA + file, sha256=sha256)
    for file, sha256 in {
        "sst2/stsa.binary.train": "71c04bcc41291fa47454dd670df701b14ee9249156babeaac404cfe2c8d74338",
        "sst2/stsa.binary.dev": "02fedc82855dbdcabe82c65ed1af6c6570788eaac51073cdb35ee8c7784426d1",
        "sst2/stsa.binary.test": "6a80dc9b9a0db2d3b37f2f809304febad31c90ab67a5b4157b7d9f881c53ef5b",
        "trec/train.txt": "202e3e1ad6143ed4f147f199324277e25b2573a78c08c3af1ff840b49c0779de",
        "trec/test.txt": "69b2d406aa15b3b514b6bf9b3bf1fa2c3515ce7ae744651173f8e57347bfb2a9",
        "agnews/test.csv": "1b1b6c5f1dd034c83fec3f585611d2bc65c34fafd86685fc92cee5e6059313ef",
        "agnews/classes.txt": "1a5783c08f1468ec5200f5b67ef041a2f72a7fe4645aa121769aaf481593663f",
    }.items()
}


def load_classification(
    name: str, split: str = "train", *, data_dir: str | os.PathLike | None = None,
    download: bool = False, cache_dir: str | os.PathLike | None = None,
) -> LabelledTexts:
    """A split of a labelled data set from ``CLASSIFICATION_SETS`` (sst2, trec, agnews).

    Files are read from ``data_dir`` if given, else ``$LLMLAB_DATA_DIR`` or the cache folder;
    with ``download=True`` missing files are fetched into the cache (sha256-checked).

    >>> sst2 = load_classification("sst2", "dev")   # doctest: +SKIP
    >>> sst2.label_names                            # doctest: +SKIP
    ['negative', 'positive']
    """
    if name not in CLASSIFICATION_SETS:
        raise DataError(
            f"unknown classification data set {name!r}. Known: {list(CLASSIFICATION_SETS)}."
        )
    spec = CLASSIFICATION_SETS[name]
    if split not in spec.splits:
        raise DataError(f"{name!r} has no split {split!r}. Its splits are {list(spec.splits)}.")
    files = (spec.splits[split], *spec.needs)
    places = _classification_places(data_dir, cache_dir)
    folder = next((p for p in places if all((p / f).is_file() for f in files)), None)
    if folder is None and download and data_dir is None:
        folder = default_cache_dir(cache_dir)
        for file in files:
            if not (folder / file).is_file():
                _download(CLASSIFICATION_FILES[file], folder)
    if folder is None:
        looked = ", ".join(repr(str(p)) for p in places)
        raise DataError(
            f"{name!r} ({split}) is not on this machine: no folder among {looked} holds "
            f"{', '.join(files)}. Set {DATA_DIR_ENV} (or pass data_dir=) to a folder that holds "
            "them, or pass download=True to fetch them into the cache."
        )
    return spec.parse(folder / spec.splits[split])


def _classification_places(data_dir: str | os.PathLike | None,
                           cache_dir: str | os.PathLike | None) -> list[Path]:
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    places = [Path(os.environ[DATA_DIR_ENV]).expanduser()] if os.environ.get(DATA_DIR_ENV) else []
    return [*places, default_cache_dir(cache_dir)]


# ---------------------------------------------------------------------------------------------
# argument checks


def _check_seq_len(seq_len: int) -> None:
    if not isinstance(seq_len, int) or isinstance(seq_len, bool) or seq_len < 1:
        raise DataError(f"seq_len must be an int >= 1, got {seq_len!r}. Pass e.g. seq_len=256.")


def _check_val_fraction(val_fraction: float) -> None:
    if not isinstance(val_fraction, (int, float)) or not 0 <= val_fraction < 1:
        raise DataError(
            f"val_fraction must be in [0, 1), got {val_fraction!r}. Pass e.g. 0.1 (10% for "
            "validation) or 0 for no validation split."
        )


def _check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise DataError(
            f"batch_size must be an int >= 1, got {batch_size!r}. Pass e.g. batch_size=32."
        )


def _check_generator(generator: torch.Generator | None) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise DataError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}. "
            "Pass torch.Generator().manual_seed(seed)."
        )


def _check_tokenizer(tokenizer: Tokenizer) -> None:
    if not isinstance(tokenizer, Tokenizer):
        raise DataError(
            f"tokenizer must be an llmlab Tokenizer, got {type(tokenizer).__name__}. Make one "
            "with llmlab.CharTokenizer.train(text) or llmlab.load_tokenizer(folder)."
        )


def _check_ids(ids: torch.Tensor, tokenizer: Tokenizer) -> None:
    if len(ids) and (ids.min() < 0 or ids.max() >= tokenizer.vocab_size):
        bad = ids[(ids < 0) | (ids >= tokenizer.vocab_size)][0].item()
        raise DataError(
            f"token id {bad} is outside the tokenizer's vocabulary (vocab_size "
            f"{tokenizer.vocab_size}). Encode the corpus with this tokenizer: use from_text()."
        )


def _check_text(text: str) -> None:
    if not isinstance(text, str):
        raise DataError(
            f"text must be a str, got {type(text).__name__}. Read the corpus with "
            "llmlab.data.load_text(...)."
        )
    if not text:
        raise DataError("text is empty. Pass the corpus, e.g. load_text('tinyshakespeare').")


# ---------------------------------------------------------------------------------------------
# batch makers


class _Batches:
    """What all batch makers share: splits, the tokenizer, seq_len and the fingerprint."""

    tokenizer: Tokenizer
    seq_len: int
    _fingerprint: str | None = None

    def _check_split(self, split: str) -> None:
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}. Use one of {list(SPLITS)}.")
        if self._size(split) == 0:
            raise DataError(
                f"the {split} split is empty (val_fraction=0, or an empty val set). Build the "
                "data with val_fraction > 0 (e.g. 0.1), or pass a non-empty val set."
            )

    def _size(self, split: str) -> int:
        raise NotImplementedError

    def num_examples(self, split: str) -> int:
        """Distinct examples ``get_batch`` can draw from ``split`` (windows or rows)."""
        self._check_split(split)
        return self._size(split)

    def _settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def _tensors(self) -> list[tuple[str, torch.Tensor]]:
        raise NotImplementedError

    @property
    def fingerprint(self) -> str:
        """sha256 (hex) of the token ids, labels, settings and tokenizer: for run manifests."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            settings = {"class": type(self).__name__, **self._settings()}
            digest.update(json.dumps(settings, sort_keys=True).encode())
            digest.update(json.dumps(self.tokenizer.to_dict(), sort_keys=True).encode())
            for name, tensor in self._tensors():
                digest.update(name.encode())
                digest.update(tensor.to(torch.int64).contiguous().numpy().tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint


class _CorpusData(_Batches):
    """A token stream split by position: the first (1 - val_fraction) is train."""

    _extra = 0  # tokens a window needs beyond seq_len (1 for next-token targets)

    def __init__(
        self, ids: torch.Tensor, tokenizer: Tokenizer, *, seq_len: int, val_fraction: float
    ) -> None:
        _check_tokenizer(tokenizer)
        _check_seq_len(seq_len)
        _check_val_fraction(val_fraction)
        self.tokenizer, self.seq_len, self.val_fraction = tokenizer, seq_len, val_fraction
        ids = torch.as_tensor(ids, dtype=torch.long).flatten()
        _check_ids(ids, tokenizer)
        n_train = int(len(ids) * (1 - val_fraction))
        self.train_ids, self.val_ids = ids[:n_train], ids[n_train:]
        self._check_length("train", self.train_ids, "a smaller val_fraction")
        if val_fraction > 0:
            self._check_length("val", self.val_ids, "a larger val_fraction")

    @staticmethod
    def _encode_text(text: str, tokenizer: Tokenizer) -> torch.Tensor:
        _check_text(text)
        _check_tokenizer(tokenizer)
        return torch.tensor(tokenizer.encode(text), dtype=torch.long)

    def _check_length(self, split: str, ids: torch.Tensor, other_fix: str) -> None:
        need = self.seq_len + self._extra
        if len(ids) < need:
            raise DataError(
                f"the {split} split has {len(ids)} tokens but seq_len={self.seq_len} needs at "
                f"least {need}. Use a smaller seq_len, {other_fix}, or more text."
            )

    def _ids(self, split: str) -> torch.Tensor:
        self._check_split(split)
        return self.train_ids if split == "train" else self.val_ids

    def _size(self, split: str) -> int:
        return len(self.train_ids if split == "train" else self.val_ids)

    def num_examples(self, split: str) -> int:
        """Distinct windows ``get_batch`` can draw from ``split``."""
        return len(self._ids(split)) - self.seq_len

    def _settings(self) -> dict[str, Any]:
        return {"seq_len": self.seq_len, "val_fraction": self.val_fraction}

    def _tensors(self) -> list[tuple[str, torch.Tensor]]:
        return [("train", self.train_ids), ("val", self.val_ids)]

    def _windows(self, ids: torch.Tensor, starts: torch.Tensor, shift: int = 0) -> torch.Tensor:
        """Rows ``ids[s + shift : s + shift + seq_len]`` for each start s, gathered at once."""
        return ids[starts[:, None] + shift + torch.arange(self.seq_len)]

    def _tiles(self, ids: torch.Tensor, fill: int) -> torch.Tensor:
        """``ids`` cut into rows of seq_len, the last row padded with ``fill``: [rows, seq_len]."""
        rows = -(-len(ids) // self.seq_len)
        padded = torch.full((rows * self.seq_len,), fill, dtype=ids.dtype)
        padded[: len(ids)] = ids
        return padded.view(rows, self.seq_len)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(train={len(self.train_ids)} tokens, val={len(self.val_ids)} "
            f"tokens, seq_len={self.seq_len}, tokenizer={self.tokenizer!r})"
        )


class CausalLMData(_CorpusData):
    """Next-token prediction windows from one corpus, as nanoGPT's ``get_batch``.

    Batches hold ``input_ids`` [B, T] and ``targets`` [B, T], the inputs shifted by one.

    >>> tok = llmlab.CharTokenizer.train(text)                                 # doctest: +SKIP
    >>> batch = CausalLMData.from_text(text, tok, seq_len=64).get_batch("train", 8)  # doctest: +SKIP
    """

    _extra = 1

    @classmethod
    def from_text(
        cls, text: str, tokenizer: Tokenizer, *, seq_len: int, val_fraction: float = 0.1
    ) -> CausalLMData:
        """Encode ``text`` once; the first (1 - val_fraction) of the ids is train, the rest val."""
        ids = cls._encode_text(text, tokenizer)
        return cls(ids, tokenizer, seq_len=seq_len, val_fraction=val_fraction)

    def get_batch(
        self, split: str, batch_size: int, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """``batch_size`` random windows of ``split``; the same generator state, the same batch."""
        ids = self._ids(split)
        _check_batch_size(batch_size)
        _check_generator(generator)
        starts = torch.randint(len(ids) - self.seq_len, (batch_size,), generator=generator)
        return {
            "input_ids": self._windows(ids, starts),
            "targets": self._windows(ids, starts, shift=1),
        }

    def iter_batches(self, split: str, batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
        """Consecutive non-overlapping windows over the whole split, in order.

        Every token but the first is a target exactly once. The last window may be short: its
        tail is padded (``targets`` -100 there), which a causal model never attends to.
        """
        ids = self._ids(split)
        _check_batch_size(batch_size)
        inputs = self._tiles(ids[:-1], self.tokenizer.pad_id or 0)
        targets = self._tiles(ids[1:], IGNORE_INDEX)
        return _slices({"input_ids": inputs, "targets": targets}, batch_size)


class MaskedLMData(_CorpusData):
    """BERT's masked-LM batches (Devlin et al. 2019) from windows of one corpus.

    Each position that is not a special token is chosen with probability ``mask_prob``; a
    chosen token becomes the mask token (80%), a random ordinary token (10%) or stays (10%).
    ``targets`` holds the original id at chosen positions and -100 elsewhere.

    >>> tok = llmlab.CharTokenizer.train(text, special_tokens="bert")             # doctest: +SKIP
    >>> batch = MaskedLMData.from_text(text, tok, seq_len=128).get_batch("train", 8)  # doctest: +SKIP
    """

    def __init__(
        self,
        ids: torch.Tensor,
        tokenizer: Tokenizer,
        *,
        seq_len: int,
        val_fraction: float,
        mask_prob: float = 0.15,
    ) -> None:
        _check_tokenizer(tokenizer)
        if tokenizer.mask_id is None:
            raise DataError(
                "masked LM needs a tokenizer with a mask token; this one has none. Create it "
                "with one, e.g. CharTokenizer.train(text, special_tokens='bert')."
            )
        if not isinstance(mask_prob, (int, float)) or not 0 < mask_prob <= 1:
            raise DataError(f"mask_prob must be in (0, 1], got {mask_prob!r}. BERT uses 0.15.")
        super().__init__(ids, tokenizer, seq_len=seq_len, val_fraction=val_fraction)
        self.mask_prob = float(mask_prob)
        self._is_special = torch.zeros(tokenizer.vocab_size, dtype=torch.bool)
        self._is_special[list(tokenizer.special_ids)] = True
        self._ordinary_ids = (~self._is_special).nonzero().flatten()
        if len(self._ordinary_ids) == 0:
            raise DataError(
                "the tokenizer has only special tokens, so there are no tokens to mask. Train "
                "it on text first."
            )

    @classmethod
    def from_text(
        cls,
        text: str,
        tokenizer: Tokenizer,
        *,
        seq_len: int,
        val_fraction: float = 0.1,
        mask_prob: float = 0.15,
    ) -> MaskedLMData:
        """Encode ``text`` once; the first (1 - val_fraction) of the ids is train, the rest val."""
        ids = cls._encode_text(text, tokenizer)
        return cls(ids, tokenizer, seq_len=seq_len, val_fraction=val_fraction, mask_prob=mask_prob)

    def get_batch(
        self, split: str, batch_size: int, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """``batch_size`` random windows, masked afresh: ``input_ids`` and ``targets`` [B, T]."""
        ids = self._ids(split)
        _check_batch_size(batch_size)
        _check_generator(generator)
        starts = torch.randint(len(ids) - self.seq_len + 1, (batch_size,), generator=generator)
        input_ids, targets = self._mask(self._windows(ids, starts), None, generator)
        return {"input_ids": input_ids, "targets": targets}

    def iter_batches(self, split: str, batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
        """Consecutive windows over the whole split, masked reproducibly (seed ``EVAL_SEED``).

        Batches also hold ``attention_mask`` (False on the padding of the last window).
        """
        ids = self._ids(split)
        _check_batch_size(batch_size)
        windows = self._tiles(ids, self.tokenizer.pad_id or 0)
        real = self._tiles(torch.ones(len(ids), dtype=torch.bool), False)
        generator = torch.Generator().manual_seed(EVAL_SEED)
        input_ids, targets = self._mask(windows, real, generator)
        batches = {"input_ids": input_ids, "attention_mask": real, "targets": targets}
        return _slices(batches, batch_size)

    def _mask(
        self, ids: torch.Tensor, real: torch.Tensor | None, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        maskable = ~self._is_special[ids] if real is None else ~self._is_special[ids] & real
        chosen = (torch.rand(ids.shape, generator=generator) < self.mask_prob) & maskable
        action = torch.rand(ids.shape, generator=generator)
        to_mask = chosen & (action < 0.8)
        to_random = chosen & (action >= 0.8) & (action < 0.9)
        inputs = ids.clone()
        inputs[to_mask] = self.tokenizer.mask_id
        picks = torch.randint(len(self._ordinary_ids), (int(to_random.sum()),), generator=generator)
        inputs[to_random] = self._ordinary_ids[picks]
        return inputs, torch.where(chosen, ids, IGNORE_INDEX)

    def _settings(self) -> dict[str, Any]:
        return {**super()._settings(), "mask_prob": self.mask_prob}


def _slices(tensors: dict[str, torch.Tensor], batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
    """Consecutive row slices of equally long tensors, ``batch_size`` rows at a time."""
    n = len(next(iter(tensors.values())))
    for start in range(0, n, batch_size):
        yield {key: tensor[start : start + batch_size] for key, tensor in tensors.items()}


class _RowData(_Batches):
    """Examples stored as padded rows: one dict of [N, ...] tensors per split."""

    def __init__(
        self,
        train: dict[str, torch.Tensor],
        val: dict[str, torch.Tensor],
        tokenizer: Tokenizer,
        seq_len: int,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.tokenizer, self.seq_len = tokenizer, seq_len
        self._rows = {"train": train, "val": val}
        self._extra_settings = settings or {}

    def _size(self, split: str) -> int:
        return len(self._rows[split]["targets"])

    def __len__(self) -> int:
        return self._size("train") + self._size("val")

    def get_batch(
        self, split: str, batch_size: int, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """``batch_size`` examples of ``split`` drawn at random (with replacement)."""
        self._check_split(split)
        _check_batch_size(batch_size)
        _check_generator(generator)
        rows = torch.randint(self._size(split), (batch_size,), generator=generator)
        return {key: tensor[rows] for key, tensor in self._rows[split].items()}

    def iter_batches(self, split: str, batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
        """Every example of ``split`` once, in order, ``batch_size`` at a time."""
        self._check_split(split)
        _check_batch_size(batch_size)
        return _slices(self._rows[split], batch_size)

    def _settings(self) -> dict[str, Any]:
        return {"seq_len": self.seq_len, **self._extra_settings}

    def _tensors(self) -> list[tuple[str, torch.Tensor]]:
        return [
            (f"{split}/{key}", tensor)
            for split, rows in self._rows.items()
            for key, tensor in sorted(rows.items())
        ]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(train={self._size('train')} examples, "
            f"val={self._size('val')} examples, seq_len={self.seq_len}, "
            f"tokenizer={self.tokenizer!r})"
        )


def _pad_rows(rows: Sequence[Sequence[int]], length: int, fill: int) -> torch.Tensor:
    """[len(rows), length] long tensor, each row right-padded with ``fill``."""
    out = torch.full((len(rows), length), fill, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def _lengths_mask(rows: Sequence[Sequence[int]], length: int) -> torch.Tensor:
    """[len(rows), length] bool: True where a row has a real token."""
    lengths = torch.tensor([len(row) for row in rows], dtype=torch.long)
    return torch.arange(length)[None, :] < lengths[:, None]


def _check_nonempty_rows(rows: Sequence[Sequence[int]], what: str) -> None:
    for index, row in enumerate(rows):
        if not row:
            raise DataError(
                f"{what} {index} encodes to no tokens, which would leave a row of pure "
                "padding. Drop empty texts before building the data."
            )


class Seq2SeqData(_RowData):
    """Source -> target pairs for an encoder-decoder model (translation, summarisation).

    ``input_ids``/``attention_mask``: source ids, right-padded. ``decoder_input_ids`` =
    [bos] + target, ``targets`` = target + [eos] (-100 on padding), all truncated to seq_len.

    >>> tok = llmlab.CharTokenizer.train(text, special_tokens=("<pad>", "<bos>", "<eos>"))  # doctest: +SKIP
    >>> data = Seq2SeqData.from_pairs([("hi", "salut")], tok, seq_len=16, val_fraction=0)  # doctest: +SKIP
    """

    @classmethod
    def from_pairs(
        cls,
        pairs: Sequence[tuple[str, str]],
        tokenizer: Tokenizer,
        *,
        seq_len: int,
        val_fraction: float = 0.1,
    ) -> Seq2SeqData:
        """Shuffle ``pairs`` (seed ``SPLIT_SEED``), keep the last ``val_fraction`` as val."""
        _check_tokenizer(tokenizer)
        _check_seq_len(seq_len)
        _check_roles(tokenizer, ("pad", "bos", "eos"), "sequence-to-sequence data")
        pairs = _checked_pairs(pairs)
        train_rows, val_rows = _split_rows(len(pairs), val_fraction, SPLIT_SEED)
        return cls(
            cls._encode([pairs[i] for i in train_rows], tokenizer, seq_len),
            cls._encode([pairs[i] for i in val_rows], tokenizer, seq_len),
            tokenizer,
            seq_len,
            {"val_fraction": val_fraction, "split_seed": SPLIT_SEED},
        )

    @staticmethod
    def _encode(
        pairs: Sequence[tuple[str, str]], tokenizer: Tokenizer, seq_len: int
    ) -> dict[str, torch.Tensor]:
        sources = [ids[:seq_len] for ids in tokenizer.encode_batch([s for s, _ in pairs])]
        _check_nonempty_rows(sources, "source text")
        targets = tokenizer.encode_batch([t for _, t in pairs])
        decoder_in = [([tokenizer.bos_id] + ids)[:seq_len] for ids in targets]
        decoder_out = [(ids + [tokenizer.eos_id])[:seq_len] for ids in targets]
        return {
            "input_ids": _pad_rows(sources, seq_len, tokenizer.pad_id),
            "attention_mask": _lengths_mask(sources, seq_len),
            "decoder_input_ids": _pad_rows(decoder_in, seq_len, tokenizer.pad_id),
            "decoder_attention_mask": _lengths_mask(decoder_in, seq_len),
            "targets": _pad_rows(decoder_out, seq_len, IGNORE_INDEX),
        }


def _check_roles(tokenizer: Tokenizer, roles: Sequence[str], task: str) -> None:
    missing = [role for role in roles if tokenizer.special_tokens.get(role) is None]
    if missing:
        names = ", ".join(f"<{role}>" for role in missing)
        raise DataError(
            f"{task} needs the tokenizer's {', '.join(missing)} token(s), which it lacks. "
            f"Create it with them, e.g. CharTokenizer.train(text, special_tokens=({names}, ...))."
        )


def _checked_pairs(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    pairs = list(pairs)
    if not pairs:
        raise DataError("no pairs given. Pass a list of (source, target) strings.")
    for index, pair in enumerate(pairs):
        ok = isinstance(pair, (tuple, list)) and len(pair) == 2
        if not ok or not all(isinstance(s, str) for s in pair):
            raise DataError(
                f"pair {index} is {pair!r:.60}; each pair must be a (source, target) tuple of "
                "two strings."
            )
    return [(s, t) for s, t in pairs]


class ClassificationData(_RowData):
    """Texts with class labels for a sequence classifier; ``targets`` are class ids [B].

    Each text becomes [cls] + ids + [sep] (where the tokenizer has those tokens, as BERT),
    truncated to ``seq_len`` and right-padded with the pad id (0 if there is none; the
    ``attention_mask`` marks padding).

    >>> sst2 = load_classification("sst2")                                      # doctest: +SKIP
    >>> data = ClassificationData.from_texts(sst2, tokenizer=tok, seq_len=64)    # doctest: +SKIP
    """

    @classmethod
    def from_texts(
        cls,
        texts: Sequence[str] | LabelledTexts,
        labels: Sequence[int] | None = None,
        tokenizer: Tokenizer | None = None,
        *,
        seq_len: int,
        val_fraction: float = 0.1,
        n_labels: int | None = None,
        label_names: Sequence[str] | None = None,
    ) -> ClassificationData:
        """Shuffle the examples (seed ``SPLIT_SEED``) and keep the last ``val_fraction`` as val."""
        examples = _labelled(texts, labels, label_names)
        _check_val_fraction(val_fraction)
        train, val = examples.split(val_fraction)
        data = cls.from_splits(train, val, tokenizer, seq_len=seq_len, n_labels=n_labels)
        data._extra_settings.update(val_fraction=val_fraction, split_seed=SPLIT_SEED)
        return data

    @classmethod
    def from_splits(
        cls,
        train: LabelledTexts,
        val: LabelledTexts,
        tokenizer: Tokenizer | None,
        *,
        seq_len: int,
        n_labels: int | None = None,
    ) -> ClassificationData:
        """Use a ready train / val split as it is (e.g. sst2's train and dev files)."""
        _check_tokenizer(tokenizer)
        _check_seq_len(seq_len)
        for name, part in (("train", train), ("val", val)):
            if not isinstance(part, LabelledTexts):
                raise DataError(
                    f"{name} must be LabelledTexts, got {type(part).__name__}. Build it with "
                    "LabelledTexts(texts, labels, label_names) or load_classification()."
                )
        if len(train) == 0:
            raise DataError("the train split is empty. Pass at least one labelled text.")
        names = train.label_names or val.label_names
        n_labels = cls._n_labels(n_labels, names, train, val)
        _check_labels(train.labels + val.labels, n_labels)
        return cls(
            cls._encode(train, tokenizer, seq_len),
            cls._encode(val, tokenizer, seq_len),
            tokenizer,
            seq_len,
            {"n_labels": n_labels, "label_names": list(names)},
        )

    @staticmethod
    def _n_labels(
        n_labels: int | None, names: Sequence[str], train: LabelledTexts, val: LabelledTexts
    ) -> int:
        if n_labels is None:
            return len(names) or max(train.labels + val.labels) + 1
        if not isinstance(n_labels, int) or isinstance(n_labels, bool) or n_labels < 1:
            raise DataError(f"n_labels must be an int >= 1, got {n_labels!r}.")
        if names and len(names) != n_labels:
            raise DataError(
                f"n_labels={n_labels} but {len(names)} label_names {list(names)}. Pass one name "
                "per class, or leave n_labels out."
            )
        return n_labels

    @staticmethod
    def _encode(
        examples: LabelledTexts, tokenizer: Tokenizer, seq_len: int
    ) -> dict[str, torch.Tensor]:
        prefix = [] if tokenizer.cls_id is None else [tokenizer.cls_id]
        suffix = [] if tokenizer.sep_id is None else [tokenizer.sep_id]
        room = seq_len - len(prefix) - len(suffix)
        if room < 1:
            raise DataError(
                f"seq_len={seq_len} leaves no room for text between the cls and sep tokens. "
                f"Use seq_len >= {len(prefix) + len(suffix) + 1}."
            )
        encoded = tokenizer.encode_batch(examples.texts)
        _check_nonempty_rows(encoded, "text")
        rows = [prefix + ids[:room] + suffix for ids in encoded]
        pad = tokenizer.pad_id if tokenizer.pad_id is not None else 0
        return {
            "input_ids": _pad_rows(rows, seq_len, pad),
            "attention_mask": _lengths_mask(rows, seq_len),
            "targets": torch.tensor(examples.labels, dtype=torch.long),
        }

    @property
    def n_labels(self) -> int:
        """Number of classes (the classifier head's output size)."""
        return self._extra_settings["n_labels"]

    @property
    def label_names(self) -> list[str]:
        """Class names, ``label_names[i]`` for class id i (empty when none were given)."""
        return list(self._extra_settings["label_names"])


def _labelled(
    texts: Sequence[str] | LabelledTexts,
    labels: Sequence[int] | None,
    label_names: Sequence[str] | None,
) -> LabelledTexts:
    if isinstance(texts, LabelledTexts):
        if labels is not None:
            raise DataError(
                "labels were passed with LabelledTexts, which already holds its labels. "
                "Pass either LabelledTexts or texts and labels."
            )
        if label_names is None:
            return texts
        return LabelledTexts(texts.texts, texts.labels, list(label_names))
    if labels is None:
        raise DataError("labels are missing. Pass one label per text, or a LabelledTexts.")
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise DataError("texts must be a sequence of str. Pass e.g. ['good film', 'dull'].")
    examples = LabelledTexts(list(texts), list(labels), list(label_names or []))
    if len(examples) == 0:
        raise DataError("no texts given. Pass at least one labelled text.")
    return examples


#: Files of a saved corpus data set (:func:`save_corpus`).
CORPUS_FORMAT, CORPUS_IDS, CORPUS_SETTINGS = "llmlab-corpus", "ids.safetensors", "corpus.json"


def save_corpus(data: CausalLMData | MaskedLMData, folder: str | os.PathLike) -> Path:
    """Write a corpus batch maker (token ids, tokenizer, settings) to ``folder``, which
    :func:`load_corpus` reads back with the same fingerprint: how a spec file describes data
    built in a notebook. Row data (classification, seq2seq) is described by its data set's
    name instead.

    >>> save_corpus(data, "spec-data/")                      # doctest: +SKIP
    >>> load_corpus("spec-data/").fingerprint == data.fingerprint   # doctest: +SKIP
    True
    """
    from safetensors.torch import save_file

    if not isinstance(data, _CorpusData):
        raise DataError(f"save_corpus writes CausalLMData or MaskedLMData, not "
                        f"{type(data).__name__}; describe classification or seq2seq data by "
                        "its data set's name (a spec's data.dataset).")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ids = torch.cat([data.train_ids, data.val_ids])
    write_atomic(folder / CORPUS_IDS, lambda tmp: save_file({"ids": ids}, str(tmp)))
    data.tokenizer.save(folder)
    header = {"format": CORPUS_FORMAT, "version": 1, "class": type(data).__name__,
              "settings": data._settings()}
    write_atomic(folder / CORPUS_SETTINGS,
                 lambda tmp: tmp.write_text(json.dumps(header, indent=2), encoding="utf-8"))
    return folder


def load_corpus(folder: str | os.PathLike) -> CausalLMData | MaskedLMData:
    """The batch maker :func:`save_corpus` wrote to ``folder``."""
    from safetensors.torch import load_file

    from llmlab.tokenizers import load_tokenizer

    folder = Path(folder).expanduser()
    try:
        header = json.loads((folder / CORPUS_SETTINGS).read_text(encoding="utf-8"))
        ids = load_file(str(folder / CORPUS_IDS))["ids"]
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"{folder} is not a saved corpus ({type(err).__name__}: {err}); it needs "
                        f"{CORPUS_SETTINGS} and {CORPUS_IDS} as llmlab.data.save_corpus writes "
                        "them.") from None
    classes = {"CausalLMData": CausalLMData, "MaskedLMData": MaskedLMData}
    if header.get("format") != CORPUS_FORMAT or header.get("class") not in classes:
        raise DataError(f"{folder / CORPUS_SETTINGS} is not an llmlab corpus header; save the "
                        "data again with llmlab.data.save_corpus.")
    if header.get("version") != 1:
        raise DataError(f"{folder / CORPUS_SETTINGS} has version {header.get('version')!r}; this "
                        "llmlab reads version 1: upgrade llmlab, or save the data again.")
    return classes[header["class"]](ids, load_tokenizer(folder), **header["settings"])
