"""The streaming core of ``textseq preprocess``: tokenize in chunks (optionally in worker processes),
count, spill provisional token ids to disk, then encode them with the final vocabulary.

Memory is bounded by the vocabulary, never by the corpus: lines are read in blocks of a few
hundred kilobytes, at most ``2 * workers`` chunks are in flight, and tokens go to a spill file as
provisional ids (one id per distinct token, in order of first appearance; uint8, uint16 or uint32, the smallest
that holds them). Each chunk is tokenized by the same function whether it runs in this process or in a
worker, and chunks are merged in input order, so ``workers=N`` writes exactly the same files as ``workers=1``.
"""

from __future__ import annotations

import array
import itertools
import multiprocessing
import os
import signal
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textseq.errors import TextseqError
from textseq.io import atomic_path
from textseq.text.clean import point_counts
from textseq.text.pipeline import Pipeline, PipelineConfig, block_text
from textseq.text.tokenize import LINE_END, LINE_END_CHUNK, chunk_tokens
from textseq.vocab import EOS, TokenCounts, Vocab

LINE_END_ID = 0  # provisional id written after every document; real tokens get ids from 1
BLOCK = 1 << 22  # ids per read when scanning the spill file
_NO_TYPES = np.zeros(1, dtype=np.uint32)  # an id space with no type yet: only LINE_END_ID, kept as it is


@dataclass
class Chunk:
    """One tokenized chunk. Its ``ids`` are numbered by one id space of one process (``source``), which numbers
    types in order of first appearance over all the chunks it tokenizes: ``types`` are the types it numbered
    first in this chunk (they take the next ids, in order), so a type is sent to the main process once, not
    with every chunk that holds it. LINE_END_ID ends each document."""

    source: tuple[int, str]  # (process id, id space)
    types: list[str]
    ids: np.ndarray
    used: np.ndarray  # ids of the types that occur in the chunk
    term: np.ndarray  # occurrences of each used type
    doc: np.ndarray | None  # documents of the chunk containing each used type (only when asked: it costs a sort)
    docs: int


class TypeIndex(dict):
    """token -> id, from 1 in order of first appearance (``LINE_END`` -> LINE_END_ID where ``line_ends``);
    remembers the types numbered since the last ``take_new``. A lookup is dict's own, in C: Python code runs
    only for a type not seen before."""

    def __init__(self, line_ends: bool):
        super().__init__()
        self.types: list[str] = []  # all types, in id order (id = position + 1)
        self.announced = 0
        if line_ends:
            self[LINE_END] = LINE_END_ID

    def __missing__(self, token: str) -> int:
        self.types.append(token)
        token_id = self[token] = len(self.types)
        return token_id

    def take_new(self) -> list[str]:
        new, self.announced = self.types[self.announced:], len(self.types)
        return new

    def forget_new(self) -> None:
        """Drop the types numbered since the last ``take_new`` (a block that goes the line-by-line way)."""
        for token in self.types[self.announced:]:
            del self[token]
        del self.types[self.announced:]


class ChunkIds(dict):
    """Whitespace chunk -> its number in a table of the ids (in a ``TypeIndex``) of its English regexp tokens. A text
    repeats its chunks ("the", "lord,"), so a chunk is tokenized and numbered once, and a block's ids are read from
    the table with numpy: one dict lookup per chunk, no Python code per token."""

    LIMIT = 200_000  # distinct chunks kept: memory stays bounded, whatever the corpus

    def __init__(self, index: TypeIndex):
        super().__init__()
        self.index = index
        self.reset()

    def reset(self) -> None:
        self.clear()
        self._ids = array.array("I")  # every chunk's token ids, one chunk after another
        self._starts = array.array("q", [0])  # where each chunk's ids start in _ids, then where the last one ends
        self[LINE_END_CHUNK] = self._add((LINE_END_ID,))

    def _add(self, ids: Iterable[int]) -> int:
        self._ids.extend(ids)
        self._starts.append(len(self._ids))
        return len(self._starts) - 2

    def __missing__(self, chunk: str) -> int:
        number = self[chunk] = self._add(map(self.index.__getitem__, chunk_tokens(chunk)))
        return number

    def ids(self, chunks: list[str]) -> np.ndarray:
        """The token ids of a block's chunks (``tokenize.whitespace_chunks``), in order."""
        if len(self) >= self.LIMIT:  # between blocks, never within one: its numbers stay valid to the end
            self.reset()
        numbers = _uint32(map(self.__getitem__, chunks))
        starts = np.array(self._starts)  # copies: both tables grow as later blocks bring new chunks
        first, lengths = starts[:-1][numbers], np.diff(starts)[numbers]
        done = np.cumsum(lengths) - lengths  # ids of the block before each chunk's
        positions = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(first - done, lengths)
        return np.array(self._ids, dtype=np.uint32)[positions]


