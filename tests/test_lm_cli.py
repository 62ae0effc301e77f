"""`textseq train` -> `generate` -> `evaluate` end to end on bundled text, plus resume and error paths."""

from pathlib import Path

import pytest

from textseq.cli import run
from textseq.lm.checkpoint import read_lm

pytestmark = pytest.mark.usefixtures("one_thread")

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
SMALL = ["--hidden", "32", "--emb", "16", "--layers", "1", "--bptt", "16", "--batch-size", "8", "--lr", "0.01",
         "--quiet"]



@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    root = tmp_path_factory.mktemp("texts")
    lines = open(CORPORA / "en" / "shakespeare_sample.txt", encoding="utf-8").readlines()
    (root / "train.txt").write_text("".join(lines[:200]), encoding="utf-8")
    (root / "heldout.txt").write_text("".join(lines[300:330]), encoding="utf-8")
    return root


def test_train_generate_evaluate(texts, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run(["train", str(texts / "train.txt"), "-o", str(run_dir), "--max-steps", "12", *SMALL]) == 0
    assert {p.name for p in run_dir.iterdir()} == {"best.pt", "last.pt", "loss.png", "ngram.npz"}
    capsys.readouterr()

    code = run(["generate", str(run_dir / "best.pt"), "--prompt", "ROMEO: what ÿ", "-n", "20", "--seed", "3"])
    out, err = capsys.readouterr()
    assert code == 0 and out.startswith("ROMEO: what ") and len(out) > len("ROMEO: what ÿ")
    assert "ÿ" in err and "<unk>" in err  # OOV characters are reported on stderr
    run(["generate", str(run_dir / "best.pt"), "--prompt", "ROMEO", "-n", "20", "--seed", "3"])
    again = capsys.readouterr().out
    run(["generate", str(run_dir / "best.pt"), "--prompt", "ROMEO", "-n", "20", "--seed", "3"])
    assert capsys.readouterr().out == again  # seeded sampling is reproducible

    assert run(["generate", str(run_dir / "best.pt"), "--beam", "3", "--num-samples", "2", "-n", "10"]) == 0
    assert capsys.readouterr().out.count("--- sample") == 2

    assert run(["evaluate", str(run_dir / "best.pt"), str(texts / "heldout.txt"), "-k", "5"]) == 0
    out = capsys.readouterr().out
    for name in ("RNN teacher-forced", "RNN free-running (5-step)", "Kneser-Ney", "RNN + KN", "vs KN", "bpc"):
        assert name in out


def test_cli_resume_continues_and_config_file(texts, tmp_path):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('[train]\nmax_steps = 6\nmode = "scheduled-sampling"\nschedule = "exponential"\n'
                   '[model]\ncell = "gru"\n', encoding="utf-8")
    out = tmp_path / "lm.pt"
    assert run(["train", str(texts / "train.txt"), "-o", str(out), "--config", str(cfg), *SMALL]) == 0
    first = read_lm(tmp_path / "lm.last.pt")
    assert first["model_config"]["cell"] == "gru" and first["train_config"]["schedule"] == "exponential"
    assert run(["train", "--resume", str(tmp_path / "lm.last.pt"), "--max-steps", "9", "--quiet"]) == 0
    resumed = read_lm(tmp_path / "lm.last.pt")
    assert resumed["progress"]["step"] == 9 and resumed["train_config"]["max_steps"] == 9


def test_cli_errors_are_one_line(texts, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run(["train", str(texts / "train.txt"), "-o", str(run_dir), "--max-steps", "2", *SMALL]) == 0
    capsys.readouterr()
    cases = [
        (["train", str(texts / "train.txt"), "-o", str(run_dir), *SMALL], "--force"),
        (["train", str(texts / "train.txt"), "-o", str(tmp_path / "x"), "--mode", "guess", *SMALL], "unknown mode"),
        (["generate", str(run_dir / "best.pt"), "--prompt", "ÿÿ"], "none of the prompt's tokens"),
        (["generate", str(tmp_path / "missing.pt")], "does not exist"),
        (["train", "--resume", str(run_dir / "last.pt"), "--hidden", "64"], "cannot change"),
    ]
    for argv, message in cases:
        assert run(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err and err.count("\n") == 1


def test_train_help_lists_the_budget_and_regularizer_flags_with_defaults(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # one line per option
    monkeypatch.setenv("TERM", "dumb")
    assert run(["train", "-h"]) == 0
    lines = capsys.readouterr().out.splitlines()

    def line_of(flag: str) -> str:
        found = [line for line in lines if f" {flag} " in line]
        assert found, f"{flag} is not in `textseq train -h`"
        return found[0]

    assert "SECONDS" in line_of("--max-time") and "[default: 0.0]" in line_of("--max-time")
    for flag in ("--weight-drop", "--dropout-emb", "--dropout-in", "--dropout-between", "--dropout-out",
                 "--ar", "--tar"):
        assert "[default: 0.0]" in line_of(flag), flag
    assert "projection" in line_of("--tie")
    assert "(teacher)" in line_of("--mode") and "(free)" in line_of("--mode")


def test_cli_max_time_with_awd_flags_reports_why_it_stopped(texts, tmp_path, capsys):
    run_dir = tmp_path / "run"
    small = [arg for arg in SMALL if arg != "--quiet"]
    assert run(["train", str(texts / "train.txt"), "-o", str(run_dir), "--max-time", "1", "--log-every", "100000",
                "--weight-drop", "0.2", "--dropout-emb", "0.1", "--dropout-in", "0.1", "--dropout-between", "0.1",
                "--dropout-out", "0.2", "--ar", "1", "--tar", "1", "--tie", "--mode", "teacher", *small]) == 0
    err = capsys.readouterr().err
    summary = err.strip().splitlines()[-1]
    assert summary.startswith("stopped (--max-time reached) after ") and "best valid loss " in summary
    assert "best checkpoint: " in summary and "warning" not in err
    ckpt = read_lm(run_dir / "last.pt")
    model, cfg = ckpt["model_config"], ckpt["train_config"]
    assert (model["weight_drop"], model["dropout_emb"], model["dropout_between"], model["tie_weights"]) == \
        (0.2, 0.1, 0.1, True)
    assert (cfg["max_time"], cfg["ar"], cfg["tar"], cfg["mode"]) == (1.0, 1.0, 1.0, "teacher-forcing")
    assert cfg["epochs"] == 0  # --epochs not given with --max-time: no epoch limit
    assert ckpt["progress"]["history"]["valid"][-1][0] == ckpt["progress"]["step"]
