"""Forecasting quality on real series: the best RNN configuration (chosen on the validation part,
never on the test tail) against naive / seasonal naive / drift / ARIMA / ETS on the same origins.

    python bench/bench_forecast.py [--quick]

Per dataset: a small grid (LSTM/GRU x target transforms, direct multi-step output) is trained with
early stopping on the validation part; the configuration with the lowest validation MAE is kept, its
teacher-forced and free-running (recursive) variants are tried, then a 3-seed ensemble of the winner
is kept only if it also lowers the validation MAE. The test tail (last 30%) is scored once, at
every origin, for the model and the baselines; MASE is scaled by the in-sample seasonal naive MAE.
A rolling-origin backtest (k=3, everything refit at each origin) of the chosen configuration follows.
Writes the same tables to bench/results/bench_forecast.md.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import torch

from textseq.forecast.config import ForecastConfig, ForecastModelConfig, ForecastTrainConfig, TransformConfig
from textseq.forecast.data import season_from_freq
from textseq.forecast.datasets import load_dataset
from textseq.forecast.evaluation import backtest, evaluate_tail
from textseq.forecast.train import train_forecaster, validation_origins
from textseq.io import atomic_write_text

# dataset -> (horizon, input window); macrodata forecasts its default target, tbilrate (T-bill rate)
DATASETS = {"airline": (12, 24), "co2": (12, 24), "elec_equip": (12, 24), "macrodata": (4, 16), "sunspots": (10, 22)}


def transforms(series, season: int) -> dict[str, TransformConfig]:
    options = {"plain": TransformConfig(), "diff1": TransformConfig(diff=1)}
    if season > 1:
        options[f"diff{season}"] = TransformConfig(diff=season)
        if (series.target_values > 0).all():
            options[f"log+diff{season}"] = TransformConfig(log=True, diff=season)
    return options


def validation_mae(forecaster, series, split, horizon: int) -> float:
    origins = validation_origins(forecaster.cfg, split, forecaster.transform.lag)
    truth = np.stack([series.target_values[o:o + horizon] for o in origins])
    return float(np.abs(forecaster.predict(series, origins) - truth).mean())


def candidates(series, season: int, horizon: int, seq_len: int, epochs: int, arches=("lstm", "gru")):
    for arch in arches:
        for name, transform in transforms(series, season).items():
            cfg = ForecastConfig(seq_len=seq_len, horizon=horizon, transform=copy.deepcopy(transform),
                                 model=ForecastModelConfig(arch=arch, hidden_size=32),
                                 train=ForecastTrainConfig(mode="direct", epochs=epochs, patience=30, batch_size=16))
            yield f"{arch} {name}", cfg


def with_mode(label: str, cfg: ForecastConfig, mode: str) -> tuple[str, ForecastConfig]:
    cfg = copy.deepcopy(cfg)
    cfg.train.mode = mode
    return f"{label} {mode}", cfg


def select(series, horizon, named_configs):
    """Train every candidate; return (label, cfg, result, val MAE) of the best on validation + the log."""
    log, best = [], None
    for label, cfg in named_configs:
        result = train_forecaster(series, cfg, quiet=True)
        val = validation_mae(result.forecaster, series, result.split, horizon)
        log.append((label, val))
        if best is None or val < best[3]:
            best = (label, cfg, result, val)
    return best, log


def select_rnn(series, season, horizon, seq_len, epochs):
    """Direct-mode grid, then the recursive modes of its winner, then a 3-seed ensemble of the winner:
    each step kept only if it lowers the validation MAE. Returns (label, cfg, result, val MAE, log)."""
    (label, cfg, result, val), log = select(series, horizon, candidates(series, season, horizon, seq_len, epochs,
                                                                        ("lstm", "gru")))
    best_recursive, recursive_log = select(series, horizon, [with_mode(label, cfg, m) for m in ("teacher", "free")])
    log += recursive_log
    if best_recursive[3] < val:
        label, cfg, result, val = best_recursive
    ensemble_cfg = copy.deepcopy(cfg)
    ensemble_cfg.train.ensemble = 3
    ensemble = train_forecaster(series, ensemble_cfg, quiet=True)
    ensemble_val = validation_mae(ensemble.forecaster, series, ensemble.split, horizon)
    log.append((f"{label} x3 seeds", ensemble_val))
    if ensemble_val < val:
        return f"{label} x3 seeds", ensemble_cfg, ensemble, ensemble_val, log
    return label, cfg, result, val, log


def metrics_table(rows: dict, reference: float, columns=("mae", "rmse", "smape", "mase")) -> list[str]:
    header = ["model", *(c.upper() if c != "smape" else "sMAPE %" for c in columns), "MASE / seasonal-naive MASE"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model, m in rows.items():
        cells = [f"{getattr(m, c):.4g}" for c in columns]
        lines.append(f"| {model} | {' | '.join(cells)} | {m.mase / reference:.2f} |")
    return lines


def run_dataset(name: str, epochs: int, k: int) -> tuple[str, dict]:
    horizon, seq_len = DATASETS[name]
    series = load_dataset(name)
    start = time.perf_counter()
    season = season_from_freq(series.freq)
    label, cfg, result, val, log = select_rnn(series, season, horizon, seq_len, epochs)
    mlp_grid = candidates(series, season, horizon, seq_len, epochs, ("mlp",))
    (mlp_label, _, mlp_result, mlp_val), mlp_log = select(series, horizon, mlp_grid)
    report = evaluate_tail(result.forecaster, series, model_name="RNN (selected)")
    mlp_rows = evaluate_tail(mlp_result.forecaster, series, baselines=(), model_name="MLP (selected)").rows
    rows = {"RNN (selected)": report.rows["RNN (selected)"], "MLP (selected)": mlp_rows["MLP (selected)"]}
    rows.update({model: m for model, m in report.rows.items() if model != "RNN (selected)"})
    bt = backtest(series, cfg, k) if k else None
    lines = [f"### {name}: {series.target} ({len(series)} points, horizon {horizon}, window {seq_len}, "
             f"season m={season})", "",
             f"Selected on validation: **{label}** (val MAE {val:.4g}); MLP: {mlp_label} (val MAE {mlp_val:.4g}).",
             "Candidates (val MAE): " + ", ".join(f"{lab} {v:.4g}" for lab, v in log + mlp_log) + ".", "",
             f"Test tail: {report.n_origins} origins x {horizon} steps.", "",
             *metrics_table(rows, rows["seasonal_naive"].mase)]
    if bt:
        lines += ["", f"Rolling-origin backtest, k={k} origins (every {horizon} steps from {bt.first_origin}), "
                  "all models refit at each origin:", "",
                  *metrics_table(bt.rows, bt.rows["seasonal_naive"].mase, ("mae", "mase"))]
    lines += ["", f"({time.perf_counter() - start:.0f} s)", ""]
    rnn = rows["RNN (selected)"].mase
    summary = {"name": name, "chosen": label, "rnn": rnn, "snaive": rows["seasonal_naive"].mase,
               "arima": rows["arima"].mase, "ets": rows["ets"].mase, "mlp": rows["MLP (selected)"].mase,
               "backtest": bt.rows[cfg.model.arch].mase / bt.rows["seasonal_naive"].mase if bt else float("nan"),
               "beaten_by": [model for model, m in rows.items() if m.mase < rnn]}
    return "\n".join(lines), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs, no backtest (smoke run)")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    epochs, k = (30, 0) if args.quick else (300, 3)
    sections, summaries = [], []
    for name in args.datasets.split(","):
        section, summary = run_dataset(name, epochs, k)
        print(section, flush=True)
        sections.append(section)
        summaries.append(summary)
    head = ["| dataset | selected RNN | RNN MASE | seasonal naive MASE | ratio | MLP | ARIMA | ETS | "
            "backtest RNN / snaive | lower test MASE than the RNN |", "|---|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        verdict = "below" if s["rnn"] < s["snaive"] else "NOT below"
        head.append(f"| {s['name']} | {s['chosen']} | {s['rnn']:.3f} | {s['snaive']:.3f} | "
                    f"{s['rnn'] / s['snaive']:.2f} ({verdict}) | {s['mlp']:.3f} | {s['arima']:.3f} | "
                    f"{s['ets']:.3f} | {s['backtest']:.2f} | {', '.join(s['beaten_by']) or '-'} |")
    summary = "\n".join(head)
    print(summary)
    text = "\n".join(["# bench_forecast", "", __doc__.strip().split("\n\n", 1)[1], "",
                      f"Command: `python bench/bench_forecast.py{' --quick' if args.quick else ''}`; "
                      f"torch {torch.__version__}, 1 thread, CPU.", "", "## Summary (test-tail MASE)", "",
                      summary, "", "## Per dataset", "", *sections])
    out = Path(__file__).parent / "results" / "bench_forecast.md"
    out.parent.mkdir(exist_ok=True)
    atomic_write_text(out, text + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
