"""Built-in real series, loaded offline from the data files shipped inside the statsmodels and
sktime wheels (no download). ``list_datasets()`` describes them; ``load_dataset(name)`` loads one."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from textseq.errors import TextseqError
from textseq.forecast.data import SeriesData, check_finite


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    source: str  # "statsmodels" or "sktime"
    loader: Callable[[], object]  # returns a pandas Series or DataFrame with a date-like index
    target: str | None = None  # default target column of a multi-column frame


def _sktime(function: str):
    def load():
        try:
            import sktime.datasets as sk
        except ImportError:
            raise TextseqError("this dataset ships with sktime: pip install 'textseq[datasets]'") from None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return getattr(sk, function)()

    return load


def _statsmodels(module: str, column: str | None = None, index: Callable | None = None):
    def load():
        import importlib

        frame = importlib.import_module(f"statsmodels.datasets.{module}").load_pandas().data
        if index is not None:
            frame = frame.set_index(index(frame))
        return frame[column] if column else frame

    return load


def _co2_monthly():
    """Mauna Loa CO2 is weekly with gaps; monthly means (interpolating the few empty months) are the
    usual form and give a clean 12-month season."""
    frame = _statsmodels("co2")()
    return frame["co2"].resample("MS").mean().interpolate()


def _years(column: str):
    import pandas as pd

    return lambda frame: pd.period_range(str(int(frame[column].iloc[0])), periods=len(frame), freq="Y")


def _quarters(frame):
    import pandas as pd

    start = f"{int(frame['year'].iloc[0])}Q{int(frame['quarter'].iloc[0])}"
    return pd.period_range(start, periods=len(frame), freq="Q")


def _sktime_csv(folder: str, column: str):
    """A CSV inside sktime's data folder that has no loader of its own."""

    def load():
        import os

        import pandas as pd

        try:
            import sktime
        except ImportError:
            raise TextseqError("this dataset ships with sktime: pip install 'textseq[datasets]'") from None
        path = os.path.join(os.path.dirname(sktime.__file__), "datasets", "data", folder, f"{folder}.csv")
        frame = pd.read_csv(path, index_col=0, parse_dates=True)
        return frame[column].asfreq("MS")

    return load


def _uschange():
    """Quarterly percentage changes in US consumption (and income, ...) 1970Q1-2016Q3 (fpp2's uschange)."""
    import pandas as pd

    consumption, others = _sktime("load_uschange")()
    frame = pd.concat([consumption, others], axis=1)
    return frame.set_index(pd.period_range("1970Q1", periods=len(frame), freq="Q"))


def _elnino():
    """The wide year x month table as one monthly series."""
    import pandas as pd

    frame = _statsmodels("elnino")()
    values = frame.drop(columns=["YEAR"]).to_numpy().ravel()
    start = f"{int(frame['YEAR'].iloc[0])}-01"
    return pd.Series(values, index=pd.period_range(start, periods=len(values), freq="M"), name="temperature")


def _interest_inflation():
    return _statsmodels("interest_inflation", index=_quarters)().drop(columns=["year", "quarter"])


def _danish():
    import pandas as pd

    frame = _statsmodels("danish_data")()
    return frame.set_index(pd.PeriodIndex(frame.index, freq="Q"))


def _fertility():
    """World Bank total fertility rates, one column per country (ISO code) with a complete 1960-2011 record."""
    import pandas as pd

    frame = _statsmodels("fertility")().set_index("Country Code")
    years = frame.drop(columns=["Country Name", "Indicator Name", "Indicator Code"]).T.dropna(how="all")
    years = years.dropna(axis=1)
    return years.set_index(pd.period_range(years.index[0], periods=len(years), freq="Y"))


def _macrodata():
    frame = _statsmodels("macrodata", index=_quarters)()
    return frame.drop(columns=["year", "quarter"])


