"""Token streams for language-model training, as in pytorch/examples word_language_model.

A corpus becomes one long 1-D stream of ids with ``<eos>`` after every line. :func:`batchify`
cuts it into ``B`` contiguous parallel streams (``[B, N]``, batch first); training walks through
them in windows of ``bptt`` steps whose targets are the inputs shifted by one, carrying the hidden
state from window to window. Train/valid/test are contiguous slices (the validation/test data is
the tail of the stream), so no text leaks between them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from textseq.errors import TextseqError, check_choice
from textseq.vocab import EOS, Vocab, VocabConfig


@dataclass
class LMData:
    """A tokenized corpus: the id stream plus everything needed to tokenize new text the same way."""

    ids: np.ndarray  # 1-D, <eos> after every line; may be a read-only memmap
    vocab: Vocab
    pipeline: dict  # PipelineConfig.to_dict()
    sources: list[str] = field(default_factory=list)

    @property
    def eos_id(self) -> int:
        return self.vocab.stoi[EOS]


@dataclass
class StreamSplit:
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def is_preprocessed(source: str | os.PathLike) -> bool:
    return Path(source).is_dir() and (Path(source) / "ids.npy").is_file()


def make_pipeline_config(level: str = "char", lang: str = "auto", pretokenized: bool = False,
                         vocab_size: int | None = None):
    """The LM default pipeline for a token level (see ``PipelineConfig.for_level``)."""
    from textseq.text.pipeline import PipelineConfig

    if level not in ("char", "word", "subword"):
        raise TextseqError(f"unknown level {level!r}; choose char, word or subword")
    cfg = PipelineConfig.for_level(level, pretokenized)
    cfg.tokenize.lang = lang
    if vocab_size:
        cfg.tokenize.subword_vocab = vocab_size
    return cfg


def chars_per_token(vocab: Vocab, ids: np.ndarray, level: str) -> float:
    """Characters of text per predicted token of ``ids`` (its first token is context only): 1 but at the
    subword level, where it turns nats per piece into bits per character."""
    if level != "subword" or len(ids) < 2:
        return 1.0
    from textseq.text.subword import piece_chars

    return float(piece_chars(vocab.itos, vocab.specials)[np.asarray(ids[1:], dtype=np.int64)].mean()) or 1.0


def encode_lines(token_lines: Iterable[list[str]], vocab: Vocab) -> np.ndarray:
    """Token lists -> one id stream with ``<eos>`` after every line (OOV tokens -> ``<unk>``)."""
    eos = vocab.stoi[EOS]
    chunks = [np.asarray(vocab.encode(tokens) + [eos], dtype=np.int64) for tokens in token_lines]
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)


def tokenize_text(source: str | os.PathLike, pipeline_config: dict | object) -> Iterator[list[str]]:
    """Stream the token lists of a text file/directory through a pipeline (config object or dict)."""
    from textseq.text.pipeline import Pipeline, PipelineConfig
    from textseq.text.reader import read_lines

    cfg = PipelineConfig.from_dict(pipeline_config) if isinstance(pipeline_config, dict) else pipeline_config
    return Pipeline(cfg).process_lines(read_lines(source))


def load_lm_data(source: str | os.PathLike, level: str = "char", lang: str = "auto",
                 vocab: Vocab | None = None, pipeline: dict | None = None,
                 vocab_config: VocabConfig | None = None, pretokenized: bool = False,
                 vocab_size: int | None = None) -> LMData:
    """Read a preprocess output directory (memory-mapped ``ids.npy``) or tokenize raw text.

    ``vocab``/``pipeline`` (from a checkpoint, on resume or evaluation) force the same ids;
    otherwise the vocabulary is built from the text itself.
    """
    if is_preprocessed(source):
        if pretokenized:
            raise TextseqError(f"{source} is a preprocess directory: its pipeline.json says how the text was "
                               "tokenized; give --pretokenized to `textseq preprocess` instead")
        return _load_preprocessed(Path(source), vocab)
    if not Path(source).exists():
        raise TextseqError(f"training data {source} does not exist")
    if pipeline is None:
        from textseq.text.pipeline import with_subword_model
        from textseq.text.reader import LineReader

        cfg = make_pipeline_config(level, lang, pretokenized, vocab_size)
        pipeline = with_subword_model(cfg, LineReader([source]).blocks()).to_dict()  # subword: learn the units
    if vocab is None:
        from textseq.text.subword import model_pieces

        vocab = Vocab.from_docs(tokenize_text(source, pipeline), vocab_config, always=model_pieces(pipeline))
    ids = encode_lines(tokenize_text(source, pipeline), vocab)
    if not np.any(ids != vocab.stoi[EOS]):
        raise TextseqError(f"the training text {source} is empty (no tokens)")
    return LMData(ids, vocab, pipeline, [str(Path(source).resolve())])


def _load_preprocessed(directory: Path, vocab: Vocab | None) -> LMData:
    stored = Vocab.load(directory / "vocab.json")
    if vocab is not None and vocab.itos != stored.itos:
        raise TextseqError(f"the vocabulary in {directory} differs from the checkpoint's; "
                           "train on the same preprocessed data")
    from textseq.text.preprocess import check_output_set, load_pipeline_record

    pipeline = load_pipeline_record(directory)[0].to_dict()
    try:
        ids = np.load(directory / "ids.npy", mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise TextseqError(f"{directory / 'ids.npy'} is not a readable id stream ({type(exc).__name__})") from None
    if ids.ndim != 1:
        raise TextseqError(f"{directory / 'ids.npy'} must be a 1-D id stream")
    check_output_set(directory, ids, len(stored))
    if EOS not in stored:
        raise TextseqError(f"the vocabulary in {directory} has no {EOS} token")
    return LMData(ids, stored, pipeline, [str(directory.resolve())])


def stream_digest(ids: np.ndarray, chunk: int = 1 << 20) -> str:
    """A digest of the id stream's content, the same for a memory-mapped uint16/uint32 stream and the int64
    stream of the same text (read in chunks: the stream is never copied whole)."""
    digest = hashlib.blake2b(digest_size=16)
    for start in range(0, len(ids), chunk):
        digest.update(np.ascontiguousarray(ids[start:start + chunk], dtype="<i8").tobytes())
    return digest.hexdigest()


VALID_SPLITS = ("spread", "tail")
SPREAD_SEGMENTS = 10


def split_stream(ids: np.ndarray, valid_ratio: float = 0.1, test_ratio: float = 0.0,
                 valid_split: str = "tail") -> StreamSplit:
    """Train, then valid, then test, with the test part the stream's tail.

    ``valid_split`` "tail": valid is one contiguous block just before the test part. "spread": valid is
    SPREAD_SEGMENTS contiguous blocks, the last tokens of each of as many equal parts of the stream before the
    test part, so that it samples the whole corpus: in an author-ordered collection (poems by poet, a book's
    chapters) the tail is other text than the rest, and a model chosen on it is chosen on the wrong thing.
    """
    if not (0.0 <= valid_ratio < 1.0 and 0.0 <= test_ratio < 1.0 and valid_ratio + test_ratio < 1.0):
        raise TextseqError(f"valid and test ratios must be in [0, 1) and sum below 1 "
                           f"(got {valid_ratio} and {test_ratio})")
    check_choice("valid-split", valid_split, VALID_SPLITS)
    n = len(ids)
    n_test, n_valid = int(n * test_ratio), int(n * valid_ratio)
    head, test = ids[:n - n_test], ids[n - n_test:]
    segments = SPREAD_SEGMENTS if valid_split == "spread" and n_valid >= SPREAD_SEGMENTS else 1
    train, valid, train_start = [], [], 0
    for k in range(segments):
        end = len(head) * (k + 1) // segments
        start = end - (n_valid * (k + 1) // segments - n_valid * k // segments)
        train.append(head[train_start:start])
        valid.append(head[start:end])
        train_start = end
    if segments == 1:  # views, no copy (the stream may be memory-mapped)
        return StreamSplit(train[0], valid[0], test)
    return StreamSplit(np.concatenate(train), np.concatenate(valid), test)


def batchify(ids: np.ndarray | Tensor, batch_size: int) -> Tensor:
    """1-D stream -> LongTensor[batch_size, N // batch_size]: row b is the b-th contiguous chunk.

    The remainder that does not fill a whole column is dropped.
    """
    if batch_size < 1:
        raise TextseqError(f"batch size must be at least 1, got {batch_size}")
    n_cols = len(ids) // batch_size
    if n_cols < 2:
        raise TextseqError(f"{len(ids)} tokens are too few for {batch_size} parallel streams; "
                           "use a smaller --batch-size or more text")
    flat = torch.as_tensor(np.asarray(ids[: n_cols * batch_size]).astype(np.int64))
    return flat.view(batch_size, n_cols)


def shard_streams(data: Tensor, rank: int, world_size: int) -> Tensor:
    """The block of parallel streams that distributed rank ``rank`` trains on."""
    if data.size(0) % world_size:
        raise TextseqError(f"batch size {data.size(0)} is not divisible by the {world_size} processes")
    per_rank = data.size(0) // world_size
    return data[rank * per_rank:(rank + 1) * per_rank]


def window(data: Tensor, start: int, length: int) -> tuple[Tensor, Tensor]:
    """Inputs data[:, start:start+L] and targets shifted by one; L is cut short at the end."""
    length = min(length, data.size(1) - 1 - start)
    if length < 1:
        raise TextseqError(f"window start {start} is past the end of the stream")
    return data[:, start:start + length], data[:, start + 1:start + 1 + length]


def window_starts(n_cols: int, bptt: int, first: int = 0) -> range:
    """Start positions of consecutive windows that cover every target of an ``n_cols`` stream."""
    return range(first, n_cols - 1, bptt)


def split_docs(ids: np.ndarray, eos_id: int) -> list[np.ndarray]:
    """Cut an id stream into lines at ``<eos>`` (the ``<eos>`` itself is dropped)."""
    ends = np.flatnonzero(np.asarray(ids) == eos_id)
    starts = np.concatenate([[0], ends[:-1] + 1]) if len(ends) else np.zeros(0, dtype=np.int64)
    docs = [np.asarray(ids[s:e]) for s, e in zip(starts, ends, strict=True)]
    tail = np.asarray(ids[ends[-1] + 1:] if len(ends) else ids)
    return docs + ([tail] if len(tail) else [])
