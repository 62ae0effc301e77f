"""`textseq preprocess`: text -> token id stream (ids.npy), vocab.json, pipeline.json and features."""

from __future__ import annotations

import math
import sys

import typer

from textseq.errors import TextseqError

Opt = typer.Option
CLEAN, TOKENS, FILTERS, VOCAB, FEATURES, RUN = ("Cleaning", "Tokenization", "Stopwords and normalization",
                                                 "Vocabulary", "Features", "Input and output")


def preprocess(
    inputs: list[str] = typer.Argument(..., help="Text files, directories (*.txt, *.txt.gz, recursive), "
                                                 ".gz files, or - for stdin.", show_default=False),
    output: str = Opt(..., "-o", "--output", help="Output directory.", rich_help_panel=RUN),
    level: str = Opt("word", help="char | word.", rich_help_panel=TOKENS),
    lang: str = Opt("auto", help="auto (per line) | zh | en.", rich_help_panel=TOKENS),
    jieba_mode: str = Opt("accurate", help="accurate | full | search.", rich_help_panel=TOKENS),
    hmm: bool = Opt(True, "--hmm/--no-hmm", help="jieba HMM for unknown words.", rich_help_panel=TOKENS),
    user_dict: str = Opt(None, help="jieba user dictionary: a word, optional frequency and POS tag per line.",
                         rich_help_panel=TOKENS),
    backend: str = Opt("jieba", help="jieba | rjieba (same tokens, faster; accurate/search modes).",
                       rich_help_panel=TOKENS),
    en_tokenizer: str = Opt("regexp", help="regexp | nltk | treebank.", rich_help_panel=TOKENS),
    nfkc: bool = Opt(True, "--nfkc/--no-nfkc", help="Unicode NFKC (full-width to half-width).",
                     rich_help_panel=CLEAN),
    strip_html: bool = Opt(True, "--strip-html/--keep-html", rich_help_panel=CLEAN),
    strip_urls: bool = Opt(True, "--strip-urls/--keep-urls", rich_help_panel=CLEAN),
    strip_emails: bool = Opt(True, "--strip-emails/--keep-emails", rich_help_panel=CLEAN),
    strip_control: bool = Opt(True, "--strip-control/--keep-control", help="Control and zero-width chars.",
                              rich_help_panel=CLEAN),
    collapse_whitespace: bool = Opt(True, "--collapse-whitespace/--keep-whitespace", rich_help_panel=CLEAN),
    t2s: bool = Opt(False, "--t2s", help="Traditional to Simplified Chinese (OpenCC).", rich_help_panel=CLEAN),
    remove_digits: bool = Opt(False, "--remove-digits", rich_help_panel=CLEAN),
    remove_punct: bool = Opt(False, "--remove-punct", help="Punctuation and symbols.", rich_help_panel=CLEAN),
    stopwords: str = Opt(None, help="Built-in stopword lists, e.g. en,zh.", rich_help_panel=FILTERS),
    stopwords_file: list[str] = Opt(None, help="Stopword file, one per line (repeatable).",
                                    rich_help_panel=FILTERS),
    lowercase: bool = Opt(None, "--lowercase/--no-lowercase", help="Default: on for word level, off for char.",
                          show_default=False, rich_help_panel=FILTERS),
    stem: str = Opt(None, help="porter | snowball | lancaster.", rich_help_panel=FILTERS),
    lemmatize: bool = Opt(False, "--lemmatize", help="simplemma lemmas (see --lemma-lang).",
                          rich_help_panel=FILTERS),
    lemma_lang: str = Opt("en", help="Language of the lemmatizer.", rich_help_panel=FILTERS),
    min_count: int = Opt(1, help="Drop tokens seen fewer times.", rich_help_panel=VOCAB),
    max_count: int = Opt(None, help="Drop tokens seen more times.", rich_help_panel=VOCAB),
    min_df: str = Opt(None, help="Drop tokens in fewer documents (lines): a number, or a ratio like 0.01.",
                      rich_help_panel=VOCAB),
    max_df: str = Opt(None, help="Drop tokens in more documents: a number, or a ratio like 0.5.",
                      rich_help_panel=VOCAB),
    max_size: int = Opt(None, help="Keep at most this many entries, specials included.", rich_help_panel=VOCAB),
    specials: str = Opt("<pad>,<unk>,<bos>,<eos>", help="Special tokens, first ids; must include <eos>.",
                        rich_help_panel=VOCAB),
    bow: bool = Opt(False, "--bow", help="features/bow.npz: docs x vocab counts.", rich_help_panel=FEATURES),
    ngrams: str = Opt(None, help="features/ngrams.tsv: n-gram counts for a range like 1-3.",
                      rich_help_panel=FEATURES),
    ngram_lm: int = Opt(None, help="Kneser-Ney LM of this order, perplexity on held-out docs.",
                        rich_help_panel=FEATURES),
    heldout_ratio: float = Opt(0.1, help="Last part of the documents held out for --ngram-lm.",
                               rich_help_panel=FEATURES),
    word2vec: bool = Opt(False, "--word2vec", help="features/word2vec.txt (gensim).", rich_help_panel=FEATURES),
    w2v_size: int = Opt(None, help="word2vec vector size.", rich_help_panel=FEATURES),
    w2v_window: int = Opt(None, help="word2vec window.", rich_help_panel=FEATURES),
    w2v_epochs: int = Opt(None, help="word2vec epochs.", rich_help_panel=FEATURES),
    w2v_min_count: int = Opt(None, help="word2vec min count.", rich_help_panel=FEATURES),
    workers: int = Opt(1, help="Tokenizer processes (same output as 1).", rich_help_panel=RUN),
    encoding: str = Opt("utf-8", help="Input encoding, e.g. gb18030.", rich_help_panel=RUN),
    max_line_mb: float = Opt(16.0, help="Refuse lines longer than this (one line is held in memory).",
                             rich_help_panel=RUN),
    keep_empty: bool = Opt(False, "--keep-empty", help="Keep lines without tokens as empty documents.",
                           rich_help_panel=RUN),
    force: bool = Opt(False, "--force", help="Overwrite a non-empty output directory.", rich_help_panel=RUN),
    quiet: bool = Opt(False, "--quiet", "-q", help="No progress bar and no summary.", rich_help_panel=RUN),
) -> int:
    """Clean, tokenize and encode text; write ids.npy, vocab.json, pipeline.json, stats.json, features/."""
    from textseq.text.clean import CleanConfig
    from textseq.text.pipeline import PipelineConfig
    from textseq.text.preprocess import FeatureConfig, PreprocessConfig
    from textseq.text.preprocess import preprocess as run_preprocess
    from textseq.text.stopwords import load_stopword_file
    from textseq.text.tokenize import load_user_dict
    from textseq.vocab import VocabConfig

    pipeline = PipelineConfig.for_level(level)
    pipeline.clean = CleanConfig(nfkc=nfkc, strip_html=strip_html, strip_urls=strip_urls, strip_emails=strip_emails,
                                 strip_control=strip_control, remove_digits=remove_digits,
                                 remove_punct=remove_punct, collapse_whitespace=collapse_whitespace, t2s=t2s)
    tok = pipeline.tokenize
    tok.lang, tok.jieba_mode, tok.hmm, tok.backend, tok.en_tokenizer = lang, jieba_mode, hmm, backend, en_tokenizer
    tok.user_words = load_user_dict(user_dict) if user_dict else ()
    pipeline.stopwords.langs = tuple(_split_list(stopwords))
    pipeline.stopwords.words = tuple(w for path in stopwords_file or () for w in load_stopword_file(path))
    norm = pipeline.normalize
    norm.lowercase = norm.lowercase if lowercase is None else lowercase
    norm.stem, norm.lemmatize, norm.lemma_lang = stem, lemmatize, lemma_lang
    vocab = VocabConfig(min_count=min_count, max_count=max_count, min_df=_parse_df(min_df, "--min-df"),
                        max_df=_parse_df(max_df, "--max-df"), max_size=max_size,
                        specials=tuple(_split_list(specials)))
    w2v = {key: value for key, value in (("vector_size", w2v_size), ("window", w2v_window),
                                         ("epochs", w2v_epochs), ("min_count", w2v_min_count))
           if value is not None}
    features = FeatureConfig(bow=bow, ngrams=_parse_range(ngrams) if ngrams else None, ngram_lm_order=ngram_lm,
                             heldout_ratio=heldout_ratio, word2vec=w2v if word2vec or w2v else None)
    cfg = PreprocessConfig(pipeline, vocab, features, encoding=encoding, max_line_mb=max_line_mb,
                           workers=workers, keep_empty=keep_empty)
    with _progress(quiet) as on_progress:
        stats = run_preprocess(inputs, output, cfg, force=force, on_progress=on_progress)
    if not quiet:
        _print_summary(stats, output)
    return 0


def _split_list(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


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


class _progress:
    """A rich progress bar over bytes read, refreshed from the caller's thread (no refresh thread,
    so worker processes can be forked safely). Off when stderr is not a terminal or with --quiet."""

    def __init__(self, quiet: bool):
        from rich.console import Console

        self.console = Console(stderr=True)
        self.enabled = not quiet and self.console.is_terminal
        self.bar = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        self.bar = Progress(TextColumn("preprocessing"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                            TimeElapsedColumn(), console=self.console, auto_refresh=False, transient=True)
        self.bar.start()
        self.task = self.bar.add_task("read", total=None)
        return self.update

    def update(self, done: int, total: int | None) -> None:
        self.bar.update(self.task, completed=done, total=total)
        self.bar.refresh()

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


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
    app.command("preprocess", no_args_is_help=True)(preprocess)
