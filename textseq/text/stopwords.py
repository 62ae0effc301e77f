"""Stage 3, stopword removal: built-in lists from stopwordsiso (offline) plus user lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from textseq.errors import TextseqError
from textseq.io import check_input_file
from textseq.settings import Settings


@dataclass
class StopwordConfig(Settings):
    langs: tuple[str, ...] = ()  # ISO 639-1 codes known to stopwordsiso, e.g. ("en", "zh")
    words: tuple[str, ...] = ()  # user words, read by load_stopword_file: stored inline, self-contained


def load_stopword_file(path: str | Path) -> tuple[str, ...]:
    """One word per line, UTF-8; blank lines and lines starting with '#' are ignored."""
    path = check_input_file(path, "stopword file")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise TextseqError(f"stopword file {path} is not UTF-8") from None
    return tuple(w for w in (line.strip() for line in lines) if w and not w.startswith("#"))


def stopword_set(cfg: StopwordConfig) -> frozenset[str]:
    import stopwordsiso

    words = set(cfg.words)
    for lang in cfg.langs:
        if not stopwordsiso.has_lang(lang):
            raise TextseqError(f"no built-in stopword list for language {lang!r}")
        words |= stopwordsiso.stopwords(lang)
    return frozenset(w.lower() for w in words)


def build_stopword_filter(cfg: StopwordConfig, lowercased: bool) -> Callable[[list[str]], list[str]] | None:
    """A token-list filter, or None when there is nothing to remove. Matching ignores case."""
    if not cfg.langs and not cfg.words:
        return None
    stop = stopword_set(cfg)
    if lowercased:
        return lambda tokens: [t for t in tokens if t not in stop]
    return lambda tokens: [t for t in tokens if t.lower() not in stop]

