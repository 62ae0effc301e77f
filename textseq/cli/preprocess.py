"""`textseq preprocess`: text -> token id stream (ids.npy), vocab.json, pipeline.json and features."""

from __future__ import annotations

import math
import sys

import typer

from textseq.cli.options import Command, alias, either, opt, split_list
from textseq.errors import TextseqError
from textseq.features.embeddings import Word2VecConfig
from textseq.progress import ProgressReporter
from textseq.settings import default_of, merge
from textseq.text.clean import CleanConfig
from textseq.text.normalize import NormalizeConfig
from textseq.text.pipeline import PipelineConfig
from textseq.text.preprocess import FeatureConfig, PreprocessConfig
from textseq.text.tokenize import DEFAULT_LEVEL, TokenizeConfig
from textseq.vocab import VocabConfig

CLEAN, TOKENS, FILTERS, VOCAB, FEATURES, RUN = ("Cleaning", "Tokenization", "Stopwords and normalization",
                                                 "Vocabulary", "Features", "Output")


def _c(name: str):
    return default_of(CleanConfig, name)


def preprocess(
    inputs: list[str] = typer.Argument(..., help="Text files, directories (*.txt, *.txt.gz, recursive), "
                                                 ".gz files, or - for stdin.", show_default=False),
    level: str = opt("--level", help="char | word | subword (BPE units learnt from the text).",
                     default=DEFAULT_LEVEL, panel=TOKENS),
    vocab_size: int = opt("--vocab-size", help="Subword units to learn (--level subword).",
                          default=default_of(TokenizeConfig, "subword_vocab"), panel=TOKENS),
    lang: str = opt("--lang", help="auto (per line) | zh | en.", default=default_of(TokenizeConfig, "lang"),
                    panel=TOKENS),
    jieba_mode: str = opt("--jieba-mode", help="accurate | full | search.",
                          default=default_of(TokenizeConfig, "jieba_mode"), panel=TOKENS),
    hmm: bool = opt("--hmm/--no-hmm", help="jieba HMM for unknown words.", default=True, panel=TOKENS),
    user_dict: str = opt("--user-dict", help="jieba user dictionary: a word, optional frequency and POS tag per "
                         "line.", panel=TOKENS),
    backend: str = opt("--backend", help="jieba | rjieba (same tokens, faster; accurate/search modes).",
                       default=default_of(TokenizeConfig, "backend"), panel=TOKENS),
    en_tokenizer: str = opt("--en-tokenizer", help="regexp | nltk | treebank.",
                            default=default_of(TokenizeConfig, "en_tokenizer"), panel=TOKENS),
    nfkc: bool = opt("--nfkc/--no-nfkc", help="Unicode NFKC (full-width to half-width).", default=_c("nfkc"),
                     panel=CLEAN),
    strip_html: bool = opt("--strip-html/--keep-html", help="HTML tags and entities.", default=_c("strip_html"),
                           panel=CLEAN),
    strip_urls: bool = opt("--strip-urls/--keep-urls", help="URLs.", default=_c("strip_urls"), panel=CLEAN),
    strip_emails: bool = opt("--strip-emails/--keep-emails", help="E-mail addresses.", default=_c("strip_emails"),
                             panel=CLEAN),
    strip_control: bool = opt("--strip-control/--keep-control", help="Control and zero-width chars.",
                              default=_c("strip_control"), panel=CLEAN),
    collapse_whitespace: bool = opt("--collapse-whitespace/--keep-whitespace", help="Runs of whitespace.",
                                    default=_c("collapse_whitespace"), panel=CLEAN),
    t2s: bool = typer.Option(False, "--t2s", help="Traditional to Simplified Chinese (OpenCC).",
                             rich_help_panel=CLEAN),
    remove_digits: bool = typer.Option(False, "--remove-digits", help="Digits.", rich_help_panel=CLEAN),
    remove_punct: bool = typer.Option(False, "--remove-punct", help="Punctuation and symbols.",
                                      rich_help_panel=CLEAN),
    stopwords: str = opt("--stopwords", help="Built-in stopword lists: en (conservative), en-iso (large), zh, "
                         "other ISO codes.", default="none", panel=FILTERS),
    stopwords_file: list[str] = opt("--stopwords-file", help="Stopword file, one per line (repeatable).",
                                    panel=FILTERS),
    lowercase: bool = opt("--lowercase/--no-lowercase", help="Lowercase tokens.",
                          default="on for word level, off for char", panel=FILTERS),
    stem: str = opt("--stem", help="porter | snowball | lancaster.", default="none", panel=FILTERS),
    lemmatize: bool = typer.Option(False, "--lemmatize", help="simplemma lemmas (see --lemma-lang).",
                                   rich_help_panel=FILTERS),
    lemma_lang: str = opt("--lemma-lang", help="Language of the lemmatizer.",
                          default=default_of(NormalizeConfig, "lemma_lang"), panel=FILTERS),
    min_count: int = opt("--min-count", help="Drop tokens seen fewer times.",
                         default=default_of(VocabConfig, "min_count"), panel=VOCAB),
    max_count: int = opt("--max-count", help="Drop tokens seen more times.", default="no limit", panel=VOCAB),
    min_df: str = opt("--min-df", help="Drop tokens in fewer documents (lines): a number, or a ratio like 0.01.",
                      default="no limit", panel=VOCAB),
    max_df: str = opt("--max-df", help="Drop tokens in more documents: a number, or a ratio like 0.5.",
                      default="no limit", panel=VOCAB),
    max_vocab: int = opt("--max-vocab", help="Keep at most this many entries, specials included (0: no limit).",
                         default=0, panel=VOCAB),
    max_size: int = alias("--max-size"),
    specials: str = opt("--specials", help="Special tokens, first ids; must include <eos>.",
                        default=",".join(default_of(VocabConfig, "specials")), panel=VOCAB),
    bow: bool = typer.Option(False, "--bow", help="features/bow.npz: docs x vocab counts.", rich_help_panel=FEATURES),
    tfidf: bool = typer.Option(False, "--tfidf", help="features/tfidf.npz: the same, TF-IDF weighted (scikit-learn).",
                               rich_help_panel=FEATURES),
    ngrams: str = opt("--ngrams", help="features/ngrams.tsv: n-gram counts for a range like 1-3.", default="none",
                      panel=FEATURES),
    ngram_lm: int = opt("--ngram-lm", help="Kneser-Ney LM of this order, perplexity on held-out docs.",
                        default="none", panel=FEATURES),
    heldout_ratio: float = opt("--heldout-ratio", help="Last part of the documents held out for --ngram-lm.",
                               default=default_of(FeatureConfig, "heldout_ratio"), panel=FEATURES),
    word2vec: bool = typer.Option(False, "--word2vec", help="features/word2vec.txt (gensim).",
                                  rich_help_panel=FEATURES),
    w2v_size: int = opt("--w2v-size", help="word2vec vector size.", default=default_of(Word2VecConfig, "vector_size"),
                        panel=FEATURES),
    w2v_window: int = opt("--w2v-window", help="word2vec window.", default=default_of(Word2VecConfig, "window"),
                          panel=FEATURES),
    w2v_epochs: int = opt("--w2v-epochs", help="word2vec epochs.", default=default_of(Word2VecConfig, "epochs"),
                          panel=FEATURES),
    w2v_min_count: int = opt("--w2v-min-count", help="word2vec min count.",
                             default=default_of(Word2VecConfig, "min_count"), panel=FEATURES),
    output: str = typer.Option(..., "-o", "--output", help="Output directory.", rich_help_panel=RUN,
                               show_default=False),
    workers: int = opt("--workers", help="Tokenizer processes (same output as 1; characters always use one: "
                       "numbering them takes less time than sending them between processes).",
                       default=default_of(PreprocessConfig, "workers"), panel=RUN),
    encoding: str = opt("--encoding", help="Input encoding, e.g. gb18030.",
                        default=default_of(PreprocessConfig, "encoding"), panel=RUN),
    errors: str = opt("--errors", help="Undecodable bytes: strict (stop) | replace (with U+FFFD) | ignore (drop).",
                      default=default_of(PreprocessConfig, "errors"), panel=RUN),
    max_line_mb: float = opt("--max-line-mb", help="Refuse lines longer than this (one line is held in memory).",
                             default=default_of(PreprocessConfig, "max_line_mb"), panel=RUN),
    pretokenized: bool = typer.Option(False, "--pretokenized", help="Text already tokenized (WikiText, PTB): split "
                                      "on whitespace only, no cleaning or case change, tokens kept as written "
                                      "(literal <unk>, @-@); implies --level word.", rich_help_panel=TOKENS),
    keep_empty: bool = typer.Option(False, "--keep-empty", help="Keep lines without tokens as empty documents.",
                                    rich_help_panel=RUN),
    force: bool = typer.Option(False, "--force", help="Overwrite a non-empty output directory.",
                               rich_help_panel=RUN),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no summary.", rich_help_panel=RUN),
) -> int:
    """Clean, tokenize and encode text; write ids.npy, vocab.json, pipeline.json, stats.json, features/."""
    from textseq.text.preprocess import preprocess as run_preprocess
    from textseq.text.stopwords import load_stopword_file
    from textseq.text.tokenize import load_user_dict

    t2s, remove_digits, remove_punct, lemmatize, keep_empty, bow, tfidf = (  # False: not given (default False too)
        flag or None for flag in (t2s, remove_digits, remove_punct, lemmatize, keep_empty, bow, tfidf))
    level = level or ("word" if pretokenized else DEFAULT_LEVEL)  # pretokenized text is words
    pipeline = PipelineConfig.for_level(level, pretokenized).to_dict()
    pipeline["clean"] = merge(pipeline["clean"], dict(
        nfkc=nfkc, strip_html=strip_html, strip_urls=strip_urls, strip_emails=strip_emails,
        strip_control=strip_control, remove_digits=remove_digits, remove_punct=remove_punct,
        collapse_whitespace=collapse_whitespace, t2s=t2s))
    pipeline["tokenize"] = merge(pipeline["tokenize"], dict(
        lang=lang, jieba_mode=jieba_mode, hmm=hmm, backend=backend, en_tokenizer=en_tokenizer, subword_vocab=vocab_size,
        user_words=load_user_dict(user_dict) if user_dict else None))
    pipeline["stopwords"] = dict(langs=split_list(stopwords),
                                 words=[w for path in stopwords_file or () for w in load_stopword_file(path)])
    pipeline["normalize"] = merge(pipeline["normalize"], dict(lowercase=lowercase, stem=stem, lemmatize=lemmatize,
                                                              lemma_lang=lemma_lang))
    vocab = merge({}, dict(min_count=min_count, max_count=max_count, min_df=_parse_df(min_df, "--min-df"),
                           max_df=_parse_df(max_df, "--max-df"),
                           max_size=either(max_vocab, max_size, "--max-vocab", "--max-size") or None,
                           specials=split_list(specials) if specials is not None else None))
    w2v = merge({}, dict(vector_size=w2v_size, window=w2v_window, epochs=w2v_epochs, min_count=w2v_min_count))
    features = merge({}, dict(bow=bow, tfidf=tfidf, ngrams=_parse_range(ngrams) if ngrams else None,
                              ngram_lm_order=ngram_lm, heldout_ratio=heldout_ratio,
                              word2vec=w2v if word2vec or w2v else None))
    settings = merge(dict(pipeline=pipeline, vocab=vocab, features=features),
                     dict(encoding=encoding, errors=errors, max_line_mb=max_line_mb, workers=workers,
                          keep_empty=keep_empty))
    cfg = PreprocessConfig.from_dict(settings, "preprocess")
    with ProgressReporter("preprocessing", enabled=not quiet, unit="bytes", transient=True) as progress:
        stats = run_preprocess(inputs, output, cfg, force=force,
                               on_progress=lambda done, total: progress.update(done, total))
    if not quiet:
        _print_summary(stats, output)
    return 0


