"""Streaming line reader: files, directories, .gz files and stdin, any ASCII-compatible encoding.

Lines are read as bytes and decoded one at a time, so a bad byte is reported with its file
and line number, and memory never holds more than one line (plus the OS read buffer).
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import math
import os
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from textseq.errors import TextseqError, check_choice

TEXT_SUFFIXES = (".txt", ".text")  # in directories; a file named explicitly is read whatever its name
STDIN = "-"
MAX_LINE_MB = 16  # a line is one document held in memory at once: bound it so memory stays bounded


def _is_text_file(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return path.is_file() and not path.name.startswith(".") and name.endswith(TEXT_SUFFIXES)


# A directory holding one of these was written by textseq (preprocess output, run directory): its files
# (features/word2vec.txt, ...) are never read back as corpus.
OUTPUT_MARKERS = ("pipeline.json", "best.pt", "last.pt")


def textseq_outputs(root: Path) -> set[Path]:
    return {marker.parent for name in OUTPUT_MARKERS for marker in root.rglob(name) if marker.is_file()}


def expand_sources(sources: Iterable[str | Path]) -> list[Path | str]:
    """Files as given, directories as their text files (sorted, recursive), "-" for stdin."""
    expanded: list[Path | str] = []
    for source in sources:
        if str(source) == STDIN:
            expanded.append(STDIN)
            continue
        path = Path(source)
        if path.is_dir():
            outputs = textseq_outputs(path)
            files = sorted(p for p in path.rglob("*")
                           if _is_text_file(p) and not any(part.startswith(".") for part in p.relative_to(path).parts)
                           and not any(output in p.parents for output in outputs))
            if not files:
                skipped = " (textseq outputs inside it are skipped)" if outputs else ""
                raise TextseqError(f"directory {path} has no text files ({', '.join(TEXT_SUFFIXES)}, or .gz)"
                                   f"{skipped}")
            expanded.extend(files)
        elif path.is_file():
            expanded.append(path)
        elif path.exists():
            raise TextseqError(f"input {path} is not a regular file or directory")
        else:
            raise TextseqError(f"input {path} does not exist")
    if not expanded:
        raise TextseqError("no input given")
    return expanded


DECODE_ERRORS = ("strict", "replace", "ignore")


def check_encoding(encoding: str) -> str:
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise TextseqError(f"unknown encoding {encoding!r}") from None
    name = codec.name
    if not getattr(codec, "_is_text_encoding", True):
        raise TextseqError(f"{encoding!r} is not a text encoding; use e.g. utf-8, gb18030 or gbk")
    if name.startswith(("utf-16", "utf-32")):
        raise TextseqError(f"encoding {encoding} is not supported; convert the input to UTF-8 first")
    return name


class LineReader:
    """The lines (without line endings) of several sources, in order, read in blocks of ~``block_size`` bytes.

    ``bytes_read`` counts raw bytes consumed so far (uncompressed for .gz);
    ``total_bytes`` is the size of all inputs when known (plain files only), else None.
    """

    def __init__(self, sources: Iterable[str | Path], encoding: str = "utf-8", block_size: int = 1 << 18,
                 max_line_mb: float = MAX_LINE_MB, errors: str = "strict"):
        check_choice("errors", errors, DECODE_ERRORS)
        self.errors = errors  # what to do with undecodable bytes: stop, replace with U+FFFD, or drop them
        if not 0 < max_line_mb < math.inf:  # also refuses nan and inf, which int() below cannot take
            raise TextseqError(f"the line length limit must be positive, got {max_line_mb} MB")
        self.encoding = check_encoding(encoding)
        self.max_line_bytes = int(max_line_mb * (1 << 20))
        self.sources = expand_sources(sources)
        self.block_size = block_size
        self.bytes_read = 0
        self.lines_read = 0
        plain = all(s != STDIN and not s.name.lower().endswith(".gz") for s in self.sources)
        self.total_bytes = sum(s.stat().st_size for s in self.sources) if plain else None

    def __iter__(self) -> Iterator[str]:
        for lines in self.blocks():
            yield from lines

    def blocks(self) -> Iterator[list[str]]:
        """Lists of consecutive lines: whole lines from about ``block_size`` bytes of input each."""
        for text in self.text_blocks():
            yield text.split("\n")[:-1]

    def text_blocks(self) -> Iterator[str]:
        """The same blocks as text: whole lines, each ending in a newline (the last one too), CRLF read as LF;
        cheaper than ``blocks`` where the consumer works on the whole block."""
        for source in self.sources:
            yield from self._read(source)

    def _read(self, source: Path | str) -> Iterator[str]:
        # Decoding a block at a time is much faster than line by line, and safe: in UTF-8 and
        # GB18030/GBK a 0x0A byte is always a newline, never part of a multi-byte character.
        name = "<stdin>" if source == STDIN else str(source)
        decode = codecs.getdecoder(self.encoding)
        first_line = self.lines_read + 1
        with _open_binary(source) as fh:
            carry, first = b"", True
            while True:
                try:
                    data = fh.read(self.block_size)
                except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
                    raise TextseqError(f"{name} is not a valid gzip file ({exc or type(exc).__name__}) "
                                       f"near line {self.lines_read - first_line + 2}") from None
                if first:
                    _refuse_utf16(name, data, self.encoding)
                    first = False
                if b"\x00" in data:
                    before = carry + data[:data.index(b"\x00")]
                    line = self.lines_read - first_line + 2 + before.count(b"\n")
                    raise TextseqError(f"{name} looks like a binary file (NUL byte on line {line})")
                cut = data.rfind(b"\n") + 1 if data else len(carry)
                if not cut and data:
                    carry += data  # a line longer than the block: read on
                    if len(carry) > self.max_line_bytes:
                        raise TextseqError(
                            f"{name} line {self.lines_read - first_line + 2} is longer than "
                            f"{self.max_line_bytes / (1 << 20):g} MB; split it into lines (one document per line) "
                            "or raise --max-line-mb")
                    continue
                raw, carry = carry + data[:cut], data[cut:]
                if raw and (text := self._decode(raw, decode, name, self.lines_read - first_line + 1)):
                    yield text  # empty only when every byte of it was dropped (--errors ignore)
                if not data:
                    return

    def _decode(self, raw: bytes, decode, name: str, lines_before: int) -> str:
        try:
            text = decode(raw, self.errors)[0]
        except UnicodeDecodeError as exc:
            line = lines_before + raw[:exc.start].count(b"\n") + 1
            raise TextseqError(_decode_message(name, line, raw, exc, self.encoding)) from None
        except UnicodeError as exc:
            raise TextseqError(f"cannot decode {name} after line {lines_before} as {self.encoding}: {exc}") from None
        if lines_before == 0 and text.startswith("\ufeff"):
            text = text[1:]  # byte-order mark
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        if text and not text.endswith("\n"):
            text += "\n"  # the last line of a file without a final newline
        self.bytes_read += len(raw)
        self.lines_read += text.count("\n")
        return text


def _decode_message(name: str, line: int, raw: bytes, exc: UnicodeDecodeError, encoding: str) -> str:
    column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1)
    where = f"{name} line {line}"
    if exc.end == len(raw) and "end of data" in exc.reason:  # the last bytes start a character never finished
        return (f"{where} ends in the middle of a {encoding} character (a file cut short?); "
                "read it with --errors replace (or ignore)")
    hint = ("a UTF-8 file with a few bad bytes: --errors replace (or ignore); Chinese text in another "
            "encoding: --encoding gb18030" if encoding.replace("_", "-") == "utf-8" else
            "check --encoding, or --errors replace")
    return f"cannot decode {where} as {encoding} (byte 0x{raw[exc.start]:02x} at byte {column}); {hint}"


def _reads_as_utf16(sample: bytes) -> bool:
    """Whether bytes with NULs in them are UTF-16 text: they decode, and into printable text with newlines."""
    for codec in ("utf-16-le", "utf-16-be"):
        try:
            text = sample.decode(codec, errors="strict")
        except UnicodeDecodeError:
            continue
        printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
        if "\n" in text and printable >= 0.95 * len(text):
            return True
    return False


def _refuse_utf16(name: str, head: bytes, encoding: str) -> None:
    """UTF-16 (a byte-order mark, or every other byte NUL) cannot be read line by line in blocks."""
    sample = head[:4000 - 4000 % 2]
    bom = sample[:2] in (b"\xff\xfe", b"\xfe\xff")
    guessed = len(sample) >= 64 and b"\x00" in sample and _reads_as_utf16(sample)  # too short to tell otherwise
    if (bom or guessed) and "16" not in encoding:
        raise TextseqError(f"{name} is UTF-16 text; convert it to UTF-8 first, e.g. "
                           f"iconv -f UTF-16 -t UTF-8 {name} > {Path(name).stem}.utf8.txt")


def _open_binary(source: Path | str) -> contextlib.AbstractContextManager[BinaryIO]:
    if source == STDIN:
        return contextlib.nullcontext(sys.stdin.buffer)  # never close the caller's stdin
    try:
        if source.name.lower().endswith(".gz"):
            return gzip.open(source, "rb")
        return open(source, "rb")
    except PermissionError:
        raise TextseqError(f"cannot read {source}: permission denied") from None


def read_lines(source: str | Path, encoding: str = "utf-8", max_line_mb: float = MAX_LINE_MB) -> Iterator[str]:
    """Stream the lines of a file, a directory (all text files, sorted, recursive), a .gz file or "-" (stdin)."""
    return iter(LineReader([source], encoding, max_line_mb=max_line_mb))


class LineCorpus:
    """Re-iterable tokenized lines of a text source, re-read on every pass (gensim reads once per epoch),
    so the corpus is never held in memory. Empty lines are skipped."""

    def __init__(self, source: str | os.PathLike, tokenize: Callable[[str], list[str]] = str.split,
                 encoding: str = "utf-8"):
        if str(source) == STDIN:
            raise TextseqError("a LineCorpus is read several times; give a file, not stdin")
        self.source, self.tokenize, self.encoding = source, tokenize, encoding

    def __iter__(self) -> Iterator[list[str]]:
        for line in read_lines(self.source, self.encoding):
            tokens = self.tokenize(line)
            if tokens:
                yield tokens
