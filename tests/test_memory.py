"""Constant memory in T: what autograd saves, the autograd graph's size, and peak process memory.

Figures measured on the code of this commit (2-core CPU box):

- bytes saved for backward by a training step (one forward call on ``[T, 4, 16]`` through
  LIF(16, 32) -> LI(32, 4), cross-entropy on the last step): 164 B at T = 100 and at
  T = 10,000; in BPTT mode 53.6 KB at T = 20 and 528.8 KB at T = 200 (the control).
- autograd nodes of one call of Linear -> LIF -> LIF -> LI: 19 at T = 1, 5 and 50; in BPTT
  mode 49, 105 and 735.
- peak RSS of a streamed training step (chunks of 50 steps generated on the fly, batch 16,
  LIF(32, 64) -> LI(64, 10), Adam): 312.8 MiB for both T = 100 and T = 10,000, with zero
  growth over the warm-up baseline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tracetorch as tt


def _spikes(*shape: int, p: float = 0.3) -> torch.Tensor:
    return (torch.rand(*shape) < p).float()


def _saved_bytes(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Bytes of the tensors autograd saves for backward during ``loss = CE(net(x)[-1], y)``."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(net(x)[-1], y)
    loss.backward()  # the step must still learn
    assert net[0].weight.grad is not None and float(net[0].weight.grad.abs().sum()) > 0
    return total


def _graph_nodes(root) -> list:
    """Every node of the autograd graph reachable from ``root``."""
    seen, stack, nodes = set(), [root], []
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        nodes.append(node)
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    return nodes


def test_saved_tensors_flat_in_sequence_length():
    y = torch.tensor([0, 1, 2, 3])
    saved = {}
    for steps in (100, 10_000):
        net = tt.nn.Sequential(tt.nn.LIF(16, 32), tt.nn.LI(32, 4))
        saved[steps] = _saved_bytes(net, _spikes(steps, 4, 16), y)
    assert saved[100] == saved[10_000]
    assert saved[100] < 4 * 32 * 4 * 4  # a few [B, out] tensors of the loss, nothing per step


def test_saved_tensors_control_bptt_grows_with_sequence_length():
    """The measurement can see O(T): in BPTT mode the saved bytes grow with T."""
    y = torch.tensor([0, 1, 2, 3])
    saved = {}
    for steps in (20, 200):
        net = tt.nn.Sequential(tt.nn.LIF(16, 32), tt.nn.LI(32, 4))
        with tt.bptt(net):
            saved[steps] = _saved_bytes(net, _spikes(steps, 4, 16), y)
    assert saved[200] > 5 * saved[20]


@pytest.mark.parametrize("steps", [5, 50])
def test_one_autograd_node_per_layer(steps):
    """One forward call on a sequence makes one node per tracetorch layer, whatever T."""
    nodes = _graph_at(steps)
    out_fn = nodes[0]
    assert type(out_fn).__name__ == "TraceFunctionBackward"
    trace_nodes = [n for n in nodes if type(n).__name__ == "TraceFunctionBackward"]
    assert len(trace_nodes) == 3
    # The LI node's inputs: the LIF node below it and one AccumulateGrad per parameter.
    below = [type(fn).__name__ for fn, _ in out_fn.next_functions if fn is not None]
    assert below.count("TraceFunctionBackward") == 1
    assert below.count("AccumulateGrad") == 2  # weight, bias (a readout's beta: fixed)
    # Nothing else grows with T: the graph has the same nodes as that of a one-step sequence.
    assert sorted(map(_type_name, nodes)) == sorted(map(_type_name, _graph_at(1)))
    assert len(_graph_at(steps, bptt=True)) > 4 * steps  # the control: BPTT unrolls in T


def _type_name(obj) -> str:
    return type(obj).__name__


def _graph_at(steps: int, bptt: bool = False) -> list:
    """The autograd graph of one forward call of Linear -> LIF -> LIF -> LI on ``[T, 2, 8]``."""
    torch.manual_seed(0)
    net = tt.nn.Sequential(nn.Linear(8, 16), tt.nn.LIF(16, 32), tt.nn.LIF(32, 16), tt.nn.LI(16, 4))
    if bptt:
        tt.learning.set_learning(net, "bptt")
    return _graph_nodes(net(torch.rand(steps, 2, 8)).grad_fn)


def test_upstream_gradient_of_a_sequence_is_a_view_not_an_allocation():
    """The gradient sent to a sequence input is dL/da / T expanded over time (stride 0)."""
    layer = tt.nn.LIF(16, 8)
    x = torch.rand(500, 3, 16, requires_grad=True)
    (grad_x,) = torch.autograd.grad(layer(x)[-1].sum(), x)
    assert grad_x.shape == x.shape
    assert grad_x.stride(0) == 0


_STREAM_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    import torch
    import torch.nn.functional as F
    import tracetorch as tt

    torch.set_num_threads(1)
    torch.manual_seed(0)
    steps, chunk, batch, update_every = int(sys.argv[1]), 50, 16, 1000
    net = tt.nn.Sequential(tt.nn.LIF(32, 64), tt.nn.LI(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    y = torch.randint(0, 10, (batch,))

    def max_rss():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux

    def train_on_stream(steps):
        # One sequence of `steps` steps, fed as chunks generated on the fly (the input is never
        # held in full), learning every `update_every` steps and at the end, states kept.
        net.reset_states()
        done = 0
        while done < steps:
            n = min(chunk, steps - done)
            out = net((torch.rand(n, batch, 32) < 0.2).float())
            done += n
            if done % update_every == 0 or done == steps:
                loss = F.cross_entropy(out[-1], y)
                opt.zero_grad()
                loss.backward()
                opt.step()

    for _ in range(3):  # warm-up: allocator pools, Adam state, lazy init
        train_on_stream(2 * chunk)
    baseline = max_rss()
    train_on_stream(steps)
    peak = max_rss()
    print(json.dumps({"steps": steps, "baseline": baseline, "peak": peak}))
    """
)


def test_peak_memory_flat_in_sequence_length():
    """Peak RSS of a streamed training step: T = 100 and T = 10,000 within 5%, no growth."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    procs = {
        steps: subprocess.Popen(
            [sys.executable, "-c", _STREAM_SCRIPT, str(steps)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for steps in (100, 10_000)
    }
    result = {}
    for steps, proc in procs.items():
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        result[steps] = json.loads(out.strip().splitlines()[-1])
    for r in result.values():  # pytest -s
        print(
            f"\nT={r['steps']}: peak RSS {r['peak'] / 2**20:.1f} MiB, "
            f"growth over warm-up {(r['peak'] - r['baseline']) / 2**20:.2f} MiB"
        )
    short, long = result[100], result[10_000]
    assert abs(long["peak"] - short["peak"]) <= 0.05 * short["peak"]
    # The streamed 10,000 steps may not grow the process beyond its warm-up high-water mark by
    # more than allocator noise (an O(T) leak of even one [B, 64] float per step is 40 MiB).
    assert long["peak"] - long["baseline"] <= 4 * 2**20
