import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textseq.errors import TextseqError
from textseq.text.clean import CleanConfig, build_cleaner
from textseq.text.normalize import NormalizeConfig
from textseq.text.pipeline import Pipeline, PipelineConfig
from textseq.text.stopwords import StopwordConfig, load_stopword_file
from textseq.text.tokenize import TokenizeConfig
from textseq.vocab import Vocab

CHAR = Pipeline(PipelineConfig.for_level("char"))


def test_config_round_trips_through_json():
    cfg = PipelineConfig(clean=CleanConfig(t2s=True), tokenize=TokenizeConfig(user_words=(("杭研", 3, None),)),
                         stopwords=StopwordConfig(langs=("en", "zh"), words=("foo",)),
                         normalize=NormalizeConfig(lowercase=True, stem="snowball"))
    assert PipelineConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(TextseqError, match=r"unknown PipelineConfig\.clean setting\(s\): nfkd"):
        PipelineConfig.from_dict({"clean": {"nfkd": True}})


def test_levels():
    word = Pipeline(PipelineConfig.for_level("word"))
    assert word.process_line("The Cat sat, 子曰：学而时习之") == ["the", "cat", "sat", ",", "子", "曰", ":", "学而",
                                                                 "时习", "之"]
    assert CHAR.process_line("Hi, 子曰") == ["H", "i", ",", " ", "子", "曰"]


def test_stopwords_builtin_and_user(tmp_path):
    path = tmp_path / "stop.txt"
    path.write_text("# comment\nbennet\n\n", encoding="utf-8")
    cfg = PipelineConfig(stopwords=StopwordConfig(langs=("en", "zh"), words=load_stopword_file(path)))
    # en is the conservative list (function words, matched whatever the case); en-iso also removes "mr"
    assert Pipeline(cfg).process_line("The wife of Mr Bennet and 我们的 君子") == ["wife", "Mr", "君子"]
    cfg.stopwords.langs = ("en-iso", "zh")
    assert Pipeline(cfg).process_line("The wife of Mr Bennet and 我们的 君子") == ["wife", "君子"]
    assert "old" in Pipeline(PipelineConfig(stopwords=StopwordConfig(langs=("en",)))).process_line("the old man")
    with pytest.raises(TextseqError, match="no built-in stopword list 'xx'"):
        Pipeline(PipelineConfig(stopwords=StopwordConfig(langs=("xx",))))


def test_stopwords_are_cleaned_like_the_text():
    # NFKC turns the text's "，" into ","; the Chinese list holds "，": it must be normalized the same way
    tokens = Pipeline(PipelineConfig(stopwords=StopwordConfig(langs=("zh",)))).process_line("子曰，学而时习之")
    assert "," not in tokens and "，" not in tokens and "学而" in tokens


@pytest.mark.parametrize("normalize, expected", [
    (NormalizeConfig(lowercase=True), ["the", "mice", "were", "running", "generously"]),
    (NormalizeConfig(stem="porter"), ["the", "mice", "were", "run", "gener"]),
    (NormalizeConfig(stem="snowball"), ["the", "mice", "were", "run", "generous"]),
    (NormalizeConfig(stem="lancaster"), ["the", "mic", "wer", "run", "gen"]),
    (NormalizeConfig(lemmatize=True), ["the", "mouse", "be", "run", "generously"]),
])
def test_normalization(normalize, expected):
    assert Pipeline(PipelineConfig(normalize=normalize)).process_line("The mice were running generously") == expected


def test_detokenize_words(en_lines):
    pipe = Pipeline(PipelineConfig(tokenize=TokenizeConfig(en_tokenizer="nltk")))
    assert pipe.detokenize(pipe.process_line("I don't know, Mr. Bennet (yes).")) == "I don't know, Mr. Bennet (yes)."
    assert pipe.detokenize(pipe.process_line("我用Python 3.11训练GPT-4模型。")) == "我用Python 3.11训练GPT-4模型。"
    regexp = Pipeline()
    same = sum(regexp.detokenize(regexp.process_line(line)) == " ".join(line.split()) for line in en_lines)
    assert same / len(en_lines) > 0.95  # the rest: quotes opened on another line, dashes


