"""The text pipeline: clean -> (lowercase) -> tokenize -> stopwords -> lemmatize/stem, one line at a time.

``PipelineConfig`` is plain data: saved as pipeline.json by ``textseq preprocess`` and inside
LM checkpoints, so training and generation tokenize text exactly as preprocessing did.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from textseq.errors import TextseqError
from textseq.settings import Settings
from textseq.text.clean import CharCleaner, CleanConfig, build_block_cleaner, build_cleaner
from textseq.text.normalize import NormalizeConfig, build_token_normalizers
from textseq.text.stopwords import StopwordConfig, build_stopword_filter
from textseq.text.subword import learn_subwords, subword_detokenizer
from textseq.text.tokenize import (
    HAS_HAN,
    LEVELS,
    LINE_END,
    TokenizeConfig,
    build_block_tokenizer,
    build_tokenizer,
    whitespace_chunks,
)


@dataclass
class PipelineConfig(Settings):
    clean: CleanConfig = field(default_factory=CleanConfig)
    tokenize: TokenizeConfig = field(default_factory=TokenizeConfig)
    stopwords: StopwordConfig = field(default_factory=StopwordConfig)
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)

    @property
    def tokens_are_chars(self) -> bool:
        """Whether the tokens of a cleaned block are its characters: char level and no token step (stopwords,
        lemmas, stems), which is what ``Pipeline`` builds token steps from."""
        return self.tokenize.level == "char" and not (self.stopwords.langs or self.stopwords.words
                                                      or self.normalize.lemmatize or self.normalize.stem)

    @classmethod
    def for_level(cls, level: str, pretokenized: bool = False) -> PipelineConfig:
        """Defaults for LM training: char and subword levels keep everything (punctuation, case, stopwords);
        word level lowercases and keeps stopwords; pretokenized text is split on whitespace and nothing else
        (no cleaning, no case change), so a published setup such as WikiText-2 is reproduced exactly."""
        if level not in LEVELS:
            raise TextseqError(f"unknown level {level!r}; choose char, word or subword")
        if pretokenized:
            off = CleanConfig(nfkc=False, strip_html=False, strip_urls=False, strip_emails=False, strip_control=False,
                              collapse_whitespace=False)
            return cls(clean=off, tokenize=TokenizeConfig(level=level, pretokenized=True),
                       normalize=NormalizeConfig(lowercase=False))
        return cls(tokenize=TokenizeConfig(level=level), normalize=NormalizeConfig(lowercase=level == "word"))



class Pipeline:
    """Turns lines of raw text into token lists. Stages that are off cost nothing per line."""

    def __init__(self, cfg: PipelineConfig | None = None):
        self.cfg = cfg = cfg or PipelineConfig()
        cfg.validate()
        self._clean = build_cleaner(cfg.clean)
        self._lowercase = cfg.normalize.lowercase
        self._tokenize = build_tokenizer(cfg.tokenize)
        stop = build_stopword_filter(cfg.stopwords, lowercased=cfg.normalize.lowercase, clean=self._clean)
        self._token_steps = ([stop] if stop else []) + build_token_normalizers(cfg.normalize)
        self._clean_block = build_block_cleaner(cfg.clean)
        self._char_points = CharCleaner(cfg.clean) if self.tokens_are_chars and not self._lowercase else None
        self._tokenize_block = build_block_tokenizer(cfg.tokenize)
        tok = cfg.tokenize
        self._regexp_words = (tok.level == "word" and not tok.pretokenized and tok.en_tokenizer == "regexp"
                              and tok.lang != "zh" and not self._token_steps)

    def process_line(self, line: str) -> list[str]:
        line = self._clean(line)
        if self._lowercase:
            line = line.lower()
        tokens = self._tokenize(line)
        for step in self._token_steps:
            tokens = step(tokens)
        return tokens

    def __call__(self, line: str) -> list[str]:
        """A Pipeline is an analyzer: ``CountVectorizer(analyzer=Pipeline(cfg))``, ``TfidfVectorizer(...)``."""
        return self.process_line(line)

    def process_lines(self, lines: Iterable[str]) -> Iterator[list[str]]:
        process = self.process_line
        for line in lines:
            yield process(line)

    def clean_block(self, block: str | list[str]) -> str | None:
        """The cleaned (and lowercased) lines of a block (text of whole lines, each ending in a newline, or a
        list of lines), each ending in a newline; None where only ``process_line`` can promise its result."""
        text = self._clean_block(block_text(block))
        return text.lower() if text is not None and self._lowercase else text

    @property
    def tokens_are_chars(self) -> bool:
        """Whether the tokens of a cleaned block are its characters (``PipelineConfig.tokens_are_chars``)."""
        return self.cfg.tokens_are_chars

    def char_points(self, block: str | list[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """For character tokens: the code points of ``clean_block(block)`` (uint8 for ASCII text, else uint32) and
        their counts (``CharCleaner``), computed without a Python step per character; None where only
        ``clean_block`` can promise them."""
        return None if self._char_points is None else self._char_points(block_text(block))

    def process_block(self, block: str | list[str]) -> list[str] | None:
        """The tokens of all lines of ``block`` (as for ``clean_block``), each line's followed by ``LINE_END``
        ("\n"): what ``process_line`` gives line by line, in a few calls per block. None where it cannot
        promise that (NLTK's tokenizers, t2s conversion, a line that HTML entities break in two): then call
        ``process_line``."""
        text = block_text(block)
        tokens = self.tokenize_block(text)
        if tokens is None:
            return None
        if tokens.count(LINE_END) != text.count(LINE_END):
            return None  # a token step dropped or changed a line end: never silently shift documents
        return tokens

    def tokenize_block(self, block: str | list[str]) -> list[str] | None:
        """``process_block`` without its check that every line end is a token of its own (the caller checks
        that, e.g. on the ids); None where only ``process_line`` can promise the result."""
        if not self.tokenizes_blocks or (text := self.clean_block(block)) is None:
            return None
        return self.tokenize_cleaned(text)

    @property
    def tokenizes_blocks(self) -> bool:
        """Whether a cleaned block can be tokenized in one go (all but NLTK's English tokenizers)."""
        return self._tokenize_block is not None

    def tokenize_cleaned(self, text: str) -> list[str]:
        """The tokens of a block that ``clean_block`` cleaned (``tokenize_block`` without the cleaning)."""
        tokens = self._tokenize_block(text)
        for step in self._token_steps:
            tokens = step(tokens)
        return tokens

    def regexp_chunks(self, text: str) -> list[str] | None:
        """For a block that ``clean_block`` cleaned: its whitespace chunks (``tokenize.whitespace_chunks``) where its
        tokens are the English regexp's tokens of those chunks in turn (word level, the regexp tokenizer, no token
        steps, no Han character), so they can be numbered a chunk at a time; else None."""
        if not self._regexp_words or not (self.cfg.tokenize.lang == "en" or text.isascii()
                                          or not HAS_HAN.search(text)):
            return None
        return whitespace_chunks(text)

    def detokenize(self, tokens: list[str]) -> str:
        """Char level: concatenate. Word level: English words spaced (Treebank rules), Chinese not."""
        if self.cfg.tokenize.level == "char":
            return "".join(tokens)
        if self.cfg.tokenize.level == "subword":
            return subword_detokenizer(self.cfg.tokenize.subword_model)(tokens)
        if self.cfg.tokenize.pretokenized:
            return " ".join(tokens)
        return detokenize_words(tokens)


def block_text(block: str | list[str]) -> str:
    """A block of lines as text, each line ending in a newline (text is returned as it is)."""
    return block if isinstance(block, str) else "".join(line + LINE_END for line in block)


def with_subword_model(cfg: PipelineConfig, blocks: Iterable[list[str]]) -> PipelineConfig:
    """``cfg`` with its subword units learnt from ``blocks`` of lines, cleaned as the pipeline cleans them
    (a config that needs no units, or has them already, comes back as it is)."""
    if cfg.tokenize.level != "subword" or cfg.tokenize.subword_model:
        return cfg
    clean_block, clean_line = build_block_cleaner(cfg.clean), build_cleaner(cfg.clean)
    lowercase = cfg.normalize.lowercase

    def lines() -> Iterator[list[str]]:
        for block in filter(None, blocks):
            text = clean_block(block_text(block))
            cleaned = text.split("\n")[:-1] if text is not None else [clean_line(line) for line in block]
            yield [line.lower() for line in cleaned] if lowercase else cleaned

    model = learn_subwords(lines(), cfg.tokenize.subword_vocab)
    return dataclasses.replace(cfg, tokenize=dataclasses.replace(cfg.tokenize, subword_model=model))


def _is_cjk(token: str) -> bool:
    return bool(HAS_HAN.search(token)) or any("\u3000" <= ch <= "\u303f" or "\uff00" <= ch <= "\uffef"
                                             for ch in token)


def detokenize_words(tokens: list[str]) -> str:
    detok = _treebank_detokenizer()
    out: list[str] = []
    run: list[str] = []
    for token in tokens:
        if _is_cjk(token):
            if run:
                out.append(detok(run))
                run = []
            out.append(token)
        else:
            run.append(token)
    if run:
        out.append(detok(run))
    return "".join(out)


@functools.lru_cache(maxsize=1)
def _treebank_detokenizer():
    from nltk.tokenize.treebank import TreebankWordDetokenizer

    detokenize = TreebankWordDetokenizer().detokenize

    def detok(tokens: list[str]) -> str:
        # Treebank rules need directed quotes: a straight one ending the run closes, others alternate.
        quotes = itertools.count()
        last = len(tokens) - 1
        return detokenize([t if t != '"' else "''" if i == last or next(quotes) % 2 else "``"
                           for i, t in enumerate(tokens)])

    return detok
