"""One progress reporter for every long job (preprocess, LM training, forecasting): a rich bar on a
terminal, a plain line every ``log_every`` updates otherwise, and log lines that never break the bar.

The bar is refreshed from the caller's thread on each update (no refresh thread), so worker
processes can be forked safely while it is shown.
"""

from __future__ import annotations

import sys


class ProgressReporter:
    def __init__(self, label: str, total: float | None = None, *, enabled: bool = True, log_every: int = 0,
                 unit: str = "steps", transient: bool = False):
        """``unit`` "bytes" shows sizes and transfer speed; anything else shows done/total counts."""
        self.label, self.total, self.enabled = label, total, enabled
        self.log_every, self.unit, self.bar = max(0, log_every), unit, None
        self._updates = 0
        from rich.console import Console

        console = Console(stderr=True)
        if enabled and console.is_terminal:  # a TTY, or FORCE_COLOR set
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            counts = (DownloadColumn(), TransferSpeedColumn()) if unit == "bytes" else (MofNCompleteColumn(),)
            self.bar = Progress(TextColumn(f"[bold]{label}"), BarColumn(), *counts, TextColumn("{task.fields[stats]}"),
                                TimeElapsedColumn(), TimeRemainingColumn(), console=console,
                                auto_refresh=False, transient=transient)
            self.task = self.bar.add_task(label, total=total, stats="")

    def __enter__(self) -> ProgressReporter:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def update(self, completed: float, total: float | None = None, stats: str = "") -> None:
        if not self.enabled:
            return
        self.total = total if total is not None else self.total
        self._updates += 1
        if self.bar is not None:
            self.bar.update(self.task, completed=completed, total=self.total, stats=stats)
            self.bar.refresh()
        elif self.log_every and self._updates % self.log_every == 0:
            done = f"{completed:g}" + (f"/{self.total:g}" if self.total else "")
            print(f"{self.label} {done} {stats}".rstrip(), file=sys.stderr, flush=True)

    def log(self, message: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.console.print(message)
        else:
            print(message, file=sys.stderr, flush=True)
