"""Shared fixtures: the bundled real corpora (corpora/ in the repository) and files made from them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

CORPORA = Path(__file__).resolve().parent.parent / "corpora"


def corpus_lines(relative: str, limit: int | None = None) -> list[str]:
    lines = (CORPORA / relative).read_text(encoding="utf-8").splitlines()
    return lines[:limit] if limit else lines


@pytest.fixture(scope="session")
def corpora_dir() -> Path:
    return CORPORA


@pytest.fixture(scope="session")
def zh_lines() -> list[str]:
    """Simplified Chinese: the Analects plus the start of the Song ci sample."""
    return corpus_lines("zh/lunyu.txt") + corpus_lines("zh/songci_sample.txt", 1500)


@pytest.fixture(scope="session")
def en_lines() -> list[str]:
    return corpus_lines("en/pride_sample.txt", 1500) + corpus_lines("en/shakespeare_sample.txt", 1500)


@pytest.fixture
def gbk_file(tmp_path: Path) -> Path:
    """A small Chinese text file encoded in GBK (generated, not committed)."""
    path = tmp_path / "lunyu_gbk.txt"
    path.write_bytes("\n".join(corpus_lines("zh/lunyu.txt", 40)).encode("gbk") + b"\n")
    return path


@pytest.fixture
def one_thread():
    """Tiny models on a shared 2-core box: torch threading only adds overhead (modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def lunyu(tmp_path_factory) -> Path:
    """The first 80 lines of the Analects."""
    path = tmp_path_factory.mktemp("data") / "lunyu_slice.txt"
    path.write_text("\n".join(corpus_lines("zh/lunyu.txt", 80)) + "\n", encoding="utf-8")
    return path
