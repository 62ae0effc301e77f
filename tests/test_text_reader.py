import gzip
import io
import sys

import pytest

from textseq.errors import TextseqError
from textseq.text.reader import LineReader, read_lines


def test_reads_file_lines_without_line_endings(corpora_dir):
    path = corpora_dir / "zh" / "lunyu.txt"
    assert list(read_lines(path)) == path.read_text(encoding="utf-8").splitlines()


def test_directory_is_recursive_sorted_and_text_only(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.txt").write_text("two\n", encoding="utf-8")
    (tmp_path / "1.txt").write_text("one\r\n", encoding="utf-8")
    with gzip.open(tmp_path / "b" / "3.txt.gz", "wt", encoding="utf-8") as fh:
        fh.write("three\n")
    (tmp_path / "notes.md").write_text("skipped\n", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("skipped\n", encoding="utf-8")
    assert list(read_lines(tmp_path)) == ["one", "two", "three"]


def test_stdin(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("子曰\nhello\n".encode())))
    assert list(read_lines("-")) == ["子曰", "hello"]


def test_gb18030_and_bom(gbk_file, tmp_path):
    lines = list(read_lines(gbk_file, encoding="gb18030"))
    assert lines[1].startswith("子曰：“学而时习之")
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeffabc\n".encode())
    assert list(read_lines(bom)) == ["abc"]


def test_wrong_encoding_names_file_and_line(tmp_path):
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"ok line\nanother\n" + "学而时习之\n".encode("gbk"))
    with pytest.raises(TextseqError, match=r"mixed\.txt line 3 as utf-8.*--encoding gb18030"):
        list(read_lines(path))


@pytest.mark.parametrize("setup, message", [
    (lambda p: p.write_bytes(b"text\n\x00\x01\x02binary"), "binary file .NUL byte on line 2"),
    (lambda p: p.write_bytes(b"not gzip at all"), "not a valid gzip file"),
])
def test_bad_files(tmp_path, setup, message):
    path = tmp_path / ("bad.txt.gz" if "gzip" in message else "bad.bin")
    setup(path)
    with pytest.raises(TextseqError, match=message):
        list(read_lines(path))


def test_bad_sources(tmp_path):
    with pytest.raises(TextseqError, match="does not exist"):
        LineReader([tmp_path / "missing.txt"])
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(TextseqError, match="has no text files"):
        LineReader([tmp_path / "empty_dir"])
    with pytest.raises(TextseqError, match="unknown encoding"):
        LineReader([tmp_path], encoding="klingon")


def test_progress_counters(corpora_dir):
    reader = LineReader([corpora_dir / "zh" / "tangshi300.txt", corpora_dir / "zh" / "lunyu.txt"])
    n = sum(1 for _ in reader)
    assert reader.bytes_read == reader.total_bytes == 87522 + 65163
    assert reader.lines_read == n


@pytest.mark.parametrize("block_size", [1, 7, 64, 1 << 18])
def test_block_boundaries_never_change_lines(tmp_path, corpora_dir, block_size):
    lines = (corpora_dir / "zh" / "lunyu.txt").read_text(encoding="utf-8").splitlines()[:30]
    lines += ["", "a very long line " * 20, "crlf", "", "last without newline"]
    path = tmp_path / "mixed.txt"
    path.write_bytes("\n".join(lines[:-3]).encode("gb18030") + b"\ncrlf\r\n\r\nlast without newline")
    reader = LineReader([path], encoding="gb18030", block_size=block_size)
    assert list(reader) == lines
    assert reader.lines_read == len(lines) and reader.bytes_read == path.stat().st_size
    bad = tmp_path / "bad.txt"
    bad.write_bytes(path.read_bytes().replace("子".encode("gb18030"), b"\xff\xfe", 1))
    with pytest.raises(TextseqError, match=r"bad\.txt line 2 as gb18030"):
        list(LineReader([bad], encoding="gb18030", block_size=block_size))
