"""Text pipeline throughput against bare tokenizers, scaling with workers, and peak memory.

    python bench/bench_pipeline.py [--repeat 5] [--copies 30] [--scale-mb 40] [--rss-mb 100,1000] [--skip-rss]
                                   [--tables throughput,workers,rss]

1. The same lines, side by side (CPU time, best of --repeat interleaved runs): a bare tokenizer call per line
   (jieba.lcut, rjieba.cut, the English regexp, NLTKWordTokenizer, list() for characters), the full
   ``Pipeline.process_line`` (cleaning, lowercasing, tokenizing) and end-to-end ``preprocess()``
   (pipeline + counting + spill + encoding + writing ids.npy/vocab.json). Overhead = time / bare - 1.
2. ``preprocess()`` on a larger mixed Chinese/English file with 1 and 2 workers.
3. Peak memory of ``textseq preprocess`` (parent + workers, polled with psutil) on inputs made by
   repeating the shared corpora under /tmp (deleted afterwards, never committed): it must stay flat
   as the input grows, since only the vocabulary counts grow.
Writes the same tables to bench/results/bench_pipeline.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from textseq.io import atomic_write_text
from textseq.text.pipeline import Pipeline, PipelineConfig
from textseq.text.preprocess import PreprocessConfig, preprocess

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"
SHARED = ROOT.parent / "shared" / "data"
WORD = re.compile(r"\w+(?:['’.\-]\w+)*|[^\w\s]")
WORD_OR_END = re.compile(WORD.pattern + "|\n")  # the same on a block of lines, line ends as tokens


def lines_of(*names: str) -> list[str]:
    return [line for name in names for line in (CORPORA / name).read_text(encoding="utf-8").splitlines()]


def megabytes(lines: list[str]) -> float:
    return sum(len(line.encode()) + 1 for line in lines) / 1e6


def bare_tokenizers() -> dict:
    import jieba
    import rjieba
    from nltk.tokenize import NLTKWordTokenizer

    logging.getLogger("jieba").setLevel(logging.WARNING)
    jieba.initialize()
    return {"jieba": jieba.lcut, "rjieba": rjieba.Jieba().cut, "regexp": WORD.findall,
            "regexp-block": WORD_OR_END.findall, "nltk": NLTKWordTokenizer().tokenize, "char": list}


def pipeline_config(level: str, backend: str = "jieba", en_tokenizer: str = "regexp") -> PipelineConfig:
    cfg = PipelineConfig.for_level(level)
    cfg.tokenize.backend, cfg.tokenize.en_tokenizer = backend, en_tokenizer
    return cfg


CASES = [  # label, corpus files, bare tokenizer, pipeline config
    ("zh word, jieba", ("zh/songci_sample.txt", "zh/lunyu.txt"), "jieba", pipeline_config("word")),
    ("zh word, rjieba", ("zh/songci_sample.txt", "zh/lunyu.txt"), "rjieba", pipeline_config("word", "rjieba")),
    ("zh char", ("zh/songci_sample.txt", "zh/lunyu.txt"), "char", pipeline_config("char")),
    ("en word, regexp", ("en/shakespeare_sample.txt",), "regexp", pipeline_config("word")),
    ("en word, nltk", ("en/shakespeare_sample.txt",), "nltk", pipeline_config("word", en_tokenizer="nltk")),
    ("en char", ("en/shakespeare_sample.txt",), "char", pipeline_config("char")),
]


def time_lines(fn, lines: list[str]) -> float:
    start = time.process_time()
    for line in lines:
        fn(line)
    return time.process_time() - start


def text_blocks(lines: list[str], size: int = 1 << 18) -> list[str]:
    """The lines in blocks of about ``size`` bytes, as preprocess() reads them (``LineReader.text_blocks``)."""
    blocks, block, length = [], [], 0
    for line in lines:
        block.append(line)
        length += len(line) + 1
        if length >= size:
            blocks.append("\n".join(block) + "\n")
            block, length = [], 0
    return blocks + (["\n".join(block) + "\n"] if block else [])


SLOW_TOKENIZERS = ("jieba", "nltk")
BLOCK_TOKENIZERS = {"jieba": "jieba", "rjieba": "rjieba", "regexp": "regexp-block", "char": "char"}


def time_preprocess(path: Path, cfg: PreprocessConfig) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.process_time()
        preprocess([path], out, cfg, force=True)
        return time.process_time() - start


def overhead_table(repeat: int, copies: int) -> list[list[str]]:
    bare = bare_tokenizers()
    rows = [["text", "MB", "bare MB/s", "bare per block MB/s", "pipeline MB/s", "overhead", "preprocess() MB/s",
             "overhead"]]
    with tempfile.TemporaryDirectory() as tmp:
        for label, names, bare_name, cfg in CASES:
            slow = bare_name in SLOW_TOKENIZERS  # pure Python: a tenth of the text takes as long as the rest
            lines = lines_of(*names) * (max(1, copies // 10) if slow else copies)
            blocks = text_blocks(lines)
            path = Path(tmp) / "input.txt"
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            pipe = Pipeline(cfg)
            block_name = BLOCK_TOKENIZERS.get(bare_name)
            best = [float("inf")] * 4
            for _ in range(repeat):  # interleaved, so load from other processes hits all alike
                best[0] = min(best[0], time_lines(bare[bare_name], lines))
                if block_name:
                    best[1] = min(best[1], time_lines(bare[block_name], blocks))
                best[2] = min(best[2], time_lines(pipe.process_line, lines))
                best[3] = min(best[3], time_preprocess(path, PreprocessConfig(pipeline=cfg)))
            mb = megabytes(lines)
            rows.append([label, f"{mb:.2f}", f"{mb / best[0]:.2f}", f"{mb / best[1]:.2f}" if block_name else "n/a",
                         f"{mb / best[2]:.2f}", f"{best[2] / best[0] - 1:+.0%}", f"{mb / best[3]:.2f}",
                         f"{best[3] / best[0] - 1:+.0%}"])
            print(" | ".join(rows[-1]), flush=True)
    return rows


def fixed_cost(repeat: int) -> float:
    """Seconds of a preprocess() run on a one-line file: what a run costs whatever the input."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "one.txt"
        path.write_text("one line\n", encoding="utf-8")
        return min(time_preprocess(path, PreprocessConfig(pipeline=pipeline_config("word"))) for _ in range(repeat))


