"""Property-based fuzzing of the input boundaries: the text pipeline, the line reader and the CSV loader.

Whatever the input, they either give well-formed output or raise TextseqError (one clear line for
the user) -- never another exception, never malformed tokens, never NaN/inf numbers. The fixed
examples at the end are failures the fuzzing found, kept as regressions.
"""

from __future__ import annotations

import gzip
import json
import tempfile
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from textseq.errors import TextseqError
from textseq.forecast.data import FILL_POLICIES, load_csv
from textseq.text.clean import CONTROL, CleanConfig
from textseq.text.normalize import NormalizeConfig
from textseq.text.pipeline import Pipeline, PipelineConfig
from textseq.text.reader import LineReader, read_lines
from textseq.text.stopwords import StopwordConfig
from textseq.text.tokenize import TokenizeConfig
from textseq.vocab import Vocab


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --- text ---------------------------------------------------------------------------------------------------

FRAGMENTS = [
    "مرحبا بالعالم", "שָׁלוֹם", "\u202eevil\u202c", "\u200f", "e\u0301", "\u0301\u0300", "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇",  # RTL, combining
    "👩\u200d👩\u200d👧", "🇨🇳", "👍🏽", "\U0001d400", "𠀀", "\ufffd", "\uffff", "\U0010ffff",  # emoji, astral
    "ＡＢＣ１２３，全角　空格", "ｶﾞｱｲｳ", "ﬁ", "ß", "İ", "ǅ", "Ⅻ", "①", "㍻", "\ufdfa",  # compatibility forms
    "用Python 3.11训练GPT-2模型。", "子曰：“学而时习之，不亦说乎？”", "學而時習之", "日本語のテキスト",
    "한국어", "ไทย", "हिन्दी",
    "<b>bold</b>", "</", "<", ">", "&amp;", "&#0;", "&#x110000;", "&nbsp;", "<script>x</script>", "<!--", "-->",
    "<eos>", "<unk>", "http://x.y/z?a=1", "www.", "a@b.cc", "1,000.5", "3.11", "U.S.A.", "e-mail", "C++", "C#",
    "don’t", "can't", "'s", "'", '"', "''", "...", "--",
    "a" * 3000, "子" * 2000, "\x00\x1b\x7f\x85\u2028\u2029", "\t\u3000\u00a0\u2003\u200b", " ", "\r", "\ufeff",
]
TEXT = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=30)), max_size=8).map("".join)
ALL_CLEANING_OFF = CleanConfig(**{name: False for name in CleanConfig.__dataclass_fields__})


def _config(level: str, clean: CleanConfig | None = None, stopwords: StopwordConfig | None = None,
            normalize: NormalizeConfig | None = None, **tokenize) -> PipelineConfig:
    cfg = PipelineConfig.for_level(level)
    cfg.clean = clean or cfg.clean
    cfg.tokenize = TokenizeConfig(level=level, **tokenize)
    cfg.stopwords = stopwords or cfg.stopwords
    cfg.normalize = normalize or cfg.normalize
    return cfg


CONFIGS = {
    "char": PipelineConfig.for_level("char"),
    "word": PipelineConfig.for_level("word"),
    "char-t2s-no-punct-digits": _config("char", CleanConfig(t2s=True, remove_punct=True, remove_digits=True)),
    "word-t2s-stopwords-porter": _config("word", CleanConfig(t2s=True, remove_punct=True, remove_digits=True),
                                         StopwordConfig(langs=("en", "zh")), NormalizeConfig(True, stem="porter")),
    "word-lemmatize-nltk": _config("word", normalize=NormalizeConfig(lemmatize=True), en_tokenizer="nltk"),
    "word-zh-full-lancaster": _config("word", normalize=NormalizeConfig(stem="lancaster"), lang="zh",
                                      jieba_mode="full", en_tokenizer="treebank"),
    "word-rjieba-snowball-de": _config("word", stopwords=StopwordConfig(langs=("en",), words=("the", "子")),
                                       normalize=NormalizeConfig(stem="snowball", lemmatize=True, lemma_lang="de"),
                                       backend="rjieba", jieba_mode="search", hmm=False),
    "char-raw": _config("char", ALL_CLEANING_OFF),
    "word-raw": _config("word", ALL_CLEANING_OFF),
    "word-raw-en": _config("word", ALL_CLEANING_OFF, lang="en"),
}
_PIPELINES: dict[str, Pipeline] = {}


def pipeline(name: str) -> Pipeline:
    if name not in _PIPELINES:
        _PIPELINES[name] = Pipeline(CONFIGS[name])
    return _PIPELINES[name]


