import gzip
import io
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from scipy import sparse

from textseq.cli import run
from textseq.text.pipeline import Pipeline, PipelineConfig
from textseq.text.preprocess import PreprocessConfig, load_pipeline_record, preprocess
from textseq.vocab import EOS, Vocab


@pytest.fixture(scope="module")
def mixed_corpus(tmp_path_factory, corpora_dir):
    """Real text in both languages, a few hundred lines each, in a directory."""
    root = tmp_path_factory.mktemp("corpus")
    for name, n in (("zh/lunyu.txt", 200), ("en/pride_sample.txt", 600), ("zh/songci_sample.txt", 400)):
        lines = (corpora_dir / name).read_text(encoding="utf-8").splitlines()[:n]
        (root / name.replace("/", "_")).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def read_docs(out):
    """ids.npy split at <eos>, decoded."""
    vocab = Vocab.load(out / "vocab.json")
    ids = np.load(out / "ids.npy", mmap_mode="r")
    assert isinstance(ids, np.memmap) and ids[-1] == vocab.stoi[EOS]
    ends = np.flatnonzero(ids == vocab.stoi[EOS])
    return [vocab.decode(doc[:-1]) for doc in np.split(np.asarray(ids), ends + 1)[:-1]], vocab, ids


def test_cli_writes_an_encoded_stream_matching_the_pipeline(mixed_corpus, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(["preprocess", str(mixed_corpus), "-o", str(out), "--level", "word"]) == 0
    summary = capsys.readouterr().out
    assert "OOV rate" in summary and "MB/s" in summary
    docs, vocab, ids = read_docs(out)
    assert ids.dtype == np.uint16
    pipeline_cfg, vocab_cfg = load_pipeline_record(out)
    assert pipeline_cfg == PipelineConfig.for_level("word")
    pipe = Pipeline(pipeline_cfg)
    lines = [line for path in sorted(mixed_corpus.iterdir()) for line in path.read_text("utf-8").splitlines()]
    expected = [tokens for tokens in map(pipe.process_line, lines) if tokens]
    assert docs == expected  # min_count 1: no <unk>, every line round-trips
    stats = json.loads((out / "stats.json").read_text())
    assert stats["docs"] == len(expected) and stats["tokens"] == sum(map(len, expected))
    assert stats["oov_rate"] == 0.0 and stats["files"] == 3


def test_workers_give_identical_output(mixed_corpus, tmp_path):
    outs = [tmp_path / f"w{n}" for n in (1, 2)]
    for n, out in zip((1, 2), outs, strict=True):
        assert run(["preprocess", str(mixed_corpus), "-o", str(out), "--level", "char", "--workers", str(n),
                    "--min-count", "2", "-q"]) == 0
    for name in ("ids.npy", "vocab.json", "pipeline.json"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_vocab_options_and_oov(mixed_corpus, tmp_path):
    out = tmp_path / "out"
    assert run(["preprocess", str(mixed_corpus), "-o", str(out), "--max-size", "300", "--min-df", "2",
                "--max-df", "0.5", "--specials", "<unk>,<eos>", "-q"]) == 0
    docs, vocab, _ = read_docs(out)
    assert len(vocab) == 300 and vocab.itos[:2] == ["<unk>", "<eos>"]
    stats = json.loads((out / "stats.json").read_text())
    unk = sum(doc.count("<unk>") for doc in docs)
    assert unk == stats["oov_tokens"] and 0 < stats["oov_rate"] == pytest.approx(unk / stats["tokens"])
    assert "," not in vocab  # in more than half of the lines


def test_large_vocabulary_uses_uint32(tmp_path):
    src = tmp_path / "many.txt"
    src.write_text("\n".join(" ".join(f"w{i}" for i in range(j, j + 1000)) for j in range(0, 70000, 1000)))
    stats = preprocess([src], tmp_path / "out", PreprocessConfig(PipelineConfig.for_level("word")))
    assert stats.vocab_size == 70004 and stats.ids_dtype == "uint32"
    ids = np.load(tmp_path / "out" / "ids.npy", mmap_mode="r")
    assert ids.dtype == np.uint32 and len(ids) == 70000 + 70


def test_stdin_gzip_t2s_and_encoding(tmp_path, monkeypatch, corpora_dir, gbk_file):
    tang = (corpora_dir / "zh" / "tangshi300.txt").read_text(encoding="utf-8").splitlines()[:40]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("\n".join(tang).encode())))
    assert run(["preprocess", "-", "-o", str(tmp_path / "a"), "--level", "char", "--t2s", "-q"]) == 0
    vocab = Vocab.load(tmp_path / "a" / "vocab.json")
    assert "蝉" in vocab and "蟬" not in vocab
    with gzip.open(tmp_path / "t.txt.gz", "wt", encoding="utf-8") as fh:
        fh.write("\n".join(tang))
    assert run(["preprocess", str(tmp_path / "t.txt.gz"), "-o", str(tmp_path / "b"), "--level", "char", "-q"]) == 0
    assert "蟬" in Vocab.load(tmp_path / "b" / "vocab.json")
    assert run(["preprocess", str(gbk_file), "-o", str(tmp_path / "c"), "--encoding", "gb18030", "-q"]) == 0


