"""word2vec embeddings with gensim: streaming training, the usual file formats, nearest neighbours."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textseq.errors import TextseqError, check_choice
from textseq.io import atomic_path, check_input_file
from textseq.settings import Settings

if TYPE_CHECKING:  # gensim (with scipy) takes about a second to import: only when vectors are made or read
    from gensim.models import KeyedVectors

FORMATS = ("kv", "word2vec", "word2vec-binary", "glove")
SUFFIX_FORMATS = {".kv": "kv", ".bin": "word2vec-binary", ".txt": "word2vec", ".vec": "word2vec",
                  ".glove": "glove"}


@dataclass
class Word2VecConfig(Settings):
    vector_size: int = 100
    window: int = 5
    min_count: int = 2
    sg: int = 1
    epochs: int = 5
    workers: int = 1
    seed: int = 0

    def validate(self) -> None:
        super().validate()
        for name in ("vector_size", "window", "epochs", "workers"):
            if getattr(self, name) < 1:
                raise TextseqError(f"word2vec {name} must be at least 1, got {getattr(self, name)}")


def train_word2vec(docs: Iterable[Sequence[str]], cfg: Word2VecConfig | None = None) -> KeyedVectors:
    """Train on a re-iterable corpus (a list, or a corpus object such as textseq.text.reader.LineCorpus).

    With ``workers=1`` the result depends only on the corpus and ``seed`` (identical across runs and
    processes); more workers are faster but not reproducible.
    """
    cfg = cfg or Word2VecConfig()
    cfg.validate()
    if iter(docs) is docs:
        raise TextseqError("word2vec needs a corpus it can read several times (a list or LineCorpus), "
                           "not a one-shot iterator")
    from gensim.models import Word2Vec

    model = Word2Vec(vector_size=cfg.vector_size, window=cfg.window, min_count=cfg.min_count, sg=cfg.sg,
                     workers=cfg.workers, seed=cfg.seed)
    model.build_vocab(docs)
    if len(model.wv) == 0:
        raise TextseqError(f"no word occurs at least min_count={cfg.min_count} times; nothing to train")
    model.train(docs, total_examples=model.corpus_count, epochs=cfg.epochs)
    return model.wv


def _format_for(path: Path, fmt: str | None) -> str | None:
    if fmt is not None:
        check_choice("vectors format", fmt, FORMATS)
    return fmt or SUFFIX_FORMATS.get(path.suffix.lower())


def save_vectors(kv: KeyedVectors, path: str | os.PathLike, fmt: str | None = None) -> None:
    """Save as gensim native (.kv), word2vec text (.txt/.vec), word2vec binary (.bin) or GloVe text
    (.glove, or ``fmt="glove"``: word2vec text without the header line)."""
    path = Path(path)
    fmt = _format_for(path, fmt)
    if fmt is None:
        raise TextseqError(f"cannot tell the vectors format of {path.name}; use .kv, .txt, .vec, .bin or .glove")
    with atomic_path(path) as tmp:
        if fmt == "kv":
            kv.save(str(tmp), separately=[])  # one file: no side .npy files named after the temp file
        else:
            kv.save_word2vec_format(str(tmp), binary=fmt == "word2vec-binary", write_header=fmt != "glove")


def _sniff_format(path: Path) -> str:
    """word2vec files start with a "count dim" header; binary ones then hold raw float32 bytes."""
    with open(path, "rb") as fh:
        header = fh.readline(1 << 16).split()
        sample = fh.read(4096)
    if len(header) != 2 or not all(field.isdigit() for field in header):
        return "glove"
    try:
        sample.decode("utf-8")
        is_text = b"\x00" not in sample
    except UnicodeDecodeError as exc:
        is_text = exc.start > len(sample) - 4  # only a multibyte character cut at the sample's end
    return "word2vec" if is_text else "word2vec-binary"


def _check_text_rows(path: Path, has_header: bool) -> None:
    """gensim broadcasts a short row to the full width instead of failing, so count the fields first."""
    with open(path, "rb") as fh:
        if has_header:
            fh.readline()
        width = None
        for number, line in enumerate(fh, 2 if has_header else 1):
            fields = line.rstrip().count(b" ") + 1
            width = width or fields
            if fields != width:
                raise ValueError(f"line {number} has {fields - 1} values, expected {width - 1}")


def load_vectors(path: str | os.PathLike, fmt: str | None = None) -> KeyedVectors:
    """Load vectors saved by :func:`save_vectors` or by word2vec/GloVe tools; the format is detected.

    The native .kv format is a pickle: load only files you trust.
    """
    from gensim.models import KeyedVectors

    path = check_input_file(path, "vectors file")
    fmt = _format_for(path, fmt)
    try:
        fmt = fmt if fmt in ("kv", "glove") else _sniff_format(path)
        if fmt == "kv":
            kv = KeyedVectors.load(str(path))
        else:
            if fmt != "word2vec-binary":
                _check_text_rows(path, has_header=fmt == "word2vec")
            kv = KeyedVectors.load_word2vec_format(str(path), binary=fmt == "word2vec-binary",
                                                   no_header=fmt == "glove")
    except Exception as exc:  # gensim's parsers raise anything (ValueError, EOFError, UnpicklingError, ...)
        reason = str(exc).splitlines()[0][:120] if str(exc) else ""
        raise TextseqError(f"{path} is not a valid {fmt} vectors file ({type(exc).__name__} {reason})") from None
    if not isinstance(kv, KeyedVectors) or len(kv) == 0:
        raise TextseqError(f"{path} holds no word vectors")
    return kv


def nearest(kv: KeyedVectors, word: str, topn: int = 10) -> list[tuple[str, float]]:
    """The ``topn`` words most cosine-similar to ``word``."""
    if word not in kv.key_to_index:
        raise TextseqError(f"word {word!r} has no vector")
    return kv.most_similar(word, topn=topn)
