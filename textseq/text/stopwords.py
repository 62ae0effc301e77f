"""Stage 3, stopword removal: built-in lists (offline) plus user lists.

``en`` is scikit-learn's conservative English list (318 function words); the stopwords-iso English list
(1,298 entries, which also removes content words such as "old", "man", "great", "said") is ``en-iso``; every
other code is the stopwords-iso list of that language (``zh``, ...). Stopwords go through the same cleaning
and case folding as the text, so a list entry matches the token the text turns into (NFKC makes the Chinese
list's full-width "，" the "," the text contains).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from textseq.errors import TextseqError
from textseq.io import check_input_file
from textseq.settings import Settings


@dataclass
class StopwordConfig(Settings):
    langs: tuple[str, ...] = ()  # "en" (conservative), "en-iso", or ISO 639-1 codes known to stopwordsiso ("zh")
    words: tuple[str, ...] = ()  # user words, read by load_stopword_file: stored inline, self-contained


def load_stopword_file(path: str | Path) -> tuple[str, ...]:
    """One word per line, UTF-8; blank lines and lines starting with '#' are ignored."""
    path = check_input_file(path, "stopword file")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise TextseqError(f"stopword file {path} is not UTF-8") from None
    return tuple(w for w in (line.strip() for line in lines) if w and not w.startswith("#"))


def builtin_list(name: str) -> frozenset[str]:
    if name == "en":
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        return frozenset(ENGLISH_STOP_WORDS)
    import stopwordsiso

    code = "en" if name == "en-iso" else name
    if not stopwordsiso.has_lang(code):
        raise TextseqError(f"no built-in stopword list {name!r}; use en, en-iso or an ISO 639-1 code such as zh")
    return frozenset(stopwordsiso.stopwords(code))


def stopword_set(cfg: StopwordConfig, clean: Callable[[str], str] | None = None) -> frozenset[str]:
    """The lists' words as the pipeline sees text: through ``clean`` (the text's cleaner), lowercased."""
    words = set(cfg.words)
    for name in cfg.langs:
        words |= builtin_list(name)
    if clean is not None:
        words = {clean(w) for w in words}
    return frozenset(w.lower() for w in words if w)


def build_stopword_filter(cfg: StopwordConfig, lowercased: bool,
                          clean: Callable[[str], str] | None = None) -> Callable[[list[str]], list[str]] | None:
    """A token-list filter, or None when there is nothing to remove. Matching ignores case."""
    if not cfg.langs and not cfg.words:
        return None
    stop = stopword_set(cfg, clean)
    if lowercased:
        return lambda tokens: [t for t in tokens if t not in stop]
    return lambda tokens: [t for t in tokens if t.lower() not in stop]