def test_features(mixed_corpus, tmp_path):
    out = tmp_path / "out"
    assert run(["preprocess", str(mixed_corpus), "-o", str(out), "--level", "word", "--bow", "--ngrams", "1-2",
                "--ngram-lm", "3",
                "--heldout-ratio", "0.2", "--word2vec", "--w2v-size", "16", "--w2v-epochs", "1", "-q"]) == 0
    docs, vocab, _ = read_docs(out)
    bow = sparse.load_npz(out / "features" / "bow.npz")
    assert bow.shape == (len(docs), len(vocab)) and bow.sum() == sum(map(len, docs))
    rows = [line.split("\t") for line in (out / "features" / "ngrams.tsv").read_text("utf-8").splitlines()[1:]]
    unigrams = {gram: int(count) for n, count, gram in rows if n == "1"}
    assert unigrams == {t: c for t, c in vocab.counts.items() if " " not in t}
    lm = json.loads((out / "stats.json").read_text())["features"]["ngram_lm"]
    assert lm["heldout_docs"] == round(0.2 * len(docs)) and 1 < lm["perplexity"] < len(vocab)
    from textseq.features.embeddings import load_vectors
    from textseq.features.ngram_lm import KneserNeyLM

    assert KneserNeyLM.load(out / "features" / "ngram_lm.npz").order == 3
    assert load_vectors(out / "features" / "word2vec.txt").vector_size == 16


