"""Safe file output: atomic writes and refusing to clobber existing files."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from textseq.errors import TextseqError


def check_output(path: str | os.PathLike, force: bool = False) -> Path:
    """Validate an output path before any work is done.

    Refuses to overwrite an existing file unless ``force``; checks that the
    parent directory exists (it is created if missing) and is writable.
    """
    path = Path(path)
    if path.is_dir():
        raise TextseqError(f"output {path} is a directory, expected a file path")
    if path.exists() and not force:
        raise TextseqError(f"output {path} already exists (use --force to overwrite)")
    _make_writable_dir(path.parent)
    return path


def check_output_dir(path: str | os.PathLike, force: bool = False) -> Path:
    """Validate an output directory: created if missing, refused if non-empty unless ``force``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise TextseqError(f"output {path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise TextseqError(f"output directory {path} is not empty (use --force to overwrite)")
    _make_writable_dir(path)
    return path


def _make_writable_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TextseqError(f"cannot create output directory {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK):
        raise TextseqError(f"output directory {path} is not writable")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is fsynced and renamed over ``path``.

    On any error the temporary file is removed and ``path`` is untouched, so a crash,
    a full disk or Ctrl-C never leaves a half-written output behind.
    """
    path = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from None
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp creates 0600; outputs should look like any other file
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _write_error(path, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_error(path: Path, exc: OSError) -> TextseqError:
    if exc.errno == errno.ENOSPC:
        return TextseqError(f"no space left on device while writing {path}; nothing was overwritten")
    return TextseqError(f"cannot write {path}: {exc.strerror or exc}")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a file for writing atomically (see :func:`atomic_path`)."""
    if "b" in mode:
        encoding = None
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding) as fh:
        yield fh


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as fh:
        fh.write(text)
