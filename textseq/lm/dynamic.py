"""Dynamic evaluation (Krause et al. 2018, "Dynamic Evaluation of Neural Sequence Models"): the model goes on
learning from the text it scores. The text is read in segments of ``bptt`` tokens; each segment is scored with
the weights as they are, then one SGD step on that segment's loss adapts all the weights for the next ones.
No token is ever scored by weights that have learnt from it, so the score is a fair held-out number: it is
what a model that keeps reading would predict. It helps most where the held-out text differs from the training
text (another play, another part of a novel): its names, topics and style are learnt as they come.

The text is cut into ``ROWS`` consecutive stretches read side by side, one SGD step per segment over all of
them: ROWS times fewer sequential steps than reading it as one row, at a small cost in what is learnt
(a stretch cannot use what the stretches after it will teach). The learning rate is fitted on the validation
split at the end of training (0 when adapting does not help there) and stored in the checkpoint.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import numpy as np

from textseq.errors import TextseqError
from textseq.settings import parse_auto_off

ROWS = 8  # stretches of the text adapted side by side
LEARNING_RATES = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)  # the grid fitted on validation, tried in increasing order


@dataclass
class DynamicSettings:
    lr: float  # SGD learning rate of the adaptation; 0 = off (it did not help on validation)
    rows: int
    valid_nll_lm: float
    valid_nll_dynamic: float
    # the adapted LM mixed with the KN partner: the LM's weight, its table by KN context strength, the mix's NLL
    kn_weight: float | None = None
    kn_weights: list[float] | None = None
    valid_nll_dynamic_kn: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def dynamic_logprobs(lm, ids: np.ndarray, lr: float, bptt: int, rows: int = ROWS) -> np.ndarray:
    """Natural-log P of ``ids[1:]`` in stream order, each scored before the model adapts to it.

    ``lm`` itself is left unchanged: a copy adapts. Dropout stays off (evaluation mode) while it learns."""
    from textseq.lm.evaluate import token_logprobs

    if lr < 0 or not math.isfinite(lr):
        raise TextseqError(f"the dynamic evaluation learning rate must be 0 or positive, got {lr}")
    return token_logprobs(copy.deepcopy(lm), ids, batch_size=rows, bptt=bptt, adapt_lr=lr)


def fit_dynamic(lm, ids: np.ndarray, lm_logp: np.ndarray, bptt: int,
                rows: int = ROWS) -> tuple[DynamicSettings, np.ndarray]:
    """The learning rate of :data:`LEARNING_RATES` that scores the validation stream ``ids`` best, or 0 (off)
    when none beats the static model's ``lm_logp`` there, and the log-probabilities it gives. The rates are
    tried in increasing order and the search stops at the first one worse than the best so far (the score is
    U-shaped in the rate)."""
    static = float(-lm_logp.mean())
    best_nll, best_lr, best_logp = static, 0.0, lm_logp
    for lr in LEARNING_RATES:
        logp = dynamic_logprobs(lm, ids, lr, bptt, rows)
        nll = float(-logp.mean())
        if not nll < best_nll:
            break
        best_nll, best_lr, best_logp = nll, lr, logp
    return DynamicSettings(best_lr, rows, static, best_nll), best_logp


def parse_dynamic(value: str | float | None) -> str | float | None:
    """``--dynamic``: "auto" (the fitted learning rate), "off"/None, or a learning rate (> 0)."""
    return parse_auto_off(value, "--dynamic", float, lambda lr: lr > 0 and math.isfinite(lr), "a learning rate",
                          "a positive learning rate")


def describe_dynamic(settings: DynamicSettings, level: str, chars_per_token: float = 1.0) -> str:
    from textseq.lm.report import describe

    if settings.lr == 0:
        return f"dynamic evaluation: off (no learning rate beat the static model on validation, " \
               f"{describe(settings.valid_nll_lm, level, chars_per_token)})"
    text = (f"dynamic evaluation: SGD learning rate {settings.lr:g} (validation: "
            f"{describe(settings.valid_nll_lm, level, chars_per_token)} -> "
            f"{describe(settings.valid_nll_dynamic, level, chars_per_token)}")
    if settings.valid_nll_dynamic_kn is not None:
        text += f"; with KN {describe(settings.valid_nll_dynamic_kn, level, chars_per_token)}"
    return text + ")"
