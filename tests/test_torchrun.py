"""``torchrun --nproc_per_node 2 -m tracetorch train ...``: 2 CPU processes (gloo, loopback)
train what one process trains on the same global batches.

Each rank keeps its share of every seeded global batch and DDP averages the gradients, so
the learned parameters equal a single process's up to the order of float sums. A rank that
learned on its half alone (no averaging) would be off by orders of magnitude more than the
tolerance used here.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tracetorch import cli
from tracetorch.training import Trainer, exit_process_group, load_checkpoint

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(),
    reason="torchrun needs torch.distributed with the gloo backend",
)


def _torchrun() -> list[str]:
    """The torchrun beside this Python, else its module (the same program)."""
    script = Path(sys.executable).with_name("torchrun")
    if script.exists():
        return [str(script)]
    if shutil.which("torchrun") is None:
        pytest.skip("torchrun is not installed beside this Python")
    return [sys.executable, "-m", "torch.distributed.run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env |= {"OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "PYTHONUNBUFFERED": "1"}
    cmd = [*_torchrun(), "--nproc_per_node", "2", "--master-addr", "127.0.0.1"]
    cmd += ["--master-port", str(_free_port()), "-m", "tracetorch", "train", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_two_processes_learn_what_one_learns(tmp_path, capsys):
    common = ["--task", "digits", "--epochs", "1", "--max-batches", "3"]
    common += ["--no-plots", "--no-progress"]
    ddp_out, one_out = tmp_path / "ddp", tmp_path / "one"
    done = _launch([*common, "--out", str(ddp_out)], tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # rank 0 alone prints and writes: one summary, one checkpoint, nothing else
    assert done.stdout.count("test accuracy") == 1 and "x 2 processes (DDP)" in done.stdout
    assert sorted(p.name for p in ddp_out.iterdir()) == [
        "checkpoint.pt",
        "config.json",
        "history.json",
        "summary.json",
    ]
    assert cli.main(["train", *common, "--out", str(one_out)]) == 0
    capsys.readouterr()
    ddp = load_checkpoint(ddp_out / "checkpoint.pt")
    one = load_checkpoint(one_out / "checkpoint.pt")
    assert ddp["model"].keys() == one["model"].keys()  # the inner module's: no "module."
    for name, value in one["model"].items():
        torch.testing.assert_close(ddp["model"][name], value, rtol=1e-5, atol=1e-6, msg=name)
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
        np.testing.assert_allclose(ddp["history"][key], one["history"][key], rtol=1e-5)
    assert ddp["epoch"] == one["epoch"] == 1


# ---------------------------------------------------------------------- uneven shares
BATCH_SIZES = (5, 1, 3)  # shares 3/2, 1/0 (an empty rank), 2/1


def _batches():
    g = torch.Generator().manual_seed(5)
    return [
        ((torch.rand(9, n, 6, generator=g) < 0.4).float(), torch.randint(0, 3, (n,), generator=g))
        for n in BATCH_SIZES
    ]


def _fit():
    from tracetorch.models import build_network

    torch.manual_seed(0)
    net = build_network("lif:12", 6, 3)
    trainer = Trainer(net, lr=1e-2, progress=False, batch_size=8, learn_every=3)
    history = trainer.fit(_batches(), 2, test=_batches())
    return {k: v.clone() for k, v in net.state_dict().items()}, history


def _rank(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.save(_fit(), Path(out) / f"rank{rank}.pt")
    finally:
        exit_process_group()  # leaves the group; no gloo teardown abort (SIGABRT)


def test_uneven_and_empty_shares_match_one_process(tmp_path):
    """Batches of 5, 1 and 3 samples on 2 ranks, learning every 3 steps: weighted losses make
    the averaged gradient the global batch's; the rank left without a sample still joins the
    backward; the evaluation sums every rank's counts."""
    mp.spawn(_rank, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    state, history = _fit()
    for rank in (0, 1):
        ddp_state, ddp_history = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        for name, value in state.items():
            torch.testing.assert_close(ddp_state[name], value, rtol=1e-5, atol=1e-6, msg=name)
        for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
            np.testing.assert_allclose(ddp_history[key], history[key], rtol=1e-5)


def test_batch_size_must_split_evenly(tmp_path):
    done = _launch(["--task", "digits", "--batch-size", "9", "--out", str(tmp_path)], tmp_path)
    assert done.returncode != 0
    assert "--batch-size 9 must be divisible by the number of processes (2)" in done.stderr
    assert not (tmp_path / "checkpoint.pt").exists()
