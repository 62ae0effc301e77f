"""LM training: modes, schedules, TBPTT, exact resume, Ctrl-C, divergence, checkpoints, evaluation."""

import math
import os
import signal
from pathlib import Path

import pytest
import torch

from textseq.checkpoint import save_checkpoint
from textseq.errors import TextseqError, TrainingDiverged
from textseq.lm.checkpoint import KIND, load_lm, read_lm
from textseq.lm.data import batchify, load_lm_data, split_docs
from textseq.lm.evaluate import evaluate_checkpoint, evaluate_stream, free_running_nll, stream_rows, training_part
from textseq.lm.generate import generate_text
from textseq.lm.model import LMConfig, RNNLanguageModel
from textseq.lm.sampling import SamplingConfig
from textseq.lm.tbptt import SCHEDULES, WindowLoss, default_schedule_k, span_at, teacher_forcing_prob
from textseq.lm.train import LMTrainConfig, resolve_config, train
from textseq.vocab import Vocab

pytestmark = pytest.mark.usefixtures("one_thread")

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
TINY = {"emb_size": 16, "hidden_size": 32, "num_layers": 1, "dropout": 0.1}




def config(data: Path, out: Path, **overrides) -> LMTrainConfig:
    settings = dict(data=str(data), output=str(out), level="char", bptt=12, batch_size=4, epochs=50,
                    max_steps=8, lr=0.01, log_every=1, seed=3)
    return LMTrainConfig(**{**settings, **overrides})


def test_teacher_forcing_reduces_the_loss_on_real_text(lunyu, tmp_path):
    result = train(config(lunyu, tmp_path / "run", max_steps=40, batch_size=8, bptt=16, eval_every=20),
                   TINY, quiet=True)
    first_loss = result.history["train"][0][1]
    valid = [loss for _, loss in result.history["valid"]]
    assert first_loss > math.log(300)  # starts near uniform over a vocabulary of ~1000 characters
    assert valid[-1] < valid[0] < first_loss - 0.5
    assert result.best_valid_loss == min(valid)


