"""The streaming core of ``textseq preprocess``: tokenize in chunks (optionally in worker processes),
count, spill provisional token ids to disk, then encode them with the final vocabulary.

Memory is bounded by the vocabulary, never by the corpus: lines are read in blocks of a few
hundred kilobytes, at most ``2 * workers`` chunks are in flight, and tokens go to a spill file as uint32
provisional ids (one id per distinct token, in order of first appearance). Each chunk is
tokenized by the same function whether it runs in this process or in a worker, and chunks are
merged in input order, so ``workers=N`` writes exactly the same files as ``workers=1``.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textseq.errors import TextseqError
from textseq.io import atomic_path
from textseq.text.pipeline import Pipeline, PipelineConfig
from textseq.text.tokenize import LINE_END
from textseq.vocab import EOS, TokenCounts, Vocab

LINE_END_ID = 0  # provisional id written after every document; real tokens get ids from 1
BLOCK = 1 << 22  # ids per read when scanning the spill file


@dataclass
class Chunk:
    """One tokenized chunk: ``ids`` index into ``types`` (offset by one; LINE_END ends each document)."""

    types: list[str]
    ids: np.ndarray
    term: np.ndarray  # occurrences of each type in the chunk
    doc: np.ndarray | None  # documents of the chunk containing each type (only when asked for: it costs a sort)
    docs: int


_worker: dict = {}


def init_worker(pipeline: dict, keep_empty: bool, doc_freq: bool = False) -> None:
    _worker.update(pipeline=Pipeline(PipelineConfig.from_dict(pipeline)), keep_empty=keep_empty, doc_freq=doc_freq)


def tokenize_chunk(lines: list[str]) -> Chunk:
    """A block of lines in one go where the pipeline can (see ``Pipeline.process_block``), else line by line:
    the same chunk either way."""
    pipe, keep_empty, doc_freq = _worker["pipeline"], _worker["keep_empty"], _worker["doc_freq"]
    if pipe.tokens_are_chars:
        if (text := pipe.clean_block(lines)) is not None:
            return _chunk(*_char_ids(text), keep_empty, doc_freq)
    elif (tokens := pipe.process_block(lines)) is not None:
        return _chunk(*_token_ids(tokens), keep_empty, doc_freq)
    return _chunk(*_line_ids(map(pipe.process_line, lines)), keep_empty, doc_freq)


def _char_ids(text: str) -> tuple[list[str], np.ndarray]:
    """Characters -> ids with numpy, through the code points: no Python work per character."""
    points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    present = np.bincount(points)
    present[ord(LINE_END)] = 0
    points_used = np.flatnonzero(present)
    lookup = np.zeros(len(present), dtype=np.uint32)  # code point -> id; the newline stays LINE_END_ID
    lookup[points_used] = np.arange(1, len(points_used) + 1, dtype=np.uint32)
    return [chr(point) for point in points_used.tolist()], lookup[points]


def _token_ids(tokens: list[str], line_ends: bool = True) -> tuple[list[str], np.ndarray]:
    """Ids by first appearance, mapped in C (dict.fromkeys, map) rather than token by token in Python;
    ``line_ends``: the LINE_END tokens of a block become LINE_END_ID."""
    first = dict.fromkeys(tokens)
    if line_ends:
        first.pop(LINE_END, None)
    types = list(first)
    index = dict(zip(types, range(1, len(types) + 1), strict=True))
    if line_ends:
        index[LINE_END] = LINE_END_ID
    return types, np.fromiter(map(index.__getitem__, tokens), dtype=np.uint32, count=len(tokens))


def _line_ids(token_lists: Iterable[list[str]]) -> tuple[list[str], np.ndarray]:
    """The line-by-line path: tokens may be anything here (a newline character included)."""
    flat: list[str] = []
    lengths: list[int] = []
    for tokens in token_lists:
        flat += tokens
        lengths.append(len(tokens))
    types, token_ids = _token_ids(flat, line_ends=False)
    return types, np.insert(token_ids, np.cumsum(lengths, dtype=np.int64), LINE_END_ID)


def _chunk(types: list[str], ids: np.ndarray, keep_empty: bool, doc_freq: bool) -> Chunk:
    ends = ids == LINE_END_ID
    if not keep_empty:
        empty = ends.copy()
        empty[1:] &= ends[:-1]  # an end right after another (or first) ends a document with no tokens
        if empty.any():
            ids, ends = ids[~empty], ends[~empty]
    n_types = len(types) + 1
    term = np.bincount(ids, minlength=n_types)[1:]
    doc = None
    if doc_freq:
        doc_of_token = np.cumsum(ends, dtype=np.int64) - ends  # documents ended before each position
        pairs = _distinct(doc_of_token * n_types + ids)  # one entry per (document, type)
        doc = np.bincount(pairs % n_types, minlength=n_types)[1:]
    return Chunk(types, ids, term, doc, int(ends.sum()))


def _distinct(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values; np.unique (numpy 2.4) is ~20x slower on mostly distinct int64 keys."""
    keys = np.sort(keys)
    keep = np.ones(len(keys), dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    return keys[keep]


def tokenize_chunks(chunks: Iterable[list[str]], pipeline: PipelineConfig, workers: int = 1,
                    keep_empty: bool = False, doc_freq: bool = False) -> Iterator[Chunk]:
    """Tokenized chunks in input order. Unlike ``Pool.imap``, which reads its whole input ahead,
    at most ``2 * workers`` chunks are pending at a time."""
    init_args = (pipeline.to_dict(), keep_empty, doc_freq)
    if workers <= 1:
        init_worker(*init_args)
        yield from map(tokenize_chunk, chunks)
        return
    with _process_context().Pool(workers, init_worker, init_args) as pool:
        pending: deque = deque()
        for chunk in chunks:
            pending.append(pool.apply_async(tokenize_chunk, (chunk,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _process_context():
    """fork where available: workers start at once and need no importable __main__ (``python -``
    scripts, notebooks). Nothing here runs threads (the CLI's progress bar refreshes from the
    main thread), so the child inherits no held locks."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


class TokenSpill:
    """Counts of every distinct token and the whole token stream, as provisional ids, in a file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file = open(self.path, "wb")
        self.stoi: dict[str, int] = {}
        self.term = np.zeros(1024, dtype=np.int64)
        self.doc = np.zeros(1024, dtype=np.int64)
        self.n_docs = 0
        self.n_ids = 0

    def add(self, chunk: Chunk) -> None:
        stoi = self.stoi
        new = list(itertools.filterfalse(stoi.__contains__, chunk.types))
        stoi.update(zip(new, range(len(stoi) + 1, len(stoi) + 1 + len(new)), strict=True))
        ids = np.fromiter(map(stoi.__getitem__, chunk.types), np.int64, len(chunk.types))
        if len(stoi) + 1 > len(self.term):
            self.term, self.doc = _grown(self.term, 2 * (len(stoi) + 1)), _grown(self.doc, 2 * (len(stoi) + 1))
        self.term[ids] += chunk.term
        if chunk.doc is not None:
            self.doc[ids] += chunk.doc
        to_global = np.concatenate(([LINE_END_ID], ids)).astype(np.uint32)
        self._file.write(to_global[chunk.ids].tobytes())  # file.write: a full disk is ENOSPC (tofile hides it)
        self.n_docs += chunk.docs
        self.n_ids += len(chunk.ids)

    def close(self) -> None:
        self._file.close()

    @property
    def n_tokens(self) -> int:
        return self.n_ids - self.n_docs

    def token_counts(self) -> TokenCounts:
        n = len(self.stoi) + 1
        return TokenCounts(Counter(dict(zip(self.stoi, self.term[1:n].tolist(), strict=True))),
                           Counter(dict(zip(self.stoi, self.doc[1:n].tolist(), strict=True))), self.n_docs)

    def id_map(self, vocab: Vocab) -> np.ndarray:
        """Provisional id -> vocabulary id (out-of-vocabulary tokens -> <unk>, LINE_END -> <eos>)."""
        if EOS not in vocab:
            raise TextseqError(f"the vocabulary needs the {EOS} special token (documents end with it)")
        unk = -1 if vocab.unk_id is None else vocab.unk_id
        ids = np.empty(len(self.stoi) + 1, dtype=np.int64)
        ids[0] = vocab.stoi[EOS]
        ids[1:] = np.fromiter(map(vocab.stoi.get, self.stoi, itertools.repeat(unk)), np.int64, len(self.stoi))
        if unk == -1 and (ids < 0).any():
            raise TextseqError("some tokens are not in the vocabulary and it has no <unk> special token")
        return ids

    def oov_tokens(self, vocab: Vocab) -> int:
        n = len(self.stoi) + 1
        known = np.fromiter(map(vocab.stoi.__contains__, self.stoi), bool, n - 1)
        return int(self.term[1:n][~known].sum())

    def id_blocks(self) -> Iterator[np.ndarray]:
        """The spilled provisional ids, a few million at a time."""
        with open(self.path, "rb") as fh:
            while (block := np.fromfile(fh, dtype=np.uint32, count=BLOCK)).size:
                yield block

    def write_ids(self, path: str | Path, vocab: Vocab) -> np.dtype:
        """Write the encoded stream as a .npy file (uint16 when the vocabulary fits, else uint32)."""
        dtype = np.dtype(np.uint16 if len(vocab) <= 1 << 16 else np.uint32)
        id_map = self.id_map(vocab).astype(dtype)
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (self.n_ids,)}
        # Plain writes, block by block: memory stays flat, and a full disk is an OSError (ENOSPC) rather than
        # the SIGBUS a memory-mapped file gets when the disk fills up under its pages.
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            for block in self.id_blocks():
                fh.write(id_map[block].tobytes())
        return dtype

    def docs(self, start: int = 0, stop: int | None = None) -> SpillDocs:
        return SpillDocs(self, start, self.n_docs if stop is None else stop)


def _grown(counts: np.ndarray, size: int) -> np.ndarray:
    bigger = np.zeros(size, dtype=counts.dtype)
    bigger[:len(counts)] = counts
    return bigger


class SpillDocs:
    """Re-iterable documents (token lists) ``start:stop`` of a spill, streamed from disk."""

    def __init__(self, spill: TokenSpill, start: int, stop: int):
        self.spill, self.start, self.stop = spill, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self) -> Iterator[list[str]]:
        if self.start >= self.stop:
            return
        itos = [EOS, *self.spill.stoi]
        doc, carry = 0, np.empty(0, dtype=np.uint32)
        for block in self.spill.id_blocks():
            block = np.concatenate((carry, block)) if carry.size else block
            begin = 0
            for end in np.flatnonzero(block == LINE_END_ID).tolist():
                if doc >= self.start:
                    yield [itos[i] for i in block[begin:end].tolist()]
                doc, begin = doc + 1, end + 1
                if doc >= self.stop:
                    return
            carry = block[begin:]


def count_pass(blocks: Iterable[list[str]], spill: TokenSpill, pipeline: PipelineConfig, workers: int = 1,
               keep_empty: bool = False, on_chunk: Callable[[], None] | None = None, doc_freq: bool = False) -> None:
    """Tokenize blocks of lines (e.g. ``LineReader.blocks()``) into the spill, in order."""
    for chunk in tokenize_chunks(blocks, pipeline, workers, keep_empty, doc_freq):
        spill.add(chunk)
        if on_chunk:
            on_chunk()
