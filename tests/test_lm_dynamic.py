"""Dynamic evaluation: every token scored before the model learns from it, the rate fitted on validation,
and its rows in evaluate."""

import numpy as np
import pytest
import torch

from textseq.cli import run
from textseq.errors import TextseqError
from textseq.lm.dynamic import ROWS, dynamic_logprobs, fit_dynamic, parse_dynamic
from textseq.lm.evaluate import token_logprobs
from textseq.lm.model import LMConfig, RNNLanguageModel

pytestmark = pytest.mark.usefixtures("one_thread")
BPTT = 8


@pytest.fixture
def model():
    torch.manual_seed(0)
    return RNNLanguageModel(LMConfig(vocab_size=12, emb_size=8, hidden_size=16, num_layers=1, dropout=0.0))


def stream(n: int = 400, seed: int = 0) -> np.ndarray:
    pattern = np.random.default_rng(seed).integers(0, 12, 23)  # a repeating text: adapting pays off
    return np.resize(pattern, n).astype(np.int64)


def test_no_token_is_scored_by_weights_that_learnt_from_it(model):
    ids = stream()
    before = [p.detach().clone() for p in model.parameters()]
    adapted = dynamic_logprobs(model, ids, 0.5, BPTT)
    static = token_logprobs(model, ids, ROWS, BPTT)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # a copy adapts
    n = len(adapted) // ROWS + (len(adapted) % ROWS > 0)  # row length of stream_rows
    rows_static, rows_adapted = (np.pad(x, (0, ROWS * n - len(x))).reshape(ROWS, n) for x in (static, adapted))
    np.testing.assert_allclose(rows_adapted[:, :BPTT], rows_static[:, :BPTT], atol=1e-5)  # nothing learnt yet
    assert not np.allclose(rows_adapted[:, BPTT:], rows_static[:, BPTT:], atol=1e-3)
    # changing a token of segment 3 changes no score of segments 0-2 in any row
    changed = ids.copy()
    changed[3 * BPTT + 2] = (changed[3 * BPTT + 2] + 1) % 12
    again = np.pad(dynamic_logprobs(model, changed, 0.5, BPTT), (0, ROWS * n - len(ids) + 1)).reshape(ROWS, n)
    np.testing.assert_allclose(again[:, :3 * BPTT], rows_adapted[:, :3 * BPTT], atol=1e-6)


def test_rate_zero_is_the_static_model(model):
    ids = stream()
    np.testing.assert_allclose(dynamic_logprobs(model, ids, 0.0, BPTT), token_logprobs(model, ids, ROWS, BPTT),
                               atol=1e-5)


def test_fitted_rate_beats_the_static_model_on_a_repeating_text(model):
    ids = stream()
    static = token_logprobs(model, ids, ROWS, BPTT)
    settings, logp = fit_dynamic(model, ids, static, BPTT)
    assert settings.lr > 0 and settings.valid_nll_dynamic < settings.valid_nll_lm - 0.1
    assert settings.valid_nll_dynamic == pytest.approx(float(-logp.mean()))


def test_parse_dynamic():
    assert parse_dynamic("auto") == "auto" and parse_dynamic("off") is None and parse_dynamic("0.05") == 0.05
    for bad in ("0", "-1", "fast", "nan"):
        with pytest.raises(TextseqError, match="--dynamic"):
            parse_dynamic(bad)


def test_evaluate_dynamic_rows(tmp_path, capsys):
    from pathlib import Path

    from textseq.lm.checkpoint import read_lm
    from textseq.lm.evaluate import evaluate_checkpoint

    lines = (Path(__file__).resolve().parent.parent / "corpora" / "en" / "shakespeare_sample.txt").read_text(
        encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "train.txt").write_text("".join(lines[:300]), encoding="utf-8")
    (tmp_path / "heldout.txt").write_text("".join(lines[500:540]), encoding="utf-8")
    run_dir = tmp_path / "run"
    assert run(["train", str(tmp_path / "train.txt"), "-o", str(run_dir), "--max-steps", "20", "--hidden", "32",
                "--emb", "16", "--layers", "1", "--bptt", "16", "--batch-size", "8", "--lr", "0.01", "--quiet"]) == 0
    stored = read_lm(run_dir / "best.pt")["dynamic"]
    assert stored["valid_nll_dynamic"] <= stored["valid_nll_lm"] and stored["rows"] == ROWS
    report = evaluate_checkpoint(run_dir / "best.pt", tmp_path / "heldout.txt", horizon=0, cache=None,
                                 dynamic=0.05)
    names = [row.name for row in report.rows]
    assert names[-2] == "RNN + dynamic (SGD lr 0.05)" and names[-1].startswith("RNN + dynamic + KN (")
    auto = evaluate_checkpoint(run_dir / "best.pt", tmp_path / "heldout.txt", horizon=0, cache=None)
    assert any(r.name.startswith("RNN + dynamic (") for r in auto.rows) == (stored["lr"] > 0)
    off = evaluate_checkpoint(run_dir / "best.pt", tmp_path / "heldout.txt", horizon=0, cache=None, dynamic=None)
    assert not any("dynamic" in r.name for r in off.rows)
    assert run(["evaluate", str(run_dir / "best.pt"), str(tmp_path / "heldout.txt"), "--dynamic", "fast"]) == 2
    assert "--dynamic" in capsys.readouterr().err
