"""Self-contained checkpoints: one file, plain data + tensors, loaded without unpickling code.

A checkpoint is a dict saved with ``torch.save`` and read back with
``torch.load(weights_only=True)``, which only accepts tensors and primitive
containers: a file carrying a malicious pickle is refused, never executed.
Everything stored must therefore be plain data (dict/list/tuple/str/int/float/
bool/None) or tensors: configs go in as ``dataclasses.asdict``.
"""

from __future__ import annotations

import errno
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from textseq.errors import TextseqError
from textseq.io import atomic_path, check_input_file, is_disk_full

FORMAT_VERSION = 1
MAGIC = "textseq-checkpoint"
ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive


def save_checkpoint(path: str | os.PathLike, kind: str, payload: dict[str, Any]) -> Path:
    """Atomically write ``payload`` as a checkpoint of the given ``kind`` (e.g. ``"lm"``, ``"forecast"``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"magic": MAGIC, "format_version": FORMAT_VERSION, "kind": kind, **payload}
    with atomic_path(path) as tmp:
        try:
            torch.save(data, tmp)
        except RuntimeError as exc:  # torch reports its own write failures (a full disk among them) this way
            if is_disk_full(exc, path):
                raise OSError(errno.ENOSPC, "No space left on device", str(path)) from None
            raise OSError(errno.EIO, f"cannot write the checkpoint ({str(exc).splitlines()[0]})", str(path)) \
                from None
    return path


# torch.save stores every entry uncompressed, so a checkpoint's entries add up to about its own size. An archive
# whose entries claim to inflate far beyond that (a "zip bomb") is refused before anything is read.
INFLATE_SLACK = 256 * 2**20


def _refuse_inflating(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise TextseqError(f"checkpoint {path} is corrupt or truncated ({type(exc).__name__})") from None
    size = path.stat().st_size
    if inflated > 2 * size + INFLATE_SLACK:
        raise TextseqError(f"refusing to load {path}: its {size / 2**20:.1f} MB archive would inflate to "
                           f"{inflated / 2**20:.0f} MB (not written by torch.save; possibly a zip bomb)")


def load_checkpoint(path: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    """Load a checkpoint safely; raise :class:`TextseqError` with a one-line reason on any problem."""
    path = check_input_file(path, "checkpoint")
    if path.stat().st_size == 0:
        raise TextseqError(f"checkpoint {path} is empty")
    with open(path, "rb") as fh:
        if fh.read(4) != ZIP_MAGIC:
            raise TextseqError(f"{path} is not a textseq checkpoint (not a PyTorch archive)")
    _refuse_inflating(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "weights only" in str(exc).lower() or "weights_only" in str(exc).lower():
            raise TextseqError(
                f"refusing to load {path}: it contains Python objects other than tensors and plain data "
                "(possibly a malicious pickle); it was not executed"
            ) from None
        raise TextseqError(f"checkpoint {path} is corrupt or truncated ({first})") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for damaged files
        raise TextseqError(f"checkpoint {path} is corrupt or truncated ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("magic") != MAGIC:
        raise TextseqError(f"{path} is not a textseq checkpoint")
    if data.get("format_version", 0) > FORMAT_VERSION:
        raise TextseqError(
            f"checkpoint {path} has format version {data['format_version']}, newer than this textseq supports"
        )
    if kind is not None and data.get("kind") != kind:
        raise TextseqError(f"checkpoint {path} holds a {data.get('kind')!r} model, expected a {kind!r} model")
    return data
