"""The one config convention: dataclasses validated in ``__post_init__``, built from plain data by
:meth:`Settings.from_dict`, which refuses unknown keys and values of the wrong type everywhere
(nested settings included), and TOML run files read by :func:`load_toml`.

Command-line flags default to ``None`` (not given), so the dataclass defaults are the single source of
truth; :func:`merge` lays the given flags over a dict of settings.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from textseq.errors import TextseqError
from textseq.io import check_input_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

S = TypeVar("S", bound="Settings")


class Settings:
    """Mixin for config dataclasses: ``validate`` runs on construction (and again wherever a config that
    may have been changed in place is used), ``from_dict`` is strict, ``to_dict`` gives plain data."""

    def __post_init__(self) -> None:
        self._check_numbers()
        self.validate()

    def _check_numbers(self) -> None:
        """Every float setting is finite (NaN slips through comparisons such as ``clip < 0``); every seed is
        a number torch and numpy can take."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            flag = f.name.replace("_", "-")
            if isinstance(value, float) and not math.isfinite(value):
                raise TextseqError(f"{flag} must be a finite number, got {value}")
            if f.name == "seed" and isinstance(value, int) and not 0 <= value < 2**63:
                raise TextseqError(f"seed must be in 0..2**63-1, got {value}")

    def validate(self) -> None:
        """Raise TextseqError on a bad value; the base checks the nested settings. Override and call super()."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Settings):
                value.validate()

    @classmethod
    def from_dict(cls: type[S], data: Mapping[str, Any] | None, where: str | None = None) -> S:
        where = where or cls.__name__
        data = {} if data is None else data
        if not isinstance(data, Mapping):
            raise TextseqError(f"{where} settings must be a table of keys and values, got {data!r}")
        check_keys(cls, data, where)
        values = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            nested = _nested_settings(f)
            if nested is not None and not isinstance(value, nested):
                value = nested.from_dict(value, f"{where}.{f.name}")
            values[f.name] = _tuples(value) if isinstance(f.default, tuple) else value
        try:
            return cls(**values)
        except TypeError as exc:  # a value of a shape __post_init__ cannot read
            raise TextseqError(f"invalid {where} settings: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _nested_settings(f: dataclasses.Field) -> type[Settings] | None:
    factory = f.default_factory
    if isinstance(factory, type) and issubclass(factory, Settings):
        return factory
    return None


def _tuples(value: Any) -> Any:
    """Lists from JSON/TOML back to the (nested) tuples a frozen setting holds."""
    if isinstance(value, (list, tuple)):
        return tuple(_tuples(v) for v in value)
    return value


def check_keys(cls: type, values: Mapping[str, Any], where: str, exclude: Iterable[str] = ()) -> None:
    """Refuse keys that are not fields of the dataclass ``cls``, and values (e.g. from TOML) whose
    type differs from the field's default; an int is fine for a float, a list for a tuple."""
    known = {f.name for f in dataclasses.fields(cls)} - set(exclude)
    unknown = set(values) - known
    if unknown:
        raise TextseqError(f"unknown {where} setting(s): {', '.join(sorted(unknown))} "
                           f"(known: {', '.join(sorted(known))})")
    defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
    for key, value in values.items():
        default = defaults.get(key)
        if default is None:
            continue
        expected = {float: (int, float), tuple: (list, tuple)}.get(type(default), type(default))
        if not isinstance(value, expected) or (isinstance(value, bool) and not isinstance(default, bool)):
            raise TextseqError(f"{where} setting {key} must be {type(default).__name__}, got {value!r}")


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated with the overrides that were actually given (not None)."""
    return {**base, **{k: v for k, v in overrides.items() if v is not None}}


def default_of(cls: type, name: str) -> Any:
    """A dataclass field's default (for showing it in ``--help`` while the flag itself defaults to None)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
    raise KeyError(f"{cls.__name__} has no field {name}")


def load_toml(path: str | os.PathLike, sections: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Read a TOML run file made of the given tables; returns ``{section: {...}}`` (missing tables
    are empty). Unknown tables are errors."""
    path, sections = check_input_file(path, "config file"), tuple(sections)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TextseqError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = set(data) - set(sections)
    if unknown:
        raise TextseqError(f"config file {path}: unknown table(s) {', '.join(sorted(unknown))}; "
                           f"expected {' and '.join(f'[{s}]' for s in sections)}")
    for name in sections:
        if not isinstance(data.get(name, {}), dict):
            raise TextseqError(f"config file {path}: {name} must be a table ([{name}])")
    return {name: dict(data.get(name, {})) for name in sections}


def parse_auto_off(value: str | float | None, flag: str, convert: Callable[[Any], Any], valid: Callable[[Any], bool],
                   expects: str, invalid: str | None = None) -> Any:
    """An option that takes "auto", "off" (or None) or a value: -> "auto", None, or ``convert(value)`` when
    ``valid`` accepts it. The errors say "FLAG takes auto, off or EXPECTS" (``invalid`` for a refused value)."""
    if value is None or value == "off":
        return None
    if value == "auto":
        return "auto"
    try:
        converted = convert(value)
    except (TypeError, ValueError):
        raise TextseqError(f"{flag} takes auto, off or {expects}, got {value!r}") from None
    if not valid(converted):
        raise TextseqError(f"{flag} takes auto, off or {invalid or expects}, got {value!r}")
    return converted
