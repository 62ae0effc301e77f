"""TOML run configs: a ``[train]`` table (TrainConfig fields) and a ``[model]`` table (LMConfig fields).

Command-line flags override the file; unknown tables or keys are errors, not silently ignored.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import tomllib

from textseq.errors import TextseqError

SECTIONS = ("train", "model")


def load_toml(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Read a run config; returns ``{"train": {...}, "model": {...}}`` (missing tables are empty)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TextseqError(f"config file {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TextseqError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise TextseqError(f"config file {path}: unknown table(s) {', '.join(sorted(unknown))}; "
                           f"expected {' and '.join(f'[{s}]' for s in SECTIONS)}")
    for name in SECTIONS:
        if not isinstance(data.get(name, {}), dict):
            raise TextseqError(f"config file {path}: {name} must be a table ([{name}])")
    return {name: dict(data.get(name, {})) for name in SECTIONS}


def check_keys(cls: type, values: dict[str, Any], where: str, exclude: tuple[str, ...] = ()) -> None:
    """Refuse keys that are not fields of the dataclass ``cls``, and values (e.g. from TOML) whose
    type differs from the field's default; an int is fine for a float, a list for a tuple."""
    known = {f.name for f in fields(cls)} - set(exclude)
    unknown = set(values) - known
    if unknown:
        raise TextseqError(f"unknown {where} setting(s): {', '.join(sorted(unknown))} "
                           f"(known: {', '.join(sorted(known))})")
    defaults = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
    for key, value in values.items():
        default = defaults.get(key)
        if default is None:
            continue
        expected = {float: (int, float), tuple: (list, tuple)}.get(type(default), type(default))
        if not isinstance(value, expected) or (isinstance(value, bool) and not isinstance(default, bool)):
            raise TextseqError(f"{where} setting {key} must be {type(default).__name__}, got {value!r}")


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated with the overrides that were actually given (not None)."""
    return {**base, **{k: v for k, v in overrides.items() if v is not None}}
