"""The streaming count pass: ids numbered once per process and translated by the spill, blocks that go the
line-by-line way among blocks that do not, and worker processes that shut down cleanly."""

import multiprocessing
import random
import signal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textseq.text import job
from textseq.text.clean import CleanConfig
from textseq.text.job import TokenSpill, count_pass, init_child
from textseq.text.pipeline import Pipeline, PipelineConfig
from textseq.text.tokenize import WORD_OR_PUNCT_OR_END, english_block_tokenizer

# The middle block holds an entity that spells a newline: the block cleaner refuses it, so it goes line by line
# between two blocks that are numbered a block at a time; words recur across all three.
BLOCKS = ["the cat sat\nthe dog 你好世界\n\n", "a cat&#10;ran\nthe end\n", "the cat and the dog\nnew words here\n"]


def spilled_docs(tmp_path, cfg: PipelineConfig, workers: int, keep_empty: bool = False) -> list[list[str]]:
    spill = TokenSpill(tmp_path / f"spill{workers}{keep_empty}.u32")
    count_pass(BLOCKS, spill, cfg, workers=workers, keep_empty=keep_empty)
    spill.close()
    return list(spill.docs())


@pytest.mark.parametrize("level", ["word", "char"])
@pytest.mark.parametrize("workers", [1, 2])
def test_count_pass_matches_the_line_pipeline(tmp_path, level, workers):
    cfg = PipelineConfig.for_level(level)
    pipe = Pipeline(cfg)
    lines = [line for block in BLOCKS for line in block.split("\n")[:-1]]
    expected = [tokens for tokens in map(pipe.process_line, lines) if tokens]
    assert spilled_docs(tmp_path, cfg, workers) == expected
    with_empty = spilled_docs(tmp_path, cfg, workers, keep_empty=True)
    assert with_empty == list(map(pipe.process_line, lines))


def test_counts_follow_the_spilled_tokens(tmp_path):
    spill = TokenSpill(tmp_path / "spill.u32")
    count_pass(BLOCKS * 3, spill, PipelineConfig.for_level("word"), doc_freq=True)
    spill.close()
    docs = list(spill.docs())
    counts = spill.token_counts()
    assert counts.term["the"] == sum(doc.count("the") for doc in docs) == 15
    assert counts.doc["the"] == sum("the" in doc for doc in docs)
    assert set(counts.term) == {token for doc in docs for token in doc}


def test_english_block_tokenizer_is_the_block_regexp():
    tokenize = english_block_tokenizer()
    rng = random.Random(0)
    alphabet = list("ab .,'-’\n\t\u00a0\u2028\x1c\x85_1\u0301é")
    texts = ["", "\n", "tail without a line end", "\n\n  lead\n"] + [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    for text in texts:
        assert tokenize(text) == WORD_OR_PUNCT_OR_END.findall(text), repr(text)


def _raw_words(lang: str = "auto") -> PipelineConfig:
    cfg = PipelineConfig.for_level("word")
    cfg.clean, cfg.tokenize.lang = CleanConfig(strip_control=False, collapse_whitespace=False), lang
    return cfg


# English blocks are numbered a whitespace chunk at a time (job.ChunkIds); blocks with Han characters, NUL
# characters or NLTK's tokenizers are not: all must spill the tokens the line pipeline gives.
CHUNK_CONFIGS = {"word": PipelineConfig.for_level("word"), "raw": _raw_words(), "raw en": _raw_words("en")}
PIECES = list("ab Z.,'’-_1é\t\u00a0\u2028\x1c\x85\x00\u0301") + ["the", "cat", "lord,", "&amp;", "<b>", "春风", "  "]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.lists(st.sampled_from(PIECES), max_size=10).map("".join), min_size=1, max_size=8),
                min_size=1, max_size=4), st.sampled_from(sorted(CHUNK_CONFIGS)))
def test_numbering_a_chunk_at_a_time_spills_the_tokens_of_the_line_pipeline(tmp_path_factory, blocks, name):
    cfg = CHUNK_CONFIGS[name]
    pipe = Pipeline(cfg)
    spill = TokenSpill(tmp_path_factory.mktemp("spill") / "spill.u32")
    count_pass(blocks, spill, cfg, keep_empty=True)
    spill.close()
    assert list(spill.docs()) == [pipe.process_line(line) for block in blocks for line in block]


