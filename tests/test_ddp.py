"""Trace learning under DistributedDataParallel: 2 CPU processes (gloo) vs one process.

Each rank holds its own slice of the global batch and its own stream state. The gradients of
``Sequential(LIF, LI)`` averaged by DDP must equal the single-process gradients on the whole
batch, also for learning mid-stream (backward, step, next chunk of the same sequences).
``broadcast_buffers`` must be False: tracetorch's stream state lives in (non-persistent)
buffers, which DDP would otherwise overwrite with rank 0's (``docs/distributed.md``).
"""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

import tracetorch as tt
from tracetorch.training import _no_buffer_sync, exit_process_group

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed/gloo"
)

WORLD, BATCH, STEPS, CHUNKS = 2, 8, 12, 2


def _data():
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(CHUNKS * STEPS, BATCH, 10, generator=g) < 0.3).float()
    y = torch.randint(0, 4, (BATCH,), generator=g)
    return x, y


def _net():
    torch.manual_seed(0)
    return tt.nn.Sequential(tt.nn.LIF(10, 16), tt.nn.LI(16, 4, learn_beta=True))


def _train(model, net, x, y):
    """Two chunks of one stream, learning after each: the gradients of each backward."""
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    net.reset_states()
    grads = []
    for chunk in x.split(STEPS):
        out = model(chunk)
        loss = F.cross_entropy(out[-1], y)
        opt.zero_grad()
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None})
        opt.step()
    return grads


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, out_dir: str, mode: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        x, y = _data()
        part = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
        xs, ys = x[:, part], y[part]
        net = _net()
        result = {}
        if mode == "right":
            ddp = torch.nn.parallel.DistributedDataParallel(net, **_no_buffer_sync())
            result["grads"] = _train(ddp, net, xs, ys)
        else:  # the default broadcast_buffers=True, wrapped while a stream is running
            with torch.no_grad():
                net(xs[:STEPS])
            ddp = torch.nn.parallel.DistributedDataParallel(net)
            with torch.no_grad():
                ddp(xs[STEPS:])
            result["membrane"] = net[0].membrane.clone()
        torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        exit_process_group()  # leaves the group; no gloo teardown abort (SIGABRT)


def _spawn(tmp_path, mode):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path), mode), nprocs=WORLD, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]


def test_ddp_gradients_equal_single_process_gradients_mid_stream(tmp_path):
    x, y = _data()
    net = _net()
    expected = _train(net, net, x, y)
    ranks = _spawn(tmp_path, "right")
    assert len(expected) == CHUNKS
    for result in ranks:
        for got, want in zip(result["grads"], expected, strict=True):
            assert got.keys() == want.keys() and "0.weight" in got and "1.beta_raw" in got
            for name in want:
                torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-6, msg=name)


def test_default_broadcast_buffers_overwrites_each_ranks_stream_state(tmp_path):
    """Why broadcast_buffers=False: with the default, every rank continues rank 0's stream."""
    x, _ = _data()
    ranks = _spawn(tmp_path, "wrong")
    parts = [x[:, r * BATCH // WORLD : (r + 1) * BATCH // WORLD] for r in range(WORLD)]

    def stream(start, chunk):
        net = _net()
        with torch.no_grad():
            net(start[:STEPS])
            net(chunk[STEPS:])
        return net[0].membrane

    assert torch.equal(ranks[0]["membrane"], stream(parts[0], parts[0]))
    # rank 1 ran its own second chunk from rank 0's state (membrane and trace broadcast) ...
    assert torch.equal(ranks[1]["membrane"], stream(parts[0], parts[1]))
    # ... instead of its own stream
    assert not torch.equal(ranks[1]["membrane"], stream(parts[1], parts[1]))
