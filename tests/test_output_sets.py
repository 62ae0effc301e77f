"""A preprocess output is a set (ids.npy, vocab.json, pipeline.json, stats.json, features/): it is replaced
whole or not at all, nothing is left behind by a failure or a signal, textseq outputs are never read back as
corpus, and train refuses files that do not belong together."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from textseq.cli import run

CORPORA = Path(__file__).resolve().parent.parent / "corpora"


def digest(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def leftovers(out: Path) -> list[str]:
    """Hidden siblings (sets being built or moved aside) and spills anywhere near the output."""
    near = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    inside = [str(p) for p in out.rglob(".spill-*")] if out.exists() else []
    return near + inside


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text((CORPORA / "en" / "pride_sample.txt").read_text(encoding="utf-8"), encoding="utf-8")
    return path


def test_a_failed_force_run_leaves_the_previous_set_whole(corpus, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    assert run(["preprocess", str(corpus), "-o", str(out), "--bow", "--quiet"]) == 0
    before = digest(out)
    import textseq.text.preprocess as pre

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pre, "write_features", full_disk)  # after the new ids.npy and vocab.json are written
    assert run(["preprocess", str(corpus), "-o", str(out), "--level", "word", "--bow", "--force", "--quiet"]) != 0
    assert digest(out) == before and leftovers(out) == []


def test_force_replaces_the_whole_set_and_stale_features_go(corpus, tmp_path):
    out = tmp_path / "out"
    assert run(["preprocess", str(corpus), "-o", str(out), "--bow", "--ngrams", "1-2", "--quiet"]) == 0
    assert (out / "features" / "bow.npz").exists()
    assert run(["preprocess", str(corpus), "-o", str(out), "--force", "--quiet"]) == 0
    assert not (out / "features").exists() and sorted(p.name for p in out.iterdir()) == [
        "ids.npy", "pipeline.json", "stats.json", "vocab.json"]
    assert leftovers(out) == []


def test_force_never_replaces_a_directory_that_is_not_an_output(corpus, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    assert run(["preprocess", str(corpus), "-o", str(mine), "--force"]) != 0
    assert "not a textseq output" in capsys.readouterr().err
    assert (mine / "thesis.tex").read_text() == "years of work" and leftovers(mine) == []


def test_outputs_inside_the_input_directory_are_never_read_as_corpus(corpus, tmp_path):
    root = tmp_path / "texts"
    root.mkdir()
    shutil.copy(corpus, root / "a.txt")
    out = root / "out"
    assert run(["preprocess", str(root), "-o", str(out), "--level", "word", "--word2vec", "--w2v-epochs", "1",
                "--quiet"]) == 0
    first = (out / "stats.json").read_text()
    assert (out / "features" / "word2vec.txt").exists()
    assert run(["preprocess", str(root), "-o", str(out), "--level", "word", "--force", "--quiet"]) == 0
    import json

    stats = [json.loads(text) for text in (first, (out / "stats.json").read_text())]
    assert stats[0]["files"] == stats[1]["files"] == 1 and stats[0]["tokens"] == stats[1]["tokens"]


def _slow_preprocess(corpus: Path, tmp_path: Path, out: Path) -> subprocess.Popen:
    big = tmp_path / "big.txt"
    text = corpus.read_text(encoding="utf-8")
    big.write_text(text * max(1, 15_000_000 // len(text)), encoding="utf-8")
    return subprocess.Popen([sys.executable, "-c", "from textseq.cli import main; main()", "preprocess", str(big),
                             "-o", str(out), "--level", "word", "--force", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_default_sigint)


def _default_sigint() -> None:
    """A job started in the background inherits SIGINT ignored (then Python installs no Ctrl-C handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for_spill(out: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not any(out.parent.glob(f".{out.name}.building-*/.spill-*/tokens.u32")):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_terminated_preprocess_leaves_the_previous_set_and_nothing_else(corpus, tmp_path, sig):
    out = tmp_path / "out"
    assert run(["preprocess", str(corpus), "-o", str(out), "--quiet"]) == 0
    before = digest(out)
    proc = _slow_preprocess(corpus, tmp_path, out)
    _wait_for_spill(out, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and b"Traceback" not in err
    assert digest(out) == before and leftovers(out) == []


def test_what_a_killed_preprocess_leaves_is_cleaned_up_by_the_next_run(corpus, tmp_path):
    out = tmp_path / "out"
    proc = _slow_preprocess(corpus, tmp_path, out)
    _wait_for_spill(out, proc)
    proc.kill()  # SIGKILL: nothing runs, the half-built set stays
    proc.wait()
    assert leftovers(out) and not out.exists()
    assert run(["preprocess", str(corpus), "-o", str(out), "--quiet"]) == 0
    assert leftovers(out) == [] and (out / "ids.npy").exists()


def test_train_refuses_files_of_two_preprocess_runs(corpus, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(["preprocess", str(corpus), "-o", str(a), "--quiet"]) == 0
    half = tmp_path / "half.txt"
    half.write_text(corpus.read_text(encoding="utf-8")[:3000], encoding="utf-8")
    assert run(["preprocess", str(half), "-o", str(b), "--quiet"]) == 0
    shutil.copy(b / "ids.npy", a / "ids.npy")  # what a non-atomic --force used to leave
    train = ["train", str(a), "-o", str(tmp_path / "run"), "--max-steps", "1", "--hidden", "8", "--emb", "8"]
    assert run(train) != 0
    assert "do not belong together" in capsys.readouterr().err and not (tmp_path / "run").exists()
    shutil.copy(b / "vocab.json", a / "vocab.json")  # ids and vocab agree now, pipeline.json does not
    assert run(train) != 0
    assert "do not belong together" in capsys.readouterr().err


def test_a_crash_between_the_two_renames_is_recovered(corpus, tmp_path):
    out = tmp_path / "out"
    assert run(["preprocess", str(corpus), "-o", str(out), "--quiet"]) == 0
    before = digest(out)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    aside = out.with_name(f".out.old-{int(dead.stdout)}-abcdef")
    os.rename(out, aside)  # the old set moved aside, then the process died before the new one came in
    assert run(["preprocess", str(corpus), "-o", str(out), "--force", "--level", "word", "--quiet"]) == 0
    assert leftovers(out) == [] and digest(out) != before


@pytest.mark.parametrize("edit, needle", [
    ("level", "pipeline.json is not a valid pipeline file: pipeline.tokenize setting level must be str, got 5"),
    ("vocab", "do not belong together"),
    ("float_ids", "float64 values, not token ids"),
    ("big_ids", "outside the vocabulary"),
])
def test_train_validates_what_it_reads_back_from_a_preprocess_directory(corpus, tmp_path, capsys, edit, needle):
    import json

    import numpy as np

    out = tmp_path / "out"
    assert run(["preprocess", str(corpus), "-o", str(out), "--quiet"]) == 0
    record = json.loads((out / "pipeline.json").read_text(encoding="utf-8"))
    ids = np.load(out / "ids.npy")
    if edit == "level":  # a hand-edited pipeline.json with a wrong type
        record["pipeline"]["tokenize"]["level"] = 5
        (out / "pipeline.json").write_text(json.dumps(record), encoding="utf-8")
    elif edit == "vocab":  # a vocabulary shorter than the ids need
        vocab = json.loads((out / "vocab.json").read_text(encoding="utf-8"))
        vocab["tokens"], vocab["counts"] = vocab["tokens"][:10], vocab["counts"][:10]
        (out / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    elif edit == "float_ids":
        np.save(out / "ids.npy", ids.astype(np.float64))
    else:  # ids past the vocabulary, with a pipeline.json that agrees with the new file
        np.save(out / "ids.npy", ids.astype(np.int64) + 10**6)
    capsys.readouterr()
    assert run(["train", str(out), "-o", str(tmp_path / "run"), "--max-steps", "1", "--hidden", "8",
                "--emb", "8", "--quiet"]) != 0
    err = capsys.readouterr().err
    assert needle in err and "internal error" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()
