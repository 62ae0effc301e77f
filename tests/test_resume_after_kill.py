"""A training process killed with SIGKILL (no handler runs, no final save) leaves only loadable
checkpoints behind, and resuming from its last periodic checkpoint ends with exactly the weights of
an uninterrupted run with the same seed and the same number of steps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from textseq.checkpoint import load_checkpoint

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
MAX_STEPS = 60
CHECKPOINT_EVERY = 10
LM_FLAGS = ["--level", "char", "--layers", "1", "--hidden", "32", "--emb", "16", "--dropout", "0.1",
            "--bptt", "16", "--batch-size", "8", "--epochs", "5", "--max-steps", str(MAX_STEPS),
            "--checkpoint-every", str(CHECKPOINT_EVERY), "--eval-every", "20", "--seed", "3", "--quiet"]
# One torch thread: two runs share the machine, and the comparison needs no thread-count subtleties.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def textseq(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from textseq.cli import main; main()", *args],
                            env=ENV, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen, timeout: float = 60) -> None:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode(errors="replace")


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"training ended before writing {path}: {proc.stderr.read().decode()}"
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout} s"
        time.sleep(0.02)


def wait_for_write(run_dir: Path, proc: subprocess.Popen, timeout: float = 3) -> bool:
    """Spin until a temporary file of an atomic write shows up in ``run_dir`` (or give up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if any(name.endswith(".tmp") for name in os.listdir(run_dir)):
            return True
    return False


def model_state(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path, "lm")["model_state"]


def assert_same_weights(a: Path, b: Path) -> None:
    sa, sb = model_state(a), model_state(b)
    assert sa.keys() == sb.keys()
    different = [name for name in sa if not torch.equal(sa[name], sb[name])]
    assert not different, f"{a} and {b} differ in {different}"


@pytest.fixture(scope="module")
def text(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "pride.txt"
    path.write_text((CORPORA / "en" / "pride_sample.txt").read_text(encoding="utf-8")[:20000], encoding="utf-8")
    return path


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path, text):
    killed_dir, reference_dir = tmp_path / "killed", tmp_path / "reference"
    victim = textseq("train", str(text), "-o", str(killed_dir), *LM_FLAGS)
    reference = textseq("train", str(text), "-o", str(reference_dir), *LM_FLAGS)  # runs alongside
    try:
        wait_for(killed_dir / "last.pt", victim)
        wait_for_write(killed_dir, victim)  # the harshest moment: while the next checkpoint is being written
        assert victim.poll() is None, "the run finished before it could be killed; make it longer"
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
    finally:
        if victim.poll() is None:
            victim.kill()
    assert victim.returncode == -signal.SIGKILL
    finish(reference)

    # Only complete checkpoints carry the .pt name; a write cut short by the kill can only leave a
    # hidden ".best.pt.XXXX.tmp" / ".last.pt.XXXX.tmp" (textseq.io.atomic_path): not *.pt, never
    # loaded or resumed from (nothing globs the run directory), though nothing removes it either.
    checkpoints = sorted(killed_dir.glob("*.pt"))
    assert killed_dir / "last.pt" in checkpoints
    for path in checkpoints:
        load_checkpoint(path, "lm")
    # the killed run's lock file stays too (its pid is gone: the resume below takes it over)
    leftovers = [p.name for p in killed_dir.iterdir()
                 if p not in checkpoints and p.name not in ("loss.png", ".textseq.lock")]
    assert all(name.startswith(".") and name.endswith(".tmp") for name in leftovers), leftovers
    step = load_checkpoint(killed_dir / "last.pt", "lm")["progress"]["step"]
    assert 0 < step < MAX_STEPS and step % CHECKPOINT_EVERY == 0

    finish(textseq("train", "--resume", str(killed_dir / "last.pt"), "--quiet"))
    assert not (killed_dir / ".textseq.lock").exists()
    resumed = load_checkpoint(killed_dir / "last.pt", "lm")
    assert resumed["progress"]["step"] == MAX_STEPS
    assert_same_weights(killed_dir / "last.pt", reference_dir / "last.pt")
    assert_same_weights(killed_dir / "best.pt", reference_dir / "best.pt")
    reference = load_checkpoint(reference_dir / "last.pt", "lm")
    assert resumed["progress"]["best_valid"] == reference["progress"]["best_valid"]
    assert sorted(p.name for p in killed_dir.glob("*.pt")) == ["best.pt", "last.pt"]


def test_resume_from_another_directory_when_the_run_used_relative_paths(tmp_path, text):
    """A killed job is often resumed from another shell or job script: relative data/output paths
    given at the start must not be re-read relative to the new working directory."""
    first = tmp_path / "first"
    first.mkdir()
    (first / "data.txt").write_text(text.read_text(encoding="utf-8")[:5000], encoding="utf-8")
    tiny = ["--level", "char", "--layers", "1", "--hidden", "8", "--emb", "8", "--bptt", "8", "--batch-size", "4",
            "--checkpoint-every", "2", "--quiet"]
    finish(textseq("train", "data.txt", "-o", "run", *tiny, "--max-steps", "2", cwd=first))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    finish(textseq("train", "--resume", str(first / "run" / "last.pt"), "--max-steps", "4", "--quiet", cwd=elsewhere))
    assert load_checkpoint(first / "run" / "last.pt", "lm")["progress"]["step"] == 4
    assert list(elsewhere.iterdir()) == []  # nothing written relative to the new working directory
