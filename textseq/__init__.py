"""textseq: text sequences end to end (preprocessing, recurrent LMs, forecasting)."""

__version__ = "0.1.0"
