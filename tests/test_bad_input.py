"""The bad-input battery: every command answers bad input with one line on stderr and a non-zero exit,
never a traceback, and never overwrites or loses existing files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from textseq.cli import run

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
TINY_LM = ["--level", "char", "--layers", "1", "--hidden", "16", "--emb", "16", "--bptt", "8",
           "--batch-size", "4", "--max-steps", "3", "--quiet"]


def fails_cleanly(capsys, argv: list[str], *needles: str) -> str:
    """Run the CLI, expect a non-zero exit and exactly one 'error: ...' line mentioning the needles."""
    capsys.readouterr()
    code = run(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0, f"{argv} succeeded; stderr: {err}"
    assert "Traceback" not in err
    assert lines and lines[-1].startswith("error: "), err
    assert sum(line.startswith("error: ") for line in lines) == 1, err
    for needle in needles:
        assert needle.lower() in lines[-1].lower(), (needle, lines[-1])
    return lines[-1]


@pytest.fixture(scope="module")
def lm_checkpoint(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lm")
    text = out / "train.txt"
    text.write_text((CORPORA / "zh" / "lunyu.txt").read_text(encoding="utf-8")[:6000], encoding="utf-8")
    assert run(["train", str(text), "-o", str(out / "run"), *TINY_LM]) == 0
    return out / "run" / "best.pt"


@pytest.fixture(scope="module")
def series_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("csv") / "series.csv"
    rows = ["date,value"] + [f"2020-01-{i % 28 + 1:02d},{10 + (i % 7) * 1.5}" for i in range(80)]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def forecast_checkpoint(tmp_path_factory, series_csv) -> Path:
    path = tmp_path_factory.mktemp("fc") / "model.pt"
    argv = ["forecast", "train", "--data", str(series_csv), "--target", "value", "--seq-len", "8",
            "--hidden-size", "8", "--epochs", "2", "--out", str(path), "-q"]
    assert run(argv) == 0
    return path


# --- text inputs -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["preprocess", "train"])
def test_missing_input(capsys, tmp_path, command):
    fails_cleanly(capsys, [command, str(tmp_path / "nope.txt"), "-o", str(tmp_path / "out")], "nope.txt")


@pytest.mark.parametrize("command", ["preprocess", "train"])
def test_empty_input(capsys, tmp_path, command):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    fails_cleanly(capsys, [command, str(empty), "-o", str(tmp_path / "out")], "empty")


@pytest.mark.parametrize("command", ["preprocess", "train"])
def test_binary_input(capsys, tmp_path, command):
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 64)
    fails_cleanly(capsys, [command, str(binary), "-o", str(tmp_path / "out")], "binary")
    assert not (tmp_path / "out").exists(), "a failed run must not leave an output behind"


@pytest.mark.parametrize("command", ["preprocess", "train"])
def test_gbk_read_as_utf8_names_the_line(capsys, tmp_path, command):
    gbk = tmp_path / "gbk.txt"
    gbk.write_bytes("ascii first line\n子曰：学而时习之\n".encode("gbk"))
    fails_cleanly(capsys, [command, str(gbk), "-o", str(tmp_path / "out")], "gbk.txt", "line 2", "--encoding")


def test_directory_without_text(capsys, tmp_path):
    (tmp_path / "in").mkdir()
    fails_cleanly(capsys, ["preprocess", str(tmp_path / "in"), "-o", str(tmp_path / "out")])


def test_huge_single_line_is_refused_with_bounded_memory(capsys, tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(b"first line\n" + b"a" * (50 * 1024 * 1024) + b"\n")
    fails_cleanly(capsys, ["preprocess", str(big), "-o", str(tmp_path / "out"), "--level", "char"],
                  "big.txt line 2", "longer than 16 MB", "--max-line-mb")
    fails_cleanly(capsys, ["train", str(big), "-o", str(tmp_path / "run"), *TINY_LM], "line 2", "longer than")
    long_line = tmp_path / "long.txt"
    long_line.write_bytes(b"b" * (3 * 1024 * 1024) + b"\n")
    argv = ["preprocess", str(long_line), "--level", "char", "--quiet"]
    fails_cleanly(capsys, [*argv, "-o", str(tmp_path / "no"), "--max-line-mb", "1"], "longer than 1 MB")
    assert run([*argv, "-o", str(tmp_path / "ok"), "--max-line-mb", "4"]) == 0


def test_existing_output_is_not_overwritten(capsys, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    keep = out / "precious.txt"
    keep.write_text("do not lose me")
    fails_cleanly(capsys, ["preprocess", str(CORPORA / "zh" / "lunyu.txt"), "-o", str(out)], "--force")
    assert keep.read_text() == "do not lose me"


def test_unwritable_output_directory(capsys, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    fails_cleanly(capsys, ["preprocess", str(CORPORA / "zh" / "lunyu.txt"), "-o", str(blocker / "out")])
    fails_cleanly(capsys, ["preprocess", str(CORPORA / "zh" / "lunyu.txt"), "-o", "/proc/textseq-out"])


# --- checkpoints -------------------------------------------------------------------------------------------

def test_generate_missing_and_directory_checkpoint(capsys, tmp_path):
    fails_cleanly(capsys, ["generate", str(tmp_path / "missing.pt"), "--prompt", "子"], "does not exist")
    fails_cleanly(capsys, ["generate", str(tmp_path), "--prompt", "子"], "directory")


def test_truncated_checkpoint(capsys, tmp_path, lm_checkpoint):
    cut = tmp_path / "cut.pt"
    cut.write_bytes(lm_checkpoint.read_bytes()[: lm_checkpoint.stat().st_size // 2])
    fails_cleanly(capsys, ["generate", str(cut), "--prompt", "子"], "truncated")


class _Exploit:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_malicious_checkpoint_is_refused_not_executed(capsys, tmp_path, lm_checkpoint):
    data = torch.load(lm_checkpoint, weights_only=True)
    marker = tmp_path / "pwned"
    data["payload"] = _Exploit(str(marker))
    evil = tmp_path / "evil.pt"
    torch.save(data, evil)
    fails_cleanly(capsys, ["generate", str(evil), "--prompt", "子"], "refusing")
    fails_cleanly(capsys, ["forecast", "predict", "-c", str(evil)], "refusing")
    assert not marker.exists()


def test_checkpoint_of_the_other_kind(capsys, lm_checkpoint, forecast_checkpoint):
    fails_cleanly(capsys, ["generate", str(forecast_checkpoint), "--prompt", "子"], "forecast")
    fails_cleanly(capsys, ["forecast", "predict", "-c", str(lm_checkpoint)], "lm")


def test_prompt_of_unknown_tokens_only(capsys, lm_checkpoint):
    fails_cleanly(capsys, ["generate", str(lm_checkpoint), "--prompt", "☃☃☃"], "known")


def test_bad_sampling_options(capsys, lm_checkpoint):
    fails_cleanly(capsys, ["generate", str(lm_checkpoint), "--prompt", "子", "--top-p", "1.5"], "top")
    fails_cleanly(capsys, ["generate", str(lm_checkpoint), "--prompt", "子", "--temperature", "-1"], "temperature")


# --- numeric series ----------------------------------------------------------------------------------------

def _forecast_train(path: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["forecast", "train", "--data", str(path), "--target", "value", "--seq-len", "8", "--epochs", "1",
            "--out", str(tmp_path / "m.pt"), "-q", *extra]


def test_csv_text_in_numeric_column(capsys, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("value\n1\n2\nthree\n4\n")
    fails_cleanly(capsys, _forecast_train(bad, tmp_path), "value", "three")


@pytest.mark.parametrize("cell", ["nan", "inf", "-inf", ""])
def test_csv_nan_inf_and_missing(capsys, tmp_path, cell):
    rows = [str(float(i)) for i in range(40)]
    rows[17] = cell
    bad = tmp_path / "bad.csv"
    bad.write_text("value\n" + "\n".join(rows) + "\n")
    fails_cleanly(capsys, _forecast_train(bad, tmp_path), "value")


def test_series_shorter_than_window(capsys, tmp_path):
    short = tmp_path / "short.csv"
    short.write_text("value\n1\n2\n3\n4\n5\n")
    fails_cleanly(capsys, _forecast_train(short, tmp_path), "short")


def test_csv_missing_column_and_file(capsys, tmp_path, series_csv):
    argv = _forecast_train(series_csv, tmp_path)
    argv[argv.index("value")] = "price"
    fails_cleanly(capsys, argv, "price")
    fails_cleanly(capsys, _forecast_train(tmp_path / "none.csv", tmp_path), "none.csv")
    fails_cleanly(capsys, _forecast_train(tmp_path, tmp_path))


def test_bad_forecast_numbers(capsys, tmp_path, series_csv, forecast_checkpoint):
    fails_cleanly(capsys, _forecast_train(series_csv, tmp_path, "--threads", "-1"), "--threads")  # 0 is automatic now
    fails_cleanly(capsys, _forecast_train(series_csv, tmp_path, "--weight-decay", "-1"), "--weight-decay")
    fails_cleanly(capsys, ["forecast", "predict", "-c", str(forecast_checkpoint), "--threads", "-2"], "--threads")


def test_forecast_checkpoint_not_overwritten(capsys, tmp_path, series_csv):
    target = tmp_path / "m.pt"
    target.write_bytes(b"precious")
    fails_cleanly(capsys, _forecast_train(series_csv, tmp_path), "--force")
    assert target.read_bytes() == b"precious"


def test_resume_refuses_a_different_stream_layout(capsys, lm_checkpoint):
    last = lm_checkpoint.parent / "last.pt"
    fails_cleanly(capsys, ["train", "--resume", str(last), "--batch-size", "3", "--quiet"], "--batch-size")
    fails_cleanly(capsys, ["train", "--resume", str(last), "--hidden", "99", "--quiet"], "architecture")


# --- side inputs that are not regular files -------------------------------------------------------------------

@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)  # nothing ever writes to it: reading it would block forever
    return path


@pytest.mark.parametrize("device", ["/dev/zero", "fifo"])
def test_side_inputs_must_be_regular_files(capsys, tmp_path, device, fifo, series_csv, lm_checkpoint):
    side = str(fifo) if device == "fifo" else device
    text = tmp_path / "t.txt"
    text.write_text("子曰學而時習之\n" * 20, encoding="utf-8")
    out = str(tmp_path / "out")
    cases = [
        (["forecast", "train", "--data", side, "--target", "value", "-o", str(tmp_path / "f.pt")], "data file"),
        (["preprocess", str(text), "-o", out, "--stopwords-file", side], "stopword file"),
        (["preprocess", str(text), "-o", out, "--level", "word", "--user-dict", side], "user dictionary"),
        (["train", str(text), "-o", out, "--config", side, *TINY_LM], "config file"),
        (["train", str(text), "-o", out, "--embeddings", side, *TINY_LM], "vectors file"),
        (["generate", side], "checkpoint"),
        (["evaluate", side, str(text)], "checkpoint"),
    ]
    for argv, what in cases:
        fails_cleanly(capsys, argv, what, "not a regular file")
        assert not Path(out).exists()


# --- numbers ---------------------------------------------------------------------------------------------

def test_numbers_must_be_finite_in_range_and_allocatable(capsys, tmp_path, lm_checkpoint, series_csv):
    text = tmp_path / "t.txt"
    text.write_text("子曰學而時習之\n" * 20, encoding="utf-8")
    out = tmp_path / "run"
    for flags, needle in ((["--lr", "inf"], "lr must be a finite number"),
                          (["--clip", "nan"], "clip must be a finite number"),
                          (["--hidden", "1000000"], "needs about"),
                          (["--seed", "99999999999999999999999"], "seed must be in")):
        fails_cleanly(capsys, ["train", str(text), "-o", str(out), *TINY_LM, *flags], needle)
        assert not out.exists()
    for flags, needle in ((["--temperature", "nan"], "temperature must be a finite number"),
                          (["--temperature", "1e-45"], "temperature must be 0 (greedy) or at least 0.01"),
                          (["--seed", "99999999999999999999999"], "seed must be in")):
        fails_cleanly(capsys, ["generate", str(lm_checkpoint), "-p", "子曰", *flags], needle)
    fails_cleanly(capsys, ["forecast", "train", "--data", str(series_csv), "--target", "value", "--lr", "nan",
                           "-o", str(tmp_path / "f.pt")], "lr must be a finite number")
    assert not (tmp_path / "f.pt").exists()


# --- encodings and messages ----------------------------------------------------------------------------------

def test_utf16_truncated_utf8_and_undecodable_bytes(capsys, tmp_path):
    text = "子曰：學而時習之，不亦說乎？\n有朋自遠方來，不亦樂乎？\n"
    for name, data in (("bom.txt", text.encode("utf-16")), ("le.txt", (text * 4).encode("utf-16-le"))):
        (tmp_path / name).write_bytes(data)
        fails_cleanly(capsys, ["preprocess", str(tmp_path / name), "-o", str(tmp_path / "o")], "is UTF-16 text",
                      "iconv -f UTF-16 -t UTF-8")
    cut = tmp_path / "cut.txt"
    cut.write_bytes(text.encode()[:-2])  # the last character loses its last byte (no final newline either)
    fails_cleanly(capsys, ["preprocess", str(cut), "-o", str(tmp_path / "o")], "ends in the middle of a utf-8 "
                  "character", "--errors replace")
    assert run(["preprocess", str(cut), "-o", str(tmp_path / "o"), "--errors", "replace", "--quiet"]) == 0
    assert "\ufffd" in (tmp_path / "o" / "vocab.json").read_text(encoding="utf-8")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(text.encode()[:9] + b"\xff" + text.encode()[9:])
    fails_cleanly(capsys, ["preprocess", str(bad), "-o", str(tmp_path / "p")], "byte 0xff", "--errors replace")
    assert run(["preprocess", str(bad), "-o", str(tmp_path / "p"), "--errors", "ignore", "--quiet"]) == 0
    fails_cleanly(capsys, ["preprocess", str(bad), "-o", str(tmp_path / "q"), "--errors", "skip"], "errors")


def test_messages_stay_on_one_line_and_debug_means_yes(capsys, tmp_path, monkeypatch, lm_checkpoint):
    weird = tmp_path / "two\nlines\x1b[31m.txt"
    line = fails_cleanly(capsys, ["preprocess", str(weird), "-o", str(tmp_path / "o")], "does not exist")
    assert "two\\nlines\\x1b[31m.txt" in line
    def boom(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("textseq.text.preprocess.preprocess", boom)
    text = tmp_path / "t.txt"
    text.write_text("子曰\n", encoding="utf-8")
    for value in ("0", "", "no"):
        monkeypatch.setenv("TEXTSEQ_DEBUG", value)
        fails_cleanly(capsys, ["preprocess", str(text), "-o", str(tmp_path / "o")],
                      "internal error: RuntimeError: boom")
    monkeypatch.setenv("TEXTSEQ_DEBUG", "1")
    with pytest.raises(RuntimeError):
        run(["preprocess", str(text), "-o", str(tmp_path / "o")])
    monkeypatch.delenv("TEXTSEQ_DEBUG")
    latin = tmp_path / "latin.txt"
    latin.write_text("the quick brown fox\n" * 20, encoding="utf-8")
    fails_cleanly(capsys, ["evaluate", str(lm_checkpoint), str(latin)], "none of the tokens", "<unk>")
    held = tmp_path / "held.txt"
    held.write_text("子曰學而時習之\n" * 30, encoding="utf-8")
    fails_cleanly(capsys, ["evaluate", str(lm_checkpoint), str(held), "--stride", "-1"], "--stride must be at least 1")


def test_values_too_large_to_scale_are_refused_where_they_are_read(capsys, tmp_path):
    for name, values in (("big.csv", [1e308] * 40), ("mixed.csv", [1e308, -1e308] * 20)):
        csv = tmp_path / name
        csv.write_text("y\n" + "\n".join(f"{v:g}" for v in values) + "\n")
        fails_cleanly(capsys, ["forecast", "train", "--data", str(csv), "--target", "y", "-o", str(tmp_path / "f.pt")],
                      "too large to model", "row 1")
        assert not (tmp_path / "f.pt").exists()
