"""Write corpora/en/pride_wikitext.txt: the bundled Pride and Prejudice sample in the WikiText-2 format.

WikiText itself cannot be bundled (CC BY-SA, and no network here), so this rewrites a public-domain text the
way WikiText was made (Merity et al. 2016): headings as ``= Chapter 1 =``, one paragraph per line, tokens
separated by single spaces (Moses-style: punctuation split off, ``n't`` and ``'s`` apart), in-word hyphens
and number separators as ``@-@``, ``@,@``, ``@.@``, and words rarer than ``MIN_COUNT`` replaced by a literal
``<unk>`` (headings and numbers excepted). Case is kept. Deterministic: rerun it to get the same file.

    python corpora/make_wikitext_style.py
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE, TARGET = HERE / "en" / "pride_sample.txt", HERE / "en" / "pride_wikitext.txt"
MIN_COUNT = 2
TOKEN = re.compile(r"(?:Mr|Mrs|Dr|St)\.|n't\b|'(?:s|ll|re|ve|d|m)\b|\d+(?:[.,]\d+)*|\w+(?:-\w+)*|[^\w\s]")


def tokens(paragraph: str) -> list[str]:
    out = []
    paragraph = paragraph.replace("_", "")  # the source's italics markers
    for token in TOKEN.findall(re.sub(r"(\w)n't\b", r"\1 n't", paragraph)):
        token = re.sub(r"(?<=\w)-(?=\w)", " @-@ ", token)
        token = re.sub(r"(?<=\d)([.,])(?=\d)", r" @\1@ ", token)
        out += token.split()
    return out


def paragraphs(text: str) -> list[tuple[bool, list[str]]]:
    """(is a heading, tokens) per block of the source."""
    blocks = [" ".join(block.split()) for block in re.split(r"\n\s*\n", text) if block.strip()]
    return [(bool(re.fullmatch(r"Chapter \d+|PRIDE AND PREJUDICE", block)), tokens(block)) for block in blocks]


def main() -> None:
    blocks = paragraphs(SOURCE.read_text(encoding="utf-8"))
    counts = Counter(token for _, words in blocks for token in words)
    lines = [""]
    for heading, words in blocks:
        if not heading:  # headings and numbers are kept as they are
            words = [w if counts[w] >= MIN_COUNT or w[0].isdigit() else "<unk>" for w in words]
        lines += [f" = {' '.join(words)} = ", ""] if heading else [f" {' '.join(words)} ", ""]
    TARGET.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{TARGET}: {len(blocks)} blocks, {sum(len(w) for _, w in blocks):,} tokens")


if __name__ == "__main__":
    main()
