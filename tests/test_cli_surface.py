"""The CLI surface ("One coherent surface"): usage errors look alike everywhere, bare commands and -h print help,
--version, every option shows its default, one flag vocabulary, old spellings as hidden aliases, --threads 0.

Everything runs in-process through ``textseq.cli.run``; the few trainings are tiny (a second or two in all)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path

import pytest
import typer

import textseq
from textseq.cli import app, register_commands, run
from textseq.forecast.forecaster import load_forecaster

pytestmark = pytest.mark.usefixtures("one_thread")
register_commands([])  # every command on the app, as for `textseq --help`: the tests below walk them all

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
COMMANDS = [(), ("preprocess",), ("train",), ("generate",), ("evaluate",), ("forecast",), ("forecast", "train"),
            ("forecast", "evaluate"), ("forecast", "predict"), ("forecast", "datasets")]
LEAVES = [path for path in COMMANDS if path not in ((), ("forecast",))]
FORECAST = ["--dataset", "airline", "--horizon", "2", "--seq-len", "8", "--epochs", "1", "--hidden", "4",
            "--baselines", "naive", "-q"]
TINY_LM = ["--level", "char", "--layers", "1", "--hidden", "8", "--emb", "8", "--bptt", "8", "--batch-size", "4",
           "--max-steps", "2", "-q"]

# Visible options that legitimately show no [default: ...]: outputs, input paths, data selection, the prompt.
NO_DEFAULT_BY_NATURE = {"--output", "--plot", "--config", "--resume", "--embeddings", "--user-dict",
                        "--stopwords-file", "--train-text", "--data", "--dataset", "--target", "--date-column",
                        "--prompt"}
# Settings whose default exists but is not shown today (reported as a bug). Once an option shows its default the
# test below fails until it is removed from here: this list only shrinks.
KNOWN_MISSING_DEFAULTS: dict[tuple[str, ...], set[str]] = {}



@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Relative paths in the argv below (never written: the commands fail first) land in a scratch directory."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def wide(monkeypatch):
    """Rich renders help at 200 columns, without colours."""
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)


@pytest.fixture(scope="module")
def lm_checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lm")
    text = root / "train.txt"
    text.write_text((CORPORA / "en" / "shakespeare_sample.txt").read_text(encoding="utf-8")[:3000], encoding="utf-8")
    assert run(["train", str(text), "-o", str(root / "run"), "--threads", "0", *TINY_LM]) == 0  # 0: automatic
    return root / "run" / "best.pt"


@pytest.fixture(scope="module")
def old_spelling_checkpoint(tmp_path_factory) -> Path:
    """A forecaster trained with the old spellings only: --out, --model, --hidden-size, --days, --mode teacher."""
    path = tmp_path_factory.mktemp("fc") / "old.pt"
    argv = ["forecast", "train", "--dataset", "airline", "--horizon", "2", "--days", "7", "--epochs", "1",
            "--model", "gru", "--hidden-size", "5", "--mode", "teacher", "--baselines", "naive", "-q",
            "--out", str(path), "--threads", "0"]
    assert run(argv) == 0
    return path


# --- helpers -----------------------------------------------------------------------------------------------

def outputs(capsys, argv: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(argv)
    out, err = capsys.readouterr()
    return code, out, err


def command_path(argv: list[str]) -> str:
    """'textseq' and the (sub)command names that lead argv."""
    words, command = ["textseq"], typer.main.get_command(app)
    for arg in argv:
        command = getattr(command, "commands", {}).get(arg)
        if command is None:
            break
        words.append(arg)
    return " ".join(words)


def usage_error(capsys, argv: list[str], *needles: str) -> str:
    """A usage error: the usage line, where to find help, exactly one 'error: ' line (the last), exit 2."""
    path = command_path(argv)
    code, out, err = outputs(capsys, argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (argv, code, err)
    assert "internal error" not in (out + err).lower() and "Traceback" not in err, err
    assert lines and lines[0].startswith(f"Usage: {path} "), (argv, err)
    assert f"Try '{path} -h' for help." in lines, (argv, err)
    assert sum(line.startswith("error: ") for line in lines) == 1 and lines[-1].startswith("error: "), err
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])
    return lines[-1]


def one_line_error(capsys, argv: list[str], *needles: str) -> str:
    code, out, err = outputs(capsys, argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0, (argv, out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), (argv, err)
    assert "internal error" not in lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PANEL = re.compile(r"^\s*╭─+ (.+?) ─")
FLAG = re.compile(r"^--?[A-Za-z][\w-]*$")
BOX = str.maketrans("", "", "│╭╮╰╯─")


@dataclass
class Row:
    names: tuple[str, ...]
    text: str
    panel: str


def parse_help(text: str) -> tuple[list[str], dict[str, Row]]:
    """The panel titles, and the option rows by each of their names (continuation lines joined)."""
    panels: list[str] = []
    rows: dict[str, Row] = {}
    panel = current = None
    for raw in ANSI.sub("", text).splitlines():
        if match := PANEL.match(raw):
            panel, current = match.group(1).strip(), None
            panels.append(panel)
            continue
        if "╰" in raw:
            panel = current = None
            continue
        line = raw.translate(BOX).strip()
        if panel in (None, "Arguments", "Commands") or not line:
            continue
        tokens = line.removeprefix("*").split()
        if tokens and FLAG.match(tokens[0]):
            current = Row(tuple(takewhile(FLAG.match, tokens)), line, panel)
            rows.update(dict.fromkeys(current.names, current))
        elif current is not None:
            current.text += " " + line
    return panels, rows


def show_help(capsys, path: tuple[str, ...], flag: str = "-h") -> str:
    code, out, err = outputs(capsys, [*path, flag])
    assert code == 0 and not err.strip(), (path, code, err)
    assert ANSI.sub("", out).lstrip().startswith(" ".join(("Usage: textseq", *path))), out[:300]
    return out


def click_command(path: tuple[str, ...]):
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


def visible_options(path: tuple[str, ...]) -> dict[str, object]:
    params = [p for p in click_command(path).params if p.param_type_name == "option" and not p.hidden]
    return {name: p for p in params for name in (*p.opts, *p.secondary_opts)}


def hidden_options(path: tuple[str, ...]) -> set[str]:
    return {name for p in click_command(path).params if p.param_type_name == "option" and p.hidden
            for name in (*p.opts, *p.secondary_opts)}


def default_shown(row: Row) -> str | None:
    match = re.search(r"\[default: ([^\]]*)\]", row.text)
    return match.group(1) if match else None


# --- version, bare commands, -h ----------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(capsys, flag):
    assert outputs(capsys, [flag]) == (0, f"textseq {textseq.__version__}\n", "")


@pytest.mark.parametrize("path", [(), ("preprocess",), ("train",), ("generate",), ("evaluate",), ("forecast",),
                                  ("forecast", "evaluate"), ("forecast", "predict")], ids=" ".join)
def test_bare_command_prints_help(capsys, wide, path):
    code, out, err = outputs(capsys, list(path))
    assert code == 0, (code, err)
    assert not err.strip(), err
    assert "internal error" not in out.lower()
    assert not [line for line in out.splitlines() if line.strip().lower().startswith("error")], out
    assert out.rstrip() == show_help(capsys, path).rstrip()  # the -h text


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_short_help_is_long_help(capsys, wide, path):
    assert show_help(capsys, path, "-h") == show_help(capsys, path, "--help")


# --- usage errors ------------------------------------------------------------------------------------------

# (argv prefix that parses, an int flag of the command) for every command that takes options.
PARSEABLE = {
    "preprocess": (["preprocess", "in.txt", "-o", "out"], "--min-count"),
    "train": (["train", "DATA"], "--batch-size"),
    "generate": (["generate", "model.pt"], "--max-tokens"),
    "evaluate": (["evaluate", "model.pt", "held.txt"], "--batch-size"),
    "forecast train": (["forecast", "train", "--dataset", "airline", "-o", "m.pt"], "--batch-size"),
    "forecast evaluate": (["forecast", "evaluate", "m.pt"], "--backtest"),
    "forecast predict": (["forecast", "predict", "m.pt"], "--threads"),
}


@pytest.mark.parametrize("command", PARSEABLE)
def test_unknown_option_is_a_usage_error(capsys, command):
    argv, _ = PARSEABLE[command]
    usage_error(capsys, [*argv, "--hiden", "256"], "No such option", "--hiden")


@pytest.mark.parametrize("command", PARSEABLE)
def test_bad_value_is_a_usage_error_naming_the_flag(capsys, command):
    argv, flag = PARSEABLE[command]
    usage_error(capsys, [*argv, flag, "abc"], "Invalid value", flag)


@pytest.mark.parametrize(("argv", "needle"), [
    (["preprocess", "-o", "out"], "Missing argument"),
    (["preprocess", "in.txt"], "Missing option '-o' / '--output'"),
    (["generate", "--seed", "3"], "Missing argument"),
    (["evaluate", "model.pt"], "Missing argument"),
    (["forecast", "predict", "a.pt", "b.pt"], "unexpected extra argument"),
    (["nope"], "No such command 'nope'"),
    (["forecast", "nope"], "No such command 'nope'"),
], ids=lambda value: " ".join(value) if isinstance(value, list) else None)
def test_missing_or_extra_argument_is_a_usage_error(capsys, argv, needle):
    usage_error(capsys, argv, needle)


@pytest.mark.parametrize("argv", [["train", "--resume"], ["forecast", "train", "--dataset"],
                                  ["preprocess", "in.txt", "-o"], ["generate", "model.pt", "--prompt"]],
                         ids=" ".join)
def test_option_without_its_value_is_a_usage_error(capsys, argv):
    usage_error(capsys, argv, "requires an argument")


@pytest.mark.parametrize("argv", [["train", "-o", "out", "-q"], ["forecast", "train", "--dataset", "airline"],
                                  ["forecast", "evaluate", "--dataset", "airline"],
                                  ["forecast", "predict", "--dataset", "airline"]], ids=" ".join)
def test_missing_input_or_output_is_a_usage_error(capsys, argv):
    usage_error(capsys, argv)


# --- help texts --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_option_shows_a_default(capsys, wide, path):
    _, rows = parse_help(show_help(capsys, path))
    expected = visible_options(path)
    assert set(rows) - {"--help", "-h"} == set(expected), "the help parser and click disagree on the options"
    offenders = set()
    for name, row in rows.items():
        param = expected.get(name)
        if name != row.names[0] or param is None or getattr(param, "is_flag", False):
            continue  # one check per row; --help; boolean switches (also --version, the completion options)
        if default_shown(row) is None and "[required]" not in row.text and name not in NO_DEFAULT_BY_NATURE:
            offenders.add(name)
    known = KNOWN_MISSING_DEFAULTS.get(path, set())
    assert not offenders - known, f"options without [default: ...] in `textseq {' '.join(path)} -h`: " \
                                  f"{sorted(offenders - known)}"
    assert not known - offenders, f"{sorted(known - offenders)} show a default now: drop them from " \
                                  "KNOWN_MISSING_DEFAULTS"


def test_help_parser_sees_defaults_and_switches(capsys, wide):
    """The parser the default check relies on reads what a user reads."""
    _, rows = parse_help(show_help(capsys, ("train",)))
    assert default_shown(rows["--hidden"]) == "256" and default_shown(rows["--mode"]) == "teacher-forcing"
    assert rows["--tie"] is rows["--no-tie"] and default_shown(rows["--tie"]) == "false"
    assert rows["-o"] is rows["--output"] and default_shown(rows["--output"]) is None
    assert visible_options(("train",))["--force"].is_flag and not visible_options(("train",))["--hidden"].is_flag


def test_train_help_has_the_panels(capsys, wide):
    panels, rows = parse_help(show_help(capsys, ("train",)))
    assert {"Data", "Model", "Training", "Output"} <= set(panels), panels
    for name, panel in [("--level", "Data"), ("--hidden", "Model"), ("--lr", "Training"), ("--output", "Output")]:
        assert rows[name].panel == panel, (name, rows[name].panel)


# --- one flag vocabulary -----------------------------------------------------------------------------------

def test_one_flag_vocabulary(capsys, wide):
    rows = {path: parse_help(show_help(capsys, path))[1] for path in LEAVES}
    for path in [("preprocess",), ("train",), ("forecast", "train")]:
        assert {"-o", "--output"} <= set(rows[path]["--output"].names), (path, rows[path]["--output"].names)
    shared = ["--hidden", "--layers", "--cell", "--dropout", "--mode", "--seed", "--threads", "--batch-size",
              "--epochs", "--lr", "--optimizer", "--momentum", "--weight-decay", "--clip", "--patience"]
    for path in [("train",), ("forecast", "train")]:
        assert not [flag for flag in shared if flag not in rows[path]], (path, sorted(rows[path]))
    assert default_shown(rows[("preprocess",)]["--level"]) == default_shown(rows[("train",)]["--level"]) == "char"
    for path in [("generate",), ("evaluate",)]:
        assert {"--device", "--threads"} <= set(rows[path]), path
        assert default_shown(rows[path]["--device"]) == default_shown(rows[("train",)]["--device"]) == "auto"
    for path in LEAVES:
        if "--threads" in rows[path]:
            assert default_shown(rows[path]["--threads"]) == "0", path  # 0: automatic, everywhere


@pytest.mark.parametrize(("path", "old"), [
    (("forecast", "train"), {"--out", "--hidden-size", "--days"}),
    (("forecast", "evaluate"), {"--checkpoint", "-c"}),
    (("forecast", "predict"), {"--checkpoint", "-c"}),
    (("preprocess",), {"--max-size"}),
], ids=lambda value: " ".join(value) if isinstance(value, tuple) else None)
def test_old_spellings_are_hidden(capsys, wide, path, old):
    text = ANSI.sub("", show_help(capsys, path))
    _, rows = parse_help(text)
    assert old <= hidden_options(path), "the old spellings must stay accepted"
    assert not old & set(rows), sorted(old & set(rows))
    assert not [flag for flag in old if re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text)], text


# --- old spellings still work ------------------------------------------------------------------------------

def test_forecast_train_old_spellings_reach_the_checkpoint(old_spelling_checkpoint):
    cfg = load_forecaster(old_spelling_checkpoint).cfg
    assert (cfg.model.arch, cfg.model.hidden_size, cfg.seq_len) == ("gru", 5, 7)
    assert cfg.train.mode == "teacher-forcing"


def test_forecast_mode_free_is_free_running(capsys, tmp_path):
    path = tmp_path / "free.pt"
    assert run(["forecast", "train", *FORECAST, "--mode", "free", "-o", str(path)]) == 0
    assert load_forecaster(path).cfg.train.mode == "free-running"


def test_forecast_same_value_under_both_spellings_is_fine(tmp_path):
    path = tmp_path / "same.pt"
    assert run(["forecast", "train", *FORECAST, "--hidden-size", "4", "--days", "8", "--out", str(path),
                "-o", str(path)]) == 0
    assert load_forecaster(path).cfg.model.hidden_size == 4


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_forecast_checkpoint_positional_or_dash_c(capsys, old_spelling_checkpoint, command):
    extra = ["--baselines", "naive"] if command == "evaluate" else []
    code, positional, err = outputs(capsys, ["forecast", command, str(old_spelling_checkpoint), *extra])
    assert code == 0, err
    code, dash_c, err = outputs(capsys, ["forecast", command, "-c", str(old_spelling_checkpoint), *extra])
    assert code == 0, err
    assert dash_c == positional and positional.strip()
    code, long_form, err = outputs(capsys, ["forecast", command, "--checkpoint", str(old_spelling_checkpoint),
                                            *extra])
    assert code == 0 and long_form == positional, err


def test_preprocess_max_size_still_works(capsys, tmp_path):
    text = tmp_path / "in.txt"
    text.write_text((CORPORA / "en" / "pride_sample.txt").read_text(encoding="utf-8")[:2000], encoding="utf-8")
    assert run(["preprocess", str(text), "-o", str(tmp_path / "old"), "-q", "--max-size", "20"]) == 0
    assert len(json.loads((tmp_path / "old" / "vocab.json").read_text())["tokens"]) == 20
    assert run(["preprocess", str(text), "-o", str(tmp_path / "new"), "-q", "--max-vocab", "20"]) == 0
    assert (tmp_path / "new" / "vocab.json").read_text() == (tmp_path / "old" / "vocab.json").read_text()


@pytest.mark.parametrize(("args", "old", "new"), [
    (["forecast", "train", *FORECAST, "-o", "a.pt", "--out", "b.pt"], "--out", "--output"),
    (["forecast", "train", *FORECAST, "-o", "a.pt", "--hidden-size", "8"], "--hidden-size", "--hidden"),
    (["forecast", "train", *FORECAST, "-o", "a.pt", "--cell", "gru", "--model", "lstm"], "--model", "--cell"),
    (["forecast", "train", *FORECAST, "-o", "a.pt", "--days", "9"], "--days", "--seq-len"),
    (["preprocess", "in.txt", "-o", "out", "--max-vocab", "10", "--max-size", "20"], "--max-size", "--max-vocab"),
], ids=lambda value: value if isinstance(value, str) else None)
def test_old_and_new_spelling_disagreeing_is_one_line(capsys, tmp_path, args, old, new):
    one_line_error(capsys, args, old, new)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_two_checkpoints_is_one_line(capsys, tmp_path, old_spelling_checkpoint, command):
    one_line_error(capsys, ["forecast", command, str(old_spelling_checkpoint), "-c", str(tmp_path / "other.pt")],
                   "--checkpoint", "CHECKPOINT")


def test_max_vocab_zero_means_no_limit_everywhere(tmp_path):
    text = tmp_path / "in.txt"
    text.write_text("the cat sat on the mat\n", encoding="utf-8")
    assert run(["preprocess", str(text), "-o", str(tmp_path / "all"), "-q"]) == 0
    assert run(["preprocess", str(text), "-o", str(tmp_path / "zero"), "-q", "--max-vocab", "0"]) == 0
    assert (tmp_path / "zero" / "vocab.json").read_text() == (tmp_path / "all" / "vocab.json").read_text()


# --- --threads ---------------------------------------------------------------------------------------------

def test_threads_zero_is_accepted_everywhere(capsys, tmp_path, lm_checkpoint, old_spelling_checkpoint):
    held = tmp_path / "held.txt"
    held.write_text("To be, or not to be, that is the question.\n", encoding="utf-8")
    # train --threads 0: the lm_checkpoint fixture
    assert run(["generate", str(lm_checkpoint), "-n", "3", "--seed", "1", "--threads", "0"]) == 0
    assert run(["evaluate", str(lm_checkpoint), str(held), "-k", "2", "--no-baseline", "--threads", "0"]) == 0
    # forecast train --threads 0: the old_spelling_checkpoint fixture
    assert run(["forecast", "predict", str(old_spelling_checkpoint), "--threads", "0"]) == 0
    assert run(["forecast", "evaluate", str(old_spelling_checkpoint), "--baselines", "naive", "--threads", "0"]) == 0
    assert "error" not in capsys.readouterr().err


def test_negative_threads_is_one_line_error(capsys, tmp_path, lm_checkpoint, old_spelling_checkpoint):
    held = tmp_path / "held.txt"
    held.write_text("To be, or not to be.\n", encoding="utf-8")
    cases = [
        ["train", str(held), "-o", str(tmp_path / "run"), *TINY_LM],
        ["generate", str(lm_checkpoint), "-n", "3"],
        ["evaluate", str(lm_checkpoint), str(held), "--no-baseline"],
        ["forecast", "train", *FORECAST, "-o", str(tmp_path / "m.pt")],
        ["forecast", "predict", str(old_spelling_checkpoint)],
        ["forecast", "evaluate", str(old_spelling_checkpoint), "--baselines", "naive"],
    ]
    for argv in cases:
        one_line_error(capsys, [*argv, "--threads", "-1"], "--threads")
    assert not (tmp_path / "run").exists() and not (tmp_path / "m.pt").exists()
