"""``preprocess``: sources -> token id stream (ids.npy), vocab.json, pipeline.json, stats.json, features/.

Two passes over the tokens, one over the text: the count pass tokenizes and spills provisional
ids to a temporary file in the set being built; once the vocabulary is known, the encode pass
maps them to final ids with numpy. Features read their documents back from the spill.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from textseq.errors import TextseqError, check_choice
from textseq.io import atomic_open, atomic_write_text, building_output_set
from textseq.settings import Settings
from textseq.text.job import SpillDocs, TokenSpill, count_pass
from textseq.text.pipeline import PipelineConfig, with_subword_model
from textseq.text.reader import DECODE_ERRORS, MAX_LINE_MB, STDIN, LineReader
from textseq.text.subword import model_pieces
from textseq.vocab import EOS, Vocab, VocabConfig

IDS_FILE, VOCAB_FILE, PIPELINE_FILE, STATS_FILE, FEATURES_DIR = (
    "ids.npy", "vocab.json", "pipeline.json", "stats.json", "features")


@dataclass
class FeatureConfig(Settings):
    bow: bool = False  # features/bow.npz: documents x vocabulary counts (scipy sparse)
    tfidf: bool = False  # features/tfidf.npz: the same matrix TF-IDF weighted (scikit-learn)
    ngrams: tuple[int, int] | None = None  # features/ngrams.tsv: counts of n-grams, n in [lo, hi]
    ngram_lm_order: int | None = None  # features/ngram_lm.npz: Kneser-Ney LM, perplexity on held-out docs
    heldout_ratio: float = 0.1  # the last documents, held out from the n-gram LM
    word2vec: dict | None = None  # features/word2vec.txt; Word2VecConfig overrides, {} for defaults

    def validate(self) -> None:
        super().validate()
        if self.ngrams is not None and not 1 <= self.ngrams[0] <= self.ngrams[1]:
            raise TextseqError(f"n-gram range must be LO-HI with 1 <= LO <= HI, got {self.ngrams}")
        if self.ngram_lm_order is not None and self.ngram_lm_order < 1:
            raise TextseqError(f"n-gram LM order must be at least 1, got {self.ngram_lm_order}")
        if not 0.0 < self.heldout_ratio < 1.0:
            raise TextseqError(f"held-out ratio must be in (0, 1), got {self.heldout_ratio}")


@dataclass
class PreprocessConfig(Settings):
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    vocab: VocabConfig = field(default_factory=VocabConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    encoding: str = "utf-8"
    errors: str = "strict"  # undecodable bytes: strict (stop with an error) | replace (U+FFFD) | ignore (drop)
    max_line_mb: float = float(MAX_LINE_MB)
    workers: int = 1  # tokenizer processes (character tokens always use one: see job.tokenize_chunks)
    keep_empty: bool = False  # keep lines with no tokens as empty documents (a lone <eos>)

    def validate(self) -> None:
        super().validate()
        if self.workers < 1:
            raise TextseqError(f"--workers must be at least 1, got {self.workers}")
        check_choice("errors", self.errors, DECODE_ERRORS)
        if not self.max_line_mb > 0:
            raise TextseqError(f"--max-line-mb must be positive, got {self.max_line_mb}")
        if EOS not in self.vocab.specials:
            raise TextseqError(f"the special tokens must include {EOS}: every document ends with it")


@dataclass
class PreprocessStats:
    files: int
    lines: int  # lines read
    docs: int  # documents kept (lines with tokens, unless keep_empty)
    tokens: int  # tokens, <eos> not included
    types: int  # distinct tokens before vocabulary filtering
    vocab_size: int
    oov_tokens: int
    oov_rate: float
    bytes: int
    seconds: float
    mb_per_s: float
    ids_dtype: str
    top_tokens: list[tuple[str, int]]
    outputs: dict[str, str]
    features: dict = field(default_factory=dict)


def preprocess(sources: Iterable[str | Path], out_dir: str | Path, cfg: PreprocessConfig | None = None,
               force: bool = False, on_progress: Callable[[int, int | None], None] | None = None
               ) -> PreprocessStats:
    """Run the pipeline over ``sources`` and write everything to ``out_dir``; return the statistics.

    The output set is built in a hidden directory beside ``out_dir`` (the token spill included) and swapped
    in whole at the end: a failure, Ctrl-C, SIGTERM or a full disk leaves an earlier output whole and nothing
    behind (``textseq.io.building_output_set``). ``on_progress(bytes_read, total_bytes_or_None)`` is called
    after every chunk.
    """
    cfg = cfg or PreprocessConfig()
    cfg.validate()  # again: the config may have been changed in place
    reader = LineReader(sources, cfg.encoding, max_line_mb=cfg.max_line_mb, errors=cfg.errors)
    cfg = replace(cfg, pipeline=learn_units(cfg.pipeline, reader))
    out = Path(out_dir)
    with building_output_set(out, force, marker=PIPELINE_FILE) as build:
        return _run(reader, build, out, cfg, on_progress)


def learn_units(pipeline: PipelineConfig, reader: LineReader) -> PipelineConfig:
    """The pipeline with its subword units learnt from a first pass over the sources (subword level only)."""
    if pipeline.tokenize.level != "subword" or pipeline.tokenize.subword_model:
        return pipeline
    if STDIN in reader.sources:
        raise TextseqError("--level subword reads its input twice (to learn the units, then to cut the text): "
                           "give files, not stdin")
    first_pass = LineReader(reader.sources, reader.encoding, max_line_mb=reader.max_line_bytes / (1 << 20),
                            errors=reader.errors)
    return with_subword_model(pipeline, first_pass.blocks())


def preprocess_texts(texts: Iterable[str], out_dir: str | Path, cfg: PreprocessConfig | None = None,
                     force: bool = False) -> PreprocessStats:
    """:func:`preprocess` over an iterable of strings (one document each, e.g. a generator over a database),
    streamed to a temporary file first so memory stays flat; line breaks inside a string become spaces."""
    out = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="textseq-texts-") as tmp:
        path = Path(tmp) / "texts.txt"
        with open(path, "w", encoding="utf-8") as fh:
            for text in texts:
                if not isinstance(text, str):
                    raise TextseqError(f"preprocess_texts takes strings, got {type(text).__name__}; "
                                       "give paths to preprocess()")
                fh.write(" ".join(text.splitlines()) + "\n")
        cfg = cfg or PreprocessConfig()
        return preprocess([path], out, replace(cfg, encoding="utf-8", errors="strict"), force)


def _run(reader: LineReader, build: Path, out: Path, cfg: PreprocessConfig,
         on_progress: Callable[[int, int | None], None] | None) -> PreprocessStats:
    """Write the set into ``build``; the paths it reports are those it will have in ``out``."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=build, prefix=".spill-") as tmp:
        spill = _count(reader, cfg, Path(tmp) / "tokens.u32", on_progress)
        vocab = Vocab.build(spill.token_counts(), cfg.vocab, always=model_pieces(cfg.pipeline.to_dict()))
        dtype = spill.write_ids(build / IDS_FILE, vocab)
        vocab.save(build / VOCAB_FILE)
        outputs = {"ids": IDS_FILE, "vocab": VOCAB_FILE, "pipeline": PIPELINE_FILE}
        features = write_features(spill, vocab, cfg.features, build / FEATURES_DIR, outputs)
        oov = spill.oov_tokens(vocab)
        stats = PreprocessStats(
            files=len(reader.sources), lines=reader.lines_read, docs=spill.n_docs, tokens=spill.n_tokens,
            types=len(spill.stoi), vocab_size=len(vocab), oov_tokens=oov, oov_rate=oov / spill.n_tokens,
            bytes=reader.bytes_read, seconds=time.perf_counter() - start, mb_per_s=0.0, ids_dtype=dtype.name,
            top_tokens=_top_tokens(vocab), outputs={k: str(out / v) for k, v in outputs.items()},
            features=features)
    stats.mb_per_s = stats.bytes / 1e6 / stats.seconds
    record = pipeline_record(cfg, stats, file_digest(build / VOCAB_FILE))
    atomic_write_text(build / PIPELINE_FILE, json.dumps(record, ensure_ascii=False, indent=1))
    atomic_write_text(build / STATS_FILE, json.dumps(asdict(stats), ensure_ascii=False, indent=1))
    return stats