def test_the_chunk_table_starts_again_between_blocks_when_full(tmp_path, monkeypatch):
    monkeypatch.setattr(job.ChunkIds, "LIMIT", 5)
    blocks = [[f"w{i} w{i + 1} the cat, sat." for i in range(j, j + 3)] for j in range(0, 30, 3)]
    cfg = PipelineConfig.for_level("word")
    spill = TokenSpill(tmp_path / "spill.u32")
    count_pass(blocks, spill, cfg)
    spill.close()
    assert len(job._worker["chunks"]) < 5 + 3 * 5 + 1  # reset before each block that found it full
    assert list(spill.docs()) == [Pipeline(cfg).process_line(line) for block in blocks for line in block]


def _report_signals(queue) -> None:
    init_child(PipelineConfig.for_level("char").to_dict(), False)
    queue.put((signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, signal.getsignal(signal.SIGINT) == signal.SIG_IGN))


def test_worker_processes_drop_the_parents_signal_handlers():
    """A worker that kept the parent's SIGTERM handler (it raises KeyboardInterrupt to undo an output set) could
    hang the pool's shutdown."""
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=_report_signals, args=(queue,))
        child.start()
        assert queue.get(timeout=60) == (True, True)
        child.join(60)
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("level", ["char", "word"])
def test_a_block_whose_bytes_are_all_dropped_is_skipped(tmp_path, level):
    """--errors ignore can leave nothing of the last bytes of a file (no line end after them)."""
    from textseq.text.preprocess import PreprocessConfig, preprocess

    src = tmp_path / "tail.txt"
    src.write_bytes(b"abc\n\xff\xfe")
    stats = preprocess([src], tmp_path / "out", PreprocessConfig(PipelineConfig.for_level(level), errors="ignore"))
    assert (stats.lines, stats.docs) == (1, 1)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_spill_widens_its_ids_as_the_types_grow(tmp_path, workers):
    """ASCII first (ids in a byte), then hundreds of CJK characters (two bytes), then tens of thousands of made-up
    words (four bytes): every stretch reads back as the tokens of its lines, whatever type held it."""
    rng = random.Random(0)
    han = "".join(chr(0x4E00 + i) for i in range(600))
    words = rng.sample([f"w{i}" for i in range(80_000)], 80_000)
    blocks = {"char": ["abc def\n" * 50, han[:300] + "\n" + han[300:] + "\nxyz\n", "abc 好\n"],
              "word": ["the cat\n" * 50, " ".join(words[:40_000]) + "\nthe end\n", " ".join(words[40_000:]) + "\n",
                       "cat w5\n"]}
    widths = {"char": [1, 2], "word": [1, 2, 4]}
    for level, texts in blocks.items():
        cfg = PipelineConfig.for_level(level)
        pipe = Pipeline(cfg)
        spill = TokenSpill(tmp_path / f"{level}.spill")
        count_pass(texts, spill, cfg, workers=workers)
        spill.close()
        lines = [line for text in texts for line in text.split("\n")[:-1]]
        assert list(spill.docs()) == [tokens for tokens in map(pipe.process_line, lines) if tokens]
        assert [dtype.itemsize for dtype, _ in spill._segments] == widths[level]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["", "", "ab", "c d", " ", "x"]), min_size=1, max_size=12))
def test_empty_lines_go_from_ascii_character_blocks(tmp_path_factory, lines):
    """Character ids of an ASCII block fit a byte and lose their empty documents through bytes.replace: runs of any
    length, at the start of a block too."""
    cfg, pipe = PipelineConfig.for_level("char"), Pipeline(PipelineConfig.for_level("char"))
    blocks = ["\n".join(lines) + "\n", "\n\nab\n"]
    spill = TokenSpill(tmp_path_factory.mktemp("spill") / "ids")
    count_pass(blocks, spill, cfg)
    spill.close()
    every = [pipe.process_line(line) for block in blocks for line in block.split("\n")[:-1]]
    assert list(spill.docs()) == [tokens for tokens in every if tokens]
