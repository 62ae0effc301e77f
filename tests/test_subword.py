"""--level subword: BPE units learnt from the corpus, stored in pipeline.json and in checkpoints, so training,
evaluation and generation cut text exactly as preprocessing did; scores in bits per character of the text."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from textseq.cli import run
from textseq.errors import TextseqError
from textseq.text.pipeline import Pipeline, PipelineConfig
from textseq.text.reader import LineReader
from textseq.vocab import Vocab

pytestmark = pytest.mark.usefixtures("one_thread")

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
SMALL = ["--hidden", "16", "--emb", "8", "--bptt", "16", "--batch-size", "4", "--max-steps", "3", "--quiet"]


@pytest.mark.parametrize(("name", "size"), [("zh/lunyu.txt", 3000), ("en/shakespeare_sample.txt", 800)])
def test_the_pieces_of_a_line_spell_the_cleaned_line(name, size, tmp_path):
    out = tmp_path / "sw"
    assert run(["preprocess", str(CORPORA / name), "--level", "subword", "--vocab-size", str(size), "-o", str(out),
                "--quiet"]) == 0
    record = json.loads((out / "pipeline.json").read_text(encoding="utf-8"))["pipeline"]
    assert record["tokenize"]["level"] == "subword" and record["tokenize"]["subword_model"]
    pipeline, chars = Pipeline(PipelineConfig.from_dict(record)), Pipeline(PipelineConfig.for_level("char"))
    vocab = Vocab.load(out / "vocab.json")
    ids = np.load(out / "ids.npy")
    lines = [line for line in LineReader([CORPORA / name]) if chars.process_line(line)]
    alphabet = len({c for line in lines for c in chars.process_line(line)})  # every character is a unit
    assert len(vocab) <= max(size, alphabet + 1) + len(vocab.specials)
    decoded = " ".join(vocab.itos[i] for i in ids[:2000]).split("<eos>")
    for line, pieces in zip(lines, decoded[:-1], strict=False):  # ids: every line's pieces, then <eos>
        assert pipeline.detokenize(pieces.split()) == "".join(chars.process_line(line))
    assert sum(len(pipeline.process_line(line)) for line in lines) < 0.8 * sum(map(len, lines))  # units merge


def test_evaluate_scores_subword_models_in_bits_per_character(tmp_path, capsys):
    text = (CORPORA / "en" / "shakespeare_sample.txt").read_text(encoding="utf-8").splitlines()
    (tmp_path / "train.txt").write_text("\n".join(text[:1500]) + "\n", encoding="utf-8")
    (tmp_path / "test.txt").write_text("\n".join(text[1500:1700]) + "\n", encoding="utf-8")
    assert run(["train", str(tmp_path / "train.txt"), "--level", "subword", "--vocab-size", "500",
                "-o", str(tmp_path / "run"), *SMALL]) == 0
    capsys.readouterr()
    assert run(["evaluate", str(tmp_path / "run" / "best.pt"), str(tmp_path / "test.txt"), "-k", "0",
                "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    chars = Pipeline(PipelineConfig.for_level("char"))
    assert report["metric"] == "bpc"
    assert report["chars"] == sum(len(chars.process_line(line)) + 1 for line in text[1500:1700])
    assert report["tokens"] < report["chars"]
    lm = report["rows"][0]
    assert lm["metric"] == pytest.approx(lm["nll"] * report["tokens"] / report["chars"] / math.log(2))
    assert run(["generate", str(tmp_path / "run" / "best.pt"), "--prompt", "KING", "--max-tokens", "5"]) == 0


def test_units_are_learnt_from_files_only(tmp_path, monkeypatch, capsys):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"some text\n")))
    assert run(["preprocess", "-", "--level", "subword", "-o", str(tmp_path / "out")]) != 0
    assert "give files, not stdin" in capsys.readouterr().err
    with pytest.raises(TextseqError, match="no subword model"):
        Pipeline(PipelineConfig.for_level("subword"))
