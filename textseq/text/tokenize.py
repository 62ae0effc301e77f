"""Stage 2, tokenization: characters, or words with per-line language detection.

Word level splits a line into runs of Chinese text and runs of other-script words
(Latin letters, digits): Chinese runs go to jieba (or rjieba), the others to an English
tokenizer. So "用Python 3.11训练GPT-2模型" gives English-style tokens for
"Python 3.11" and "GPT-2", and the segmenter only ever sees Chinese text, where the two
backends agree (see ``RJIEBA_SUPPORTED``).
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from textseq.errors import TextseqError, check_choice
from textseq.io import check_input_file
from textseq.settings import Settings
from textseq.text.subword import DEFAULT_VOCAB as DEFAULT_SUBWORD_VOCAB
from textseq.text.subword import subword_block_tokenizer, subword_tokenizer

LEVELS = ("char", "word", "subword")
LANGS = ("auto", "zh", "en")
JIEBA_MODES = ("accurate", "full", "search")
BACKENDS = ("jieba", "rjieba")
EN_TOKENIZERS = ("regexp", "nltk", "treebank")
# rjieba gives token-for-token the same output as jieba for these modes, HMM on or off, user
# dictionary or not (checked on the bundled corpora by tests/test_text_tokenize.py) -- on Chinese
# text: on Latin text they differ ("GPT-4": jieba's HMM path gives GPT - 4, rjieba GPT-4), which is
# one more reason the segmenter never sees it. rjieba's full mode lists overlapping sub-words that
# jieba 0.42's cut_all does not, so it is refused.
RJIEBA_SUPPORTED = ("accurate", "search")

# Han ideographs (CJK radicals, Ext A, unified, compatibility, Ext B-H) plus 々 〇 and Hangzhou numerals.
HAN = "\u2e80-\u2fdf\u3005\u3007\u3021-\u3029\u3038-\u303b\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
HAS_HAN = re.compile(f"[{HAN}]")
# A run of non-Han words, joined by spaces or in-word punctuation: "Python 3.11", "e-mail", "GPT-4".
FOREIGN_RUN = re.compile(rf"([^\W{HAN}]+(?:[\s'’.\-+#&/@:%]+[^\W{HAN}]+)*)")
WORD_OR_PUNCT = re.compile(r"\w+(?:['’.\-]\w+)*|[^\w\s]")
# The same on a block of lines: line ends are tokens, and a foreign run never reaches past one.
LINE_END = "\n"
WORD_OR_PUNCT_OR_END = re.compile(WORD_OR_PUNCT.pattern + "|\n")
NOT_SPACE_OR_END = re.compile(r"\S+|\n")
FOREIGN_RUN_IN_LINE = re.compile(rf"([^\W{HAN}]+(?:(?:[^\S\n]|['’.\-+#&/@:%])+[^\W{HAN}]+)*)")
# Runs of lines with no Han character, from one with a visible character on (the empty lines after it join the
# run; those before it stay in the Chinese run, as either way an empty line gives its line end only)
NON_HAN_LINES = re.compile(rf"^[^{HAN}\n]*[^{HAN}\s][^{HAN}\n]*\n(?:^[^{HAN}\n]*\n)*", re.MULTILINE)
OTHER_SPACE = re.compile(r"[^\S \n]")  # whitespace but the space and the line end
LINE_END_CHUNK = "\x00"  # stands for each line end among a block's whitespace chunks (see whitespace_chunks)


DEFAULT_LEVEL = "char"  # the token level every command (preprocess, train) uses unless told otherwise


@dataclass
class TokenizeConfig(Settings):
    level: str = "word"  # "char": code points, spaces included; "word": see the module docstring; "subword": BPE
    lang: str = "auto"  # "auto": lines with Han characters are Chinese (mixed), others English
    jieba_mode: str = "accurate"  # accurate | full | search
    hmm: bool = True  # jieba's HMM for words missing from its dictionary
    backend: str = "jieba"  # jieba | rjieba (Rust, same tokens for RJIEBA_SUPPORTED modes)
    en_tokenizer: str = "regexp"  # regexp (fast) | nltk (NLTKWordTokenizer) | treebank
    # Extra dictionary words as (word, freq or None, POS tag or None), read from a jieba user
    # dictionary file by load_user_dict: stored inline so a saved config is self-contained.
    user_words: tuple[tuple[str, int | None, str | None], ...] = ()
    # Text already tokenized (WikiText, Penn Treebank): split on whitespace only, every token kept as written
    # (literal <unk>, "@-@"), no cleaning or case change (PipelineConfig.for_level turns those off).
    pretokenized: bool = False
    # Subword level: the BPE model learnt from the corpus (tokenizers JSON; empty until learnt) and its size.
    subword_model: str = ""
    subword_vocab: int = DEFAULT_SUBWORD_VOCAB

    def validate(self) -> None:
        super().validate()
        if self.subword_vocab < 2:
            raise TextseqError(f"--vocab-size must be at least 2, got {self.subword_vocab}")
        if self.pretokenized and self.level != "word":
            raise TextseqError("--pretokenized reads whitespace-separated tokens: it needs --level word")
        for name, value, allowed in (("level", self.level, LEVELS), ("lang", self.lang, LANGS),
                                     ("jieba mode", self.jieba_mode, JIEBA_MODES),
                                     ("backend", self.backend, BACKENDS),
                                     ("English tokenizer", self.en_tokenizer, EN_TOKENIZERS)):
            check_choice(name, value, allowed)
        if self.backend == "rjieba" and self.jieba_mode not in RJIEBA_SUPPORTED:
            raise TextseqError(f"the rjieba backend does not support jieba mode {self.jieba_mode!r} "
                               f"(supported: {', '.join(RJIEBA_SUPPORTED)}); use --backend jieba")


def load_user_dict(path: str | Path) -> tuple[tuple[str, int | None, str | None], ...]:
    """Read a jieba user dictionary: one ``word [freq] [tag]`` per line, UTF-8."""
    path = check_input_file(path, "user dictionary")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise TextseqError(f"user dictionary {path} is not UTF-8") from None
    words = []
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        freq = parts[1] if len(parts) > 1 else None
        if freq is not None and not freq.isdigit():
            raise TextseqError(f"user dictionary {path} line {number}: frequency {freq!r} is not a number")
        words.append((parts[0], int(freq) if freq else None, parts[2] if len(parts) > 2 else None))
    return tuple(words)


def _user_words_key(words) -> tuple:
    return tuple(tuple(w) for w in words)  # lists after a JSON round trip; hashable for the caches


@functools.lru_cache(maxsize=4)
def _jieba(user_words: tuple):
    import jieba

    logging.getLogger("jieba").setLevel(logging.WARNING)  # "Building prefix dict ..." on every start
    tokenizer = jieba.Tokenizer()  # private instance: the global one is shared with the caller
    tokenizer.tmp_dir = tempfile.gettempdir()  # dictionary cache file goes there
    tokenizer.initialize()
    for word, freq, tag in user_words:
        tokenizer.add_word(word, freq, tag)
    return tokenizer


@functools.lru_cache(maxsize=4)
def _rjieba(user_words: tuple):
    try:
        import rjieba
    except ImportError:
        raise TextseqError("the rjieba backend needs the rjieba package: pip install 'textseq[fast]'") from None
    tokenizer = rjieba.Jieba()
    for word, freq, tag in user_words:
        tokenizer.add_word(word, freq if freq is not None else tokenizer.suggest_freq(word), tag)
    return tokenizer


def chinese_segmenter(cfg: TokenizeConfig) -> Callable[[str], list[str]]:
    words = _user_words_key(cfg.user_words)
    if cfg.backend == "rjieba":
        rj = _rjieba(words)
        cut = rj.cut_for_search if cfg.jieba_mode == "search" else rj.cut
        return cut if cfg.hmm else functools.partial(cut, hmm=False)  # HMM is the default: no wrapper
    jb = _jieba(words)
    if cfg.jieba_mode == "full":
        return lambda text: [t for t in jb.lcut(text, cut_all=True) if t]  # jieba 0.42 yields empty strings
    cut = jb.lcut_for_search if cfg.jieba_mode == "search" else jb.lcut
    return cut if cfg.hmm else functools.partial(cut, HMM=False)


def english_tokenizer(name: str) -> Callable[[str], list[str]]:
    """Tokenizers that need no downloaded NLTK data."""
    if name == "nltk":
        from nltk.tokenize import NLTKWordTokenizer

        return NLTKWordTokenizer().tokenize
    if name == "treebank":
        from nltk.tokenize import TreebankWordTokenizer

        return TreebankWordTokenizer().tokenize
    return WORD_OR_PUNCT.findall


def build_tokenizer(cfg: TokenizeConfig) -> Callable[[str], list[str]]:
    cfg.validate()
    if cfg.level == "char":
        return list
    if cfg.level == "subword":
        return subword_tokenizer(cfg.subword_model)
    if cfg.pretokenized:
        return str.split
    english = english_tokenizer(cfg.en_tokenizer)
    if cfg.lang == "en":
        return english
    segment = chinese_segmenter(cfg)
    split_runs, has_han, zh_only = FOREIGN_RUN.split, HAS_HAN.search, cfg.lang == "zh"

    def chinese(text: str) -> list[str]:
        if " " in text or not text.isprintable():  # jieba returns spaces as tokens
            return [t for t in segment(text) if not t.isspace()]
        return segment(text)

    def tokenize(line: str) -> list[str]:
        if not (zh_only or has_han(line)):
            return english(line)
        parts = split_runs(line)
        if len(parts) == 1:  # no foreign words: the common case, inlined
            return segment(line) if " " not in line and line.isprintable() else chinese(line)
        return _tokens_of_runs(parts, english, chinese)

    return tokenize


def _tokens_of_runs(parts: list[str], english: Callable[[str], list[str]],
                    chinese: Callable[[str], list[str]]) -> list[str]:
    """The tokens of text split by a foreign-run regex: even parts Chinese, odd parts foreign runs."""
    tokens: list[str] = []
    for i, part in enumerate(parts):
        if i % 2:
            tokens += english(part)
        elif part:
            tokens += chinese(part)
    return tokens


def build_block_tokenizer(cfg: TokenizeConfig) -> Callable[[str], list[str]] | None:
    """``text -> tokens`` for a block of lines, each ending in a newline: the tokens of every line as
    ``build_tokenizer`` gives them, each line's followed by ``LINE_END``. One call per block instead of one
    per line, where the tokenizer can: regexp English, whitespace (pretokenized), jieba and rjieba (both cut
    a newline as a token of its own and never segment across it). None for NLTK's English tokenizers."""
    cfg.validate()
    if cfg.level == "char":
        return list
    if cfg.level == "subword":
        return subword_block_tokenizer(cfg.subword_model)
    if cfg.pretokenized:
        return NOT_SPACE_OR_END.findall
    if cfg.en_tokenizer != "regexp":
        return None
    english = english_block_tokenizer()
    if cfg.lang == "en":
        return english
    segment, split_runs = chinese_segmenter(cfg), FOREIGN_RUN_IN_LINE.split

    def chinese(part: str) -> list[str]:
        return _segment_spaced(segment, part) if " " in part or OTHER_SPACE.search(part) else segment(part)

    def chinese_lines(text: str) -> list[str]:
        """Lines that all hold Han characters, or any lines with lang zh."""
        return _tokens_of_runs(split_runs(text), WORD_OR_PUNCT.findall, chinese)

    if cfg.lang == "zh":
        return chinese_lines

    def tokenize(text: str) -> list[str]:
        if text.isascii():  # O(1) in CPython: no Han character, English rules throughout
            return english(text)
        tokens: list[str] = []
        done = 0
        for match in NON_HAN_LINES.finditer(text):  # runs of lines with no Han character: English rules
            start, end = match.span()
            if start > done:
                tokens += chinese_lines(text[done:start])
            tokens += english(text[start:end])
            done = end
        if done < len(text):
            tokens += chinese_lines(text[done:] if done else text)
        return tokens

    return tokenize


