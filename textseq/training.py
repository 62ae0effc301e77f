"""Training parts shared by the language models (:mod:`textseq.lm.train`) and the forecasters
(:mod:`textseq.forecast.train`): optimizer and LR-schedule factories, one guarded update step and
early stopping. Each area keeps its own loop (the LM's carries TBPTT state, resumes and runs under DDP).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from textseq.errors import TextseqError, TrainingDiverged, check_choice

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "step", "cosine", "plateau")
PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device: torch.device) -> bool:
    """Whether this device multiplies bfloat16 matrices natively (a CPU with AMX or AVX512-BF16, a CUDA GPU
    that supports it); elsewhere bfloat16 is emulated and slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = torch.cpu
        return any(getattr(cpu, name, lambda: False)() for name in ("_is_amx_tile_supported",
                                                                     "_is_avx512_bf16_supported"))
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` where the device computes it natively (about twice the tokens/s of float32 for the
    LSTMs here, bench/bench_lm.py), else ``fp32``; ``fp32`` as given; ``bf16`` only where the device has it
    (elsewhere it is emulated, slower than float32, and oneDNN has no bfloat16 LSTM for such a CPU at all)."""
    check_choice("precision", precision, PRECISIONS)
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision == "bf16" and not native_bf16(device):
        raise TextseqError(f"--precision bf16 needs a device that computes bfloat16 natively (a CPU with AMX or "
                           f"AVX512-BF16, a recent GPU); this {device.type} has none: use --precision fp32 or auto")
    return precision


def autocast(precision: str, device: torch.device):
    """The forward-pass context of a training step: bfloat16 mixed precision (weights, gradients and optimizer
    state stay float32) or nothing."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def make_optimizer(name: str, params: Iterable[nn.Parameter], lr: float, momentum: float = 0.0,
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    check_choice("optimizer", name, OPTIMIZERS)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def make_scheduler(name: str, optimizer: torch.optim.Optimizer, total_steps: int, step_size: int = 1000,
                   gamma: float = 0.5):
    """An LR schedule stepped once per update, except "plateau", stepped on each validation loss."""
    check_choice("scheduler", name, SCHEDULERS)
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma=gamma)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=gamma, patience=0)
    return None


def guarded_update(loss: Tensor, optimizer: torch.optim.Optimizer, params: Iterable[nn.Parameter], clip: float,
                   *, reduce: Callable[[Tensor], Tensor] | None = None, hint: str = "lower --lr") -> float:
    """Back-propagate ``loss``, clip the gradient norm (``clip`` > 0), refuse a non-finite loss, step.

    ``reduce`` turns the detached loss into the value that is checked and returned (e.g. the mean
    across distributed ranks, so that every rank stops at the same update). Gradients must be zeroed
    by the caller before the forward pass.
    """
    loss.backward()
    if clip > 0:
        nn.utils.clip_grad_norm_(list(params), clip)
    value = float(reduce(loss.detach()) if reduce is not None else loss.detach())
    if not math.isfinite(value):
        raise TrainingDiverged(f"training diverged (the loss became {value}); {hint}")
    optimizer.step()
    return value


@dataclass
class EarlyStopping:
    """Counts validations without improvement of a loss (lower is better); ``patience`` 0 never stops."""

    patience: int = 0
    best: float | None = None
    bad_evals: int = 0

    def update(self, value: float) -> bool:
        """Record a validation loss; returns whether it is a new best."""
        improved = self.best is None or value < self.best
        if improved:
            self.best, self.bad_evals = value, 0
        else:
            self.bad_evals += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_evals >= self.patience
