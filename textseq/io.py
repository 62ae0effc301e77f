"""Safe file output: atomic writes and refusing to clobber existing files."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from textseq.errors import TextseqError


def check_input_file(path: str | os.PathLike, what: str) -> Path:
    """A side input (config, dictionary, stopword list, data table, checkpoint) must be a regular file: a
    device such as /dev/zero would be read without end and a FIFO would block forever."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise TextseqError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise TextseqError(f"cannot read {what} {path}: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise TextseqError(f"{what} {path} is a directory")
    if not stat.S_ISREG(mode):
        raise TextseqError(f"{what} {path} is not a regular file (a device, FIFO or socket); give a file")
    return path


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
    if is_disk_full(exc, path):
        return TextseqError(f"no space left on device ({path}); nothing was overwritten")
    return TextseqError(f"cannot write {path}: {exc.strerror or exc}")


def is_disk_full(exc: BaseException, path: str | os.PathLike | None = None) -> bool:
    """Whether a failed write failed for lack of space: ENOSPC/EDQUOT, or a library's own write error
    (torch's "file write failed", numpy's "N requested and M written") on a device with no room left."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if path is None:
        return False
    directory = Path(path).parent
    try:
        return shutil.disk_usage(directory if directory.exists() else ".").free < 1 << 20
    except OSError:
        return False


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


LOCK_SUFFIX = ".lock"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def _read_lock(path: Path) -> tuple[int, str] | None:
    """(pid, host) recorded in a lock file; None if it is missing or unreadable."""
    try:
        pid, _, host = path.read_text(encoding="utf-8").strip().partition("@")
        return int(pid), host
    except (OSError, ValueError):
        return None


def lock_owner(path: str | os.PathLike) -> int | None:
    """The pid holding the lock file ``path``, if that process is alive (a stale lock counts as free). A lock
    taken on another host cannot be checked and counts as held."""
    import socket

    held = _read_lock(Path(path))
    if held is None:
        return None
    pid, host = held
    if host and host != socket.gethostname():
        return pid
    return pid if pid != os.getpid() and _process_alive(pid) else None


class OutputLock:
    """An output held by one process: a lock file holding ``pid@host``, created exclusively. A lock left by
    a process that no longer runs (killed) is stale and taken over. ``release()`` removes the file."""

    def __init__(self, path: str | os.PathLike, what: str):
        self.path, self.what, self.held = Path(path), what, False

    def acquire(self) -> OutputLock:
        import socket

        for _ in range(2):
            owner = lock_owner(self.path)
            if owner is not None:
                raise TextseqError(f"{self.what} is in use by another textseq process (pid {owner}); wait for it "
                                   f"to finish or choose another output (stale lock file: {self.path})")
            with contextlib.suppress(FileNotFoundError):
                if self.path.exists():  # stale: its process is gone
                    self.path.unlink()
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                continue  # another process took it in between: look again
            except OSError as exc:
                raise TextseqError(f"cannot create the lock file {self.path}: {exc.strerror}") from None
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(f"{os.getpid()}@{socket.gethostname()}\n")
            self.held = True
            return self
        raise TextseqError(f"{self.what} is in use by another textseq process; choose another output")

    def release(self) -> None:
        if self.held:
            self.held = False
            with contextlib.suppress(OSError):
                self.path.unlink()


# --- output sets: built beside the target, swapped in whole -------------------------------------------------

def _set_sibling(out: Path, kind: str) -> Path:
    return out.with_name(f".{out.name}.{kind}-{os.getpid()}-{os.urandom(3).hex()}")


def _sibling_pid(path: Path, out: Path, kind: str) -> int | None:
    prefix = f".{out.name}.{kind}-"
    if not path.name.startswith(prefix):
        return None
    try:
        return int(path.name[len(prefix):].split("-")[0])
    except ValueError:
        return None


def recover_output_set(out: Path) -> None:
    """Clean up after processes that died while building or swapping ``out`` (kill -9, power loss): their
    half-built sets are removed; a set moved aside just before the swap is put back if ``out`` is missing."""
    if not out.parent.is_dir():
        return
    for path in sorted(out.parent.iterdir()):
        for kind in ("building", "old"):
            pid = _sibling_pid(path, out, kind)
            if pid is None or (pid != os.getpid() and _process_alive(pid)):
                continue
            if kind == "old" and not out.exists():
                os.rename(path, out)
            else:
                shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def building_output_set(out: str | os.PathLike, force: bool, marker: str) -> Iterator[Path]:
    """Yield a fresh hidden directory beside ``out`` to build a whole output set in; when the block succeeds
    it replaces ``out`` (two renames: the old set stays whole until the new one is complete), on any error,
    Ctrl-C, SIGTERM or SIGHUP it is removed and ``out`` is untouched. An existing ``out`` is replaced only
    with ``force`` and only if it is such a set (it holds ``marker``), never a directory of other files."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TextseqError(f"output {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise TextseqError(f"output directory {out} is not empty (use --force to overwrite)")
        if not (out / marker).is_file():
            raise TextseqError(f"output directory {out} holds files that are not a textseq output (no {marker}); "
                               "refusing to replace it: choose a new or empty directory")
    _make_writable_dir(out.parent)
    recover_output_set(out)
    build = _set_sibling(out, "building")
    build.mkdir()
    try:
        with _terminate_as_interrupt():
            yield build
        if out.exists():
            old = _set_sibling(out, "old")
            os.rename(out, old)
            os.rename(build, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(build, out)
    except OSError as exc:
        shutil.rmtree(build, ignore_errors=True)
        if is_disk_full(exc, build):
            raise TextseqError(f"no space left on device ({out}); nothing was replaced") from None
        raise
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise


class _terminate_as_interrupt:
    """SIGTERM and SIGHUP end the block like Ctrl-C does (so cleanup code runs), main thread only."""

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))

    def __enter__(self):
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self.previous[sig] = signal.signal(sig, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
