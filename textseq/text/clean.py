"""Stage 1, cleaning: one line of raw text in, one line of clean text out.

Only the enabled steps run, and each one first checks cheaply whether the line can
need it at all (``"<" in line`` before the HTML regex, and so on): most lines of a
real corpus skip most steps.
"""

from __future__ import annotations

import functools
import html
import re
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from textseq.settings import Settings

HTML_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->|</?[A-Za-z][^<>]{0,500}>", re.IGNORECASE | re.DOTALL)
URL = re.compile(r"\b(?:https?|ftp)://[^\s<>\"]+|\bwww\.[^\s<>\"]+", re.IGNORECASE)
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# C0/C1 controls (tab and newline are whitespace, handled by the collapse), zero-width chars, BOM.
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\ufff9-\ufffb]")
DIGITS = re.compile(r"\d+")
# Whitespace other than the space and the newline: " ".join(line.split()) turns it into spaces.
OTHER_SPACE = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace() and chr(c) not in " \n")
# One scan of a block for anything the control or whitespace steps may change.
CONTROL_OR_OTHER_SPACE = re.compile(CONTROL.pattern[:-1] + re.escape(OTHER_SPACE) + "]")
SPACE_RUN = re.compile(rf"[ {re.escape(OTHER_SPACE)}]+")
EDGE_SPACE = re.compile(r"^ | $", re.MULTILINE)


@dataclass
class CleanConfig(Settings):
    nfkc: bool = True  # Unicode NFKC: full-width letters, digits and punctuation become half-width
    strip_html: bool = True  # drop tags and comments, unescape entities (&amp; -> &)
    strip_urls: bool = True
    strip_emails: bool = True
    strip_control: bool = True
    remove_digits: bool = False
    remove_punct: bool = False  # Unicode punctuation and symbols (categories P*, S*) become spaces
    collapse_whitespace: bool = True  # runs of whitespace -> one space, and strip both ends
    t2s: bool = False  # Traditional -> Simplified Chinese with OpenCC 't2s'


@functools.lru_cache(maxsize=1)
def _punct_regex() -> re.Pattern:
    """A character class of every punctuation or symbol code point, built once (~0.2 s)."""
    ranges, start = [], None
    for cp in range(sys.maxunicode + 2):
        is_punct = cp <= sys.maxunicode and unicodedata.category(chr(cp))[0] in "PS"
        if is_punct and start is None:
            start = cp
        elif not is_punct and start is not None:
            ranges.append(re.escape(chr(start)) + ("-" + re.escape(chr(cp - 1)) if cp - 1 > start else ""))
            start = None
    return re.compile("[" + "".join(ranges) + "]+")


@functools.lru_cache(maxsize=1)
def _opencc_t2s() -> Callable[[str], str]:
    import opencc

    return opencc.OpenCC("t2s").convert


