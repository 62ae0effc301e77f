"""The season length m: from the data's frequency, kept only when the series shows it.

A monthly interest rate has a frequency but no season; treating it as seasonal makes seasonal naive the
reference and invites seasonal differencing that only adds noise. The test is the one the M4 benchmarks use:
the autocorrelation at lag m must exceed 1.645 times its standard error (90%, one-sided), here computed on the
series minus its centred moving average of one season (the classical decomposition's trend), so a trend or a
random walk, whose autocorrelations are all near 1, does not pass for a season.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from textseq.forecast.data import season_from_freq


@dataclass
class Season:
    period: int  # m used for seasonal models, seasonal naive and MASE (1 = none)
    candidate: int  # what the frequency (or --season) suggests
    reason: str  # one line for the output

    def describe(self) -> str:
        return f"season m={self.period} ({self.reason})"


def _acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    x = x - x.mean()
    denominator = float(x @ x)
    if denominator == 0:
        return np.zeros(max_lag + 1)
    return np.array([1.0] + [float(x[k:] @ x[:-k]) / denominator for k in range(1, max_lag + 1)])


def _detrended(x: np.ndarray, m: int) -> np.ndarray:
    """``x`` minus its centred moving average of length m (a 2 x m average for even m)."""
    weights = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    trend = np.convolve(x, weights, mode="valid")
    offset = (len(weights) - 1) // 2
    return x[offset:offset + len(trend)] - trend


def seasonal_strength(values: np.ndarray, m: int) -> tuple[float, float]:
    """(autocorrelation at lag m of the detrended series, its 90% threshold)."""
    x = _detrended(np.asarray(values, dtype=np.float64), m)
    acf = _acf(x, m)
    threshold = 1.645 * np.sqrt((1 + 2 * np.sum(acf[1:m] ** 2)) / len(x))
    return float(acf[m]), float(threshold)


def detect_season(values: np.ndarray, freq: str | None, given: int | None = None) -> Season:
    """``given`` (--season) wins; otherwise the frequency's period when the data shows it (needs 3 seasons)."""
    if given:
        return Season(given, given, "from --season")
    candidate = season_from_freq(freq)
    if candidate <= 1:
        return Season(1, candidate, f"frequency {freq}: none" if freq else "no dates or frequency: none")
    if len(values) < 3 * candidate:
        return Season(1, candidate, f"frequency {freq} suggests {candidate}, but the series has under 3 seasons")
    acf, threshold = seasonal_strength(values, candidate)
    if acf > threshold:
        return Season(candidate, candidate, f"frequency {freq}; lag-{candidate} autocorrelation {acf:.2f} > "
                                            f"{threshold:.2f}")
    return Season(1, candidate, f"frequency {freq} suggests {candidate}, but the lag-{candidate} autocorrelation "
                                f"{acf:.2f} is below {threshold:.2f}: not seasonal")
