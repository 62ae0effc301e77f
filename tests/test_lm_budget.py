"""LM training bounded by time (--max-time), schedules spanning the budget, the final validation,
the epochs-vs-budget rule and its warning, AR/TAR with the pure NLL reported, mode aliases."""

import math
import time
from pathlib import Path

import pytest
import torch

from textseq.errors import TextseqError
from textseq.lm.checkpoint import read_lm
from textseq.lm.train import LMTrainConfig, cosine_lr, resolve_config, train

pytestmark = pytest.mark.usefixtures("one_thread")

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
TINY = {"emb_size": 16, "hidden_size": 32, "num_layers": 1, "dropout": 0.1}
BUDGET = 1.5  # seconds




@pytest.fixture(scope="module")
def short(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "short.txt"
    path.write_text("".join(open(CORPORA / "zh" / "lunyu.txt", encoding="utf-8").readlines()[:20]), encoding="utf-8")
    return path


def config(data: Path, out: Path, **overrides) -> LMTrainConfig:
    settings = dict(data=str(data), output=str(out), level="char", bptt=12, batch_size=4, epochs=50,
                    max_steps=8, lr=0.01, log_every=1, seed=3)
    return LMTrainConfig(**{**settings, **overrides})


def _recorder(values: list, what):
    def on_step(trainer):
        values.append(what(trainer))

    return on_step


def test_max_time_stops_at_the_first_update_after_the_budget(lunyu, tmp_path):
    started = time.perf_counter()
    result = train(config(lunyu, tmp_path / "run", epochs=0, max_steps=10**9, max_time=BUDGET), TINY, quiet=True)
    wall = time.perf_counter() - started
    assert result.stop_reason == "max-time" and 0 < result.steps < 10**9
    assert BUDGET <= result.elapsed < BUDGET + 10 and BUDGET <= wall < BUDGET + 30
    assert result.history["valid"][-1][0] == result.steps  # the final validation: best.pt is not stale
    assert result.best_valid_loss == min(loss for _, loss in result.history["valid"])
    progress = read_lm(result.last_checkpoint)["progress"]
    assert progress["step"] == result.steps and progress["schedule_fraction"] > 0.5


def test_cosine_lr_and_scheduled_sampling_span_the_time_budget(lunyu, tmp_path):
    seen: list = []
    cfg = config(lunyu, tmp_path / "run", epochs=0, max_steps=10**9, max_time=BUDGET, scheduler="cosine",
                 mode="scheduled-sampling", eval_every=10**6)
    def state(trainer):
        fraction = trainer.progress.schedule_fraction  # what the last update used
        return trainer.optimizer.param_groups[0]["lr"], fraction, trainer._teacher_prob(fraction)

    result = train(cfg, TINY, quiet=True, on_step=_recorder(seen, state))
    assert result.stop_reason == "max-time" and len(seen) == result.steps >= 3
    lrs, fractions, probs = zip(*seen, strict=True)
    assert lrs[0] == cfg.lr and probs[0] == 1.0  # fraction 0 at the first update
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))
    assert all(a >= b for a, b in zip(probs, probs[1:], strict=False))
    # the last update starts less than one update (plus a checkpoint) before the budget's end
    assert fractions[-1] > 0.8 and lrs[-1] < 0.1 * cfg.lr and probs[-1] < 0.2
    assert lrs[-1] == pytest.approx(cosine_lr(cfg.lr, fractions[-1]))


def test_cosine_lr_function():
    assert cosine_lr(0.5, 0.0) == 0.5 and cosine_lr(0.5, 0.5) == pytest.approx(0.25)
    assert cosine_lr(0.5, 1.0) == pytest.approx(0.0, abs=1e-12) and cosine_lr(0.5, 2.0) == cosine_lr(0.5, 1.0)
    assert cosine_lr(0.5, -1.0) == 0.5


def test_step_based_cosine_follows_the_steps(lunyu, tmp_path):
    lrs: list = []
    train(config(lunyu, tmp_path / "run", scheduler="cosine", max_steps=6), TINY, quiet=True,
          on_step=_recorder(lrs, lambda t: t.optimizer.param_groups[0]["lr"]))
    assert lrs == pytest.approx([cosine_lr(0.01, step / 6) for step in range(6)])


