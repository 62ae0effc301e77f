"""Forecasting quality on a panel of real series: `textseq forecast train` with its defaults (the auto model)
against every baseline it prints, on the same test-tail origins.

    python bench/bench_forecast.py [--series airline,nile] [--group new] [--quick]

The panel: 98 offline series from the statsmodels and sktime wheels, in five groups reported separately.
"dev" (airline, co2, elec_equip, macrodata tbilrate, sunspots): used while developing the defaults. "held-out"
(11 series): first scored in 0.3, never looked at before. "new" (40 series added after 0.3: six more macrodata
columns, four more uschange columns, German inflation, two Danish series, 27 countries' fertility rates, the
countries by a fixed rule): held out until the combination rule of this release (median of the three best,
networks combined only from 40 training points) was chosen on all 56 series above, so now development data as
well. "fresh" (21 more countries' fertility rates, by a second fixed rule, collected before that rule was
chosen and scored once with it): never used to choose anything. "fresh-2" (21 more countries by a third fixed
rule, collected after this release's rule was chosen): never used to choose anything either.
Horizon by frequency, as in the M4 competition where it fits: monthly 12, quarterly 8, annual 6 (at most a
sixth of the series). Every model sees the same chronological split (test = last 30%); MASE is scaled by the
in-sample seasonal naive MAE; the "best baseline" is the lowest test MASE among naive, seasonal naive, drift,
ETS, ARIMA, theta and the MLP (an oracle choice made on the test tail, so the bar is high). "0.2 default" is the
previous release's default run (one LSTM, window 24, no transform) for reference. Intervals: split conformal on
the validation errors, coverage and MSIS at 80% and 95%, next to seasonal naive with the same method.
Writes bench/results/bench_forecast.md and .json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from textseq.errors import TextseqError
from textseq.forecast.auto import choose_members, combine_forecasts
from textseq.forecast.config import ForecastConfig, ForecastTrainConfig
from textseq.forecast.datasets import load_dataset
from textseq.forecast.evaluation import evaluate_tail
from textseq.forecast.metrics import compute_metrics, seasonal_naive_scale
from textseq.forecast.train import train_forecaster
from textseq.io import atomic_write_text

# name -> (dataset, target or None, group)
PANEL = {
    "airline": ("airline", None, "dev"), "co2": ("co2", None, "dev"), "elec_equip": ("elec_equip", None, "dev"),
    "tbilrate": ("macrodata", "tbilrate", "dev"), "sunspots": ("sunspots", None, "dev"),
    "seatbelts": ("seatbelts", None, "held-out"), "pbs": ("pbs", None, "held-out"),
    "elnino": ("elnino", None, "held-out"), "shampoo": ("shampoo", None, "held-out"),
    "uschange": ("uschange", None, "held-out"), "interest": ("interest", None, "held-out"),
    "danish": ("danish", None, "held-out"), "realgdp": ("macrodata", "realgdp", "held-out"),
    "unemp": ("macrodata", "unemp", "held-out"), "lynx": ("lynx", None, "held-out"),
    "nile": ("nile", None, "held-out"),
    # added after 0.3, never used to choose a default
    **{name: ("macrodata", name, "new") for name in ("realcons", "realinv", "cpi", "m1", "infl", "realint")},
    **{name.lower(): ("uschange", name, "new") for name in ("Income", "Production", "Savings", "Unemployment")},
    "inflation_de": ("interest", "Dp", "new"), "lry": ("danish", "lry", "new"), "ibo": ("danish", "ibo", "new"),
    **{f"fertility_{code.lower()}": ("fertility", code, "new") for code in ("USA", "JPN", "IND", "BRA", "NGA", "FRA")},
    # every 9th of the other countries with a complete record (a rule fixed before looking at them)
    **{f"fertility_{code.lower()}": ("fertility", code, "new") for code in (
        "ABW", "AUT", "BHS", "CAF", "COL", "DNK", "FIN", "GNB", "HRV", "ITA", "KWT", "LTU", "MLI", "MYS", "OED",
        "PRI", "RWA", "STP", "THA", "UGA", "WSM")},
    # fresh: every 9th from the 5th of the 186 complete records other than the six above, minus those used
    **{f"fertility_{code.lower()}": ("fertility", code, "fresh") for code in (
        "ARE", "BEN", "BOL", "CHL", "CRI", "ECU", "GAB", "GRD", "IDN", "KAZ", "LBR", "MAR", "MNE", "NER", "PAK",
        "PRY", "SEN", "SVN", "TLS", "UZB", "ZMB")},
    # fresh-2: every 9th from the 2nd of the records other than the six above, in the dataset's column order (none
    # used before); collected after this release's rule was chosen, scored once with it and once with one
    # alternative (naive as a fourth combinable forecast), which lost here and was not shipped
    **{f"fertility_{code.lower()}": ("fertility", code, "fresh-2") for code in (
        "AFG", "AZE", "BIH", "CAN", "COM", "DOM", "FJI", "GNQ", "HTI", "JAM", "LAO", "LVA", "MLT", "NAM", "OMN",
        "PRK", "SAU", "SUR", "TJK", "UKR", "YEM")},
}
HORIZON_BY_FREQ = {"M": 12, "Q": 8, "Y": 6, "A": 6}
BASELINE_ROWS = ("naive", "seasonal_naive", "drift", "ets", "arima", "theta", "mlp")


def horizon_for(series) -> int:
    code = (series.freq or "Y").lstrip("0123456789")[:1]
    return max(1, min(HORIZON_BY_FREQ.get(code, 6), len(series) // 6))


def run_series(name: str, quick: bool) -> dict:
    dataset, target, group = PANEL[name]
    series = load_dataset(dataset, target)
    horizon = horizon_for(series)
    cfg = ForecastConfig(horizon=horizon, train=ForecastTrainConfig(epochs=30 if quick else 300))
    start = time.perf_counter()
    result = train_forecaster(series, cfg, quiet=True)
    fit_seconds = time.perf_counter() - start
    report = evaluate_tail(result.forecaster, series)
    mase = {row: m.mase for row, m in report.rows.items()}
    baselines = {row: mase[row] for row in BASELINE_ROWS if row in mase and math.isfinite(mase[row])}
    best = min(baselines, key=baselines.get)
    snaive = mase.get("seasonal_naive", mase["naive"])
    return {"name": name, "group": group, "points": len(series), "horizon": horizon,
            "season": result.season.period, "season_reason": result.season.reason,
            "members": result.forecaster.composition(), "mase": mase, "best_baseline": best,
            "ratio_best": mase["auto"] / baselines[best], "ratio_snaive": mase["auto"] / snaive,
            "previous_rule": previous_rule(result, series, report),
            "old_default": old_default(series, horizon, quick), "intervals": report.intervals,
            "fit_seconds": fit_seconds}


def previous_rule(result, series, report) -> float:
    """Test MASE of the previous release's combination (the mean of the three best on validation, the networks
    always among the candidates), from the same fitted candidates and validation scores."""
    forecaster, scores = result.forecaster, dict(result.selection)
    members = choose_members({name: scores[name] for name in forecaster.candidates if name in scores})
    forecast = combine_forecasts(list(forecaster.forecasts(series, report.origins, members).values()), "mean")
    scale = seasonal_naive_scale(series.target_values[:result.split.test_start], forecaster.season)
    return compute_metrics(report.truth, forecast, scale).mase


def old_default(series, horizon: int, quick: bool) -> float | None:
    """Test MASE of the previous default (one LSTM on raw levels, window 24); None where it cannot train."""
    cfg = ForecastConfig(method="network", seq_len=24, horizon=horizon, choose_transform=False,
                         train=ForecastTrainConfig(epochs=30 if quick else 300))
    try:
        result = train_forecaster(series, cfg, quiet=True)
    except TextseqError:
        return None
    return evaluate_tail(result.forecaster, series, baselines=()).rows[result.forecaster.describe()].mase


def geomean(values) -> float:
    values = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    return float(np.exp(np.mean(np.log(values)))) if values else math.nan


def _wins(part: list[dict], rival: str) -> str:
    return f"{sum(r['mase']['auto'] < r['mase'].get(rival, math.inf) for r in part)}"


def _ratio(part: list[dict], rival: str) -> str:
    return f"{geomean(r['mase']['auto'] / r['mase'][rival] for r in part if rival in r['mase']):.3f}"


def summary_lines(rows: list[dict]) -> list[str]:
    lines = ["| group | series | geo-mean MASE auto / best baseline | auto ≤ best baseline | geo-mean auto / "
             "seasonal naive | auto < seasonal naive | geo-mean auto / ETS / ARIMA / theta | auto < ETS / ARIMA / "
             "theta | 80% coverage (mean) | 95% coverage (mean) | geo-mean 0.2 default / best baseline | "
             "0.2 default fails | geo-mean previous rule / best baseline | auto better / worse than previous rule |",
             "|" + "---|" * 14]
    for group in ("fresh-2", "fresh", "new", "held-out", "dev", "all"):
        part = [r for r in rows if group in ("all", r["group"])]
        if not part:
            continue
        coverage = {lv: np.mean([r["intervals"]["auto"][lv]["coverage"] for r in part if "auto" in r["intervals"]])
                    for lv in ("80", "95")}
        old = [r["old_default"] / r["mase"][r["best_baseline"]] for r in part if r["old_default"] is not None]
        lines.append(f"| {group} | {len(part)} | **{geomean(r['ratio_best'] for r in part):.3f}** | "
                     f"{sum(r['ratio_best'] <= 1.0 for r in part)} / {len(part)} | "
                     f"{geomean(r['ratio_snaive'] for r in part):.3f} | "
                     f"{sum(r['ratio_snaive'] < 1.0 for r in part)} / {len(part)} | "
                     f"{' / '.join(_ratio(part, rival) for rival in ('ets', 'arima', 'theta'))} | "
                     f"{' / '.join(_wins(part, rival) for rival in ('ets', 'arima', 'theta'))} of {len(part)} | "
                     f"{coverage['80']:.1f}% | "
                     f"{coverage['95']:.1f}% | {geomean(old):.2f} | "
                     f"{sum(r['old_default'] is None for r in part)} | "
                     f"{geomean(r['previous_rule'] / r['mase'][r['best_baseline']] for r in part):.3f} | "
                     f"{sum(r['mase']['auto'] < r['previous_rule'] for r in part)} / "
                     f"{sum(r['mase']['auto'] > r['previous_rule'] for r in part)} |")
    return lines


def series_lines(rows: list[dict]) -> list[str]:
    names = ("auto", "rnn", *BASELINE_ROWS)
    header = ["series", "group", "n", "h", "m", *names, "auto / best", "chosen on validation", "cov 80/95 %",
              "MSIS 95 auto / snaive", "fit s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [f"{r['mase'][k]:.3f}" if k in r["mase"] else "-" for k in names]
        cells[names.index(r["best_baseline"])] = f"*{cells[names.index(r['best_baseline'])]}*"
        iv = r["intervals"]
        reference = iv.get("seasonal_naive") or iv.get("naive")
        msis = (f"{iv['auto']['95']['msis']:.2f} / {reference['95']['msis']:.2f}" if "auto" in iv and reference
                else "-")
        coverage = f"{iv['auto']['80']['coverage']:.0f} / {iv['auto']['95']['coverage']:.0f}" if "auto" in iv else "-"
        lines.append(f"| {r['name']} | {r['group']} | {r['points']} | {r['horizon']} | {r['season']} | "
                     + " | ".join(cells) + f" | **{r['ratio_best']:.3f}** | {r['members']} | {coverage} | {msis} | "
                     f"{r['fit_seconds']:.0f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", default=",".join(PANEL), help="comma-separated panel names")
    parser.add_argument("--group", choices=sorted({group for _, _, group in PANEL.values()}),
                        help="only the series of this group")
    parser.add_argument("--quick", action="store_true", help="30 epochs (smoke run)")
    parser.add_argument("--results", default="bench/results/bench_forecast.md")
    parser.add_argument("--render", metavar="JSON", help="only re-print the tables of a saved run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = json.loads(Path(args.render).read_text()) if args.render else []
    if unknown := [n for n in args.series.split(",") if n not in PANEL]:
        parser.error(f"unknown series {', '.join(unknown)}; the panel: {', '.join(PANEL)}")
    names = [] if args.render else [n for n in args.series.split(",") if args.group in (None, PANEL[n][2])]
    for name in names:
        rows.append(run_series(name, args.quick))
        r = rows[-1]
        print(f"{name}: auto {r['mase']['auto']:.3f}, best baseline {r['best_baseline']} "
              f"{r['mase'][r['best_baseline']]:.3f}, ratio {r['ratio_best']:.3f} ({r['members']}; "
              f"{r['fit_seconds']:.0f} s)", flush=True)
    command = "python bench/bench_forecast.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    if args.render:
        command = "python bench/bench_forecast.py"  # the run that produced the rows
    text = "\n".join(["# bench_forecast", "", __doc__.split("\n\n", 1)[1].strip(), "",
                      f"Command: `{command}`; torch {torch.__version__}, 1 thread.", "",
                      "## Aggregate", "", *summary_lines(rows), "", "## Per series (test-tail MASE; *best baseline*)",
                      "", *series_lines(rows), ""])
    print(text)
    atomic_write_text(args.results, text)
    if not args.render:
        atomic_write_text(Path(args.results).with_suffix(".json"), json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()