@fuzz(200)
@given(TEXT, st.sampled_from(sorted(CONFIGS)))
def test_pipeline_gives_well_formed_tokens(text, name):
    pipe = pipeline(name)
    char_level = pipe.cfg.tokenize.level == "char"
    try:
        tokens = pipe.process_line(text)
    except TextseqError:
        return
    for token in tokens:
        assert isinstance(token, str) and token, (name, tokens)
        if char_level:
            assert len(token) == 1, (name, token)  # one code point, spaces included
            if pipe.cfg.clean.collapse_whitespace:
                assert not token.isspace() or token == " ", (name, token)
        else:
            assert not any(ch.isspace() for ch in token), (name, token)
    if char_level and pipe.cfg.clean.collapse_whitespace:
        assert "".join(tokens) == " ".join("".join(tokens).split())
    assert isinstance(pipe.detokenize(tokens), str)

    vocab = Vocab.from_docs([tokens])
    assert vocab.decode(vocab.encode(tokens)) == tokens
    reloaded = Vocab.from_dict(json.loads(json.dumps(vocab.to_dict(), ensure_ascii=False)))
    assert reloaded.itos == vocab.itos and reloaded.encode(tokens) == vocab.encode(tokens)


ENTITY = st.characters(codec="utf-8").map(lambda ch: f"&#x{ord(ch):x};")


@fuzz(150)
@given(st.lists(st.one_of(TEXT, ENTITY), max_size=4).map("".join), st.sampled_from(["char", "word"]))
def test_cleaning_promises_hold_for_html_entities_too(text, name):
    """CleanConfig promises: no control / zero-width characters or BOM (strip_control) and NFKC text
    (nfkc) -- also for characters written as HTML entities, e.g. &#8203; (zero-width space)."""
    tokens = pipeline(name).process_line(text)
    assert not [t for t in tokens if CONTROL.search(t)], tokens
    assert all(unicodedata.is_normalized("NFKC", t) for t in tokens), tokens


# --- line reader --------------------------------------------------------------------------------------------

BYTE_CHUNKS = st.one_of(st.binary(max_size=40), st.sampled_from([
    b"\n", b"\r\n", b"\r", b"\xef\xbb\xbf", b"\xff\xfe", b"\x00", "子曰".encode(), "子曰".encode("gb18030"),
    b"\xe5\xad", b"\x81\x30", "😀".encode(), b"a" * 700]))
TEXT_ENCODINGS = ["utf-8", "gb18030", "latin-1", "cp1252", "ascii", "utf-8-sig", "big5", "shift_jis", "utf-7"]


def expected_lines(data: bytes, encoding: str) -> list[str]:
    text = data.decode(encoding).removeprefix("\ufeff").replace("\r\n", "\n")
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


@fuzz(250)
@given(st.lists(BYTE_CHUNKS, max_size=10).map(b"".join), st.sampled_from(TEXT_ENCODINGS),
       st.sampled_from(["plain", "gzip", "not-gzip", "truncated-gzip"]), st.sampled_from([1, 5, 64, 1 << 18]))
def test_reader_on_arbitrary_bytes(data, encoding, container, block_size):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("f.txt" if container == "plain" else "f.txt.gz")
        written = {"gzip": gzip.compress(data), "truncated-gzip": gzip.compress(data)[:-5]}.get(container, data)
        path.write_bytes(written)
        try:
            lines = list(LineReader([path], encoding, block_size=block_size))
        except TextseqError:
            return
    assert all(isinstance(line, str) and "\n" not in line for line in lines)
    if encoding in ("utf-8", "gb18030", "latin-1") and container in ("plain", "gzip"):
        assert lines == expected_lines(data, encoding)


@pytest.mark.parametrize("codec", ["hex", "base64", "rot13", "zlib", "bz2", "uu", "quopri", "undefined"])
def test_reader_refuses_codecs_that_are_not_text_encodings(tmp_path, codec):
    path = tmp_path / "f.txt"
    path.write_bytes(b"0a0b\nabc\n")
    with pytest.raises(TextseqError):
        list(read_lines(path, encoding=codec))


# --- CSV loader ---------------------------------------------------------------------------------------------

COLUMN_NAMES = ["value", "y", "date", "a", " value", "value ", "", "nan", "x,y", '"q"', "数值", "a.1", "Unnamed: 0"]
CELLS = st.one_of(
    st.floats().map(repr), st.integers(-10**30, 10**30).map(str), st.text(max_size=8),
    st.sampled_from(["", " ", "nan", "NaN", "NA", "null", "-", "inf", "-inf", "Infinity", "1e309", "-1e400", "1e-320",
                     "1_000", "١٢٣", "0x10", "abc", '"1,5"', '"a""b"', "2020-01-01", "2020-02-30", " 3 ", "\t4",
                     "2020-01-01T00:00:00+01:00", "99999999999999999999", "None", "TRUE", "#", "'"]),
)
DATES = st.one_of(
    st.dates().map(str), st.datetimes().map(str), st.integers(-10**20, 10**20).map(str), st.text(max_size=6),
    st.sampled_from(["2020-01-01", "2020-01-02", "2020-02-30", "0001-01-01", "9999-12-31", "1677-09-21", "2262-04-12",
                     "-9347", "20200101", "2020-01-01T00:00:00+01:00", "2020-01-01 00:00:00Z", "Jan 5 2020", "5/1/2020",
                     "now", "NaT", "", "2020", "2020Q1", "2020-W01", "12:00", "2020-01-01 25:00"]),
)