def _count(reader: LineReader, cfg: PreprocessConfig, spill_path: Path,
           on_progress: Callable[[int, int | None], None] | None) -> TokenSpill:
    """The count pass: every token of every document, counted and spilled."""
    report = (lambda: on_progress(reader.bytes_read, reader.total_bytes)) if on_progress else None
    spill = TokenSpill(spill_path)
    try:
        doc_freq = cfg.vocab.min_df is not None or cfg.vocab.max_df is not None  # only the df limits read them
        count_pass(reader.text_blocks(), spill, cfg.pipeline, cfg.workers, cfg.keep_empty, report, doc_freq)
    finally:
        spill.close()
    if reader.lines_read == 0:
        raise TextseqError(f"the input is empty ({_names(reader)})")
    if spill.n_tokens == 0:
        raise TextseqError(f"no tokens left after preprocessing {_names(reader)}: check the cleaning options")
    return spill


def pipeline_record(cfg: PreprocessConfig, stats: PreprocessStats, vocab_digest: str = "") -> dict:
    """What training and generation need to tokenize and read ids exactly as preprocessing did; the length of
    ids.npy and the digest of vocab.json tie the three files of the set together (see check_output_set)."""
    return {"pipeline": cfg.pipeline.to_dict(), "vocab": asdict(cfg.vocab),
            "ids": {"file": IDS_FILE, "dtype": stats.ids_dtype, "length": stats.tokens + stats.docs,
                    "docs": stats.docs, "eos": EOS},
            "vocab_file": {"size": stats.vocab_size, "sha256": vocab_digest}}


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_output_set(directory: Path, ids, vocab_size: int) -> None:
    """Refuse a preprocess directory whose ids.npy, vocab.json and pipeline.json were not written together
    (a mixture of two runs, a hand-edited file) or whose ids do not fit the vocabulary."""
    data = json.loads((directory / PIPELINE_FILE).read_text(encoding="utf-8"))
    record, stored = data.get("ids", {}), data.get("vocab_file")
    redo = "; run textseq preprocess again"
    if ids.dtype.kind not in "iu":
        raise TextseqError(f"{directory / IDS_FILE} holds {ids.dtype} values, not token ids{redo}")
    if record.get("length") != len(ids) or (stored and (stored.get("size") != vocab_size or
                                                        stored.get("sha256") != file_digest(directory / VOCAB_FILE))):
        raise TextseqError(f"the files in {directory} do not belong together (ids.npy, vocab.json and "
                           f"pipeline.json come from different runs or were edited){redo}")
    if len(ids) and (int(ids.max()) >= vocab_size or int(ids.min()) < 0):
        raise TextseqError(f"{directory / IDS_FILE} holds ids outside the vocabulary of {vocab_size}{redo}")


