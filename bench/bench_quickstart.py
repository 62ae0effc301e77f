"""The README's quick start, run as written, with the numbers it must report: the LM against its KN partner.

    python bench/bench_quickstart.py

Takes the first command of the README's quick start (``pip install ... && textseq train ... && textseq
generate ...``), skips the install (this environment has the package), runs the ``textseq`` commands in turn
from the repository root and prints the validation bits per character of the LM, of its Kneser-Ney partner, of
the two mixed and with the cache, as training printed them, with the LM / KN ratio (issue 9: the quick start
must beat its KN). The run directory is the README's (``runs/...``, outside git).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIX_LINE = re.compile(r"validation: LM ([\d.]+) (\w+), KN ([\d.]+) \w+, mix ([\d.]+) \w+")
CACHE_LINE = re.compile(r"^(cache|LM\+KN\+cache) of \d+: .*-> ([\d.]+) \w+", re.M)
UPDATES = re.compile(r"stopped \((.+?)\) after (\d+) steps")


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
    mix = MIX_LINE.search(log)
    if mix is None:
        raise SystemExit("training printed no LM / KN validation line")
    lm, unit, kn, mixed = float(mix[1]), mix[2], float(mix[3]), float(mix[4])
    verdict = "beats" if lm < kn else "loses to"
    print(f"validation {unit}: LM {lm:.3f}, KN {kn:.3f}, LM / KN {lm / kn:.3f} ({verdict} KN); "
          f"LM+KN {mixed:.3f} ({mixed / kn:.3f} x KN)")
    for name, value in CACHE_LINE.findall(log):
        print(f"validation {unit}: {name} {float(value):.3f} ({float(value) / kn:.3f} x KN)")
    if stop := UPDATES.search(log):
        print(f"training stopped ({stop[1]}) after {stop[2]} updates")


if __name__ == "__main__":
    main()
