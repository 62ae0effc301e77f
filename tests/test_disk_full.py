"""A full disk: every command says `error: no space left on device (PATH)` in one line, exits non-zero, keeps
earlier outputs whole and leaves nothing behind. Runs on a small tmpfs, so it needs root (CI runs as root)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CORPORA = Path(__file__).resolve().parent.parent / "corpora"


@pytest.fixture
def disk(tmp_path) -> Path:
    """A 2 MB file system of its own."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> None:
    """Take all the space but ``leave`` bytes."""
    free = shutil.disk_usage(disk).free
    with open(disk / "filler", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))


def textseq(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from textseq.cli import main; main()", *args],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def says_disk_full(done: subprocess.CompletedProcess, where: Path) -> None:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode not in (0, -7, 135), done.stderr  # -7 / 135: killed by SIGBUS
    assert len(lines) == 1 and lines[0].startswith("error: no space left on device ("), done.stderr
    assert str(where) in lines[0]


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def big_corpus(tmp_path) -> Path:
    path = tmp_path / "big.txt"
    text = (CORPORA / "zh" / "songci_sample.txt").read_text(encoding="utf-8")
    path.write_text(text * (3_000_000 // len(text.encode()) + 1), encoding="utf-8")
    return path


def test_preprocess_on_a_full_disk_keeps_the_old_output_and_leaves_nothing(disk, big_corpus, tmp_path):
    small = tmp_path / "small.txt"
    small.write_text("子曰學而時習之\n" * 50, encoding="utf-8")
    out = disk / "out"
    assert textseq("preprocess", str(small), "-o", str(out), "--quiet").returncode == 0
    before, free = digest(out), shutil.disk_usage(disk).free
    done = textseq("preprocess", str(big_corpus), "-o", str(out), "--force", "--quiet")
    says_disk_full(done, disk)
    assert digest(out) == before and sorted(p.name for p in disk.iterdir()) == ["out"]
    assert shutil.disk_usage(disk).free == free  # the space is given back


def test_train_on_a_full_disk(disk, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text((CORPORA / "zh" / "lunyu.txt").read_text(encoding="utf-8")[:4000], encoding="utf-8")
    fill(disk, 20_000)
    run_dir = disk / "run"
    done = textseq("train", str(text), "-o", str(run_dir), "--max-steps", "2", "--hidden", "32", "--emb", "16",
                   "--quiet")
    says_disk_full(done, run_dir)
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no run directory, no temporary file


def test_forecast_on_a_full_disk(disk, tmp_path):
    csv = tmp_path / "s.csv"
    csv.write_text("y\n" + "\n".join(str(10 + i % 7) for i in range(120)) + "\n")
    fill(disk, 2_000)
    done = textseq("forecast", "train", "--data", str(csv), "--target", "y", "--seq-len", "8", "--hidden", "8",
                   "--epochs", "1", "--test-frac", "0", "-o", str(disk / "f.pt"), "-q")
    says_disk_full(done, disk / "f.pt")
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]