def load_pipeline_record(out_dir: str | Path) -> tuple[PipelineConfig, VocabConfig]:
    path = Path(out_dir) / PIPELINE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return PipelineConfig.from_dict(data["pipeline"], "pipeline"), VocabConfig.from_dict(data["vocab"], "vocab")
    except FileNotFoundError:
        raise TextseqError(f"{path} does not exist (run textseq preprocess first)") from None
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise TextseqError(f"{path} is not a valid pipeline file ({type(exc).__name__})") from None
    except TextseqError as exc:  # a setting of the wrong type or out of range (a hand-edited file)
        raise TextseqError(f"{path} is not a valid pipeline file: {exc}") from None


def _names(reader: LineReader) -> str:
    names = [str(s) for s in reader.sources]
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _top_tokens(vocab: Vocab, n: int = 10) -> list[tuple[str, int]]:
    """Vocabulary ids follow descending counts, right after the specials."""
    return [(token, vocab.counts[token]) for token in vocab.itos[len(vocab.specials):len(vocab.specials) + n]]


def heldout_split(docs: SpillDocs, ratio: float) -> tuple[SpillDocs, SpillDocs]:
    """The last ``ratio`` of the documents (at least one) are held out; the rest is for training."""
    n = len(docs)
    if n < 2:
        raise TextseqError("the n-gram LM needs at least 2 documents (one is held out)")
    cut = n - min(n - 1, max(1, round(n * ratio)))
    return docs.spill.docs(docs.start, docs.start + cut), docs.spill.docs(docs.start + cut, docs.stop)