def whitespace_chunks(text: str) -> list[str] | None:
    """The whitespace-separated chunks of a block of lines, ``LINE_END_CHUNK`` after each line's, in one split (the
    NUL is no whitespace, so it stays a chunk of its own); None when the text holds that character itself.
    ``str.split`` and the regex's ``\\s`` agree on what whitespace is (``str.isspace``)."""
    if LINE_END_CHUNK in text:
        return None
    return text.replace(LINE_END, f" {LINE_END_CHUNK} ").split()


def chunk_tokens(chunk: str) -> list[str]:
    """The English regexp's tokens of a whitespace-free chunk: the regexp never matches whitespace, so the tokens of
    a line are those of its chunks in turn."""
    return WORD_OR_PUNCT.findall(chunk)


class _ChunkTokens(dict):
    """Whitespace-free chunk of text -> its regexp tokens. A corpus repeats its chunks ("the", "lord,") far more than
    a regex call costs, and the tokens come back as the same string objects, whose hashes are known when they are
    counted."""

    __slots__ = ()
    LIMIT = 200_000  # distinct chunks kept: memory stays bounded, whatever the corpus

    def __init__(self):
        super().__init__()
        self.reset()

    def reset(self) -> None:
        self.clear()
        self[LINE_END_CHUNK] = (LINE_END,)

    def __missing__(self, chunk: str) -> tuple[str, ...]:
        if len(self) >= self.LIMIT:
            self.reset()
        tokens = self[chunk] = tuple(chunk_tokens(chunk))
        return tokens


