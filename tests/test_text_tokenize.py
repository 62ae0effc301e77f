import logging

import jieba
import pytest

from textseq.errors import TextseqError
from textseq.text.tokenize import TokenizeConfig, build_tokenizer, load_user_dict


def tokens(text, **cfg):
    return build_tokenizer(TokenizeConfig(**cfg))(text)


def test_char_level_is_code_points_cjk_safe():
    assert tokens("子曰 hi𠀀", level="char") == ["子", "曰", " ", "h", "i", "𠀀"]  # astral char stays whole


def test_chinese_words(zh_lines):
    assert tokens("我爱北京天安门。") == ["我", "爱", "北京", "天安门", "。"]
    joined = [tok for line in zh_lines[:300] for tok in tokens(line)]
    assert "".join(joined) == "".join("".join(line.split()) for line in zh_lines[:300])  # nothing lost


def test_mixed_lines_use_english_rules_for_latin_runs():
    line = "我用Python 3.11训练了GPT-4模型，e-mail是test。I don't know."
    assert tokens(line) == ["我用", "Python", "3.11", "训练", "了", "GPT-4", "模型", "，", "e-mail", "是",
                            "test", "。", "I", "don't", "know", "."]
    assert tokens(line, lang="en")[:2] == ["我用Python", "3.11训练了GPT-4模型"]


@pytest.mark.parametrize("name, expected", [
    ("regexp", ["I", "don't", "know", ",", "Mr", ".", "Bennet's", "wife", "."]),
    ("nltk", ["I", "do", "n't", "know", ",", "Mr.", "Bennet", "'s", "wife", "."]),
    ("treebank", ["I", "do", "n't", "know", ",", "Mr.", "Bennet", "'s", "wife", "."]),
])
def test_english_tokenizers(name, expected):
    assert tokens("I don't know, Mr. Bennet's wife.", en_tokenizer=name) == expected


def test_jieba_modes_and_hmm():
    line = "他来到了网易杭研大厦"
    assert tokens(line) == ["他", "来到", "了", "网易", "杭研", "大厦"]  # 杭研 found by the HMM
    assert tokens(line, hmm=False) == ["他", "来到", "了", "网易", "杭", "研", "大厦"]
    assert tokens("中华人民共和国", jieba_mode="search")[-1] == "中华人民共和国"
    assert set(tokens("中华人民共和国", jieba_mode="full")) >= {"中华", "人民", "共和国", "中华人民共和国"}


@pytest.mark.parametrize("mode, hmm", [("accurate", True), ("accurate", False), ("search", True)])
def test_rjieba_gives_identical_tokens_on_corpora(zh_lines, mode, hmm):
    mixed = ["我用Python 3.11训练了GPT-4模型，e-mail是test。", "ＡＢＣ全角１２３ 和 spaces  here"]
    jieba_tok = build_tokenizer(TokenizeConfig(jieba_mode=mode, hmm=hmm))
    rjieba_tok = build_tokenizer(TokenizeConfig(jieba_mode=mode, hmm=hmm, backend="rjieba"))
    for line in zh_lines + mixed:
        assert rjieba_tok(line) == jieba_tok(line), line


def test_rjieba_refuses_full_mode():
    with pytest.raises(TextseqError, match="rjieba backend does not support jieba mode 'full'"):
        build_tokenizer(TokenizeConfig(backend="rjieba", jieba_mode="full"))


def test_user_dict_in_both_backends_and_private_tokenizer(tmp_path):
    path = tmp_path / "user.txt"
    path.write_text("杭研大厦 10 nz\n学而时习 \n", encoding="utf-8")
    words = load_user_dict(path)
    assert words == (("杭研大厦", 10, "nz"), ("学而时习", None, None))
    line = "他来到了网易杭研大厦，学而时习之"
    for backend in ("jieba", "rjieba"):
        got = tokens(line, backend=backend, user_words=words)
        assert "杭研大厦" in got and "学而时习" in got, backend
    assert "杭研大厦" not in jieba.dt.FREQ  # the global jieba tokenizer is untouched


def test_bad_user_dict(tmp_path):
    path = tmp_path / "user.txt"
    path.write_text("好词 many\n", encoding="utf-8")
    with pytest.raises(TextseqError, match="line 1: frequency 'many'"):
        load_user_dict(path)
    with pytest.raises(TextseqError, match="does not exist"):
        load_user_dict(tmp_path / "missing.txt")


def test_jieba_logging_is_silenced(capfd):
    build_tokenizer(TokenizeConfig(user_words=(("一个新词典", 5, None),)))("一个新词典")
    assert "prefix dict" not in capfd.readouterr().err
    assert logging.getLogger("jieba").level >= logging.WARNING


def test_bad_settings():
    with pytest.raises(TextseqError, match="unknown level 'byte'"):
        build_tokenizer(TokenizeConfig(level="byte"))
    with pytest.raises(TextseqError, match="unknown English tokenizer"):
        build_tokenizer(TokenizeConfig(en_tokenizer="spacy"))