@pytest.mark.parametrize("mode", ["free-running", "scheduled-sampling"])
def test_free_running_and_scheduled_sampling_train(lunyu, tmp_path, mode):
    result = train(config(lunyu, tmp_path / "run", mode=mode, max_steps=6), TINY, quiet=True)
    losses = [loss for _, loss in result.history["train"]]
    assert result.stop_reason == "max-steps" and len(losses) == 6
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_schedules_decay_from_one_to_near_zero(schedule):
    total = 1000
    k = default_schedule_k(schedule, total)
    probs = [teacher_forcing_prob(schedule, step, k) for step in range(total + 1)]
    assert probs[0] > 0.95 and probs[-1] < 0.05
    assert all(a >= b for a, b in zip(probs, probs[1:], strict=False))
    assert teacher_forcing_prob(schedule, total, k, min_prob=0.2) == 0.2
    if schedule == "inverse-sigmoid":
        assert teacher_forcing_prob(schedule, total // 2, k) == pytest.approx(0.5, abs=0.02)
    if schedule == "linear":
        assert probs[total // 2] == pytest.approx(0.5)


def _tiny_lm(vocab_size: int, dropout: float = 0.0) -> RNNLanguageModel:
    torch.manual_seed(0)
    return RNNLanguageModel(LMConfig(vocab_size, emb_size=8, hidden_size=16, num_layers=2, dropout=dropout))


def test_modes_feed_the_truth_or_the_predictions():
    data = torch.randint(0, 20, (3, 30))
    lm = _tiny_lm(20)
    span = span_at(0, data.size(1), 10, 10)
    teacher, _ = WindowLoss(lm, "teacher-forcing")(data, span, None)
    mixed_all_truth, _ = WindowLoss(lm, "scheduled-sampling")(data, span, None, teacher_prob=1.0)
    free, _ = WindowLoss(lm, "free-running")(data, span, None)
    assert torch.allclose(teacher, mixed_all_truth, atol=1e-6)  # step-by-step path == full-sequence path
    assert not torch.allclose(teacher, free)


@pytest.mark.parametrize("mode", ["teacher-forcing", "free-running", "scheduled-sampling"])
@pytest.mark.parametrize("k1,k2", [(6, 6), (4, 9), (8, 3)])
def test_tbptt_carries_a_detached_hidden_state(mode, k1, k2):
    data = torch.randint(0, 20, (2, 40))
    loss_fn = WindowLoss(_tiny_lm(20), mode)
    hidden, pos = None, 0
    while pos < data.size(1) - 1:
        span = span_at(pos, data.size(1), k1, k2)
        loss, hidden = loss_fn(data, span, hidden, teacher_prob=0.5)
        loss.backward()  # would fail ("backward through the graph a second time") if the graph leaked
        if hidden is not None:  # None while a k2 > k1 span still restarts from the stream's start
            assert all(h.grad_fn is None and not h.requires_grad for h in hidden)
        pos = span.end


def test_cut_graph_keeps_the_loss_but_truncates_the_gradient():
    data = torch.randint(0, 20, (2, 13))
    lm = _tiny_lm(20)
    full, cut = span_at(0, 13, 12, 12), span_at(0, 13, 12, 4)
    grads = []
    for span in (full, cut):
        lm.zero_grad()
        emb = lm.encoder.weight
        loss, _ = WindowLoss(lm, "teacher-forcing")(data, span, None)
        loss.backward()
        grads.append((loss.item(), emb.grad.clone()))
    assert grads[0][0] == pytest.approx(grads[1][0], abs=1e-6)
    assert not torch.allclose(grads[0][1], grads[1][1])


def _interrupt_at(step: int):
    def on_step(trainer):
        if trainer.progress.step == step:
            raise KeyboardInterrupt

    return on_step


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(lunyu, tmp_path):
    settings = dict(mode="scheduled-sampling", max_steps=14, eval_every=4, scheduler="cosine", batch_size=16,
                    bptt=16, optimizer="adamw", weight_decay=0.01)
    straight = train(config(lunyu, tmp_path / "a", **settings), TINY, quiet=True)
    assert straight.epochs >= 1  # the run crosses an epoch boundary (hidden reset, epoch checkpoint)
    cfg = config(lunyu, tmp_path / "b", **settings)
    first = train(cfg, TINY, quiet=True, on_step=_interrupt_at(5))
    assert first.stop_reason == "interrupted" and first.steps == 5
    resumed = train(cfg, TINY, quiet=True, resume=first.last_checkpoint)
    assert resumed.steps == straight.steps == 14
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history == straight.history


def test_checkpoints_from_before_valid_split_resume_and_evaluate_on_the_tail(lunyu, tmp_path):
    result = train(config(lunyu, tmp_path / "run", max_steps=2), TINY, quiet=True)
    assert read_lm(result.last_checkpoint)["train_config"]["valid_split"] == "spread"  # the default
    old = read_lm(result.last_checkpoint)
    del old["train_config"]["valid_split"]
    save_checkpoint(tmp_path / "old.pt", KIND, {k: v for k, v in old.items() if k not in ("magic", "kind")})
    cfg, _ = resolve_config({}, {}, resume=str(tmp_path / "old.pt"))
    assert cfg.valid_split == "tail"
    ids = load_lm_data(str(lunyu), vocab=Vocab.from_dict(old["vocab"]), pipeline=old["pipeline"]).ids
    train_config = read_lm(tmp_path / "old.pt")["train_config"]
    assert training_part(ids, train_config).tolist() == ids[:len(ids) - int(len(ids) * 0.1)].tolist()


def test_ctrl_c_saves_a_checkpoint_that_generates_from_the_path_alone(lunyu, tmp_path):
    def press_ctrl_c(trainer):
        if trainer.progress.step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # the real signal: the loop stops after this update

    result = train(config(lunyu, tmp_path / "run"), TINY, quiet=True, on_step=press_ctrl_c)
    assert result.stop_reason == "interrupted" and result.steps == 2
    ckpt = read_lm(result.last_checkpoint)
    for key in ("model_config", "train_config", "pipeline", "vocab", "model_state", "optimizer", "rng",
                "progress", "sources"):
        assert ckpt[key] is not None, key
    assert ckpt["progress"]["step"] == 2 and ckpt["train_config"]["data"] == str(lunyu)
    assert set(ckpt["rng"][0]) >= {"torch", "numpy", "python"}
    texts, prompt = generate_text(result.last_checkpoint, "子曰", SamplingConfig(max_tokens=10, seed=1))
    assert texts[0].startswith("子曰") and len(texts[0]) > 2 and prompt.unknown == []
    model, vocab, pipeline = load_lm(result.best_checkpoint)
    assert not model.training and pipeline.process_line("學而") == ["學", "而"]


def test_nan_loss_stops_with_advice(lunyu, tmp_path):
    def poison(trainer):
        with torch.no_grad():
            trainer.lm.decoder.weight.fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match="lower --lr or set --clip"):
        train(config(lunyu, tmp_path / "run"), TINY, quiet=True, on_step=poison)


def test_early_stopping_when_validation_stops_improving(lunyu, tmp_path):
    result = train(config(lunyu, tmp_path / "run", optimizer="sgd", lr=1e-30, max_steps=20, eval_every=2,
                          patience=2), TINY, quiet=True)
    assert result.stop_reason == "early-stopping" and result.steps == 6
    assert (tmp_path / "run" / "best.pt").exists() and (tmp_path / "run" / "loss.png").exists()


def test_output_is_never_silently_overwritten(lunyu, tmp_path):
    train(config(lunyu, tmp_path / "m.pt", max_steps=1), TINY, quiet=True)
    assert (tmp_path / "m.last.pt").exists()
    with pytest.raises(TextseqError, match="--force"):
        train(config(lunyu, tmp_path / "m.pt", max_steps=1), TINY, quiet=True)


def test_toml_config_with_flag_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[train]\nmode = "free-running"\nbptt = 50\n[model]\nhidden_size = 64\n', encoding="utf-8")
    cfg, model = resolve_config({"bptt": 20, "lr": None}, {"cell": "gru"}, str(path))
    assert (cfg.mode, cfg.bptt, cfg.lr) == ("free-running", 20, LMTrainConfig.lr)
    assert model == {"hidden_size": 64, "cell": "gru"}
    path.write_text("[train]\nbpt = 50\n", encoding="utf-8")
    with pytest.raises(TextseqError, match="unknown train setting"):
        resolve_config({}, {}, str(path))



@pytest.mark.parametrize("text, message", [('[train]\nbptt = "35"\n', "bptt must be int"),
                                           ("[train]\nbptt = true\n", "bptt must be int"),
                                           ("[model]\ntie_weights = 1\n", "tie_weights must be bool"),
                                           ("[train]\nlr_gamma = 1.5\n", "lr-gamma")])
def test_toml_values_of_the_wrong_type_or_range_are_clean_errors(tmp_path, text, message):
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TextseqError, match=message):
        resolve_config({}, {}, str(path))