class CharIndex:
    """The same for characters, as a code point -> id table: a block is numbered with numpy."""

    def __init__(self):
        self.lookup = np.zeros(256, dtype=np.uint32)  # the newline stays LINE_END_ID
        self.n = 0

    def number(self, points: np.ndarray, counts: np.ndarray | None = None
               ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """(new types, ids, used ids, their counts) of a block's code points and, if known, their counts
        (``Pipeline.char_points``: zeros may follow). The ids come in the smallest unsigned type that holds them."""
        present = point_counts(points) if counts is None else counts.copy()
        present[ord(LINE_END)] = 0
        if len(present) > len(self.lookup):
            self.lookup = np.concatenate((self.lookup, np.zeros(len(present) - len(self.lookup), np.uint32)))
        points_used = np.flatnonzero(present)
        new = points_used[self.lookup[points_used] == 0]
        self.lookup[new] = np.arange(self.n + 1, self.n + 1 + len(new), dtype=np.uint32)
        self.n += len(new)
        if points.dtype == np.uint8 and self.n < 256:  # bytes.translate: several times faster than indexing
            ids = np.frombuffer(points.tobytes().translate(self.lookup[:256].astype(np.uint8).tobytes()), np.uint8)
        else:
            ids = self.lookup.astype(np.uint16 if self.n < 1 << 16 else np.uint32)[points]
        return [chr(point) for point in new.tolist()], ids, self.lookup[points_used], present[points_used]


def text_points(text: str) -> np.ndarray:
    """The code points of a cleaned text: its bytes where it is ASCII (a quarter of the memory), else UTF-32."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


_worker: dict = {}


def init_worker(pipeline: dict, keep_empty: bool, doc_freq: bool = False) -> None:
    block = TypeIndex(line_ends=True)
    _worker.update(pipeline=Pipeline(PipelineConfig.from_dict(pipeline)), keep_empty=keep_empty, doc_freq=doc_freq,
                   pid=os.getpid(), block=block, chunks=ChunkIds(block), line=TypeIndex(line_ends=False),
                   char=CharIndex())


def init_child(pipeline: dict, keep_empty: bool, doc_freq: bool = False) -> None:
    """``init_worker`` in a worker process, which first drops the signal handlers it inherited: the parent's
    SIGTERM/SIGHUP handler (it undoes a half-built output set) raised KeyboardInterrupt in a worker waiting on the
    task queue's lock when the pool terminated its workers, and the pool could then wait forever for one that
    never exited. SIGINT is left to the parent, which stops the pool."""
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    init_worker(pipeline, keep_empty, doc_freq)


def tokenize_chunk(block: str | list[str]) -> Chunk:
    """A block of lines (text of whole lines, each ending in a newline, or a list of lines) in one go where the
    pipeline can (see ``Pipeline.process_block``), else line by line: the same chunk either way."""
    pipe, keep_empty, doc_freq = _worker["pipeline"], _worker["keep_empty"], _worker["doc_freq"]
    text = block_text(block)
    if pipe.tokens_are_chars:
        cleaned = pipe.char_points(text)
        if cleaned is None and (clean := pipe.clean_block(text)) is not None:
            cleaned = text_points(clean), None
        if cleaned is not None:
            types, ids, used, term = _worker["char"].number(*cleaned)
            return _chunk("char", types, ids, keep_empty, doc_freq, used, term)
    elif pipe.tokenizes_blocks and (clean := pipe.clean_block(text)) is not None:
        index = _worker["block"]
        if (chunks := pipe.regexp_chunks(clean)) is not None:  # a line end per LINE_END_CHUNK: nothing to check
            ids = _worker["chunks"].ids(chunks)  # numbers the new types: take them after
            return _chunk("block", index.take_new(), ids, keep_empty, doc_freq)
        ids = _uint32(map(index.__getitem__, pipe.tokenize_cleaned(clean)))
        if np.count_nonzero(ids == LINE_END_ID) == text.count(LINE_END):  # else a token step dropped or
            return _chunk("block", index.take_new(), ids, keep_empty, doc_freq)  # changed a line end
        index.forget_new()
    return _chunk("line", *_line_ids(map(pipe.process_line, text.split(LINE_END)[:-1])), keep_empty, doc_freq)


def _uint32(values: Iterable[int]) -> np.ndarray:
    """``np.fromiter(values, np.uint32)``, about a third faster: array.array converts Python ints in C."""
    return np.frombuffer(array.array("I", values), dtype=np.uintc).astype(np.uint32, copy=False)


def _line_ids(token_lists: Iterable[list[str]]) -> tuple[list[str], np.ndarray]:
    """The line-by-line path: tokens may be anything here (a newline character included)."""
    flat: list[str] = []
    lengths: list[int] = []
    for tokens in token_lists:
        flat += tokens
        lengths.append(len(tokens))
    index = _worker["line"]
    token_ids = _uint32(map(index.__getitem__, flat))
    return index.take_new(), np.insert(token_ids, np.cumsum(lengths, dtype=np.int64), LINE_END_ID)


def _chunk(space: str, types: list[str], ids: np.ndarray, keep_empty: bool, doc_freq: bool,
           used: np.ndarray | None = None, term: np.ndarray | None = None) -> Chunk:
    if not keep_empty:
        ids = _without_empty_documents(ids)  # a fresh array of line ends below: cheaper than cutting these too
    ends = ids == LINE_END_ID
    if used is None or doc_freq:  # characters come counted: their ids need no second look unless for documents
        real = ids[~ends]
        width = int(ids.max(initial=0)) + 1
    if used is None:
        used, term = _occurrences(real, width)
    elif doc_freq:
        order = np.argsort(used)  # searched below
        used, term = used[order], term[order]
    doc = None
    if doc_freq:
        doc_of_token = (np.cumsum(ends, dtype=np.int64) - ends)[~ends]  # documents ended before each token
        pairs = _distinct(doc_of_token * width + real)  # one entry per (document, type)
        doc = np.bincount(np.searchsorted(used, pairs % width), minlength=len(used))
    return Chunk((_worker["pid"], space), types, ids, used, term, doc, int(np.count_nonzero(ends)))


def _without_empty_documents(ids: np.ndarray) -> np.ndarray:
    """``ids`` without the line ends that end a document with no tokens: an end right after another, or first."""
    ends = ids == LINE_END_ID
    empty = np.flatnonzero(ends[1:] & ends[:-1]) + 1
    if len(ends) and ends[0]:
        empty = np.concatenate(([0], empty))
    return np.delete(ids, empty) if len(empty) else ids


def _occurrences(ids: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ``ids`` (all below ``width``), sorted, and how often each occurs: a bincount while the id
    space is not much larger than the chunk, else a sort."""
    if width <= 4 * len(ids) + 4096:
        counts = np.bincount(ids, minlength=width)
        used = np.flatnonzero(counts)
        return used, counts[used]
    ids, first = _sorted_runs(ids)
    starts = np.flatnonzero(first)
    return ids[starts], np.diff(np.append(starts, len(ids)))


def _distinct(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values."""
    keys, first = _sorted_runs(keys)
    return keys[first]


def _sorted_runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``keys`` sorted, and where each run of equal keys starts (np.unique (numpy 2.4) is ~20x slower on mostly
    distinct int64 keys)."""
    keys = np.sort(keys)
    first = np.ones(len(keys), dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    return keys, first


def tokenize_chunks(chunks: Iterable[str | list[str]], pipeline: PipelineConfig, workers: int = 1,
                    keep_empty: bool = False, doc_freq: bool = False) -> Iterator[Chunk]:
    """Tokenized chunks in input order. Unlike ``Pool.imap``, which reads its whole input ahead,
    at most ``2 * workers`` chunks are pending at a time."""
    init_args = (pipeline.to_dict(), keep_empty, doc_freq)
    if workers <= 1 or pipeline.tokens_are_chars:  # numpy numbers characters faster than a worker's
        # result can be sent back (2 workers took 1.4x the time of one on 45 MB, bench/bench_pipeline.py)
        init_worker(*init_args)
        yield from map(tokenize_chunk, chunks)
        return
    with _process_context().Pool(workers, init_child, init_args) as pool:
        pending: deque = deque()
        for chunk in chunks:
            pending.append(pool.apply_async(tokenize_chunk, (chunk,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
        pool.close()  # every result is in: let the workers finish on their own rather than be terminated
        pool.join()


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
        self._tables: dict[tuple[int, str], np.ndarray] = {}
        self._identity: set[tuple[int, str]] = set()  # sources whose ids are the spill's (one source, as a rule)
        self.term = np.zeros(1024, dtype=np.int64)
        self.doc = np.zeros(1024, dtype=np.int64)
        self.n_docs = 0
        self.n_ids = 0
        self._segments: list[list] = []  # [dtype, ids] of each stretch of the file: the smallest type that held them

    def add(self, chunk: Chunk) -> None:
        """Chunks of one source must come in the order it tokenized them (``tokenize_chunks`` keeps input order,
        and a worker takes its chunks in input order)."""
        stoi = self.stoi
        table = self._tables.get(chunk.source, _NO_TYPES)  # the source's ids -> spill ids
        if chunk.types:
            new = list(itertools.filterfalse(stoi.__contains__, chunk.types))
            stoi.update(zip(new, range(len(stoi) + 1, len(stoi) + 1 + len(new)), strict=True))
            ids = np.fromiter(map(stoi.__getitem__, chunk.types), np.uint32, len(chunk.types))
            table = self._tables[chunk.source] = np.concatenate((table, ids))
            is_identity = np.array_equal(table, np.arange(len(table)))
            (self._identity.add if is_identity else self._identity.discard)(chunk.source)
        if len(stoi) + 1 > len(self.term):
            self.term, self.doc = _grown(self.term, 2 * (len(stoi) + 1)), _grown(self.doc, 2 * (len(stoi) + 1))
        used = table[chunk.used]
        self.term[used] += chunk.term
        if chunk.doc is not None:
            self.doc[used] += chunk.doc
        spilled = chunk.ids if chunk.source in self._identity else table[chunk.ids]
        dtype = id_dtype(len(stoi))
        self._file.write(np.ascontiguousarray(spilled, dtype=dtype))  # a full disk: ENOSPC (tofile hides it)
        if self._segments and self._segments[-1][0] == dtype:
            self._segments[-1][1] += len(spilled)
        else:
            self._segments.append([dtype, len(spilled)])
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
        """The spilled provisional ids, a few million at a time (uint8, uint16 or uint32)."""
        with open(self.path, "rb") as fh:
            for dtype, count in self._segments:
                for start in range(0, count, BLOCK):
                    yield np.fromfile(fh, dtype=dtype, count=min(BLOCK, count - start))

    def write_ids(self, path: str | Path, vocab: Vocab) -> np.dtype:
        """Write the encoded stream as a .npy file (uint16 when the vocabulary fits, else uint32)."""
        dtype = np.dtype(np.uint16 if len(vocab) <= 1 << 16 else np.uint32)
        id_map = self.id_map(vocab).astype(dtype)
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (self.n_ids,)}
        # Plain writes, block by block: memory stays flat, and a full disk is an OSError (ENOSPC) rather than
        # the SIGBUS a memory-mapped file gets when the disk fills up under its pages.
        # ids spilled in bytes map through bytes.translate, several times faster than indexing with them: they
        # index only the first 256 entries (the rest may still be many, e.g. rare characters pruned to <unk>)
        low = id_map[:256]
        table = low.astype(np.uint8).tobytes().ljust(256, b"\0") if low.max(initial=0) < 1 << 8 else None
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            for block in self.id_blocks():
                if table is not None and block.dtype == np.uint8:
                    fh.write(np.frombuffer(block.tobytes().translate(table), np.uint8).astype(dtype))
                else:
                    fh.write(id_map[block])  # a fresh contiguous array: written from its buffer, no copy
        return dtype

    def docs(self, start: int = 0, stop: int | None = None) -> SpillDocs:
        return SpillDocs(self, start, self.n_docs if stop is None else stop)


def id_dtype(largest: int) -> np.dtype:
    """The smallest unsigned integer type that holds ids up to ``largest``."""
    return np.dtype(np.uint8 if largest < 1 << 8 else np.uint16 if largest < 1 << 16 else np.uint32)


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
            block = np.concatenate((carry, block)) if carry.size else block  # the wider of the two types
            begin = 0
            for end in np.flatnonzero(block == LINE_END_ID).tolist():
                if doc >= self.start:
                    yield [itos[i] for i in block[begin:end].tolist()]
                doc, begin = doc + 1, end + 1
                if doc >= self.stop:
                    return
            carry = block[begin:]


def count_pass(blocks: Iterable[str | list[str]], spill: TokenSpill, pipeline: PipelineConfig, workers: int = 1,
               keep_empty: bool = False, on_chunk: Callable[[], None] | None = None, doc_freq: bool = False) -> None:
    """Tokenize blocks of lines (``LineReader.text_blocks()``, or lists of lines) into the spill, in order."""
    for chunk in tokenize_chunks(blocks, pipeline, workers, keep_empty, doc_freq):
        spill.add(chunk)
        if on_chunk:
            on_chunk()
