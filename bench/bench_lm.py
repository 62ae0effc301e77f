"""LM benchmarks: quality vs Kneser-Ney, training speed vs a plain PyTorch loop, feeding modes.

    python bench/bench_lm.py [--only quality,speed,modes] [--quick]

1. quality: a char LSTM on the bundled Song ci and Shakespeare samples (last 10% of lines held out)
   against interpolated modified Kneser-Ney n-grams of orders 2..7 fitted on exactly the same
   training tokens; the best order is chosen ON THE TEST SET (favours the baseline).
2. speed: word-LM training tokens/s at the reference config (2-layer LSTM, 200 units, bptt 35,
   batch 20, SGD lr 20, clip 0.25) on the Pride and Prejudice sample: ``textseq.lm.train.train``
   vs a plain nn.Embedding + nn.LSTM + full-softmax loop, alternated in the same process.
3. modes: teacher forcing vs free running vs scheduled sampling on Shakespeare, same steps; each
   model scored teacher-forced and free-running (10-step) on the held-out text.

Everything runs on 1 CPU thread (the machine is shared; threads only add contention).
Results: bench/results/bench_lm.md (also printed).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from textseq.features.ngram_lm import KneserNeyLM
from textseq.lm.checkpoint import read_lm
from textseq.lm.data import batchify, load_lm_data, window
from textseq.lm.evaluate import evaluate_checkpoint, heldout_docs, training_docs
from textseq.lm.train import LMTrainConfig, train
from textseq.vocab import Vocab

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


def best_ngram(checkpoint: Path, test_path: Path, orders=range(2, 8)) -> tuple[int, float]:
    """(order, bits per token) of the best Kneser-Ney model on the test tokens."""
    ckpt = read_lm(checkpoint)
    vocab = Vocab.from_dict(ckpt["vocab"])
    train_docs = training_docs(ckpt, vocab, None)
    test_docs = heldout_docs(test_path, ckpt["pipeline"], vocab)
    scores = {n: KneserNeyLM(n, vocab=vocab).fit(train_docs).evaluate(test_docs).bits_per_token for n in orders}
    order = min(scores, key=scores.get)
    return order, scores[order]


def quality(work: Path, quick: bool) -> str:
    runs = [
        ("Song ci (zh, 250 KB)", CORPORA / "zh" / "songci_sample.txt",
         {"emb_size": 256, "hidden_size": 256, "num_layers": 1, "dropout": 0.5, "tie_weights": True},
         dict(bptt=50, batch_size=32, lr=0.004, max_steps=1400, eval_every=100, patience=3)),
        ("Shakespeare (en, 300 KB)", CORPORA / "en" / "shakespeare_sample.txt",
         {"emb_size": 64, "hidden_size": 384, "num_layers": 1, "dropout": 0.05},
         dict(bptt=64, batch_size=32, lr=0.006, max_steps=1400, eval_every=100, patience=3)),
    ]
    lines = ["| corpus | model | train steps | train time (s) | test BPC (LSTM) | best KN order | "
             "test BPC (KN) | LSTM / KN |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, src, model, overrides in runs:
        train_path, test_path = split_lines(src, work)
        if quick:
            overrides = {**overrides, "max_steps": 60, "eval_every": 30}
        cfg = LMTrainConfig(data=str(train_path), output=str(work / f"q_{src.stem}"), level="char", seed=0,
                          device="cpu", valid_ratio=0.05, scheduler="cosine", epochs=100, **overrides)
        start = time.perf_counter()
        result = train(cfg, model, quiet=True, force=True)
        seconds = time.perf_counter() - start
        report = evaluate_checkpoint(result.best_checkpoint, test_path, horizon=1, baseline=False)
        lstm_bpc = report.rows[0].metric
        order, kn_bpc = best_ngram(Path(result.best_checkpoint), test_path)
        desc = (f"LSTM {model['num_layers']}x{model['hidden_size']}, emb {model['emb_size']}"
                f"{' tied' if model.get('tie_weights') else ''}, dropout {model['dropout']}")
        lines.append(f"| {name} | {desc} | {result.steps} | {seconds:.0f} | {lstm_bpc:.3f} | {order} | "
                     f"{kn_bpc:.3f} | {lstm_bpc / kn_bpc:.3f} |")
        print(lines[-1], flush=True)
    return "\n".join(lines)


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
    src = CORPORA / "en" / "pride_sample.txt"
    steps = 20 if quick else 150
    data = load_lm_data(src, level="word", lang="en")
    streams = batchify(data.ids, 20)
    # no validation split: both loops only train (textseq still writes its end-of-epoch checkpoint)
    cfg = LMTrainConfig(data=str(src), output=str(work / "speed"), level="word", lang="en", bptt=35, batch_size=20,
                      optimizer="sgd", lr=20.0, clip=0.25, max_steps=steps, epochs=100, seed=0, device="cpu",
                      valid_ratio=0.0)
    model = {"emb_size": 200, "hidden_size": 200, "num_layers": 2, "dropout": 0.2}
    ours, plain = [], []
    for _ in range(3):
        ours.append(train(cfg, model, quiet=True, force=True).tokens_per_sec)
        plain.append(plain_loop(streams, len(data.vocab), steps))
    ours_med, plain_med = statistics.median(ours), statistics.median(plain)
    lines = [f"Pride and Prejudice sample, word level: {len(data.ids)} tokens, vocabulary {len(data.vocab)}; "
             f"{steps} updates per run, 3 alternating runs each, median.", "",
             "| trainer | tokens/s (median) | runs | ratio vs plain |", "| --- | ---: | --- | ---: |",
             f"| textseq train (teacher forcing) | {ours_med:,.0f} | {', '.join(f'{v:,.0f}' for v in ours)} | "
             f"{ours_med / plain_med:.2f} |",
             f"| plain nn.LSTM + full softmax loop | {plain_med:,.0f} | {', '.join(f'{v:,.0f}' for v in plain)} | "
             "1.00 |"]
    print("\n".join(lines), flush=True)
    return "\n".join(lines)


def modes(work: Path, quick: bool) -> str:
    train_path, test_path = split_lines(CORPORA / "en" / "shakespeare_sample.txt", work)
    steps = 30 if quick else 300
    model = {"emb_size": 64, "hidden_size": 192, "num_layers": 1, "dropout": 0.1}
    lines = ["| training mode | steps | train time (s) | test BPC teacher-forced | "
             "test BPC free-running 10-step | free-running / teacher-forced |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for mode, extra in (("teacher-forcing", {}), ("free-running", {}),
                        ("scheduled-sampling", {"schedule": "inverse-sigmoid"})):
        cfg = LMTrainConfig(data=str(train_path), output=str(work / f"mode_{mode}"), level="char", bptt=50,
                          batch_size=32, lr=0.003, max_steps=steps, epochs=100, valid_ratio=0.05, eval_every=100,
                          seed=0, device="cpu", mode=mode, **extra)
        start = time.perf_counter()
        result = train(cfg, model, quiet=True, force=True)
        seconds = time.perf_counter() - start
        report = evaluate_checkpoint(result.last_checkpoint, test_path, horizon=10, baseline=False)
        teacher, free = report.rows[0].metric, report.rows[1].metric
        label = mode + (f" ({extra['schedule']})" if extra else "")
        lines.append(f"| {label} | {result.steps} | {seconds:.0f} | {teacher:.3f} | {free:.3f} | "
                     f"{free / teacher:.3f} |")
        print(lines[-1], flush=True)
    return "\n".join(lines)


SECTIONS = {"quality": ("Char LSTM vs Kneser-Ney (held-out bits per char)", quality),
            "speed": ("Word-LM training speed (2x200 LSTM, bptt 35, batch 20)", speed),
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