@pytest.mark.parametrize("overrides", [dict(optimizer="sgd", momentum=-0.5),
                                       dict(scheduler="plateau", lr_gamma=1.0),
                                       dict(schedule="exponential", schedule_k=2.0),
                                       dict(schedule_k=-1.0)])
def test_settings_torch_or_the_schedules_reject_fail_early(tmp_path, overrides):
    with pytest.raises(TextseqError):
        LMTrainConfig(data="x", output=str(tmp_path / "run"), **overrides)


def test_bad_model_settings_leave_no_output_behind(lunyu, tmp_path):
    with pytest.raises(TextseqError, match="tied weights"):
        train(config(lunyu, tmp_path / "run"), {**TINY, "tie_weights": True, "adaptive_softmax": True}, quiet=True)
    assert not (tmp_path / "run").exists()

def test_free_running_horizon_one_is_teacher_forcing(lunyu):
    data = load_lm_data(lunyu, level="char")
    lm = _tiny_lm(len(data.vocab))
    inputs, targets = stream_rows(data.ids[:600], 4)
    teacher = evaluate_stream(lm, inputs, targets, bptt=7)
    assert free_running_nll(lm, inputs, targets, horizon=1, stride=1)[0] == pytest.approx(teacher, rel=1e-5)
    assert batchify(data.ids, 4).size(1) > 100


def test_evaluate_compares_with_the_ngram_baseline_on_the_same_tokens(lunyu, tmp_path):
    result = train(config(lunyu, tmp_path / "run", max_steps=10), TINY, quiet=True)
    heldout = tmp_path / "heldout.txt"
    heldout.write_text("".join(open(CORPORA / "zh" / "lunyu.txt", encoding="utf-8").readlines()[100:110]),
                       encoding="utf-8")
    report = evaluate_checkpoint(result.best_checkpoint, heldout, horizon=4, order=3, cache=None, dynamic=None)
    names = [row.name for row in report.rows]
    assert names == ["RNN teacher-forced", "RNN free-running (4-step)", "Kneser-Ney 3-gram"]
    assert report.level == "char" and len(report.horizon_nll) == 4
    assert all(row.metric == pytest.approx(row.nll / math.log(2)) for row in report.rows)
    from textseq.features.ngram_lm import KneserNeyLM
    from textseq.lm.evaluate import heldout_docs
    from textseq.vocab import Vocab

    vocab = Vocab.from_dict(read_lm(result.best_checkpoint)["vocab"])
    docs = heldout_docs(heldout, read_lm(result.best_checkpoint)["pipeline"], vocab)
    assert KneserNeyLM(3, vocab=vocab).fit(docs).evaluate(docs).tokens == report.tokens


