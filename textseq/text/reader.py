"""Streaming line reader: files, directories, .gz files and stdin, any ASCII-compatible encoding.

Lines are read as bytes and decoded one at a time, so a bad byte is reported with its file
and line number, and memory never holds more than one line (plus the OS read buffer).
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import sys
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from textseq.errors import TextseqError

TEXT_SUFFIXES = (".txt", ".text")  # in directories; a file named explicitly is read whatever its name
STDIN = "-"


def _is_text_file(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return path.is_file() and not path.name.startswith(".") and name.endswith(TEXT_SUFFIXES)


def expand_sources(sources: Iterable[str | Path]) -> list[Path | str]:
    """Files as given, directories as their text files (sorted, recursive), "-" for stdin."""
    expanded: list[Path | str] = []
    for source in sources:
        if str(source) == STDIN:
            expanded.append(STDIN)
            continue
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*")
                           if _is_text_file(p) and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not files:
                raise TextseqError(f"directory {path} has no text files ({', '.join(TEXT_SUFFIXES)}, or .gz)")
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


def check_encoding(encoding: str) -> str:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise TextseqError(f"unknown encoding {encoding!r}") from None
    if name.startswith(("utf-16", "utf-32")):
        raise TextseqError(f"encoding {encoding} is not supported; convert the input to UTF-8 first")
    return name


class LineReader:
    """Iterate over the lines (without line endings) of several sources, in order.

    ``bytes_read`` counts raw bytes consumed so far (uncompressed for .gz);
    ``total_bytes`` is the size of all inputs when known (plain files only), else None.
    """

    def __init__(self, sources: Iterable[str | Path], encoding: str = "utf-8"):
        self.encoding = check_encoding(encoding)
        self.sources = expand_sources(sources)
        self.bytes_read = 0
        self.lines_read = 0
        plain = all(s != STDIN and not s.name.lower().endswith(".gz") for s in self.sources)
        self.total_bytes = sum(s.stat().st_size for s in self.sources) if plain else None

    def __iter__(self) -> Iterator[str]:
        for source in self.sources:
            yield from self._read(source)

    def _read(self, source: Path | str) -> Iterator[str]:
        name = "<stdin>" if source == STDIN else str(source)
        decode = codecs.getdecoder(self.encoding)
        with _open_binary(source) as fh:
            number = 0
            try:
                for number, raw in enumerate(fh, 1):  # noqa: B007 - number is used after the loop
                    self.bytes_read += len(raw)
                    if b"\x00" in raw:
                        raise TextseqError(f"{name} looks like a binary file (NUL byte on line {number})")
                    try:
                        line = decode(raw)[0]
                    except UnicodeDecodeError as exc:
                        if _has_nul_bytes(source):
                            raise TextseqError(f"{name} looks like a binary file (it has NUL bytes)") from None
                        raise TextseqError(_decode_message(name, number, exc, self.encoding)) from None
                    if number == 1 and line.startswith("\ufeff"):
                        line = line[1:]  # byte-order mark
                    self.lines_read += 1
                    yield line.rstrip("\r\n")
            except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
                raise TextseqError(f"{name} is not a valid gzip file ({exc or type(exc).__name__}) "
                                   f"at line {number + 1}") from None


def _decode_message(name: str, number: int, exc: UnicodeDecodeError, encoding: str) -> str:
    hint = "try --encoding gb18030" if encoding.replace("_", "-") == "utf-8" else "check --encoding"
    bad = exc.object[exc.start:exc.start + 1].hex()
    return f"cannot decode {name} line {number} as {encoding} (byte 0x{bad} at offset {exc.start}); {hint}"


def _has_nul_bytes(source: Path | str, sniff: int = 1 << 16) -> bool:
    if source == STDIN:
        return False
    with _open_binary(source) as fh:
        return b"\x00" in fh.read(sniff)


def _open_binary(source: Path | str) -> contextlib.AbstractContextManager[BinaryIO]:
    if source == STDIN:
        return contextlib.nullcontext(sys.stdin.buffer)  # never close the caller's stdin
    try:
        if source.name.lower().endswith(".gz"):
            return gzip.open(source, "rb")
        return open(source, "rb")
    except PermissionError:
        raise TextseqError(f"cannot read {source}: permission denied") from None


def read_lines(source: str | Path, encoding: str = "utf-8") -> Iterator[str]:
    """Stream the lines of a file, a directory (all text files, sorted, recursive), a .gz file or "-" (stdin)."""
    return iter(LineReader([source], encoding))
