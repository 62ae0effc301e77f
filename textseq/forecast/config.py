"""Forecasting configuration: :class:`~textseq.settings.Settings` dataclasses validated on
construction, stored in checkpoints with ``to_dict`` and read back with the strict ``from_dict``."""

from __future__ import annotations

from dataclasses import dataclass, field

from textseq.errors import TextseqError, check_choice
from textseq.models.cells import CELL_TYPES, IMPLS
from textseq.settings import Settings
from textseq.training import OPTIMIZERS

# The same names as the language models' modes; "direct" has no LM twin (all steps at once).
MODES = ("direct", "teacher-forcing", "free-running")
MODE_ALIASES = {"teacher": "teacher-forcing", "free": "free-running"}  # the names before 0.2
LOSSES = ("mse", "mae", "huber")
SCALES = ("standard", "minmax", "none")
ARCHS = ("mlp", *CELL_TYPES)


@dataclass
class TransformConfig(Settings):
    scale: str = "standard"  # standard | minmax | none, fit on the training part only
    log: bool = False  # model log(y): multiplicative seasonality becomes additive
    diff: int = 0  # 0 = none, 1 = first differences, m = seasonal differences at lag m

    def validate(self) -> None:
        super().validate()
        check_choice("scaling", self.scale, SCALES)
        if self.diff < 0:
            raise TextseqError("--diff must be 0 (none), 1 or a seasonal lag")


@dataclass
class ForecastModelConfig(Settings):
    arch: str = "lstm"  # mlp | rnn_tanh | rnn_relu | lstm | gru (the --cell flag)
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0
    bidirectional: bool = False  # encoder only (direct mode): a reverse pass would see the future in N-to-N
    impl: str = "torch"  # torch | scratch (the from-scratch cells, same weights)

    def validate(self) -> None:
        super().validate()
        check_choice("cell", self.arch, ARCHS)
        check_choice("RNN implementation", self.impl, IMPLS)
        if min(self.hidden_size, self.num_layers) < 1:
            raise TextseqError("--hidden and --layers must be at least 1")
        if not 0.0 <= self.dropout < 1.0:
            raise TextseqError(f"--dropout must be in [0, 1), got {self.dropout}")


@dataclass
class ForecastTrainConfig(Settings):
    mode: str = "direct"  # direct: all horizon steps at once | teacher-forcing: N-to-N one step ahead, then
    #                      recursive | free-running: trained on its own fed-back predictions over the horizon
    stateful: bool = False  # teacher forcing: consecutive chunks, hidden state carried (detached) between them
    loss: str = "mse"  # mse | mae | huber
    optimizer: str = "adam"  # sgd | adam | adamw (textseq.training.make_optimizer)
    epochs: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    momentum: float = 0.0  # SGD only
    weight_decay: float = 0.0
    patience: int = 30  # early stopping on the validation MAE (0: off)
    clip: float = 1.0  # gradient norm clipping
    seed: int = 0
    ensemble: int = 1  # members trained with seeds seed, seed+1, ...; forecasts averaged

    def validate(self) -> None:
        super().validate()
        self.mode = MODE_ALIASES.get(self.mode, self.mode)
        check_choice("mode", self.mode, MODES)
        check_choice("loss", self.loss, LOSSES)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if min(self.epochs, self.batch_size, self.ensemble) < 1:
            raise TextseqError("epochs, batch size and ensemble size must be at least 1")
        if self.patience < 0:
            raise TextseqError("--patience must be 0 (off) or positive")
        if not self.lr > 0 or self.weight_decay < 0 or self.momentum < 0 or self.clip < 0:
            raise TextseqError("--lr must be positive; --weight-decay, --momentum and --clip must not be negative")


METHODS = ("auto", "network")


@dataclass
class ForecastConfig(Settings):
    method: str = "auto"  # auto: networks and statistical models chosen / combined on validation | network: one net
    seq_len: int = 0  # input window ("days" in the seeds); 0 = from the season and the horizon, fitted to the data
    horizon: int = 1
    test_frac: float = 0.3  # held-out tail (70/30 as in the seeds)
    val_frac: float = 0.2  # validation carved from the end of the training part
    season: int | None = None  # for seasonal naive / MASE; None = from the data's frequency
    transform: TransformConfig = field(default_factory=TransformConfig)
    choose_transform: bool = True  # try none / log / differencing / seasonal differencing, keep the best on validation
    model: ForecastModelConfig = field(default_factory=ForecastModelConfig)
    train: ForecastTrainConfig = field(default_factory=ForecastTrainConfig)

    def validate(self) -> None:
        super().validate()
        check_choice("model", self.method, METHODS)
        if self.horizon < 1 or self.seq_len < 0:
            raise TextseqError("--horizon must be at least 1 and --seq-len at least 1 (0: automatic)")
        if self.season is not None and self.season < 1:  # a negative m would make seasonal naive read the future
            raise TextseqError("--season must be at least 1")
        if self.model.bidirectional and self.recursive:
            raise TextseqError("a bidirectional encoder needs --mode direct (N-to-N steps must not see the future)")
        if self.train.stateful and (self.train.mode != "teacher-forcing" or self.model.arch == "mlp"):
            raise TextseqError("--stateful needs a recurrent model in --mode teacher-forcing")

    @property
    def recursive(self) -> bool:
        return self.train.mode != "direct"
