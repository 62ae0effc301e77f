import sys
import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textseq.text.clean import (
    COMPOSING_STARTERS,
    LAST_SPACE,
    CharCleaner,
    CleanConfig,
    build_block_cleaner,
    build_cleaner,
)
from textseq.text.tokenize import TokenizeConfig, build_tokenizer

DEFAULT = build_cleaner(CleanConfig())


@pytest.mark.parametrize("raw, clean", [
    ("ＡＢＣ１２３，全角　空格", "ABC123,全角 空格"),  # NFKC: full-width to half-width
    ('<p class="x">Hello &amp; <b>bye</b></p><!-- c --><script>var a=1<2;</script>', "Hello & bye"),
    ("a < b and c > d", "a < b and c > d"),  # comparisons are not tags
    ("see https://example.org/a?b=1 and www.x.cn/p now", "see and now"),
    ("mail me: li.lei+tag@mail.example.com.", "mail me: ."),
    ("zero\u200bwidth\x00nul\x07bell\ufeff", "zerowidthnulbell"),
    ("  many \t spaces\u3000and\u00a0kinds  ", "many spaces and kinds"),
])
def test_default_cleaning(raw, clean):
    assert DEFAULT(raw) == clean


def test_optional_steps():
    clean = build_cleaner(CleanConfig(remove_digits=True, remove_punct=True))
    assert clean("In 1813, Austen wrote: «Pride»!") == "In Austen wrote Pride"
    assert clean("子曰：“学而时习之，不亦说乎？”") == "子曰 学而时习之 不亦说乎"


def test_each_step_can_be_skipped():
    off = CleanConfig(**{name: False for name in CleanConfig.__dataclass_fields__})
    raw = " ＡＢ <b>x</b> http://a.b c@d.ef \x07  "
    assert build_cleaner(off)(raw) == raw


def test_t2s_on_tang_poems(corpora_dir):
    clean = build_cleaner(CleanConfig(t2s=True))
    lines = (corpora_dir / "zh" / "tangshi300.txt").read_text(encoding="utf-8").splitlines()
    assert clean(lines[0]) == "在岳咏蝉 骆宾王"
    assert clean(lines[1]) == "西陆蝉声唱,南冠客思侵。"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_cleaning_and_char_tokens_never_crash(text):
    clean = build_cleaner(CleanConfig(t2s=True, remove_digits=True, remove_punct=True))
    out = clean(text)
    assert out == out.strip() and "  " not in out
    assert not any(unicodedata.category(ch) == "Cc" for ch in out)
    tokens = build_tokenizer(TokenizeConfig(level="char"))(out)
    assert "".join(tokens) == out


@pytest.mark.parametrize("inside", ["", "  ", "x \n", "\n y", "\t", "é  "])
def test_a_long_block_is_collapsed_exactly_when_a_line_needs_it(inside):
    lines = ["abc def, ghi."] * 3000 + [f"mid{inside}dle"] + ["jkl mno"] * 3000  # long: the numpy scan's size
    text = "\n".join(lines) + "\n"
    clean = build_cleaner(CleanConfig())
    assert build_block_cleaner(CleanConfig())(text) == "".join(clean(line) + "\n" for line in text.split("\n")[:-1])


CHAR_CONFIGS = {"default": CleanConfig(), "raw spaces": CleanConfig(collapse_whitespace=False),
                "no NFKC": CleanConfig(nfkc=False), "controls kept": CleanConfig(strip_control=False),
                "no HTML, URL or e-mail step": CleanConfig(strip_html=False, strip_urls=False, strip_emails=False)}
# Characters that normalize differently next to others (combining marks, jamo, halfwidth voiced marks), that
# become several or none (ligatures, "…", controls, BOM), spaces of every kind, and the HTML/URL/e-mail triggers.
CHAR_PIECES = list("abcXYZ春风，。：／＜＞＆ＡＷｗ．…ﬁ㈱ｶﾞ가각 \t\r\x85\u3000\u00a0\u2028\x07\u200b\ufeff") + [
    "e\u0301", "\u0301", "A\u030a", "\u1100\u1161", "\u11a8", "\u0b47\u0b3e", "\u0b3e", "ｶ\uff9e", "\U0002000b",
    "&c", "&amp;", "&#10;", "&#x41;", "<b>", "x@y.org", "http://a.b", "ｈｔｔｐ：／／ｑ", "www.q", "ｗｗｗ．ｑ",
    "  ", "\n", "\n\n"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(CHAR_PIECES), max_size=40).map("".join), st.sampled_from(sorted(CHAR_CONFIGS)))
def test_char_points_are_the_code_points_of_the_cleaned_block(text, name):
    cfg = CHAR_CONFIGS[name]
    block = text + "\n"
    result = CharCleaner(cfg)(block)
    if result is None:
        return
    points, counts = result
    clean = build_cleaner(cfg)
    expected = build_block_cleaner(cfg)(block)
    if expected is None:
        expected = "".join(clean(line) + "\n" for line in block.split("\n")[:-1])
    assert "".join(map(chr, points.tolist())) == expected
    assert np.array_equal(np.trim_zeros(counts, "b"), np.trim_zeros(np.bincount(points, minlength=1), "b"))


def test_char_points_take_the_fast_way_on_real_text(corpora_dir):
    cleaner = CharCleaner(CleanConfig())
    for path in sorted(corpora_dir.rglob("*.txt")):
        text = path.read_text(encoding="utf-8")[:200_000]
        block = text[:text.rfind("\n") + 1]
        if "<" in block:  # WikiText's <unk>: the HTML step's to judge
            continue
        assert cleaner(block) is not None, path.name  # else these corpora would silently take the slow way
        points, _ = cleaner(block)
        assert "".join(map(chr, points.tolist())) == build_block_cleaner(CleanConfig())(block)


def test_composing_starters_match_this_pythons_unicode_tables():
    seconds = set()
    for point in range(0x110000):
        parts = unicodedata.decomposition(chr(point)).split()
        if len(parts) == 2 and not parts[0].startswith("<") and unicodedata.combining(chr(int(parts[1], 16))) == 0:
            seconds.add(int(parts[1], 16))
    assert seconds <= COMPOSING_STARTERS


def test_no_whitespace_lies_beyond_the_last_space_scanned():
    assert not [c for c in range(LAST_SPACE + 1, sys.maxunicode + 1) if chr(c).isspace()]