@pytest.mark.parametrize("make, args, message", [
    (None, [], "input .*missing.txt does not exist"),
    (lambda p: p.write_text(""), [], "the input is empty"),
    (lambda p: p.write_text("\n  \n\t\n"), [], "no tokens left after preprocessing"),
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00"), [], "looks like a binary file"),
    (lambda p: p.write_bytes("子曰\n".encode() + "学而时习之\n".encode("gbk")), [],
     r"cannot decode .*in.txt line 2 as utf-8.*--encoding gb18030"),
    (lambda p: p.write_text("a b\n"), ["--stem", "krovetz"], "unknown stemmer 'krovetz'"),
    (lambda p: p.write_text("a b\n"), ["--specials", "<unk>"], "must include <eos>"),
    (lambda p: p.write_text("a b\n"), ["--ngrams", "3-1"], "n-gram range"),
    (lambda p: p.write_text("a b\n"), ["--min-df", "lots"], "--min-df must be"),
    (lambda p: p.write_text("a b\n"), ["--max-df", "nan"], "--max-df must be"),
    (lambda p: p.write_text("a b\n"), ["--max-line-mb", "inf"], "max-line-mb must be a finite number"),
    (lambda p: p.write_text("a b\n"), ["--word2vec", "--w2v-window", "0"], "word2vec window must be at least 1"),
])
def test_bad_input_is_a_one_line_error(tmp_path, capsys, make, args, message):
    src = tmp_path / ("in.txt" if make else "missing.txt")
    if make:
        make(src)
    assert run(["preprocess", str(src), "-o", str(tmp_path / "out"), "-q", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert re.search(message, err), err


def test_refuses_to_overwrite_without_force(tmp_path, capsys, corpora_dir):
    src, out = str(corpora_dir / "zh" / "lunyu.txt"), tmp_path / "out"
    assert run(["preprocess", src, "-o", str(out), "--level", "char", "-q"]) == 0
    before = (out / "ids.npy").read_bytes()
    assert run(["preprocess", src, "-o", str(out), "--level", "char", "--lowercase", "-q"]) == 2
    assert "use --force" in capsys.readouterr().err and (out / "ids.npy").read_bytes() == before
    assert run(["preprocess", src, "-o", str(out), "--level", "char", "--keep-empty", "--force", "-q"]) == 0
    docs, _, _ = read_docs(out)
    assert len(docs) == len((corpora_dir / "zh" / "lunyu.txt").read_text("utf-8").splitlines())
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # spill and temp files removed


def test_progress_bar_only_on_a_terminal_and_not_quiet(tmp_path, capsys, monkeypatch, corpora_dir):
    src = str(corpora_dir / "zh" / "lunyu.txt")
    assert run(["preprocess", src, "-o", str(tmp_path / "a"), "--level", "char"]) == 0
    assert "preprocessing" not in capsys.readouterr().err  # captured stderr is not a terminal
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich then treats stderr as a terminal
    assert run(["preprocess", src, "-o", str(tmp_path / "b"), "--level", "char"]) == 0
    assert "preprocessing" in capsys.readouterr().err
    assert run(["preprocess", src, "-o", str(tmp_path / "c"), "--level", "char", "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(("text", "expected"), [("3", 3), ("0.5", 0.5), ("1e-1", 0.1), ("1.0", 1.0), (" 7 ", 7)])
def test_document_frequency_counts_and_ratios(text, expected):
    from textseq.cli.preprocess import _parse_df

    value = _parse_df(text, "--min-df")
    assert value == expected and type(value) is type(expected)


def test_preprocess_starts_without_pytorch_or_gensim(tmp_path):
    """Only the named command's module is imported: PyTorch (about 2 s and 300 MB at start-up) is for the LM and
    forecasting commands, gensim for word2vec."""
    text = tmp_path / "in.txt"
    text.write_text("a b c\n子曰：学而时习之\n", encoding="utf-8")
    script = ("import sys; from textseq.cli import run; "
              f"code = run(['preprocess', {str(text)!r}, '-o', {str(tmp_path / 'out')!r}, '--quiet']); "
              "print(code, 'torch' in sys.modules, 'gensim' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0", "False", "False"]


def test_byte_sized_spill_ids_map_through_a_vocabulary_with_more_types(tmp_path):
    """An ASCII block spills its ids in bytes; a later block brings hundreds of characters that --max-vocab sends to
    <unk>: the final write maps the byte-sized ids through the first 256 entries of a longer table."""
    rare = "".join(chr(0x4E00 + (i * 37) % 400) for i in range(3000))
    path = tmp_path / "in.txt"
    path.write_text("abc def\n" * 60_000 + rare + "\n", encoding="utf-8")
    assert run(["preprocess", str(path), "-o", str(tmp_path / "out"), "--level", "char", "--max-vocab", "100",
                "--quiet"]) == 0
    ids, vocab = np.load(tmp_path / "out" / "ids.npy"), Vocab.load(tmp_path / "out" / "vocab.json")
    assert len(ids) == 60_000 * 8 + 3001
    assert "".join(vocab.itos[i] for i in ids[:8]) == "abc def<eos>"
    assert all(vocab.itos[i] in ("<unk>", "<eos>") or vocab.itos[i] in rare for i in ids[-3001:])
