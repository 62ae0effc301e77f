"""Forecasting configuration: plain dataclasses, stored in checkpoints with ``dataclasses.asdict``."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

MODES = ("direct", "teacher", "free")
LOSSES = ("mse", "mae", "huber")


@dataclass
class TransformConfig:
    scale: str = "standard"  # standard | minmax | none, fit on the training part only
    log: bool = False  # model log(y): multiplicative seasonality becomes additive
    diff: int = 0  # 0 = none, 1 = first differences, m = seasonal differences at lag m


@dataclass
class ModelConfig:
    arch: str = "lstm"  # mlp | rnn_tanh | rnn_relu | lstm | gru
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0
    bidirectional: bool = False  # encoder only (direct mode): a reverse pass would see the future in N-to-N
    impl: str = "torch"  # torch | scratch (the from-scratch cells, same weights)


@dataclass
class TrainConfig:
    mode: str = "direct"  # direct: all horizon steps at once | teacher: N-to-N one step ahead, then
    #                      recursive | free: trained on its own fed-back predictions over the horizon
    stateful: bool = False  # teacher mode: consecutive chunks, hidden state carried (detached) between them
    loss: str = "mse"  # mse | mae | huber
    epochs: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.0
    patience: int = 30  # early stopping on the validation MAE
    clip: float = 1.0  # gradient norm clipping
    seed: int = 0
    ensemble: int = 1  # members trained with seeds seed, seed+1, ...; forecasts averaged


@dataclass
class ForecastConfig:
    seq_len: int = 24  # input window ("days" in the seeds)
    horizon: int = 1
    test_frac: float = 0.3  # held-out tail (70/30 as in the seeds)
    val_frac: float = 0.2  # validation carved from the end of the training part
    season: int | None = None  # for seasonal naive / MASE; None = from the data's frequency
    transform: TransformConfig = field(default_factory=TransformConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, data: dict) -> ForecastConfig:
        nested = {"transform": TransformConfig, "model": ModelConfig, "train": TrainConfig}
        kwargs = {f.name: data[f.name] for f in fields(cls) if f.name in data and f.name not in nested}
        kwargs.update({name: kind(**data.get(name, {})) for name, kind in nested.items()})
        return cls(**kwargs)

    @property
    def recursive(self) -> bool:
        return self.train.mode != "direct"