def test_pretrained_word_vectors_initialise_the_embedding(tmp_path):
    from textseq.features.embeddings import Word2VecConfig, save_vectors, train_word2vec

    text = tmp_path / "words.txt"
    text.write_text("".join(open(CORPORA / "en" / "pride_sample.txt", encoding="utf-8").readlines()[:150]),
                    encoding="utf-8")
    data = load_lm_data(text, level="word", lang="en")
    docs = [data.vocab.decode(d.tolist()) for d in split_docs(data.ids, data.eos_id)]
    kv = train_word2vec(docs, Word2VecConfig(vector_size=16, min_count=1, epochs=1))
    save_vectors(kv, tmp_path / "w.kv")
    cfg = config(text, tmp_path / "run", level="word", lang="en", embeddings=str(tmp_path / "w.kv"), lr=1e-30,
                 optimizer="sgd", max_steps=1)
    result = train(cfg, {**TINY, "dropout": 0.0}, quiet=True)
    row = result.model.encoder.weight[data.vocab["the"]].detach()
    assert torch.allclose(row, torch.tensor(kv["the"].copy()), atol=1e-6)


def test_epochs_end_with_validation_and_a_checkpoint(tmp_path):
    text = tmp_path / "short.txt"
    text.write_text("".join(open(CORPORA / "zh" / "lunyu.txt", encoding="utf-8").readlines()[:20]), encoding="utf-8")
    result = train(config(text, tmp_path / "run", epochs=2, max_steps=0, valid_ratio=0.2), TINY, quiet=True)
    assert result.stop_reason == "epochs" and result.epochs == 2
    assert [step for step, _ in result.history["valid"]] == [result.steps // 2, result.steps]
    assert read_lm(result.last_checkpoint)["progress"]["epoch"] == 2


def test_resume_is_exact_with_the_awd_regularizers_and_ar_tar(lunyu, tmp_path):
    awd = {**TINY, "weight_drop": 0.3, "dropout_out": 0.2, "dropout_emb": 0.1}
    settings = dict(max_steps=8, eval_every=3, scheduler="cosine", ar=1.0, tar=1.0, mode="teacher")
    straight = train(config(lunyu, tmp_path / "a", **settings), awd, quiet=True)
    cfg = config(lunyu, tmp_path / "b", **settings)
    first = train(cfg, awd, quiet=True, on_step=_interrupt_at(4))
    resumed = train(cfg, awd, quiet=True, resume=first.last_checkpoint)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history == straight.history and [s for s, _ in straight.history["valid"]] == [3, 6, 8]


def _overfitting_run(tmp_path: Path, name: str, **overrides) -> LMTrainConfig:
    """A run on 30 lines with a high LR: validation stalls within a few dozen updates."""
    text = tmp_path / "short.txt"
    if not text.exists():
        lines = open(CORPORA / "zh" / "lunyu.txt", encoding="utf-8").readlines()[:30]
        text.write_text("".join(lines), encoding="utf-8")
    settings = dict(epochs=0, max_steps=90, eval_every=3, lr=0.03, valid_ratio=0.2, average="nt")
    return config(text, tmp_path / name, **{**settings, **overrides})


def test_nt_averaging_starts_when_validation_stalls_and_best_holds_the_mean(tmp_path):
    averaged_steps: list[dict] = []

    def record(trainer):
        if trainer.averaged is not None:
            averaged_steps.append({k: v.detach().clone() for k, v in trainer.lm.named_parameters()})

    result = train(_overfitting_run(tmp_path, "run"), TINY, quiet=True, on_step=record)
    start = read_lm(result.last_checkpoint)["progress"]["average_from"]
    valid = [loss for _, loss in result.history["valid"]]
    trigger = [step for step, _ in result.history["valid"]].index(start)
    assert trigger > 3 and valid[trigger] > min(valid[:trigger - 3])  # NT-ASGD's non-monotone trigger
    # the mean of the weights at the trigger and after every later update (the trigger step's own weights are
    # recorded once: on_step runs after averaging began at that step)
    mean = {k: torch.stack([s[k] for s in averaged_steps]).mean(0) for k in averaged_steps[0]}
    final = dict(result.model.named_parameters())
    assert all(torch.allclose(final[k], mean[k], atol=1e-6) for k in mean)
    assert read_lm(result.last_checkpoint)["average"] is not None


def test_resume_is_exact_while_averaging(tmp_path):
    straight = train(_overfitting_run(tmp_path, "a"), TINY, quiet=True)
    start = read_lm(straight.last_checkpoint)["progress"]["average_from"]
    assert start is not None and start < 80
    cfg = _overfitting_run(tmp_path, "b")
    first = train(cfg, TINY, quiet=True, on_step=_interrupt_at(start + 5))
    assert read_lm(first.last_checkpoint)["average"] is not None
    resumed = train(cfg, TINY, quiet=True, resume=first.last_checkpoint)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a) and resumed.history == straight.history
    best_a, best_b = read_lm(straight.best_checkpoint), read_lm(resumed.best_checkpoint)
    assert all(torch.equal(best_a["model_state"][k], best_b["model_state"][k]) for k in best_a["model_state"])


def test_average_must_be_a_known_trigger(tmp_path):
    with pytest.raises(TextseqError, match="average"):
        LMTrainConfig(data="x", output=str(tmp_path), average="swa")