def test_process_lines_streams(zh_lines):
    out = CHAR.process_lines(iter(zh_lines))
    assert next(out) == list(zh_lines[0])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_char_encode_decode_round_trip(text):
    clean = build_cleaner(CHAR.cfg.clean)
    tokens = CHAR.process_line(text)
    vocab = Vocab.from_docs([tokens])
    assert CHAR.detokenize(vocab.decode(vocab.encode(tokens))) == clean(text)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["子曰", "学而", "hello", "world", "3.11", ",", "。"]), max_size=20))
def test_word_encode_decode_round_trip(words):
    pipe = Pipeline()
    tokens = pipe.process_line(" ".join(words))
    vocab = Vocab.from_docs([tokens])
    assert vocab.decode(vocab.encode(tokens)) == tokens


def test_preprocess_takes_strings_as_well_as_paths(tmp_path):
    import numpy as np

    from textseq.text.preprocess import PreprocessConfig, preprocess, preprocess_texts

    lines = ["子曰：学而时习之", "The cat sat.", "multi\nline"]
    path = tmp_path / "in.txt"
    path.write_text("\n".join([*lines[:2], "multi line"]) + "\n", encoding="utf-8")
    cfg = PreprocessConfig(pipeline=PipelineConfig.for_level("word"))
    from_texts = preprocess_texts(iter(lines), tmp_path / "a", cfg)
    from_file = preprocess([path], tmp_path / "b", cfg)
    assert (from_texts.docs, from_texts.tokens) == (from_file.docs, from_file.tokens) == (3, from_file.tokens)
    assert np.array_equal(np.load(tmp_path / "a" / "ids.npy"), np.load(tmp_path / "b" / "ids.npy"))
    with pytest.raises(TextseqError, match="takes strings"):
        preprocess_texts([b"bytes"], tmp_path / "c", cfg)


def _block_configs() -> dict[str, PipelineConfig]:
    def cfg(level="word", pretokenized=False, **parts):
        c = PipelineConfig.for_level(level, pretokenized)
        for name, value in parts.items():
            if name == "backend":
                c.tokenize.backend = value
            elif name == "lang":
                c.tokenize.lang = value
            else:
                setattr(c, name, value)
        return c

    return {"char": cfg("char"), "char, raw spaces": cfg("char", clean=CleanConfig(collapse_whitespace=False)),
            "word jieba": cfg(), "word rjieba": cfg(backend="rjieba"), "zh": cfg(lang="zh", backend="rjieba"),
            "en": cfg(lang="en"), "pretokenized": cfg(pretokenized=True),
            "no punctuation or digits": cfg(backend="rjieba", clean=CleanConfig(remove_punct=True, remove_digits=True)),
            "raw": cfg(backend="rjieba", clean=CleanConfig(collapse_whitespace=False, nfkc=False)),
            "stopwords and stems": cfg(backend="rjieba", stopwords=StopwordConfig(langs=("en", "zh")),
                                       normalize=NormalizeConfig(lowercase=True, stem="porter"))}


BLOCK_CONFIGS = _block_configs()
TRICKY = list("abcXYZ  \t春风秋月。，,.<>&@:/-'’!?\u3000\u00a0\r\x85\u2028ＡＢ１２﹏ΣσΑ") + [
    "<b>", "&amp;", "&#10;", "http://x.com/a", "www.q.org", "a@b.com", "GPT-4", "3.11", "İ", "\ufeff", "\x07", "  "]


def _line_by_line(pipe: Pipeline, lines: list[str]) -> list[str]:
    return [token for line in lines for token in [*pipe.process_line(line), "\n"]]


@pytest.mark.parametrize("name", BLOCK_CONFIGS)
def test_a_block_gives_the_tokens_of_its_lines_on_real_text(name, corpora_dir):
    pipe = Pipeline(BLOCK_CONFIGS[name])
    for path in sorted(corpora_dir.rglob("*.txt")):
        lines = path.read_text(encoding="utf-8").splitlines()[:2000]
        assert pipe.process_block(lines) == _line_by_line(pipe, lines), path.name


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.sampled_from(TRICKY), max_size=12).map("".join), min_size=1, max_size=30),
       st.sampled_from(sorted(BLOCK_CONFIGS)))
def test_a_block_gives_the_tokens_of_its_lines_or_declines(lines, name):
    pipe = Pipeline(BLOCK_CONFIGS[name])
    block = pipe.process_block(lines)
    assert block is None or block == _line_by_line(pipe, lines)
    if pipe.tokens_are_chars and (text := pipe.clean_block(lines)) is not None:
        assert text == "".join(pipe._clean(line) + "\n" for line in lines)
