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


def textseq(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from textseq.cli import main; main()", *args],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen, timeout: float = 60) -> None:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode(errors="replace")


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"training ended before writing {path}: {proc.stderr.read().decode()}"
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout} s"
        time.sleep(0.02)


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
        time.sleep(0.3)  # land somewhere inside a later step, possibly inside a checkpoint write
        assert victim.poll() is None, "the run finished before it could be killed; make it longer"
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
    finally:
        if victim.poll() is None:
            victim.kill()
    assert victim.returncode == -signal.SIGKILL
    finish(reference)

    # Only complete checkpoints carry the .pt name; a write cut short by the kill can only leave a
    # hidden ".last.pt.XXXX.tmp" (textseq.io.atomic_path), which nothing ever loads or resumes from.
    checkpoints = sorted(killed_dir.glob("*.pt"))
    assert killed_dir / "last.pt" in checkpoints
    for path in checkpoints:
        load_checkpoint(path, "lm")
    leftovers = [p.name for p in killed_dir.iterdir() if p not in checkpoints and p.name != "loss.png"]
    assert all(name.startswith(".") and name.endswith(".tmp") for name in leftovers), leftovers
    step = load_checkpoint(killed_dir / "last.pt", "lm")["progress"]["step"]
    assert 0 < step < MAX_STEPS and step % CHECKPOINT_EVERY == 0

    finish(textseq("train", "--resume", str(killed_dir / "last.pt"), "--quiet"))
    resumed = load_checkpoint(killed_dir / "last.pt", "lm")
    assert resumed["progress"]["step"] == MAX_STEPS
    assert_same_weights(killed_dir / "last.pt", reference_dir / "last.pt")
    assert_same_weights(killed_dir / "best.pt", reference_dir / "best.pt")
    reference = load_checkpoint(reference_dir / "last.pt", "lm")
    assert resumed["progress"]["best_valid"] == reference["progress"]["best_valid"]