def test_resumed_time_budget_continues_the_schedule(lunyu, tmp_path):
    def stop_at_3(trainer):
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
        if trainer.progress.step == 3:
            raise KeyboardInterrupt

    lrs: list = []
    cfg = config(lunyu, tmp_path / "run", epochs=0, max_steps=10**9, max_time=0.5, scheduler="cosine")
    first = train(cfg, TINY, quiet=True, on_step=stop_at_3)
    assert first.stop_reason == "interrupted" and first.steps == 3
    fraction = read_lm(first.last_checkpoint)["progress"]["schedule_fraction"]
    assert 0 < fraction < 1
    resumed_lrs: list = []
    resumed = train(cfg, TINY, quiet=True, resume=first.last_checkpoint,
                    on_step=_recorder(resumed_lrs, lambda t: t.optimizer.param_groups[0]["lr"]))
    assert resumed.stop_reason == "max-time" and resumed.steps > 3
    assert resumed_lrs[0] <= lrs[-1]  # the schedule goes on from where it was, it does not restart
    assert resumed_lrs[-1] < lrs[-1]


def test_final_validation_at_the_last_step_for_a_max_steps_stop(lunyu, tmp_path):
    result = train(config(lunyu, tmp_path / "run", max_steps=5, eval_every=3), TINY, quiet=True)
    assert result.stop_reason == "max-steps" and result.steps == 5
    assert [step for step, _ in result.history["valid"]] == [3, 5]
    assert result.best_valid_loss == min(loss for _, loss in result.history["valid"])
    best = read_lm(result.best_checkpoint)["progress"]
    assert best["best_saved"] == result.best_valid_loss


def test_validation_at_ctrl_c_updates_best_but_stays_out_of_the_resumable_state(lunyu, tmp_path):
    def interrupt(trainer):
        if trainer.progress.step == 3:
            raise KeyboardInterrupt

    result = train(config(lunyu, tmp_path / "run", max_steps=6, eval_every=10), TINY, quiet=True, on_step=interrupt)
    assert result.stop_reason == "interrupted" and result.steps == 3
    assert [step for step, _ in result.history["valid"]] == [3] and result.best_valid_loss is not None
    last = read_lm(result.last_checkpoint)["progress"]
    assert last["history"]["valid"] == [] and last["best_valid"] is None and last["bad_evals"] == 0
    assert last["best_saved"] == result.best_valid_loss
    assert read_lm(result.best_checkpoint)["progress"]["step"] == 3


def test_epochs_ending_the_run_before_max_steps_warns(short, tmp_path, capsys):
    result = train(config(short, tmp_path / "run", epochs=1, max_steps=10**6), TINY, quiet=False)
    assert result.stop_reason == "epochs"
    err = capsys.readouterr().err
    assert f"warning: --epochs 1 ended the run after {result.steps} steps, before --max-steps 1000000" in err
    assert "raise --epochs" in err
    train(config(short, tmp_path / "quiet", epochs=1, max_steps=10**6), TINY, quiet=True)
    assert "warning" not in capsys.readouterr().err
    train(config(short, tmp_path / "steps", epochs=1, max_steps=2), TINY, quiet=False)
    assert "warning" not in capsys.readouterr().err


def test_epochs_left_unset_with_a_time_budget_means_no_epoch_limit(short, tmp_path):
    assert resolve_config({"max_time": 60.0, "epochs": None}, {})[0].epochs == 0
    assert resolve_config({"max_time": 60.0, "epochs": 3}, {})[0].epochs == 3
    assert resolve_config({"max_steps": 100}, {})[0].epochs == LMTrainConfig.epochs == 1
    path = tmp_path / "run.toml"
    path.write_text("[train]\nepochs = 2\n", encoding="utf-8")
    assert resolve_config({"max_time": 60.0}, {}, str(path))[0].epochs == 2
    with pytest.raises(TextseqError, match="no epoch limit"):
        LMTrainConfig(data="x", output="y", epochs=0)
    # epochs 0 runs across epoch boundaries until max_steps
    one_epoch = train(config(short, tmp_path / "one", epochs=1, max_steps=0), TINY, quiet=True)
    result = train(config(short, tmp_path / "run", epochs=0, max_steps=2 * one_epoch.steps + 1), TINY, quiet=True)
    assert result.stop_reason == "max-steps" and result.epochs == 2


