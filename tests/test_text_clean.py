import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textseq.text.clean import CleanConfig, build_block_cleaner, build_cleaner
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
