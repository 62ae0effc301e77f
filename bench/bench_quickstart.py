"""The README's quick start, run as written, with the numbers it must report: the LM against its KN partner.

    python bench/bench_quickstart.py

Takes the first command of the README's quick start (``pip install ... && textseq train ... && textseq
generate ...``), skips the install (this environment has the package), runs the ``textseq`` commands in turn
from the repository root and prints what training fitted on the validation split at its end (stored in best.pt):
the bits per character of the LM, of its Kneser-Ney partner, of the two mixed, with the cache and with dynamic
evaluation, each with its ratio to KN (issue 9: the quick start must beat its KN). The run directory is the
README's (``runs/...``, outside git).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STOP = re.compile(r"stopped \((.+?)\) after (\d+) steps")


def quickstart_commands(readme: str) -> list[list[str]]:
    """The ``textseq`` commands of the quick start's first code block (its install step left out)."""
    section = readme.split("## Quick start", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    line = next(line for line in block.splitlines() if "textseq train" in line)
    steps = [shlex.split(step) for step in line.split("&&")]
    return [step for step in steps if step and step[0] == "textseq"]


def main() -> None:
    commands = quickstart_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    log = ""
    for argv in commands:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "textseq", *argv[1:]], cwd=ROOT, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{shlex.join(argv)} failed:\n{done.stderr[-2000:]}")
        print(f"{shlex.join(argv)}: {time.perf_counter() - start:.0f} s", flush=True)
        log += done.stderr + done.stdout
    run_dir = Path(commands[0][commands[0].index("-o") + 1])
    print(validation_numbers(ROOT / run_dir / "best.pt"))
    if stop := STOP.search(log):
        print(f"training stopped ({stop[1]}) after {stop[2]} updates")


def validation_numbers(best: Path) -> str:
    """What training fitted on the validation split at its end (stored in best.pt), in the run's metric."""
    from textseq.lm.checkpoint import read_lm
    from textseq.lm.report import metric_name, metric_value

    ckpt = read_lm(best)
    level = ckpt["train_config"]["level"]
    mix, cache, cache_kn, dynamic = (ckpt[key] for key in ("ngram", "cache", "cache_with_kn", "dynamic"))
    kn = metric_value(mix["valid_nll_kn"], level)
    rows = {"LM": mix["valid_nll_lm"], "KN": mix["valid_nll_kn"], "LM+KN": mix["valid_nll_mix"],
            "LM+cache": cache["valid_nll_cache"], "LM+KN+cache": cache_kn["valid_nll_cache"],
            "LM dynamic": dynamic["valid_nll_dynamic"], "LM dynamic+KN": dynamic.get("valid_nll_dynamic_kn")}
    lines = [f"validation {metric_name(level)} (x KN):"]
    for name, nll in rows.items():
        if nll is not None:
            value = metric_value(nll, level)
            lines.append(f"  {name:14s} {value:7.3f}  {value / kn:.3f}")
    verdict = "beats" if mix["valid_nll_lm"] < mix["valid_nll_kn"] else "LOSES TO"
    return "\n".join([*lines, f"the LM alone {verdict} its KN partner"])


if __name__ == "__main__":
    main()
