"""Atomic writes and safe checkpoint loading: nothing half-written, nothing unpickled."""

import errno
import os

import pytest
import torch

from textseq.checkpoint import load_checkpoint, save_checkpoint
from textseq.errors import TextseqError
from textseq.io import atomic_open, check_output, check_output_dir


class _Exploit:
    """Unpickling this runs code: it must never happen when loading a checkpoint."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _payload():
    return {"config": {"hidden": 4, "cell": "lstm"}, "model_state": {"w": torch.arange(6.0).reshape(2, 3)}}


def test_round_trip_keeps_tensors_and_plain_data(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", "lm", _payload())
    data = load_checkpoint(path, kind="lm")
    assert data["config"] == {"hidden": 4, "cell": "lstm"}
    assert torch.equal(data["model_state"]["w"], torch.arange(6.0).reshape(2, 3))
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_wrong_kind_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", "forecast", _payload())
    with pytest.raises(TextseqError, match="'forecast' model, expected a 'lm'"):
        load_checkpoint(path, kind="lm")


def test_malicious_pickle_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"magic": "textseq-checkpoint", "kind": "lm", "x": _Exploit(str(marker))}, path)
    with pytest.raises(TextseqError, match="refusing to load"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("fraction", [0.0, 0.002, 0.05, 0.5, 0.99])
def test_truncated_checkpoint_is_a_clear_error(tmp_path, fraction):
    path = save_checkpoint(tmp_path / "m.pt", "lm", _payload())
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(TextseqError, match="empty|corrupt|truncated"):
        load_checkpoint(path)


def test_non_checkpoint_file_is_refused(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(TextseqError, match="not a textseq checkpoint"):
        load_checkpoint(path)
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(TextseqError, match="not a PyTorch archive"):
        load_checkpoint(tmp_path / "text.pt")
    with pytest.raises(TextseqError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(TextseqError, match="directory"):
        load_checkpoint(tmp_path)


def test_disk_full_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "m.pt", "lm", _payload())
    before = path.read_bytes()

    def full_disk(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(TextseqError, match="no space left"):
        save_checkpoint(path, "lm", {"model_state": {}})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_interrupted_write_leaves_target_untouched(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_open(target) as fh:
        fh.write("new, half written")
        raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    with pytest.raises(TextseqError, match="cannot write .*missing"), atomic_open(tmp_path / "missing" / "f.txt"):
        pass


def test_outputs_are_not_overwritten_without_force(tmp_path):
    existing = tmp_path / "out.json"
    existing.write_text("{}")
    with pytest.raises(TextseqError, match="--force"):
        check_output(existing)
    assert check_output(existing, force=True) == existing
    with pytest.raises(TextseqError, match="directory"):
        check_output(tmp_path)
    assert check_output(tmp_path / "new" / "deeper" / "f.txt").parent.is_dir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(TextseqError, match="not empty"):
        check_output_dir(tmp_path / "full")
    with pytest.raises(TextseqError, match="not a directory"):
        check_output_dir(existing, force=True)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(TextseqError, match="not writable"):
        check_output(locked / "f.txt")


def test_atomic_outputs_get_normal_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        with atomic_open(tmp_path / "f.txt") as fh:
            fh.write("x")
    finally:
        os.umask(mask)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644


def test_an_archive_that_would_inflate_far_past_its_size_is_refused_before_reading(tmp_path, monkeypatch):
    import pickle
    import zipfile

    import textseq.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "INFLATE_SLACK", 2**20)
    path = save_checkpoint(tmp_path / "m.pt", "lm", _payload())
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bomb, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("data.pkl"):  # a pickle of 20 MB that deflates to a few KB
                data = pickle.dumps({"magic": "textseq-checkpoint", "kind": "lm", "pad": b"\0" * 20 * 2**20})
                dst.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED)
            else:
                dst.writestr(info, data)
    assert bomb.stat().st_size < 2**20
    loaded = []
    monkeypatch.setattr(checkpoint.torch, "load", lambda *a, **k: loaded.append(a))
    with pytest.raises(TextseqError, match="would inflate to 20 MB .*possibly a zip bomb"):
        load_checkpoint(bomb)
    assert loaded == []  # refused before torch read anything
