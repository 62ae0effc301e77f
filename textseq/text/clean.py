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
# Whitespace other than the space and the newline: " ".join(line.split()) turns it into spaces. None lies
# beyond U+3000 (tests/test_text_clean.py checks the whole range): scanning it all took 0.1 s of every start.
LAST_SPACE = 0x3000
OTHER_SPACE = "".join(chr(c) for c in range(LAST_SPACE + 1) if chr(c).isspace() and chr(c) not in " \n")
# One scan of a block for anything the control or whitespace steps may change.
CONTROL_OR_OTHER_SPACE = re.compile(CONTROL.pattern[:-1] + re.escape(OTHER_SPACE) + "]")
SPACE_RUN = re.compile(rf"[ {re.escape(OTHER_SPACE)}]+")
EDGE_SPACE = re.compile(r"^ | $", re.MULTILINE)
# Starters (canonical combining class 0) that NFC composes with the character before them: the second halves of
# the two-starter canonical decompositions in unicodedata (tests/test_text_clean.py checks the list against the
# running Python's tables), and the Hangul vowel and final-consonant jamo, which compose by algorithm.
COMPOSING_STARTERS = frozenset([
    0x09BE, 0x09D7, 0x0B3E, 0x0B56, 0x0B57, 0x0BBE, 0x0BD7, 0x0CC2, 0x0CD5, 0x0CD6, 0x0D3E, 0x0D57, 0x0DCF,
    0x0DDF, 0x0FB5, 0x0FB7, 0x102E, 0x1B35, 0x11127, 0x1133E, 0x11357, 0x114B0, 0x114BA, 0x114BD, 0x115AF,
    0x11930, *range(0x1161, 0x1176), *range(0x11A8, 0x11C3)])


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


OTHER_SPACES = frozenset(OTHER_SPACE)
LINE_END_POINT, SPACE_POINT = 10, 32
UNSEEN, ONE, OTHER, ALONE_UNSAFE = 0, 1, 2, 3
DROPPED = 0xFFFFFFFF  # no code point: marks a removed character until it is cut out


