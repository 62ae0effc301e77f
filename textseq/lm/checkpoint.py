"""Language-model checkpoints: everything needed to generate, evaluate or resume from the path alone.

Layout (kind="lm", plain data + tensors, see :mod:`textseq.checkpoint`)::

    model_config   asdict(LMConfig)          vocab      Vocab.to_dict()
    train_config   asdict(LMTrainConfig)       pipeline   PipelineConfig.to_dict()
    model_state    state_dict                sources    training text path(s)
    optimizer / scheduler   state dicts (None in a weights-only export)
    rng            one dict per rank: torch (+cuda), numpy Generator state, python random
    progress       epoch, column, global step, carried hidden state, best valid loss, history
    average        the running weight average and its count (train --average nt, once started), or None
"""

from __future__ import annotations

import os
import random
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from textseq.checkpoint import load_checkpoint, save_checkpoint
from textseq.errors import TextseqError
from textseq.lm.model import LMConfig, RNNLanguageModel
from textseq.text.pipeline import Pipeline, PipelineConfig
from textseq.vocab import Vocab

KIND = "lm"
REQUIRED = ("model_config", "train_config", "pipeline", "vocab", "model_state")
# train_config keys that older checkpoints lack, with what those runs did (before valid_split: the tail)
LEGACY_TRAIN_CONFIG = {"valid_split": "tail"}


def save_lm(path: str | os.PathLike, model: RNNLanguageModel, *, train_config: dict, pipeline: dict,
            vocab: Vocab, sources: list[str] | None = None, optimizer: torch.optim.Optimizer | None = None,
            scheduler: Any = None, rng: list[dict] | None = None, progress: dict | None = None,
            average: dict | None = None) -> None:
    save_checkpoint(path, KIND, {
        "model_config": asdict(model.cfg),
        "train_config": dict(train_config),
        "pipeline": pipeline,
        "vocab": vocab.to_dict(),
        "sources": list(sources or []),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": rng,
        "progress": progress,
        "average": {k: v.detach().cpu() for k, v in average.items()} if average is not None else None,
    })


def read_lm(path: str | os.PathLike) -> dict[str, Any]:
    data = load_checkpoint(path, KIND)
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise TextseqError(f"checkpoint {path} is incomplete (missing {', '.join(missing)})")
    data["train_config"] = {**LEGACY_TRAIN_CONFIG, **data["train_config"]}
    return data


def build_lm(data: dict[str, Any], device: torch.device | str = "cpu") -> RNNLanguageModel:
    """The model of a checkpoint dict, weights loaded, in eval mode."""
    model = RNNLanguageModel(LMConfig.from_dict(data["model_config"]))
    try:
        model.load_state_dict(data["model_state"])
    except RuntimeError as exc:
        raise TextseqError(f"checkpoint weights do not match its model config ({str(exc).splitlines()[0]})") from None
    return model.to(device).eval()


@dataclass
class LMCheckpoint:
    """A loaded checkpoint, typed: the model in eval mode and everything needed to feed it text."""

    model: RNNLanguageModel
    vocab: Vocab
    pipeline: Pipeline  # tokenizes new text exactly like the training text
    train_config: dict
    sources: list[str]  # the training text path(s)
    data: dict  # the raw checkpoint dict (pipeline settings, progress, ...)

    @property
    def level(self) -> str:
        """char | word: how the training text was tokenized (the one place this is read)."""
        return self.pipeline.cfg.tokenize.level

    @classmethod
    def load(cls, path: str | os.PathLike, device: torch.device | str = "cpu") -> LMCheckpoint:
        data = read_lm(path)
        pipeline = Pipeline(PipelineConfig.from_dict(data["pipeline"], "pipeline"))
        return cls(build_lm(data, device), Vocab.from_dict(data["vocab"]), pipeline, dict(data["train_config"]),
                   list(data.get("sources") or []), data)


def load_lm(path: str | os.PathLike, device: torch.device | str = "cpu"):
    """Checkpoint path -> (model in eval mode, Vocab, Pipeline) ready for generation/evaluation."""
    ckpt = LMCheckpoint.load(path, device)
    return ckpt.model, ckpt.vocab, ckpt.pipeline


def capture_rng(np_rng: np.random.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np_rng.bit_generator.state,
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict, np_rng: np.random.Generator) -> None:
    torch.set_rng_state(state["torch"])
    np_rng.bit_generator.state = state["numpy"]
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