def english_block_tokenizer() -> Callable[[str], list[str]]:
    """``WORD_OR_PUNCT_OR_END.findall`` (the English regexp on a block of lines, line ends as tokens), computed
    through a memo of whitespace-separated chunks: about a third less time than the regex on the whole block."""
    chain, tokens_of = itertools.chain.from_iterable, _ChunkTokens().__getitem__

    def tokenize(text: str) -> list[str]:
        chunks = whitespace_chunks(text)
        if chunks is None:  # a NUL in the text (the cleaner drops it unless told not to): the plain block regex
            return WORD_OR_PUNCT_OR_END.findall(text)
        return list(chain(map(tokens_of, chunks)))

    return tokenize


def _segment_spaced(segment: Callable[[str], list[str]], text: str) -> list[str]:
    """The segmenter's tokens without its whitespace tokens, line ends kept (jieba cuts "\r\n" as one)."""
    if "  " not in text and not OTHER_SPACE.search(text):  # single spaces only (cleaned text): cut them out
        tokens, kept, start = segment(text), [], 0
        try:
            while True:
                at = tokens.index(" ", start)  # few spaces in a long run of tokens: slices beat a filter
                kept += tokens[start:at]
                start = at + 1
        except ValueError:
            kept += tokens[start:]
        return kept
    return [LINE_END if LINE_END in t else t for t in segment(text) if not t.isspace() or LINE_END in t]