def test_ar_tar_train_and_the_reported_loss_is_the_pure_nll(lunyu, tmp_path):
    seen: list = []
    plain = train(config(lunyu, tmp_path / "plain", max_steps=3), TINY, quiet=True)
    penalised = train(config(lunyu, tmp_path / "ar", max_steps=3, ar=2.0, tar=1.0), TINY, quiet=True,
                      on_step=_recorder(seen, lambda t: (t.last_loss, float(t.window_loss.last_nll),
                                                         float(t.window_loss.last_penalty))))
    # same seed, same first forward: the penalty only changes the update, not the first NLL
    assert penalised.history["train"][0] == plain.history["train"][0]
    assert all(loss == nll and penalty > 0 for loss, nll, penalty in seen)
    assert [loss for _, loss in penalised.history["train"]] == [loss for loss, _, _ in seen]
    assert penalised.history["train"][1:] != plain.history["train"][1:]
    assert all(math.isfinite(loss) for _, loss in penalised.history["train"])
    assert read_lm(penalised.last_checkpoint)["train_config"]["ar"] == 2.0


@pytest.mark.parametrize("overrides, message", [(dict(ar=-1.0), "ar must be"), (dict(tar=math.inf), "tar must be"),
                                                (dict(max_time=-1.0), "max-time must be"),
                                                (dict(ar=1.0, mode="free"), "teacher forcing only")])
def test_bad_budget_and_regularizer_settings(overrides, message):
    with pytest.raises(TextseqError, match=message):
        LMTrainConfig(data="x", output="y", **overrides)


def test_short_mode_names(lunyu, tmp_path):
    assert LMTrainConfig(mode="teacher").mode == "teacher-forcing"
    assert LMTrainConfig(mode="free").mode == "free-running"
    path = tmp_path / "run.toml"
    path.write_text('[train]\nmode = "free"\n', encoding="utf-8")
    assert resolve_config({}, {}, str(path))[0].mode == "free-running"
    result = train(config(lunyu, tmp_path / "run", mode="free", max_steps=1), TINY, quiet=True)
    assert read_lm(result.last_checkpoint)["train_config"]["mode"] == "free-running"


def test_precision_auto_uses_bfloat16_only_where_the_device_has_it(short, tmp_path, monkeypatch):
    import textseq.training as training
    from textseq.training import native_bf16, resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if native_bf16(cpu) else "fp32")
    assert resolve_precision("fp32", cpu) == "fp32"
    with pytest.raises(TextseqError, match="precision"):
        resolve_precision("fp16", cpu)
    with pytest.raises(TextseqError, match="precision"):
        config(short, tmp_path / "bad", precision="half")
    monkeypatch.setattr(training, "native_bf16", lambda device: True)
    assert resolve_precision("bf16", cpu) == "bf16"
    monkeypatch.setattr(training, "native_bf16", lambda device: False)  # a CPU without AMX / AVX512-BF16
    assert resolve_precision("auto", cpu) == "fp32"
    with pytest.raises(TextseqError, match="--precision fp32 or auto"):  # oneDNN has no bf16 LSTM there
        resolve_precision("bf16", cpu)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_in_each_precision_learns_and_keeps_float32_weights(short, tmp_path, precision):
    from textseq.training import native_bf16

    if precision == "bf16" and not native_bf16(torch.device("cpu")):
        pytest.skip("this CPU has no native bfloat16 (AMX / AVX512-BF16): --precision bf16 is refused here")
    dtypes: list = []
    result = train(config(short, tmp_path / "run", precision=precision, max_steps=30), TINY, quiet=True,
                   on_step=_recorder(dtypes, lambda trainer: {h.dtype for h in trainer.hidden}))
    assert dtypes and all(d == {torch.float32} for d in dtypes)  # the carried state is float32, too
    losses = [loss for _, loss in result.history["train"]]
    assert math.isfinite(result.best_valid_loss) and losses[-1] < losses[0]
    stored = read_lm(tmp_path / "run" / "last.pt")
    assert stored["train_config"]["precision"] == precision
    assert all(t.dtype == torch.float32 for t in stored["model_state"].values() if t.is_floating_point())


def test_precision_auto_keeps_float32_for_token_by_token_modes(short, tmp_path):
    seen: list = []
    train(config(short, tmp_path / "free", mode="free-running", max_steps=2), TINY, quiet=True,
          on_step=_recorder(seen, lambda trainer: trainer.precision))
    assert set(seen) == {"fp32"}