DATASETS = {
    d.name: d
    for d in [
        Dataset("airline", "monthly international airline passengers 1949-1960 (Box & Jenkins), 144 points",
                "sktime", _sktime("load_airline")),
        Dataset("lynx", "annual Canadian lynx trappings 1821-1934, 114 points (about 10-year cycle)",
                "sktime", _sktime("load_lynx")),
        Dataset("shampoo", "monthly shampoo sales over 3 years, 36 points", "sktime", _sktime("load_shampoo_sales")),
        Dataset("sunspots", "yearly sunspot activity 1700-2008, 309 points (about 11-year cycle)",
                "statsmodels", _statsmodels("sunspots", "SUNACTIVITY", _years("YEAR"))),
        Dataset("nile", "annual Nile river flow at Aswan 1871-1970, 100 points",
                "statsmodels", _statsmodels("nile", "volume", _years("year"))),
        Dataset("co2", "Mauna Loa atmospheric CO2, monthly means 1958-2001, 526 points", "statsmodels", _co2_monthly),
        Dataset("elec_equip", "monthly euro-area electrical equipment orders index 1995-2016, 257 points",
                "statsmodels", _statsmodels("elec_equip")),
        Dataset("macrodata", "US quarterly macro data 1959-2009, 203 points; default target: tbilrate "
                "(3-month T-bill rate); other columns (infl, unemp, realgdp, ...) usable as inputs",
                "statsmodels", _macrodata, target="tbilrate"),
        Dataset("seatbelts", "monthly UK car drivers killed or seriously injured 1969-1984, 192 points",
                "sktime", _sktime_csv("seatbelts", "KSI")),
        Dataset("pbs", "monthly Australian PBS prescriptions of one drug class 1991-2008, 204 points", "sktime",
                _sktime("load_PBS_dataset")),
        Dataset("uschange", "quarterly % change of US consumption 1970-2016, 187 points; income, production, "
                "savings, unemployment as further columns", "sktime", _uschange, target="Consumption"),
        Dataset("elnino", "monthly Pacific sea surface temperature (El Nino region) 1950-2010, 732 points",
                "statsmodels", _elnino),
        Dataset("interest", "quarterly German long-term interest rate R 1972-1998, 107 points (and inflation Dp)",
                "statsmodels", _interest_inflation, target="R"),
        Dataset("danish", "quarterly Danish log real money demand lrm 1974-1987, 55 points (and income, rates)",
                "statsmodels", _danish, target="lrm"),
        Dataset("fertility", "annual total fertility rate (births per woman) 1960-2011, 52 points, one column per "
                "country code; default target: USA", "statsmodels", _fertility, target="USA"),
    ]
}


def list_datasets() -> list[Dataset]:
    return list(DATASETS.values())


def _freq_of(index) -> str | None:
    freq = getattr(index, "freqstr", None)
    if freq is None and len(index) >= 3:
        import pandas as pd

        freq = pd.infer_freq(index)
    return freq


def load_dataset(name: str, target: str | None = None, inputs: list[str] | None = None) -> SeriesData:
    """Load a built-in series by name (see :data:`DATASETS`)."""
    if name not in DATASETS:
        raise TextseqError(f"unknown dataset {name!r}; built-ins: {', '.join(DATASETS)}")
    info = DATASETS[name]
    data = info.loader()
    frame = data.to_frame() if data.ndim == 1 else data.copy()
    if frame.shape[1] == 1:
        frame.columns = [name]
    columns = [str(c) for c in frame.columns]
    values = frame.to_numpy(dtype=np.float64)
    check_finite(values, columns)
    dates = [str(i.date()) if hasattr(i, "date") else str(i) for i in frame.index]
    default_target = info.target or columns[0]
    series = SeriesData(values, columns, default_target, [default_target], dates, _freq_of(frame.index), name=name)
    return series.select(target, inputs) if (target or inputs) else series


def load_source(source: dict, target: str | None = None, inputs: list[str] | None = None) -> SeriesData:
    """Load a series from a source description: ``{"dataset": name}`` or ``{"csv": path,
    "date_column": ..., "fill": ..., "encoding": ...}`` (as stored in checkpoints)."""
    from textseq.forecast.data import load_csv

    if source.get("dataset"):
        return load_dataset(source["dataset"], target, inputs)
    if source.get("csv"):
        return load_csv(source["csv"], target, inputs, source.get("date_column"), source.get("fill", "none"),
                        source.get("encoding", "utf-8"))
    raise TextseqError("give the data: --data FILE.csv or --dataset NAME (see `textseq forecast datasets`)")
