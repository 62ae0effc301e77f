"""Recurrent cells shared by the language models and the forecasters: torch.nn and from scratch."""

from textseq.models.cells import CELL_TYPES, Hidden, ScratchRNN, build_rnn, detach_hidden

__all__ = ["CELL_TYPES", "Hidden", "ScratchRNN", "build_rnn", "detach_hidden"]
