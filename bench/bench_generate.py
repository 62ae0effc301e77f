"""Generation and output-layer speed, measured side by side in one run.

1. Carried-state generation (textseq.lm.sampling.generate) vs a naive loop that re-runs the
   whole prefix for every new token, char LSTM 2x256, lengths 100..1600: the first must
   cost the same per token at every length (linear total), the second grows (quadratic).
2. From-scratch LSTM vs torch.nn.LSTM, forward and forward+backward on a 20x35 batch.
3. Full softmax vs adaptive softmax output layer at V=30000, hidden 200, batch 20x35,
   forward+backward, targets drawn from a Zipf law like real word frequencies.

    python bench/bench_generate.py [--threads 1] [--lengths 100,200,400,800,1600]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from textseq.io import atomic_write_text
from textseq.lm.model import LMConfig, RNNLanguageModel
from textseq.lm.sampling import SamplingConfig, choose_next, generate
from textseq.models.cells import build_rnn

RESULTS = Path(__file__).parent / "results" / "bench_generate.md"
CHAR_VOCAB = 100


def timed(fn, repeats: int = 1) -> float:
    """Least CPU time of ``repeats`` runs, in seconds. With one thread, the process's CPU time is
    what the work costs; other jobs on a shared machine disturb it far less than wall time."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


@torch.no_grad()
def naive_generate(model: RNNLanguageModel, prompt: list[int], cfg: SamplingConfig) -> list[int]:
    """What many tutorials do: feed the entire sequence so far for every new token."""
    generator = torch.Generator().manual_seed(cfg.seed)
    ids = list(prompt)
    for _ in range(cfg.max_tokens):
        features, _ = model(torch.tensor([ids]))
        ids.append(int(choose_next(model.log_probs(features[:, -1]), cfg, generator)))
    return ids[len(prompt):]


def bench_generation(lengths: list[int]) -> list[list[str]]:
    torch.manual_seed(0)
    model = RNNLanguageModel(LMConfig(vocab_size=CHAR_VOCAB, emb_size=64, hidden_size=256, num_layers=2)).eval()
    prompt = list(range(1, 11))
    rows, base_carried, base_naive = [], None, None
    for length in lengths:
        cfg = SamplingConfig(max_tokens=length, stop_at_eos=False, seed=0)
        carried = timed(lambda cfg=cfg: generate(model, prompt, cfg), repeats=5)
        naive = timed(lambda cfg=cfg: naive_generate(model, prompt, cfg))
        assert generate(model, prompt, cfg)[0] == naive_generate(model, prompt, cfg)  # same tokens
        base_carried = base_carried or carried / length
        base_naive = base_naive or naive / length
        rows.append([str(length), f"{carried * 1e3:.1f}", f"{carried / length * 1e6:.0f}",
                     f"{carried / length / base_carried:.2f}", f"{length / carried:.0f}",
                     f"{naive * 1e3:.0f}", f"{naive / length * 1e6:.0f}",
                     f"{naive / length / base_naive:.2f}", f"{naive / carried:.1f}"])
    return rows


def bench_step_kernels(batch_sizes=(1, 20)) -> list[list[str]]:
    """RNNLanguageModel.step bypasses oneDNN; time one-token steps with and without it."""
    torch.manual_seed(0)
    model = RNNLanguageModel(LMConfig(vocab_size=CHAR_VOCAB, emb_size=64, hidden_size=256, num_layers=2)).eval()
    rows = []
    for batch in batch_sizes:
        ids = torch.randint(0, CHAR_VOCAB, (batch, 1))

        def steps(onednn: bool, ids=ids):
            torch.backends.mkldnn.enabled = onednn
            with torch.no_grad():
                hidden = None
                for _ in range(50):
                    features, hidden = model(ids, hidden)
            torch.backends.mkldnn.enabled = True

        t_onednn, t_plain = timed(lambda: steps(True), 3), timed(lambda: steps(False), 3)
        rows.append([str(batch), f"{t_onednn / 50 * 1e6:.0f}", f"{t_plain / 50 * 1e6:.0f}",
                     f"{t_onednn / t_plain:.2f}"])
    return rows