def repeated_corpus(path: Path, megabytes_wanted: float, sources: list[Path]) -> Path:
    """Concatenate the sources again and again until the file has the wanted size."""
    block = b"".join(p.read_bytes().rstrip(b"\n") + b"\n" for p in sources)
    with open(path, "wb") as fh:
        for _ in range(max(1, round(megabytes_wanted * 1e6 / len(block)))):
            fh.write(block)
    return path


def big_sources() -> list[Path]:
    shared = [SHARED / "zh" / "songci.txt", SHARED / "en" / "shakespeare.txt", SHARED / "zh" / "tangshi300.txt",
              SHARED / "en" / "pride_and_prejudice.txt", SHARED / "zh" / "lunyu.txt"]
    return shared if all(p.exists() for p in shared) else sorted(CORPORA.rglob("*.txt"))


def cpu_times() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its finished children (the workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def workers_table(scale_mb: float) -> list[list[str]]:
    rows = [["config", "input MB", "workers", "seconds", "MB/s", "speed-up", "CPU s main / workers",
             "same output"]]
    with tempfile.TemporaryDirectory() as tmp:
        for label, cfg, mb in (("word, rjieba", pipeline_config("word", "rjieba"), scale_mb),
                               ("word, jieba", pipeline_config("word"), scale_mb / 4),
                               ("char", pipeline_config("char"), scale_mb)):
            path = repeated_corpus(Path(tmp) / "big.txt", mb, big_sources())
            size = path.stat().st_size / 1e6
            outputs, base = [], None
            for workers in (1, 2):
                out = Path(tmp) / f"out{workers}"
                start, cpu = time.perf_counter(), cpu_times()
                preprocess([path], out, PreprocessConfig(pipeline=cfg, workers=workers), force=True)
                seconds, cpu = time.perf_counter() - start, [b - a for a, b in zip(cpu, cpu_times(), strict=True)]
                base = base or seconds
                outputs.append((out / "ids.npy").read_bytes() + (out / "vocab.json").read_bytes())
                rows.append([label, f"{size:.1f}", str(workers), f"{seconds:.1f}", f"{size / seconds:.2f}",
                             f"{base / seconds:.2f}x", f"{cpu[0]:.1f} / {cpu[1]:.1f}",
                             "yes" if outputs[-1] == outputs[0] else "NO"])
                print(" | ".join(rows[-1]), flush=True)
    return rows


def peak_rss(cmd: list[str]) -> tuple[float, float, float]:
    """Run ``cmd``; return (seconds, peak RSS in MB of the whole process tree, of the main process),
    polled every 50 ms."""
    start = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL)
    peak_tree = peak_main = 0
    while proc.poll() is None:
        try:
            main = proc.memory_info().rss
            tree = main + sum(p.memory_info().rss for p in proc.children(recursive=True))
            peak_tree, peak_main = max(peak_tree, tree), max(peak_main, main)
        except psutil.Error:
            pass
        time.sleep(0.05)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
    return time.perf_counter() - start, peak_tree / 1e6, peak_main / 1e6


