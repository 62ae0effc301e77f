"""Subword units (``--level subword``): a byte-pair-encoding model learnt from the corpus with Hugging Face
``tokenizers`` and stored, as its JSON, inside the pipeline settings, so preprocessing, training, generation
and evaluation all cut text into exactly the same pieces.

Spaces become "▁" at the start of the piece that follows them (SentencePiece's convention), nothing is added at
the start of a line, so the pieces of a line spell it exactly: a piece of n characters stands for n characters
of text, which is how bits per character are computed for subword models (:func:`piece_chars`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from textseq.errors import TextseqError

SPACE = "\u2581"  # "▁"
UNKNOWN = "<unk>"  # a character never seen when learning the units: one piece each
DEFAULT_VOCAB = 8000
# pieces that stand for one character of text although they are not spelt that way: the line end, <unk>
ONE_CHARACTER = ("<eos>", UNKNOWN)


def _import_tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise TextseqError("--level subword needs the tokenizers package: pip install tokenizers") from None
    return tokenizers


def learn_subwords(lines: Iterable[str], vocab_size: int = DEFAULT_VOCAB) -> str:
    """Learn BPE units from cleaned lines (streamed); return the model as JSON."""
    tokenizers = _import_tokenizers()
    if vocab_size < 2:
        raise TextseqError(f"--vocab-size must be at least 2, got {vocab_size}")
    model = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token=UNKNOWN))
    model.pre_tokenizer = tokenizers.pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="never")
    model.decoder = tokenizers.decoders.Metaspace(replacement=SPACE, prepend_scheme="never")
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[UNKNOWN],
                                             show_progress=False)
    model.train_from_iterator(lines, trainer=trainer)
    return model.to_str()


@functools.lru_cache(maxsize=4)
def _model(json_text: str):
    return _import_tokenizers().Tokenizer.from_str(json_text)


def subword_tokenizer(json_text: str) -> Callable[[str], list[str]]:
    if not json_text:
        raise TextseqError("this pipeline has --level subword but no subword model: preprocess or train on the "
                           "text first (that learns the units)")
    model = _model(json_text)
    return lambda line: model.encode(line, add_special_tokens=False).tokens if line else []


def subword_block_tokenizer(json_text: str) -> Callable[[str], list[str]]:
    """Lines joined by newlines (one after the last) -> the pieces of every line, each line's followed by "\\n";
    the lines are cut in parallel by the Rust library."""
    subword_tokenizer(json_text)  # the same error when there is no model
    model = _model(json_text)

    def tokenize(text: str) -> list[str]:
        tokens: list[str] = []
        for encoding in model.encode_batch(text.split("\n")[:-1], add_special_tokens=False):
            tokens += encoding.tokens
            tokens.append("\n")
        return tokens

    return tokenize


def subword_pieces(json_text: str) -> list[str]:
    """Every piece of the model (by id), so that a vocabulary holds those the text never ended up using too."""
    vocab = _model(json_text).get_vocab()
    return sorted(vocab, key=vocab.__getitem__)


def model_pieces(pipeline: dict) -> list[str]:
    """The subword pieces of a pipeline (as a dict), or none for other levels."""
    tokenize = pipeline.get("tokenize", {})
    return subword_pieces(tokenize["subword_model"]) if tokenize.get("level") == "subword" else []


def subword_detokenizer(json_text: str) -> Callable[[list[str]], str]:
    model = _model(json_text)
    return lambda tokens: model.decoder.decode(list(tokens))


def piece_chars(tokens: Sequence[str], specials: Sequence[str]) -> np.ndarray:
    """Characters of text each vocabulary entry stands for: its length ("▁" is a space), 1 for the line end and
    <unk>, 0 for the other specials (never predicted)."""
    special = set(specials)
    return np.array([1 if t in ONE_CHARACTER else 0 if t in special else len(t) for t in tokens], dtype=np.int64)