def bench_scratch_vs_torch() -> list[list[str]]:
    torch.manual_seed(0)
    fast = build_rnn("lstm", 64, 256, num_layers=2)
    slow = build_rnn("lstm", 64, 256, num_layers=2, impl="scratch")
    slow.load_state_dict(fast.state_dict())
    x = torch.randn(20, 35, 64)

    def forward(rnn):
        with torch.no_grad():
            rnn(x)

    def forward_backward(rnn):
        out, _ = rnn(x)
        out.sum().backward()

    rows = []
    for name, fn in (("forward", forward), ("forward+backward", forward_backward)):
        t_fast, t_slow = timed(lambda fn=fn: fn(fast), 5), timed(lambda fn=fn: fn(slow), 5)
        rows.append([name, f"{t_fast * 1e3:.1f}", f"{t_slow * 1e3:.1f}", f"{t_slow / t_fast:.2f}"])
    return rows


def zipf_targets(vocab_size: int, shape: tuple[int, ...]) -> torch.Tensor:
    ranks = torch.arange(1, vocab_size + 1, dtype=torch.float)
    gen = torch.Generator().manual_seed(0)
    return torch.multinomial(1.0 / ranks, shape[0] * shape[1], replacement=True, generator=gen).view(shape)


def bench_softmax(vocab_size: int = 30000, hidden: int = 200, batch: int = 20, bptt: int = 35):
    torch.manual_seed(0)
    targets = zipf_targets(vocab_size, (batch, bptt))
    features = torch.randn(batch, bptt, hidden, requires_grad=True)
    times = {}
    for adaptive in (False, True):
        cfg = LMConfig(vocab_size=vocab_size, emb_size=hidden, hidden_size=hidden, adaptive_softmax=adaptive)
        model = RNNLanguageModel(cfg)

        def step(model=model):
            model.zero_grad(set_to_none=True)
            model.loss(features, targets).backward()

        step()  # warm-up
        times[adaptive] = timed(step, repeats=7)
    cutoffs = list(LMConfig(vocab_size=vocab_size, adaptive_softmax=True).resolved_cutoffs())
    return [[f"V={vocab_size}, hidden {hidden}, batch {batch}x{bptt}, cutoffs {cutoffs}",
             f"{times[False] * 1e3:.1f}", f"{times[True] * 1e3:.1f}", f"{times[False] / times[True]:.2f}"]]


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lengths", default="100,200,400,800,1600")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lengths = [int(n) for n in args.lengths.split(",")]

    sections = [
        "# bench_generate\n",
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU time of the process, least of "
        "several runs (naive: one run). Machine shared with other jobs: compare ratios, not absolute times.\n",
        "## Generation: carried state vs re-running the prefix (char LSTM 2x256, V=100, sampling)\n",
        table(["tokens", "carried ms", "carried µs/token", "µs/token vs shortest", "tokens/s",
               "naive ms", "naive µs/token", "µs/token vs shortest", "naive / carried"],
              bench_generation(lengths)),
        "\n## One-token step (char LSTM 2x256): oneDNN RNN kernel vs plain kernel (what step() uses)\n",
        table(["batch", "oneDNN µs/step", "plain µs/step", "oneDNN / plain"], bench_step_kernels()),
        "\n## From-scratch LSTM vs torch.nn.LSTM (2x256, input 64, batch 20x35)\n",
        table(["pass", "torch.nn ms", "scratch ms", "scratch / torch.nn"], bench_scratch_vs_torch()),
        "\n## Output layer forward+backward: full vs adaptive softmax\n",
        table(["setting", "full softmax ms", "adaptive softmax ms", "full / adaptive"], bench_softmax()),
    ]
    report = "\n".join(sections) + "\n"
    print(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS, report)


if __name__ == "__main__":
    main()