def rss_table(sizes_mb: list[float]) -> list[list[str]]:
    rows = [["input MB", "options", "seconds", "MB/s", "peak RSS MB, all processes", "main process",
             "tokens", "vocabulary"]]
    textseq = str(Path(sys.executable).with_name("textseq"))
    tmp = Path(tempfile.mkdtemp(prefix="textseq-bench-"))
    try:
        for mb in sizes_mb:
            path = repeated_corpus(tmp / "big.txt", mb, big_sources())
            size = path.stat().st_size / 1e6
            for workers in ("1", "2"):
                args = ["--level", "word", "--backend", "rjieba", "--workers", workers]
                cmd = [textseq, "preprocess", str(path), "-o", str(tmp / "out"), *args, "-q", "--force"]
                seconds, peak_tree, peak_main = peak_rss(cmd)
                stats = json.loads((tmp / "out" / "stats.json").read_text())
                rows.append([f"{size:.0f}", " ".join(args), f"{seconds:.0f}", f"{size / seconds:.2f}",
                             f"{peak_tree:.0f}", f"{peak_main:.0f}", f"{stats['tokens']:,}",
                             f"{stats['vocab_size']:,}"])
                print(" | ".join(rows[-1]), flush=True)
                shutil.rmtree(tmp / "out")
            path.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def markdown(title: str, rows: list[list[str]]) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows[1:]]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--copies", type=int, default=30, help="copies of the ~0.3 MB samples per throughput run")
    parser.add_argument("--scale-mb", type=float, default=40.0, help="input size for the workers table")
    parser.add_argument("--rss-mb", default="100,1000", help="input sizes for the peak-memory table")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--tables", default="throughput,workers,rss", help="which tables to measure")
    args = parser.parse_args()
    machine = f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"
    notes = ("bare: the tokenizer alone, line by line; bare per block: the same tokenizer called once per ~256 KB "
             "block of lines, as preprocess() calls it (the block regexp for English, list() for characters); "
             "pipeline: `Pipeline.process_line` (cleaning, lowercasing for words, tokenizing); preprocess(): the "
             "whole single-process job on a file (read, pipeline, count, spill, vocabulary, ids.npy, vocab.json, "
             "pipeline.json). Times are CPU seconds of this process (the machine is shared with other jobs, "
             "which wall-clock times would count), best of "
             f"{args.repeat} interleaved runs. Overhead = time / bare time - 1; compare within a row.\n")
    tables = args.tables.split(",")
    parts = [f"## bench_pipeline ({machine})\n", notes]
    if "throughput" in tables:
        parts.append(markdown("Throughput on the same lines", overhead_table(args.repeat, args.copies)))
        fixed_ms = fixed_cost(args.repeat) * 1e3
        parts.append(f"Fixed CPU cost of a run (preprocess() of a one-line file): {fixed_ms:.0f} ms\n")
    if "workers" in tables:
        parts.append(markdown("Workers", workers_table(args.scale_mb)))
    if "rss" in tables and not args.skip_rss:
        parts.append(markdown("Peak memory", rss_table([float(x) for x in args.rss_mb.split(",")])))
    report = "\n".join(parts)
    print(report)
    name = "bench_pipeline.md" if len(tables) == 3 else f"bench_pipeline_{'_'.join(tables)}.md"
    atomic_write_text(ROOT / "bench" / "results" / name, report)


if __name__ == "__main__":
    main()