def _parse_df(text: str | None, flag: str) -> int | float | None:
    """"3" is a number of documents, "0.5" a ratio of all documents."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise TextseqError(f"{flag} must be a number of documents or a ratio, got {text!r}") from None
    is_ratio = not text.strip().isdigit()  # "0.5", "1e-1" are ratios; only plain integers are counts
    if not math.isfinite(value) or value < 0 or (is_ratio and value > 1):
        raise TextseqError(f"{flag} must be a count >= 0 or a ratio in (0, 1], got {text!r}")
    return value if is_ratio else int(value)


def _parse_range(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    try:
        return int(lo), int(hi or lo)
    except ValueError:
        raise TextseqError(f"--ngrams must look like 1-3 or 2, got {text!r}") from None


def _print_summary(stats, output: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"textseq preprocess -> {output}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows = [("files", f"{stats.files:,}"), ("lines", f"{stats.lines:,}"), ("documents", f"{stats.docs:,}"),
            ("tokens", f"{stats.tokens:,}"), ("types", f"{stats.types:,}"), ("vocabulary", f"{stats.vocab_size:,}"),
            ("OOV rate", f"{stats.oov_rate:.2%}"), ("ids dtype", stats.ids_dtype),
            ("time", f"{stats.seconds:.2f} s"), ("throughput", f"{stats.mb_per_s:.2f} MB/s"),
            ("top tokens", "  ".join(f"{tok!r} {n:,}" for tok, n in stats.top_tokens[:8]))]
    lm = stats.features.get("ngram_lm")
    if lm:
        score = f"ppl {lm['perplexity']:.2f}, {lm['bits_per_token']:.3f} bits/token ({lm['heldout_docs']:,} docs)"
        rows.append((f"{lm['order']}-gram KN held-out", score))
    for name, path in stats.outputs.items():
        rows.append((name, path))
    for row in rows:
        table.add_row(*row)
    Console(file=sys.stdout, soft_wrap=False).print(table)


def register(app: typer.Typer) -> None:
    app.command("preprocess", cls=Command, no_args_is_help=True)(preprocess)
