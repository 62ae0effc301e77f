"""DistributedDataParallel training with 2 CPU processes (gloo, loopback only)."""

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from textseq.lm.checkpoint import read_lm
from textseq.lm.train import LMTrainConfig, train

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
TINY = {"emb_size": 16, "hidden_size": 24, "num_layers": 1, "dropout": 0.2}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, cfg: LMTrainConfig, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    result = train(cfg, TINY, quiet=True)
    torch.save({"state": result.model.state_dict(), "history": result.history},
               Path(out_dir) / f"rank{rank}.pt")


@pytest.mark.slow
def test_two_processes_train_in_sync(tmp_path):
    data = tmp_path / "slice.txt"
    data.write_text("".join(open(CORPORA / "en" / "shakespeare_sample.txt", encoding="utf-8").readlines()[:150]),
                    encoding="utf-8")
    cfg = LMTrainConfig(data=str(data), output=str(tmp_path / "run"), level="char", bptt=16, batch_size=8,
                      max_steps=12, eval_every=6, lr=0.01, seed=1, device="cpu", log_every=1)
    mp.spawn(_worker, args=(2, _free_port(), cfg, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    first, second = ranks[0]["state"], ranks[1]["state"]
    assert all(torch.equal(first[k], second[k]) for k in first)  # gradients averaged: ranks stay identical
    assert ranks[0]["history"] == ranks[1]["history"]  # the logged loss is the mean over ranks
    losses = [loss for _, loss in ranks[0]["history"]["train"]]
    assert losses[-1] < losses[0]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["best.pt", "last.pt", "loss.png", "ngram.npz"]
    ckpt = read_lm(tmp_path / "run" / "last.pt")
    assert len(ckpt["rng"]) == 2  # every rank's RNG state, so a 2-process run resumes exactly
    assert ckpt["progress"]["hidden"][0].shape[1] == 8  # the carried state of all 8 streams
    assert all(torch.equal(ckpt["model_state"][k], first[k]) for k in first)