@st.composite
def csv_files(draw) -> tuple[bytes, list[str]]:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200)), ["value"]
    header = draw(st.lists(st.sampled_from(COLUMN_NAMES) | st.text(max_size=5), min_size=1, max_size=4))
    width = len(header)
    rows = draw(st.lists(st.lists(CELLS, min_size=max(0, width - 1), max_size=width + 1), max_size=25))
    if "date" in header and draw(st.booleans()):  # a plausible date column
        where = header.index("date")
        rows = [row[:where] + [draw(DATES)] + row[where + 1:] for row in rows if len(row) > where]
        if draw(st.booleans()):
            rows.sort(key=lambda row: row[where])
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = eol.join([",".join(header)] + [",".join(row) for row in rows]) + draw(st.sampled_from(["", eol]))
    text = draw(st.sampled_from(["", "\ufeff"])) + text
    return text.encode(draw(st.sampled_from(["utf-8", "gb18030", "latin-1"])), errors="replace"), header


@st.composite
def csv_cases(draw):
    data, header = draw(csv_files())
    names = st.sampled_from(sorted({name.strip() for name in header} | {"missing"}))
    return (data, draw(st.none() | names), draw(st.none() | st.lists(names, min_size=1, max_size=3)),
            draw(st.none() | names), draw(st.sampled_from([*FILL_POLICIES, "bogus"])),
            draw(st.sampled_from(["utf-8", "utf-8", "gb18030", "latin-1", "utf-16", "klingon", "hex"])))


@fuzz(300)
@given(csv_cases())
def test_load_csv_gives_finite_series_or_a_clear_error(case):
    data, target, inputs, date_column, fill, encoding = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "series.csv"
        path.write_bytes(data)
        try:
            series = load_csv(path, target, inputs, date_column, fill, encoding)
        except TextseqError:
            return
    values = series.values
    assert values.dtype == np.float64 and values.ndim == 2 and len(values) >= 1
    assert values.shape[1] == len(series.columns) and np.isfinite(values).all()
    assert series.columns == list(dict.fromkeys([series.target, *series.inputs]))
    assert series.target_values.shape == (len(values),)
    assert series.input_values.shape == (len(values), len(series.inputs))
    if target is not None:
        assert series.target == target
    if date_column is not None:
        assert series.dates is not None and len(series.dates) == len(values)


# --- regressions found by the fuzzing -----------------------------------------------------------------------

@pytest.mark.parametrize("text, kwargs, message", [
    # rows one field longer than the header: pandas silently made the first column the index,
    # shifting every value one column over (value read 5,6,7 instead of 1,2,3)
    ("date,value\n2020-01-01,1,5\n2020-01-02,2,6\n2020-01-03,3,7\n", {"target": "value"}, "more fields"),
    ("value,value \n1,2\n", {"target": "value"}, "duplicate column"),  # AttributeError before
    ("date,value\n2020-01-01,1\n", {"inputs": ["date"], "date_column": "date"}, "choose the column"),  # IndexError
    ("value\nnan\n\n-\n", {"fill": "drop"}, "nothing is left"),  # returned an empty series
    ("date,value\n-9347,1\n", {"date_column": "date"}, "outside years"),  # NotImplementedError
    ("value\n1\n", {"encoding": "klingon"}, "encoding"),  # LookupError
    ("value\n1\n", {"encoding": "hex"}, "encoding"),  # LookupError
    ("value\n1\n", {"encoding": "utf-16"}, "decode"),  # UnicodeError: no byte-order mark
])
def test_csv_loader_regressions(tmp_path, text, kwargs, message):
    path = tmp_path / "series.csv"
    path.write_bytes(text.encode())
    with pytest.raises(TextseqError, match=message):
        load_csv(path, **kwargs)


def test_csv_dates_far_from_today_keep_their_order(tmp_path):
    """Casting to nanoseconds wrapped around outside 1677-2262: increasing dates were refused."""
    path = tmp_path / "series.csv"
    path.write_text("date,value\n2500-01-01,1\n3000-01-01,2\n")
    assert load_csv(path, date_column="date").dates == ["2500-01-01", "3000-01-01"]
    path.write_text("date,value\n3000-01-01,1\n2500-01-01,2\n")
    with pytest.raises(TextseqError, match="not strictly increasing"):
        load_csv(path, date_column="date")
