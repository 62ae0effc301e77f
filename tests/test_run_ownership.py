"""A run owns its output: a resume continues where its checkpoint is, a run directory held by a live process
is refused (even with --force), a lock left by a killed process is taken over."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from textseq.cli import run
from textseq.io import OutputLock, lock_owner
from textseq.lm.checkpoint import read_lm
from textseq.lm.train import LOCK_NAME, LMTrainConfig, RunPaths, train

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--level", "char", "--layers", "1", "--hidden", "8", "--emb", "8", "--bptt", "8", "--batch-size", "4",
        "--checkpoint-every", "2", "--no-kn-mix", "--quiet"]


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


@pytest.fixture
def run_a(lunyu, tmp_path) -> Path:
    assert run(["train", str(lunyu), "-o", str(tmp_path / "runA"), *TINY, "--max-steps", "2"]) == 0
    return tmp_path / "runA"


def test_checkpoints_name_their_output():
    assert RunPaths.output_of_checkpoint("x/run/last.pt") == "x/run"
    assert RunPaths.output_of_checkpoint("x/run/best.pt") == "x/run"
    assert RunPaths.output_of_checkpoint("x/model.last.pt") == "x/model.pt"
    assert RunPaths.output_of_checkpoint("x/model.pt") == "x/model.pt"


def test_resuming_a_copied_run_continues_in_the_copy_and_leaves_the_original_alone(run_a, tmp_path):
    run_b = tmp_path / "runB"
    shutil.copytree(run_a, run_b)
    before = digest(run_a)
    assert run(["train", "--resume", str(run_b / "last.pt"), "--max-steps", "4", "--quiet"]) == 0
    assert digest(run_a) == before
    assert read_lm(run_b / "last.pt")["progress"]["step"] == 4
    assert read_lm(run_b / "last.pt")["train_config"]["output"] == str(run_b.resolve())


def test_resuming_into_another_output_never_replaces_its_files_without_force(run_a, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    (other / "best.pt").write_bytes(b"someone else's model")
    assert run(["train", "--resume", str(run_a / "last.pt"), "-o", str(other), "--max-steps", "4"]) != 0
    assert "is not empty (use --force" in capsys.readouterr().err
    assert (other / "best.pt").read_bytes() == b"someone else's model"
    before = digest(run_a)
    assert run(["train", "--resume", str(run_a / "last.pt"), "-o", str(other), "--max-steps", "4", "--force",
                "--quiet"]) == 0
    assert read_lm(other / "last.pt")["progress"]["step"] == 4 and digest(run_a) == before


def test_an_output_held_by_a_live_process_is_refused_even_with_force(run_a, lunyu, capsys):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run_a / LOCK_NAME).write_text(f"{holder.pid}@{socket.gethostname()}\n", encoding="utf-8")
        before = digest(run_a)
        for argv in (["train", str(lunyu), "-o", str(run_a), "--force", *TINY, "--max-steps", "2"],
                     ["train", "--resume", str(run_a / "last.pt"), "--max-steps", "4"]):
            assert run(argv) != 0
            assert f"in use by another textseq process (pid {holder.pid})" in capsys.readouterr().err
            assert digest(run_a) == before
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale and taken over; the finished run removes it
    assert run(["train", "--resume", str(run_a / "last.pt"), "--max-steps", "4", "--quiet"]) == 0
    assert not (run_a / LOCK_NAME).exists() and read_lm(run_a / "last.pt")["progress"]["step"] == 4


def test_a_run_holds_its_output_while_it_trains(lunyu, tmp_path):
    seen = []

    def look(trainer):
        lock = trainer.paths.lock
        seen.append(lock_owner(lock) is None and lock.read_text().startswith(f"{os.getpid()}@"))

    cfg = LMTrainConfig(data=str(lunyu), output=str(tmp_path / "model.pt"), max_steps=2, bptt=8, batch_size=4,
                        kn_mix=False)
    train(cfg, {"hidden_size": 8, "emb_size": 8}, quiet=True, on_step=look)
    assert seen == [True, True]  # our own lock does not count as someone else's
    assert not (tmp_path / "model.pt.lock").exists() and (tmp_path / "model.pt").exists()


def test_the_lock_is_exclusive(tmp_path):
    first = OutputLock(tmp_path / "x.lock", "output x").acquire()
    holder = subprocess.run([sys.executable, "-c", "import sys; from textseq.io import OutputLock; "
                             "OutputLock(sys.argv[1], 'output x').acquire()", str(tmp_path / "x.lock")],
                            capture_output=True, text=True)
    assert holder.returncode != 0 and "in use by another textseq process" in holder.stderr
    first.release()
    assert not (tmp_path / "x.lock").exists()


def test_resuming_on_other_text_of_the_same_length_is_refused(run_a, lunyu, tmp_path, capsys):
    lines = lunyu.read_text(encoding="utf-8").splitlines(keepends=True)
    shuffled = tmp_path / "shuffled.txt"
    shuffled.write_text("".join(reversed(lines)), encoding="utf-8")  # the same tokens in another order
    before = digest(run_a)
    assert run(["train", str(shuffled), "--resume", str(run_a / "last.pt"), "--max-steps", "4"]) != 0
    assert "the training data changed since the checkpoint (same length, different content)" in \
        capsys.readouterr().err
    assert digest(run_a) == before