def write_features(spill: TokenSpill, vocab: Vocab, cfg: FeatureConfig, out: Path,
                   outputs: dict[str, str]) -> dict:
    """Compute the requested features from the spilled documents into ``out``; return their summary numbers
    (``outputs`` gains each file's path relative to the output set)."""
    if not (cfg.bow or cfg.tfidf or cfg.ngrams or cfg.ngram_lm_order or cfg.word2vec is not None):
        return {}
    out.mkdir(exist_ok=True)
    docs = spill.docs()
    summary: dict = {}
    if cfg.bow:
        summary["bow"] = _write_bow(docs, vocab, out / "bow.npz")
        outputs["bow"] = f"{FEATURES_DIR}/bow.npz"
    if cfg.tfidf:
        summary["tfidf"] = _write_bow(docs, vocab, out / "tfidf.npz", weighted=True)
        outputs["tfidf"] = f"{FEATURES_DIR}/tfidf.npz"
    if cfg.ngrams:
        summary["ngrams"] = _write_ngrams(docs, cfg.ngrams, out / "ngrams.tsv")
        outputs["ngrams"] = f"{FEATURES_DIR}/ngrams.tsv"
    if cfg.ngram_lm_order:
        summary["ngram_lm"] = _write_ngram_lm(docs, vocab, cfg, out / "ngram_lm.npz")
        outputs["ngram_lm"] = f"{FEATURES_DIR}/ngram_lm.npz"
    if cfg.word2vec is not None:
        summary["word2vec"] = _write_word2vec(docs, cfg.word2vec, out / "word2vec.txt")
        outputs["word2vec"] = f"{FEATURES_DIR}/word2vec.txt"
    return summary


def _write_bow(docs: SpillDocs, vocab: Vocab, path: Path, weighted: bool = False) -> dict:
    from scipy import sparse

    from textseq.features.bow import bag_of_words, tfidf

    matrix = tfidf(docs, vocab) if weighted else bag_of_words(docs, vocab)
    with atomic_open(path, "wb") as fh:
        sparse.save_npz(fh, matrix)
    return {"shape": list(matrix.shape), "nonzeros": int(matrix.nnz)}


def _write_ngrams(docs: SpillDocs, n_range: tuple[int, int], path: Path) -> dict:
    from textseq.features.ngrams import count_ngrams

    counts = count_ngrams(docs, n_range[0], n_range[1])
    with atomic_open(path, "w") as fh:
        fh.write("n\tcount\tngram\n")
        for gram, count in sorted(counts.items(), key=lambda item: (len(item[0]), -item[1], item[0])):
            fh.write(f"{len(gram)}\t{count}\t{' '.join(gram)}\n")
    return {"range": list(n_range), "distinct": len(counts)}


def _write_ngram_lm(docs: SpillDocs, vocab: Vocab, cfg: FeatureConfig, path: Path) -> dict:
    from textseq.features.ngram_lm import KneserNeyLM

    train, heldout = heldout_split(docs, cfg.heldout_ratio)
    model = KneserNeyLM(cfg.ngram_lm_order, vocab=vocab).fit(train)
    score = model.evaluate(heldout)
    model.save(path)
    return {"order": cfg.ngram_lm_order, "train_docs": len(train), "heldout_docs": len(heldout), **asdict(score)}


def _write_word2vec(docs: SpillDocs, overrides: dict, path: Path) -> dict:
    from textseq.features.embeddings import Word2VecConfig, save_vectors, train_word2vec

    w2v_cfg = Word2VecConfig(**overrides)
    vectors = train_word2vec(docs, w2v_cfg)
    save_vectors(vectors, path)
    return {"words": len(vectors.index_to_key), "vector_size": vectors.vector_size}
