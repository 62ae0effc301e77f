"""`textseq generate` for people and scripts: why it stopped, stop strings, --output, --json, and a prompt in the
other Chinese script than the training text."""

import json
from pathlib import Path

import pytest

from textseq.cli import run

pytestmark = pytest.mark.usefixtures("one_thread")

TANG = Path(__file__).resolve().parent.parent / "corpora" / "zh" / "tangshi300.txt"  # Traditional characters
SMALL = ["--hidden", "32", "--emb", "16", "--bptt", "16", "--batch-size", "8", "--quiet", "--no-kn-mix"]


@pytest.fixture(scope="module")
def tang_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("tang") / "run"
    assert run(["train", str(TANG), "--level", "char", "-o", str(out), "--max-steps", "20", *SMALL]) == 0
    return out / "best.pt"


def test_default_output_runs_several_lines_and_says_why_it_stopped(tang_model, capsys):
    assert run(["generate", str(tang_model), "--prompt", "春風", "--seed", "1"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("春風") and len(out) > 150  # <eos> is a line break by default: the full 200 tokens
    assert "stopped: --max-tokens 200 reached" in err
    argv = ["generate", str(tang_model), "--prompt", "春風", "--seed", "1", "--stop-at-eos", "--min-new-tokens", "7"]
    assert run([*argv, "--json"]) == 0
    sample = json.loads(capsys.readouterr().out)["samples"][0]
    assert sample["stop_reason"] in ("eos", "max_tokens") and sample["tokens"] >= 7


def test_stop_strings_json_and_output_file(tang_model, capsys, tmp_path):
    argv = ["generate", str(tang_model), "--prompt", "春風", "--seed", "3", "-n", "80"]
    assert run([*argv, "--json"]) == 0
    full = json.loads(capsys.readouterr().out)
    text = full["samples"][0]["text"]
    assert full["seed"] == 3 and full["settings"]["max_tokens"] == 80 and full["samples"][0]["tokens"] == 80
    stop = text[len("春風") + 5]  # a character the sample writes after its fifth new one
    assert run([*argv, "--json", "--stop", stop]) == 0
    cut = json.loads(capsys.readouterr().out)["samples"][0]
    assert cut["stop_reason"] == "stop_string" and cut["text"].endswith(stop) and cut["tokens"] <= 6
    assert text.startswith(cut["text"])
    out_file = tmp_path / "poem.txt"
    assert run([*argv, "--output", str(out_file)]) == 0
    streamed = capsys.readouterr().out
    assert out_file.read_text(encoding="utf-8") == streamed == text + "\n"
    assert run([*argv, "--output", str(out_file)]) == 2  # never replaced without --force
    assert "already exists" in capsys.readouterr().err
    assert run([*argv, "--json", "--num-samples", "2"]) == 0
    assert len(json.loads(capsys.readouterr().out)["samples"]) == 2


def test_a_simplified_prompt_to_a_traditional_model_says_how_to_fix_it(tang_model, capsys):
    assert run(["generate", str(tang_model), "--prompt", "春风吹过", "-n", "5", "--seed", "1"]) == 0
    err = capsys.readouterr().err
    assert "read as <unk>: 风" in err and "trained on Traditional characters" in err and "春風吹過" in err


def test_generated_text_measures():
    from textseq.lm.textstats import distinct, repeated_share, text_stats

    assert repeated_share(list("abcdabcdabcd")) == 5 / 9  # after the first 4-grams everything repeats
    assert repeated_share(list("abcdefg")) == 0.0
    assert distinct([list("aaaa")], 1) == 0.25 and distinct([list("abab")], 2) == 2 / 3
    reference = list("the cat sat on the mat")
    stats = text_stats("x", [list("the cat")], reference)
    assert stats.overlap_3 == 1.0
    alone = text_stats("x", [reference[4:7]], reference, spans=[(4, 7)])  # "cat": its own stretch only
    assert alone.overlap_3 == 0.0


def test_evaluate_measures_generated_text_beside_the_real_continuation(tang_model, capsys):
    assert run(["evaluate", str(tang_model), str(TANG), "-k", "0", "--samples", "4", "--sample-tokens", "30",
                "--json"]) == 0
    generated = json.loads(capsys.readouterr().out)["generated"]
    assert [row["name"] for row in generated] == ["sampled (temperature 1)", "greedy",
                                                  "held-out text (what really follows)"]
    assert all(row["samples"] == 4 and row["tokens"] == 30 for row in generated)
    assert all(0 <= row[key] <= 1 for row in generated for key in ("repeat_4", "distinct_2", "overlap_3"))
    assert generated[2]["overlap_3"] < 1.0  # its own stretch does not count
