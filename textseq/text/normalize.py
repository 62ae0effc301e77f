"""Stage 4, normalization: lowercase, stemming (NLTK, no data needed), lemmatization (simplemma).

Stemmers and the lemmatizer are slow per call but see the same words again and again, so
results are memoized per distinct token: the memo grows with the vocabulary, not the corpus.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textseq.errors import TextseqError, check_choice
from textseq.settings import Settings

STEMMERS = ("porter", "snowball", "lancaster")


@dataclass
class NormalizeConfig(Settings):
    lowercase: bool = False
    stem: str | None = None  # porter | snowball | lancaster (stemmers also lowercase)
    lemmatize: bool = False  # simplemma dictionary lemmas, language lemma_lang
    lemma_lang: str = "en"

    def validate(self) -> None:
        super().validate()
        if self.stem is not None:
            check_choice("stemmer", self.stem, STEMMERS)


def stemmer(name: str) -> Callable[[str], str]:
    from nltk.stem import LancasterStemmer, PorterStemmer, SnowballStemmer

    if name == "porter":
        return PorterStemmer().stem
    if name == "snowball":
        return SnowballStemmer("english").stem
    return LancasterStemmer().stem


def lemmatizer(lang: str) -> Callable[[str], str]:
    import simplemma

    try:
        simplemma.lemmatize("test", lang=lang)
    except ValueError:
        raise TextseqError(f"simplemma has no lemmatization data for language {lang!r}") from None
    return lambda token: simplemma.lemmatize(token, lang=lang)


def memoized_map(fn: Callable[[str], str]) -> Callable[[list[str]], list[str]]:
    memo: dict[str, str] = {"\n": "\n"}  # the line end of a block of tokens (Pipeline.process_block)

    def apply(tokens: list[str]) -> list[str]:
        out = []
        for token in tokens:
            mapped = memo.get(token)
            if mapped is None:
                mapped = memo[token] = fn(token)
            out.append(mapped)
        return out

    return apply


def build_token_normalizers(cfg: NormalizeConfig) -> list[Callable[[list[str]], list[str]]]:
    """Token-list steps; lowercasing is applied to the whole line earlier (cheaper, same result)."""
    cfg.validate()
    steps = []
    if cfg.lemmatize:
        steps.append(memoized_map(lemmatizer(cfg.lemma_lang)))
    if cfg.stem:
        steps.append(memoized_map(stemmer(cfg.stem)))
    return steps
