"""--pretokenized: WikiText / Penn Treebank style text read exactly as written (split on whitespace, literal <unk>,
@-@ kept, no cleaning, no case change), recorded in pipeline.json and in checkpoints so evaluate and generate
read text the same way."""

import json
from pathlib import Path

import pytest

from textseq.cli import run
from textseq.errors import TextseqError
from textseq.lm.checkpoint import LMCheckpoint
from textseq.text.pipeline import Pipeline, PipelineConfig

pytestmark = pytest.mark.usefixtures("one_thread")

SAMPLE = Path(__file__).resolve().parent.parent / "corpora" / "en" / "pride_wikitext.txt"
SMALL = ["--hidden", "32", "--emb", "16", "--bptt", "16", "--batch-size", "8", "--quiet"]


def test_the_pipeline_keeps_every_token_as_written():
    pipeline = Pipeline(PipelineConfig.for_level("word", pretokenized=True))
    line = " The <unk> of 1 @,@ 000 well @-@ known <b>Men</b> , at http://x.org = = "
    assert pipeline.process_line(line) == line.split()
    assert Pipeline(PipelineConfig.for_level("word")).process_line(line)[:2] == ["the", "of"]  # what it fixes
    assert pipeline.detokenize(["well", "@-@", "known", "<unk>"]) == "well @-@ known <unk>"
    with pytest.raises(TextseqError, match="--level word"):
        PipelineConfig.for_level("char", pretokenized=True)


def test_preprocess_counts_the_sample_exactly(tmp_path):
    out = tmp_path / "wt"
    assert run(["preprocess", str(SAMPLE), "--pretokenized", "-o", str(out), "--quiet"]) == 0
    pipeline = json.loads((out / "pipeline.json").read_text())
    assert pipeline["pipeline"]["tokenize"]["pretokenized"] is True
    assert pipeline["pipeline"]["tokenize"]["level"] == "word"
    tokens = json.loads((out / "vocab.json").read_text())["tokens"]
    assert tokens.count("<unk>") == 1 and "@-@" in tokens and "Bennet" in tokens and "bennet" not in tokens
    stats = json.loads((out / "stats.json").read_text())
    assert stats["tokens"] == sum(len(line.split()) for line in SAMPLE.read_text(encoding="utf-8").splitlines())


def test_train_evaluate_generate_read_text_as_written(tmp_path, capsys):
    lines = SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    train, heldout = tmp_path / "train.txt", tmp_path / "valid.txt"
    train.write_text("".join(lines[:600]), encoding="utf-8")
    heldout.write_text("".join(lines[600:700]), encoding="utf-8")
    run_dir = tmp_path / "run"
    assert run(["train", str(train), "--pretokenized", "-o", str(run_dir), "--max-steps", "6", *SMALL]) == 0
    checkpoint = LMCheckpoint.load(run_dir / "best.pt")
    assert checkpoint.pipeline.cfg.tokenize.pretokenized and checkpoint.level == "word"
    assert checkpoint.vocab.encode(["<unk>"]) == [checkpoint.vocab.unk_id] and "@-@" in checkpoint.vocab
    written = {token for line in lines[:600] for token in line.split()}
    assert written <= set(checkpoint.vocab.itos)  # words seen once kept too: the text has its own <unk>
    capsys.readouterr()
    assert run(["evaluate", str(run_dir / "best.pt"), str(heldout), "-k", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    words = sum(len(line.split()) for line in lines[600:700])
    assert words < result["tokens"] <= words + 100  # every token as written, plus <eos> per line
    assert run(["generate", str(run_dir / "best.pt"), "--prompt", "Mr. Bennet @-@", "-n", "5", "--seed", "1",
                "--no-stop-at-eos"]) == 0
    assert capsys.readouterr().out.startswith("Mr. Bennet @-@ ")


def test_pretokenized_errors_are_one_line(tmp_path, capsys):
    assert run(["train", str(SAMPLE), "--pretokenized", "--level", "char", "-o", str(tmp_path / "r")]) == 2
    assert "--pretokenized" in capsys.readouterr().err
    out = tmp_path / "pp"
    assert run(["preprocess", str(SAMPLE), "-o", str(out), "--level", "word", "--quiet"]) == 0
    assert run(["train", str(out), "--pretokenized", "-o", str(tmp_path / "r2")]) == 2
    assert "give --pretokenized to `textseq preprocess`" in capsys.readouterr().err