class CharCleaner:
    """``build_block_cleaner``'s result for character tokens, as the array of its code points (uint8 for an ASCII
    block, else uint32), computed from what cleaning does to each distinct character of the block: control
    characters go, NFKC maps the rest one character at a time, other whitespace becomes a space; numpy then
    applies that table and collapses the spaces. No Python code runs per character.

    NFKC of a text is the concatenation of its characters' NFKC where no character starts with a combining mark
    or with a starter that composes with the character before it (``COMPOSING_STARTERS``): then no reordering or
    composition crosses a character boundary. A block holding any other character, or anything the HTML, URL or
    e-mail steps may change, or needing a step the table cannot express (digits, punctuation, t2s), gets None:
    the caller cleans it as text."""

    def __init__(self, cfg: CleanConfig):
        self.cfg = cfg
        self.usable = not (cfg.remove_digits or cfg.remove_punct or cfg.t2s)
        # What cleaning makes of each code point met so far: ONE (one character, self._one, often itself),
        # OTHER (another number of them, self._other), ALONE_UNSAFE (cannot be cleaned on its own), UNSEEN.
        self._kind = np.zeros(0, dtype=np.uint8)
        self._one = np.zeros(0, dtype=np.uint32)
        self._other: dict[int, str] = {}
        self._ascii = self._ascii_tables()

    def _learn(self, points: np.ndarray) -> None:
        """Fill in the tables for the distinct ``points`` (sorted) not met before."""
        if len(points) and points[-1] >= len(self._kind):
            size = int(points[-1]) + 1
            self._kind = np.concatenate((self._kind, np.full(size - len(self._kind), UNSEEN, np.uint8)))
            self._one = np.concatenate((self._one, np.arange(len(self._one), size, dtype=np.uint32)))
        for point in points[self._kind[points] == UNSEEN].tolist():
            cleaned = self._clean_alone(chr(point))
            if cleaned is None:
                self._kind[point] = ALONE_UNSAFE
            elif len(cleaned) == 1:
                self._kind[point], self._one[point] = ONE, ord(cleaned)
            else:
                self._kind[point], self._other[point] = OTHER, cleaned

    def _clean_alone(self, char: str) -> str | None:
        cfg = self.cfg
        if cfg.strip_control and CONTROL.match(char):
            return ""
        if cfg.nfkc and not char.isascii():
            first = unicodedata.normalize("NFKD", char)[0]
            if unicodedata.combining(first) or ord(first) in COMPOSING_STARTERS:
                return None
            char = _nfkc(char)
        if cfg.collapse_whitespace:
            char = "".join(" " if c in OTHER_SPACES else c for c in char)
        return char

    def _ascii_tables(self) -> tuple[bytes, bytes]:
        """bytes.translate's table and deletions for ASCII text (an ASCII character becomes at most one)."""
        table, delete = bytearray(range(256)), bytearray()
        for point in range(128):
            cleaned = self._clean_alone(chr(point))
            if cleaned:
                table[point] = ord(cleaned)
            else:
                delete.append(point)
        return bytes(table), bytes(delete)

    def __call__(self, text: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The code points of ``clean_block(text)`` (a block of whole lines, each ending in a newline) and their
        counts (``np.bincount(points)``, perhaps with zeros after the end); None where only ``clean_block`` can
        promise its result."""
        if not self.usable:
            return None
        cleaned = self._ascii_points(text) if text.isascii() else self._other_points(text)
        if cleaned is None or not self.cfg.collapse_whitespace:
            return cleaned
        points, counts = cleaned
        collapsed = _collapsed(points)
        if collapsed is not points:
            counts[SPACE_POINT] -= len(points) - len(collapsed)  # collapsing only ever removes spaces
        return collapsed, counts

    def _ascii_points(self, text: str) -> tuple[np.ndarray, np.ndarray] | None:
        data = text.encode("ascii")
        points = np.frombuffer(data, dtype=np.uint8)
        counts = point_counts(points)
        # a control character or whitespace other than the space and the line end: map the block
        mapped = bool(counts[:SPACE_POINT].sum() - counts[LINE_END_POINT] or counts[0x7F:].any())
        if mapped:
            points = np.frombuffer(data.translate(*self._ascii), dtype=np.uint8)
            counts = point_counts(points)
        chars = {chr(p) for p in np.flatnonzero(counts).tolist()}
        if self._may_change(chars, None if mapped else text, points):
            return None
        return points, counts

    def _other_points(self, text: str) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            raw = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        except UnicodeEncodeError:  # a lone surrogate
            return None
        counts = point_counts(raw)
        chars = np.flatnonzero(counts)
        self._learn(chars)
        kinds = self._kind[chars]
        if (kinds == ALONE_UNSAFE).any():
            return None
        other = chars[kinds == OTHER]
        if not other.size and np.array_equal(self._one[chars], chars):
            ascii_chars = {chr(p) for p in chars[chars < 128].tolist()}
            return None if self._may_change(ascii_chars, text, raw) else (raw, counts)
        points = self._one[raw]
        ones = chars[kinds == ONE]
        produced, weights = self._one[ones], counts[ones]  # each produced character, and how often
        if other.size:
            points = self._expanded(raw, points, other.tolist())
            strings = [(c, counts[p]) for p in other.tolist() for c in self._other[p]]
            produced = np.concatenate((produced, np.array([ord(c) for c, _ in strings], np.uint32)))
            weights = np.concatenate((weights, np.array([n for _, n in strings], np.int64)))
        counts = np.bincount(produced, weights=weights, minlength=SPACE_POINT + 1).astype(np.int64)
        ascii_chars = {chr(p) for p in produced[produced < 128].tolist()}
        return None if self._may_change(ascii_chars, None, points) else (points, counts)

    def _expanded(self, raw: np.ndarray, points: np.ndarray, other: list[int]) -> np.ndarray:
        """``points`` (``raw`` mapped through ``self._one``) with each of the few code points in ``other`` replaced by
        its cleaned string (of any length but one)."""
        at, values = [], []
        for point in other:
            where, cleaned = np.flatnonzero(raw == point), self._other[point]
            points[where] = ord(cleaned[0]) if cleaned else DROPPED
            for char in cleaned[1:]:  # inserted in this order before the next position
                at.append(where + 1)
                values.append(np.full(len(where), ord(char), np.uint32))
        if at:
            points = np.insert(points, np.concatenate(at), np.concatenate(values))
        return points[points != DROPPED] if any(not self._other[p] for p in other) else points

    def _may_change(self, chars: set[str], text: str | None, points: np.ndarray) -> bool:
        """Whether the HTML, URL or e-mail steps may change the cleaned block: its ``points``, the set of its ASCII
        ``chars``, and the block as ``text`` where cleaning left every character as it was (else None)."""
        cfg, has = self.cfg, chars.__contains__
        if (cfg.strip_emails and has("@")) or (cfg.strip_html and has("<")):
            return True
        # an entity that unescapes to itself changes nothing (but removing a control character can make one)
        if cfg.strip_html and has("&") and (text is None or html.unescape(text) != text):
            return True
        if cfg.strip_urls:
            for trigger in ("://", "www."):
                if all(map(has, trigger)) and (trigger in text if text is not None else _holds(points, trigger)):
                    return True
        return False


def point_counts(points: np.ndarray) -> np.ndarray:
    """``np.bincount(points)``, a cache-sized piece at a time (bincount widens every value to 64 bits first)."""
    step = 1 << 16
    if len(points) <= step:
        return np.bincount(points, minlength=1)
    counts = np.zeros(int(points.max()) + 1, dtype=np.int64)
    for start in range(0, len(points), step):
        piece = np.bincount(points[start:start + step])
        counts[:len(piece)] += piece
    return counts


def _holds(points: np.ndarray, sequence: str) -> bool:
    """Whether the code points hold ``sequence`` (a few ASCII characters) consecutively."""
    n = len(points) - len(sequence) + 1
    if n <= 0:
        return False
    found = np.ones(n, dtype=bool)
    for i, char in enumerate(sequence):
        found &= points[i:i + n] == ord(char)
    return bool(found.any())


def _collapsed(points: np.ndarray) -> np.ndarray:
    """``EDGE_SPACE.sub("", SPACE_RUN.sub(" ", text))`` on code points where every other space is a space already:
    a run of spaces becomes its first one, then a space that starts or ends a line goes."""
    space = points == SPACE_POINT
    if not space.any():
        return points
    later = np.zeros(len(points), dtype=bool)
    np.logical_and(space[1:], space[:-1], out=later[1:])
    if later.any():
        points = points[~later]
        space = points == SPACE_POINT
    line_end = points == LINE_END_POINT
    edge = space.copy()
    edge[1:] &= line_end[:-1]  # after a line end (the block's first character: a line start too)
    edge[:-1] |= space[:-1] & line_end[1:]  # before one
    edge[-1] |= space[-1]
    return points[~edge] if edge.any() else points
