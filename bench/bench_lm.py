"""LM benchmarks: training speed vs a plain PyTorch loop, feeding modes (quality: bench_quality.py).

    python bench/bench_lm.py [--only speed,modes] [--quick]

1. speed: word-LM training tokens/s at the reference config (2-layer LSTM, 200 units, bptt 35,
   batch 20, SGD lr 20, clip 0.25) on Shakespeare: a plain nn.Embedding + nn.LSTM + full-softmax loop vs
   ``textseq.lm.train.train`` with the adaptive softmax, without and with the AWD-LSTM regularizers (all in
   float32), and the latter in bfloat16 mixed precision (the default where the CPU has it natively).
2. modes: teacher forcing vs free running vs scheduled sampling on Shakespeare, same steps; each
   model scored teacher-forced and free-running (10-step) on the held-out text, and the text it writes
   from 20 held-out prompts (100 characters, sampled and greedy) measured next to the real continuations:
   repeated 4-grams, distinct-2, 3-grams found elsewhere in the held-out text (textseq.lm.textstats).

Everything runs on 1 CPU thread (the machine is shared; threads only add contention).
Results: bench/results/bench_lm.md (also printed).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from textseq.lm.data import batchify, load_lm_data, window
from textseq.lm.evaluate import evaluate_checkpoint
from textseq.lm.train import LMTrainConfig, train
from textseq.training import native_bf16

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"
RESULTS = ROOT / "bench" / "results" / "bench_lm.md"


def split_lines(src: Path, out_dir: Path, test_ratio: float = 0.1) -> tuple[Path, Path]:
    """Last ``test_ratio`` of the lines -> test file; the rest -> train file."""
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = int(len(lines) * (1 - test_ratio))
    train_path, test_path = out_dir / f"{src.stem}.train.txt", out_dir / f"{src.stem}.test.txt"
    train_path.write_text("".join(lines[:cut]), encoding="utf-8")
    test_path.write_text("".join(lines[cut:]), encoding="utf-8")
    return train_path, test_path


class PlainLM(nn.Module):
    """The pytorch/examples word_language_model RNNModel (LSTM, no tying), batch first."""

    def __init__(self, vocab_size: int, size: int, layers: int, dropout: float):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(vocab_size, size)
        self.rnn = nn.LSTM(size, size, layers, dropout=dropout, batch_first=True)
        self.decoder = nn.Linear(size, vocab_size)

    def forward(self, x, hidden):
        out, hidden = self.rnn(self.drop(self.encoder(x)), hidden)
        return self.decoder(self.drop(out)), hidden


def plain_loop(data: torch.Tensor, vocab_size: int, steps: int, bptt: int = 35) -> float:
    """Tokens/s of a textbook TBPTT loop over the same batch streams."""
    torch.manual_seed(0)
    model = PlainLM(vocab_size, 200, 2, 0.2)
    opt = torch.optim.SGD(model.parameters(), lr=20.0)
    hidden, tokens, pos = None, 0, 0
    start = time.perf_counter()
    for _ in range(steps):
        if pos >= data.size(1) - 1:
            pos, hidden = 0, None
        x, y = window(data, pos, bptt)
        hidden = None if hidden is None else tuple(h.detach() for h in hidden)
        logits, hidden = model(x, hidden)
        loss = F.cross_entropy(logits.reshape(-1, vocab_size), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()
        tokens += y.numel()
        pos += bptt
    return tokens / (time.perf_counter() - start)


def speed(work: Path, quick: bool) -> str:
    """Reference config (2x200 LSTM, bptt 35, batch 20, SGD): a plain full-softmax loop vs textseq with the
    adaptive softmax, without and with the AWD-LSTM regularizers; alternated 3 times, medians."""
    shared = ROOT.parent / "shared" / "data" / "en" / "shakespeare.txt"
    src = shared if shared.is_file() else CORPORA / "en" / "shakespeare_sample.txt"
    steps = 20 if quick else 150
    data = load_lm_data(src, level="word", lang="en")
    streams = batchify(data.ids, 20)
    # no validation split and no KN partner: every loop only trains
    cfg = LMTrainConfig(data=str(src), output=str(work / "speed"), level="word", lang="en", bptt=35, batch_size=20,
                        optimizer="sgd", lr=20.0, clip=0.25, max_steps=steps, epochs=100, seed=0, device="cpu",
                        valid_ratio=0.0, kn_mix=False, precision="fp32")
    adaptive = {"emb_size": 200, "hidden_size": 200, "num_layers": 2, "dropout": 0.2, "adaptive_softmax": True}
    awd = {**adaptive, "dropout": 0.0, "weight_drop": 0.3, "dropout_in": 0.15, "dropout_between": 0.2,
           "dropout_out": 0.3, "dropout_emb": 0.1}
    bf16 = native_bf16(torch.device("cpu"))
    runs: dict[str, list[float]] = {"plain": [], "adaptive": [], "awd": [], **({"awd_bf16": []} if bf16 else {})}
    awd_cfg = LMTrainConfig(**{**cfg.to_dict(), "ar": 2.0, "tar": 1.0})
    for _ in range(3):
        runs["plain"].append(plain_loop(streams, len(data.vocab), steps))
        runs["adaptive"].append(train(cfg, adaptive, quiet=True, force=True).tokens_per_sec)
        runs["awd"].append(train(awd_cfg, awd, quiet=True, force=True).tokens_per_sec)
        if bf16:
            runs["awd_bf16"].append(train(replace(awd_cfg, precision="bf16"), awd, quiet=True,
                                          force=True).tokens_per_sec)
    med = {name: statistics.median(values) for name, values in runs.items()}
    names = {"plain": "plain nn.LSTM + full softmax loop (pytorch/examples style)",
             "adaptive": "textseq train, adaptive softmax",
             "awd": "textseq train, adaptive softmax + weight drop, locked/embedding dropout, AR/TAR",
             "awd_bf16": "the same in bfloat16 mixed precision (--precision auto on this CPU)"}
    lines = [f"{src.name}, word level: {len(data.ids):,} tokens, vocabulary {len(data.vocab):,}; {steps} updates "
             f"per run, the {len(runs)} trainers alternated 3 times, median; float32 unless said.", "",
             "| trainer | tokens/s (median) | runs | vs plain |", "| --- | ---: | --- | ---: |"]
    lines += [f"| {names[name]} | {med[name]:,.0f} | {', '.join(f'{v:,.0f}' for v in values)} | "
              f"{med[name] / med['plain']:.2f} |" for name, values in runs.items()]
    lines += ["", f"Regularizers cost {1 - med['awd'] / med['adaptive']:.1%} of the adaptive-softmax speed."]
    print("\n".join(lines), flush=True)
    return "\n".join(lines)


def modes(work: Path, quick: bool) -> str:
    train_path, test_path = split_lines(CORPORA / "en" / "shakespeare_sample.txt", work)
    steps = 30 if quick else 300
    model = {"emb_size": 64, "hidden_size": 192, "num_layers": 1, "dropout": 0.1}
    lines = ["| training mode | steps | train time (s) | test BPC teacher-forced | "
             "test BPC free-running 10-step | free-running / teacher-forced | sampled: repeated 4-grams | "
             "sampled: distinct-2 | sampled: 3-grams in held-out | greedy: repeated 4-grams | greedy: distinct-2 |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    reference = None
    for mode, extra in (("teacher-forcing", {}), ("free-running", {}),
                        ("scheduled-sampling", {"schedule": "inverse-sigmoid"})):
        cfg = LMTrainConfig(data=str(train_path), output=str(work / f"mode_{mode}"), level="char", bptt=50,
                          batch_size=32, lr=0.003, max_steps=steps, epochs=100, valid_ratio=0.05, eval_every=100,
                          seed=0, device="cpu", mode=mode, **extra)
        start = time.perf_counter()
        result = train(cfg, model, quiet=True, force=True)
        seconds = time.perf_counter() - start
        report = evaluate_checkpoint(result.last_checkpoint, test_path, horizon=10, baseline=False, mix_kn=None,
                                     cache=None, samples=20, sample_tokens=100)
        teacher, free = report.rows[0].metric, report.rows[1].metric
        sampled, greedy, reference = report.generated
        label = mode + (f" ({extra['schedule']})" if extra else "")
        lines.append(f"| {label} | {result.steps} | {seconds:.0f} | {teacher:.3f} | {free:.3f} | "
                     f"{free / teacher:.3f} | {sampled.repeat_4:.3f} | {sampled.distinct_2:.3f} | "
                     f"{sampled.overlap_3:.3f} | {greedy.repeat_4:.3f} | {greedy.distinct_2:.3f} |")
        print(lines[-1], flush=True)
    lines.append(f"| the held-out text itself | | | | | | {reference.repeat_4:.3f} | {reference.distinct_2:.3f} | "
                 f"{reference.overlap_3:.3f} | | |")
    return "\n".join(lines)


SECTIONS = {"speed": ("Word-LM training speed (2x200 LSTM, bptt 35, batch 20)", speed),
            "modes": ("Teacher forcing vs free running vs scheduled sampling (Shakespeare, char)", modes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--quick", action="store_true", help="tiny budgets (smoke test; numbers meaningless)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    parts = [f"# bench_lm\n\n{torch.__version__}, 1 CPU thread, `python bench/bench_lm.py"
             f"{' --quick' if args.quick else ''} --only {args.only}`"]
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.only.split(","):
            title, section = SECTIONS[key]
            print(f"## {title}", flush=True)
            parts.append(f"## {title}\n\n{section(Path(tmp), args.quick)}")
    text = "\n\n".join(parts) + "\n"
    if args.quick:
        print(text)
        return
    suffix = "" if args.only == ",".join(SECTIONS) else "_" + args.only.replace(",", "_")
    out = RESULTS.with_name(f"bench_lm{suffix}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