def _nfkc(text: str) -> str:
    """NFKC is by definition NFC(NFKD(x)); CPython computes it this way ~10x faster on CJK."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFKD", text))


def build_cleaner(cfg: CleanConfig) -> Callable[[str], str]:
    """One ``str -> str`` function running the enabled steps in a fixed order.

    The steps are inlined behind flags rather than chained as functions: a Python call costs
    more than most steps do on a typical line, which needs none of them.
    """
    control, nfkc, html_tags, urls, emails = (cfg.strip_control, cfg.nfkc, cfg.strip_html, cfg.strip_urls,
                                              cfg.strip_emails)
    digits, collapse = cfg.remove_digits, cfg.collapse_whitespace
    t2s = _opencc_t2s() if cfg.t2s else None
    punct = _punct_regex() if cfg.remove_punct else None
    is_normalized = unicodedata.is_normalized

    def normalize_chars(line: str) -> str:
        if control and not line.isprintable():  # first, so no later regex sees a NUL or a BOM
            line = CONTROL.sub("", line)
        if not line.isascii():
            if nfkc and not is_normalized("NFKC", line):
                line = _nfkc(line)
            if t2s:
                line = t2s(line)
        return line

    def clean(line: str) -> str:
        line = normalize_chars(line)
        if html_tags and ("<" in line or "&" in line):
            unescaped = html.unescape(HTML_TAG.sub(" ", line))
            # Entities can spell anything (&#8203; &#xff21; &#x5B78;): normalize what they produced too.
            # HTML runs after NFKC on purpose: NFKC turns full-width brackets into a tag the regex removes.
            line = normalize_chars(unescaped) if "&" in line else unescaped
        if urls and ("://" in line or "www." in line):
            line = URL.sub(" ", line)
        if emails and "@" in line:
            line = EMAIL.sub(" ", line)
        if digits:
            line = DIGITS.sub(" ", line)
        if punct:
            line = punct.sub(" ", line)
        if collapse:
            line = " ".join(line.split())
        return line

    return clean


def build_block_cleaner(cfg: CleanConfig) -> Callable[[str], str | None]:
    """``text -> "\n".join(clean(line) for line in text.split("\n")[:-1]) + "\n"`` for a block of whole lines
    (each ending in a newline), computed on the whole block at once.

    Every step but HTML, URL and e-mail removal works within a line (NFKC never joins characters across a
    newline, the regexes never match one), so it gives the same text on the block in a few C calls instead of
    several Python calls per line; the few lines that need those three steps get the line cleaner. Most blocks
    need no step at all: cheap scans (``isascii``, ``isprintable``, substring tests) tell, before any regex runs.
    Returns None when it cannot promise the line cleaner's result (Traditional -> Simplified conversion, or a
    cleaned line that holds a newline, e.g. from ``&#10;``): the caller then cleans line by line.
    """
    clean = build_cleaner(cfg)
    control, nfkc = cfg.strip_control, cfg.nfkc
    digits, collapse = cfg.remove_digits, cfg.collapse_whitespace
    punct = _punct_regex() if cfg.remove_punct else None
    is_normalized = unicodedata.is_normalized
    if cfg.t2s:
        return lambda text: None

    triggers = (("<", "&") if cfg.strip_html else ()) + (("://", "www.") if cfg.strip_urls else ()) + (
        ("@",) if cfg.strip_emails else ())

    def clean_block(text: str) -> str | None:
        raw, odd_chars = text, _has_odd_chars(text)
        if control and odd_chars:
            text = CONTROL.sub("", text)
        if nfkc and not text.isascii() and not is_normalized("NFKC", text):
            text = _nfkc(text)
            odd_chars = _has_odd_chars(text)  # NFKC makes spaces of some (U+3000)
        if any(trigger in text for trigger in triggers):
            text = _clean_some_lines(text, raw, clean, triggers)
            if text is None:
                return None
        if digits:
            text = DIGITS.sub(" ", text)
            odd_chars = True
        if punct:
            text = punct.sub(" ", text)
            odd_chars = True
        if collapse and (odd_chars or _spaces_to_collapse(text)):
            text = EDGE_SPACE.sub("", SPACE_RUN.sub(" ", text))
        return text

    return clean_block


ASCII_PLAIN = bytes(range(0x20, 0x7f)) + b"\n"  # printable ASCII and the line end: nothing to remove or space out


def _has_odd_chars(text: str) -> bool:
    """Whether ``text`` holds a character the control or whitespace steps change; a printable text (line ends
    aside) holds none, and ``isprintable``/``translate`` test that several times faster than the regex."""
    if text.isascii():
        return bool(text.encode("ascii").translate(None, ASCII_PLAIN))
    if text.replace("\n", " ").isprintable():
        return False
    return CONTROL_OR_OTHER_SPACE.search(text) is not None


def _spaces_to_collapse(text: str) -> bool:
    """Whether ``text`` holds a run of spaces or a space that starts or ends a line: three substring scans, or on a
    long ASCII text one numpy pass over its bytes (about three times faster)."""
    if text.startswith(" "):
        return True
    if len(text) < 1 << 14 or not text.isascii():
        return "  " in text or " \n" in text or "\n " in text
    chars = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    space, before = chars[1:] == 32, chars[:-1]
    return bool((space & ((before == 32) | (before == 10))).any() or ((before == 32) & (chars[1:] == 10)).any())


def _clean_some_lines(text: str, raw: str, clean: Callable[[str], str], triggers: tuple[str, ...]) -> str | None:
    """``text`` with the lines that may need HTML, URL or e-mail removal replaced by the line cleaner's result on
    the ``raw`` line (the later block steps leave a cleaned line as it is: each of them is idempotent). Only those
    lines are cut out; the rest of the block is copied in slices."""
    hits = []
    for trigger in triggers:
        at = text.find(trigger)
        while at >= 0:
            hits.append(at)
            at = text.find(trigger, at + 1)
    raw_lines = None if text is raw else raw.split("\n")  # as many lines: no block step adds or removes one
    pieces, done, line_no, counted_to = [], 0, 0, 0
    for hit in sorted(hits):
        if hit < done:
            continue  # in a line already replaced
        start = text.rfind("\n", 0, hit) + 1
        end = text.find("\n", hit)
        end = len(text) if end < 0 else end
        line_no += text.count("\n", counted_to, start)
        counted_to = start
        line = clean(text[start:end] if raw_lines is None else raw_lines[line_no])
        if "\n" in line:
            return None
        pieces += (text[done:start], line)
        done = end
    pieces.append(text[done:])
    return "".join(pieces)
