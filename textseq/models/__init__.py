"""Recurrent cells (torch.nn and from scratch) and the recurrent language model."""

from textseq.models.cells import CELL_TYPES, Hidden, ScratchRNN, build_rnn, detach_hidden
from textseq.models.lm import LMConfig, RNNLanguageModel, default_cutoffs

__all__ = ["CELL_TYPES", "Hidden", "LMConfig", "RNNLanguageModel", "ScratchRNN", "build_rnn",
           "default_cutoffs", "detach_hidden"]
