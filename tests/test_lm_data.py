"""Token streams -> parallel batch streams, BPTT windows, splits, TBPTT spans, evaluation rows."""

from pathlib import Path

import numpy as np
import pytest
import torch

from textseq.errors import TextseqError
from textseq.lm.data import (
    SPREAD_SEGMENTS,
    batchify,
    encode_lines,
    load_lm_data,
    shard_streams,
    split_docs,
    split_stream,
    window,
    window_starts,
)
from textseq.lm.evaluate import IGNORE, stream_rows
from textseq.lm.tbptt import span_at, spans_per_epoch
from textseq.vocab import EOS, Vocab

CORPORA = Path(__file__).resolve().parent.parent / "corpora"


def test_batchify_makes_contiguous_parallel_streams():
    data = batchify(np.arange(103), 4)
    assert data.shape == (4, 25) and data.dtype == torch.long
    assert torch.equal(data[1], torch.arange(25, 50))  # row b is the b-th contiguous chunk; remainder dropped


def test_batchify_refuses_too_little_text():
    with pytest.raises(TextseqError, match="too few"):
        batchify(np.arange(7), 4)


def test_windows_shift_targets_by_one_and_cover_every_target_once():
    data = batchify(np.arange(200), 2)  # [2, 100]
    seen = []
    for start in window_starts(data.size(1), 35):
        x, y = window(data, start, 35)
        assert x.shape == y.shape and x.size(0) == 2
        assert torch.equal(y, x + 1)
        seen.extend(y[0].tolist())
    assert seen == list(range(1, 100))  # the last window is cut short; nothing is repeated or lost


def test_split_is_contiguous_with_the_tail_held_out():
    split = split_stream(np.arange(100), valid_ratio=0.1, test_ratio=0.2)
    assert split.train.tolist() == list(range(70))
    assert split.valid.tolist() == list(range(70, 80))
    assert split.test.tolist() == list(range(80, 100))
    with pytest.raises(TextseqError):
        split_stream(np.arange(10), valid_ratio=0.7, test_ratio=0.5)


@pytest.mark.parametrize("n, valid_ratio, test_ratio",
                         [(100, 0.1, 0.2), (1003, 0.1, 0.0), (57, 0.3, 0.1), (9, 0.5, 0.0)])
def test_spread_validation_partitions_the_stream_and_samples_all_of_it(n, valid_ratio, test_ratio):
    split = split_stream(np.arange(n), valid_ratio, test_ratio, valid_split="spread")
    tail = split_stream(np.arange(n), valid_ratio, test_ratio, valid_split="tail")
    assert split.test.tolist() == tail.test.tolist()  # the test part is the tail either way
    assert len(split.valid) == len(tail.valid) and len(split.train) == len(tail.train)
    assert sorted(split.train.tolist() + split.valid.tolist()) == list(range(len(split.train) + len(split.valid)))
    assert np.all(np.diff(split.train) > 0) and np.all(np.diff(split.valid) > 0)  # each keeps the stream's order
    if len(split.valid) >= SPREAD_SEGMENTS:
        head = len(split.train) + len(split.valid)
        # one block in every tenth of the stream: the first ends inside the first tenth
        blocks = np.split(split.valid, np.flatnonzero(np.diff(split.valid) > 1) + 1)
        assert len(blocks) == SPREAD_SEGMENTS and blocks[0][-1] < head // SPREAD_SEGMENTS
    else:  # too little to spread: the tail
        assert split.valid.tolist() == tail.valid.tolist()


def test_unknown_valid_split_is_refused():
    with pytest.raises(TextseqError, match="valid-split"):
        split_stream(np.arange(100), valid_split="middle")


def test_shards_partition_the_streams():
    data = batchify(np.arange(80), 4)
    parts = [shard_streams(data, rank, 2) for rank in range(2)]
    assert torch.equal(torch.cat(parts), data)
    with pytest.raises(TextseqError, match="divisible"):
        shard_streams(data, 0, 3)


def test_encode_lines_appends_eos_and_split_docs_inverts_it():
    vocab = Vocab.from_docs([["a", "b"], ["c"]])
    ids = encode_lines([["a", "b"], [], ["c", "zzz"]], vocab)
    eos = vocab.stoi[EOS]
    assert ids.tolist() == [vocab["a"], vocab["b"], eos, eos, vocab["c"], vocab.unk_id, eos]
    docs = [vocab.decode(d.tolist()) for d in split_docs(ids, eos)]
    assert docs == [["a", "b"], [], ["c", "<unk>"]]


def test_load_raw_text_char_level():
    data = load_lm_data(CORPORA / "zh" / "lunyu.txt", level="char", lang="zh")
    n_lines = sum(1 for _ in open(CORPORA / "zh" / "lunyu.txt", encoding="utf-8"))
    assert int((data.ids == data.eos_id).sum()) == n_lines
    first_line = open(CORPORA / "zh" / "lunyu.txt", encoding="utf-8").readline().rstrip("\n")
    assert "".join(data.vocab.decode(data.ids[: len(first_line)].tolist())) == first_line
    assert data.pipeline["tokenize"]["level"] == "char"


def test_load_preprocessed_dir_is_memory_mapped(tmp_path):
    from textseq.text.pipeline import PipelineConfig
    from textseq.text.preprocess import PreprocessConfig, preprocess

    src = tmp_path / "pp.txt"
    src.write_text("".join(open(CORPORA / "en" / "pride_sample.txt", encoding="utf-8").readlines()[:200]),
                   encoding="utf-8")
    preprocess([src], tmp_path / "out", PreprocessConfig(pipeline=PipelineConfig.for_level("word")))
    data = load_lm_data(tmp_path / "out")
    assert isinstance(data.ids, np.memmap)
    assert data.pipeline["tokenize"]["level"] == "word"
    assert data.ids[-1] == data.eos_id
    with pytest.raises(TextseqError, match="differs"):
        load_lm_data(tmp_path / "out", vocab=Vocab(["<unk>", EOS, "x"]))


@pytest.mark.parametrize("k1,k2", [(5, 5), (5, 12), (6, 2), (7, 3)])
def test_tbptt_spans_score_every_target_once_and_chain_their_hidden_state(k1, k2):
    n_cols = 40
    pos, scored, expected_start = 0, [], 0
    for _ in range(spans_per_epoch(n_cols, k1)):
        span = span_at(pos, n_cols, k1, k2)
        assert span.start == expected_start  # starts where the previous update left its hidden state
        assert span.end - span.loss_start == min(k1, n_cols - 1 - pos)  # k1 new targets per update
        if k2 > k1:  # the graph reaches k2 steps back (less only at the start of the stream)
            assert span.end - span.start == min(k2, span.end)
        assert all(b - a <= k2 for a, b in zip((span.start, *span.cuts), (*span.cuts, span.end), strict=True))
        scored.extend(range(span.loss_start, span.end))
        expected_start, pos = span.carry, span.end
    assert scored == list(range(n_cols - 1))


def test_stream_rows_cover_every_target_exactly_once():
    ids = np.arange(50)
    inputs, targets = stream_rows(ids, 4)
    kept = targets[targets != IGNORE]
    assert sorted(kept.tolist()) == list(range(1, 50))
    assert torch.equal(targets[targets != IGNORE], inputs[targets != IGNORE] + 1)
