"""The training loop: learning, chunking, learn-every-k, BPTT, streaming, checkpoints, metrics."""

from __future__ import annotations

import math
import pickle
import sys

import pytest
import torch
import torch.nn.functional as F

import tracetorch as tt
from tracetorch.data import Evidence, SpikeStream
from tracetorch.metrics import (
    FiringRates,
    MultiTimescaleMeter,
    accuracy,
    current_memory_mb,
    peak_memory_mb,
    record_outputs,
)
from tracetorch.training import (
    CheckpointError,
    Trainer,
    _pieces,
    cosine_schedule,
    default_loss,
    evaluate,
    fit,
    load_checkpoint,
    seed_everything,
)


def toy_batches(n_batches: int = 6, steps: int = 12, batch: int = 16, seed: int = 0):
    """Class c: channels 4c..4c+3 fire at 0.6, the others at 0.05."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        y = torch.randint(0, 3, (batch,), generator=g)
        p = torch.full((batch, 12), 0.05)
        for c in range(3):
            p[y == c, 4 * c : 4 * c + 4] = 0.6
        x = torch.bernoulli(p.expand(steps, batch, 12), generator=g)
        out.append((x, y))
    return out


def toy_net(seed: int = 0) -> tt.nn.Sequential:
    torch.manual_seed(seed)
    return tt.nn.Sequential(tt.nn.LIF(12, 32), tt.nn.LI(32, 3))


def toy_net_64() -> tt.nn.Sequential:
    return tt.nn.Sequential(tt.nn.LIF(64, 8), tt.nn.LI(8, 10))


class CountingAdam(torch.optim.Adam):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.count = 0

    def step(self, closure=None):
        self.count += 1
        return super().step(closure)


# ---------------------------------------------------------------------- learning
@pytest.mark.parametrize("learning", ["trace", "bptt"])
def test_fit_learns_a_toy_task(learning):
    train, test = toy_batches(8), toy_batches(4, seed=1)
    trainer = Trainer(toy_net(), lr=1e-2, learning=learning, progress=False)
    history = trainer.fit(train, 6, test=test)
    assert history["epoch"] == [1, 2, 3, 4, 5, 6]
    assert history["test_accuracy"][-1] >= 0.9
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert 0 < history["rate/0"][-1] < 1
    assert trainer.meters["loss"].count == 48
    assert all(layer.learning == learning for layer in trainer.model)


def test_pieces_respect_chunks_and_learning_points():
    x = torch.arange(10.0).view(10, 1, 1)
    pieces = list(_pieces(x, 4, 3))
    assert [(p.shape[0], step, last) for p, step, last in pieces] == [
        (3, 3, False),
        (1, 4, False),
        (2, 6, False),
        (2, 8, False),
        (1, 9, False),
        (1, 10, True),
    ]
    assert torch.equal(torch.cat([p for p, _, _ in pieces]), x)
    assert [s for _, s, _ in _pieces(x, None, None)] == [10]
    stream = SpikeStream(lambda a, b: x[a:b], 10, 1, 1, chunk_size=6)
    assert [p.shape[0] for p, _, _ in _pieces(stream, None, 5)] == [5, 1, 4]
    with pytest.raises(TypeError, match="SpikeStream"):
        list(_pieces(3.0, None, None))


def test_learn_every_counts_optimizer_steps():
    train = toy_batches(2, steps=10)
    net = toy_net()
    opt = CountingAdam(net.parameters(), lr=1e-3)
    Trainer(net, opt, learn_every=3, progress=False).fit(train, 1)
    assert opt.count == 2 * 4  # steps 3, 6, 9 and the end (10)
    # a task's target_from skips the learning points before the label is known
    task = Evidence(delay=5, listen=10, recall=5, train_size=8, test_size=8)  # T = 20
    net = tt.nn.Sequential(tt.nn.LIF(25, 8), tt.nn.LI(8, 2))
    opt = CountingAdam(net.parameters(), lr=1e-3)
    Trainer(net, opt, learn_every=4, batch_size=8, progress=False).fit(task, 1)
    assert opt.count == 3  # steps 12, 16, 20 (not 4, 8: before target_from = 10)


def test_chunk_size_does_not_change_trace_learning():
    """Trace learning depends on the state at the learning point only: chunking is free."""
    results = []
    for chunk in (None, 5):
        net = toy_net()
        Trainer(net, lr=1e-2, chunk_size=chunk, progress=False).fit(toy_batches(3), 2)
        results.append(torch.cat([p.detach().flatten() for p in net.parameters()]))
    assert torch.allclose(results[0], results[1], atol=1e-6)


def test_streamed_training_never_feeds_more_than_a_chunk():
    task = Evidence(delay=300, train_size=8, test_size=8, chunk_size=50)
    net = tt.nn.Sequential(tt.nn.LIF(25, 8, bias=False), tt.nn.LI(8, 2, bias=False))
    seen = []
    net[0].register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    trainer = Trainer(net, lr=1e-3, batch_size=4, progress=False)
    history = trainer.fit(task, 1)
    assert max(seen) == 50 and sum(seen) == 4 * task.steps  # 2 train + 2 test batches
    assert math.isfinite(history["train_loss"][0])
    trainer.chunk_size = 16
    seen.clear()
    trainer.evaluate(task)
    assert max(seen) == 16


def test_truncated_bptt_runs():
    net = toy_net()
    opt = CountingAdam(net.parameters(), lr=1e-2)
    h = Trainer(net, opt, learning="bptt", learn_every=4, progress=False).fit(toy_batches(2), 2)
    assert opt.count == 2 * 2 * 3 and math.isfinite(h["train_loss"][-1])


def test_evaluate_keeps_the_model_as_it_is():
    net = toy_net()
    with tt.bptt(net):
        pass
    before = [p.detach().clone() for p in net.parameters()]
    r = evaluate(net, toy_batches(2))
    assert set(r) >= {"loss", "accuracy", "rate/0"} and 0 <= r["accuracy"] <= 1
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    net[0].learning = "bptt"
    evaluate(net, toy_batches(1))
    assert net[0].learning == "bptt"  # learning=None leaves the modes alone


def test_fit_shortcut_and_data_forms():
    batches = toy_batches(2)
    h = fit(toy_net(), lambda epoch: batches, 2, lr=1e-2, progress=False, test=batches)
    assert len(h["test_accuracy"]) == 2
    task = tt.data.Digits(steps=3)
    h = fit(toy_net_64(), task, 1, progress=False, max_batches=1, test=False)
    assert "test_accuracy" not in h and len(h["train_accuracy"]) == 1
    with pytest.raises(TypeError, match="SpikeTask"):
        Trainer(toy_net(), progress=False).fit(42, 1)


def test_default_loss_picks_nll_for_lis():
    assert default_loss(toy_net()) is F.cross_entropy
    lis = tt.nn.Sequential(tt.nn.LIF(12, 8), tt.nn.LIS(8, 3))
    loss = default_loss(lis)(torch.softmax(torch.randn(4, 3), -1), torch.tensor([0, 1, 2, 0]))
    assert loss.item() > 0
    h = Trainer(lis, lr=1e-2, progress=False).fit(toy_batches(2), 1)
    assert math.isfinite(h["train_loss"][0])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"learning": "eprop"}, ValueError, "learning"),
        ({"lr": 0}, ValueError, "lr"),
        ({"learn_every": 0}, ValueError, "learn_every"),
        ({"chunk_size": 2.0}, TypeError, "chunk_size"),
        ({"progress": "yes"}, ValueError, "progress"),
        ({"grad_clip": -1.0}, ValueError, "grad_clip"),
        ({"loss_fn": 3}, TypeError, "loss_fn"),
    ],
)
def test_trainer_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        Trainer(toy_net(), **kwargs)


def test_fit_errors():
    trainer = Trainer(toy_net(), progress=False)
    with pytest.raises(ValueError, match="epochs"):
        trainer.fit(toy_batches(1), -1)
    with pytest.raises(ValueError, match="checkpoint"):
        trainer.fit(toy_batches(1), 1, resume=True)
    with pytest.raises(ValueError, match="no batches"):
        trainer.fit([], 1)
    with pytest.raises(FloatingPointError, match="learning rate"):
        Trainer(toy_net(), loss_fn=lambda o, y: o.sum() * float("nan"), progress=False).fit(
            toy_batches(1), 1
        )


def test_progress_bar_needs_tqdm_only_when_asked(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    Trainer(toy_net(), progress="auto").fit(toy_batches(1), 1)  # silently no bar
    with pytest.raises(ImportError, match=r"tracetorch\[examples\]"):
        Trainer(toy_net(), progress=True).fit(toy_batches(1), 1)


def test_progress_bar_runs(capsys):
    Trainer(toy_net(), progress=True).fit(toy_batches(2), 1, log=print)
    assert "epoch 1/1" in capsys.readouterr().out


# ---------------------------------------------------------------------- checkpoints
def run_digits(epochs: int, path=None, resume: bool = False):
    seed_everything(0)
    task = tt.data.Digits(steps=4)
    net = tt.nn.Sequential(tt.nn.LIF(64, 16), tt.nn.LI(16, 10))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    trainer = Trainer(net, opt, scheduler=sched, batch_size=64, max_batches=4, progress=False)
    trainer.fit(task, epochs, checkpoint=path, resume=resume)
    return trainer


def test_checkpoint_resume_repeats_the_uninterrupted_run(tmp_path):
    straight = run_digits(3)
    path = tmp_path / "ckpt" / "run.pt"
    run_digits(2, path)  # "interrupted" after two epochs
    state = load_checkpoint(path)
    assert state["epoch"] == 2 and set(state) >= {"model", "optimizer", "history", "meters"}
    assert len(state["history"]["test_accuracy"]) == 2
    resumed = run_digits(3, path, resume=True)
    assert resumed.epoch == 3 and len(resumed.history["epoch"]) == 3
    for a, b in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert straight.history["test_accuracy"] == resumed.history["test_accuracy"]
    assert straight.meters["loss"].history == resumed.meters["loss"].history
    assert resumed.optimizer.param_groups[0]["lr"] == straight.optimizer.param_groups[0]["lr"]
    assert not (tmp_path / "ckpt" / "run.pt.tmp").exists()


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"a": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a tracetorch checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_a_flipped_byte_is_caught_by_the_checksum(tmp_path):
    path = tmp_path / "run.pt"
    Trainer(toy_net(), progress=False).fit(toy_batches(1), 1, checkpoint=path)
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == 2 and len(raw["sha256"]) == 64
    payload = bytearray(raw["payload"])
    payload[len(payload) // 2] ^= 0x01  # one bit, in the middle of the tensors
    torch.save(raw | {"payload": bytes(payload)}, path)
    with pytest.raises(CheckpointError, match="sha256 checksum") as e:
        load_checkpoint(path)
    assert e.value.kind == "corrupt" and str(path) in str(e.value)
    copy = pickle.loads(pickle.dumps(e.value))
    assert (copy.kind, str(copy)) == ("corrupt", str(e.value))


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda p: p.write_bytes(b""), "is empty"),
        (lambda p: p.write_bytes(bytes(range(256)) * 20), "not a tracetorch checkpoint"),
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "truncated or corrupt"),
    ],
    ids=["empty", "random", "truncated"],
)
def test_damaged_checkpoints_raise_one_line_checkpoint_errors(tmp_path, damage, match):
    path = tmp_path / "run.pt"
    Trainer(toy_net(), progress=False).fit(toy_batches(1), 1, checkpoint=path)
    damage(path)
    with pytest.raises(CheckpointError, match=match) as e:
        Trainer(toy_net(), progress=False).fit(toy_batches(1), 2, checkpoint=path, resume=True)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_format_1_checkpoints_without_checksum_still_load(tmp_path):
    trainer = Trainer(toy_net(), progress=False)
    trainer.fit(toy_batches(1), 1)
    torch.save(trainer.state_dict(), tmp_path / "old.pt")  # format 1: the bare state
    assert load_checkpoint(tmp_path / "old.pt")["epoch"] == 1


def test_an_existing_checkpoint_is_refused_not_deleted(tmp_path):
    path = tmp_path / "run.pt"
    Trainer(toy_net(), progress=False).fit(toy_batches(1), 1, checkpoint=path)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="already exists") as e:
        Trainer(toy_net(), progress=False).fit(toy_batches(1), 1, checkpoint=path)
    assert e.value.kind == "exists" and path.read_bytes() == before

    class Stop(Exception):
        pass

    def stop(trainer, record):
        raise Stop

    # overwrite: the old file stays until the new run's first epoch replaces it
    trainer = Trainer(toy_net(seed=1), progress=False)
    assert trainer.open_checkpoint(path, overwrite=True) is False
    assert path.read_bytes() == before
    with pytest.raises(Stop):
        trainer.fit(toy_batches(1), 3, callback=stop)  # saves to the opened checkpoint
    assert load_checkpoint(path)["epoch"] == 1 and path.read_bytes() != before
    # continuing in memory with the trainer's own checkpoint is not a conflict
    trainer.fit(toy_batches(1), 2, checkpoint=path)
    assert load_checkpoint(path)["epoch"] == 2
    with pytest.raises(ValueError, match="exclude each other"):
        Trainer(toy_net(), progress=False).open_checkpoint(path, resume=True, overwrite=True)


def test_the_checkpoint_is_written_before_the_epoch_is_logged(tmp_path):
    path = tmp_path / "run.pt"
    seen = []
    Trainer(toy_net(), progress=False).fit(
        toy_batches(1), 2, checkpoint=path, log=lambda line: seen.append(load_checkpoint(path))
    )
    assert [s["epoch"] for s in seen] == [1, 2]


def test_resume_checks_settings_and_model(tmp_path):
    path = tmp_path / "run.pt"
    settings = {"hidden": 32, "task": {"name": "toy"}}
    Trainer(toy_net(), progress=False).fit(toy_batches(1), 1, checkpoint=path, settings=settings)
    assert load_checkpoint(path)["settings"] == settings
    with pytest.raises(CheckpointError, match=r"different settings \(hidden: 32 -> 16\)") as e:
        Trainer(toy_net(), progress=False).open_checkpoint(
            path, resume=True, settings=settings | {"hidden": 16}
        )
    assert e.value.kind == "settings"
    other = tt.nn.Sequential(tt.nn.LIF(12, 16), tt.nn.LI(16, 3))  # no settings to compare
    with pytest.raises(CheckpointError, match="does not fit this model.*size mismatch") as e:
        Trainer(other, progress=False).fit(toy_batches(1), 2, checkpoint=path, resume=True)
    assert e.value.kind == "model" and "\n" not in str(e.value)
    resumed = Trainer(toy_net(), progress=False)
    assert resumed.open_checkpoint(path, resume=True, settings=settings) is True
    assert resumed.epoch == 1


def test_lr_schedule_follows_a_raised_epoch_count_on_resume(tmp_path):
    """A finished 2-epoch cosine run ends near lr 0; resumed to 4 epochs, epochs 3 and 4 must
    train at the 4-epoch schedule's lr, not at the restored end-of-schedule lr."""
    path = tmp_path / "run.pt"

    def trainer():
        net = toy_net()
        return Trainer(net, torch.optim.Adam(net.parameters(), lr=0.01), lr_schedule="cosine")

    short = trainer()
    short.progress = False
    short.fit(toy_batches(1), 2, checkpoint=path)
    assert short.history["lr"] == pytest.approx([0.01, 0.01 * cosine_schedule(1, 2)])
    resumed = trainer()
    resumed.progress = False
    resumed.fit(toy_batches(1), 4, checkpoint=path, resume=True)
    expected = [0.01 * cosine_schedule(e, 4) for e in (2, 3)]
    assert resumed.history["lr"][2:] == pytest.approx(expected) and min(expected) > 1e-3
    with pytest.raises(ValueError, match="not both"):
        net = toy_net()
        opt = torch.optim.Adam(net.parameters())
        Trainer(net, opt, scheduler=torch.optim.lr_scheduler.StepLR(opt, 1), lr_schedule="cosine")
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        Trainer(toy_net(), lr_schedule="linear")


@pytest.mark.parametrize("tty", [False, True])
def test_progress_auto_draws_a_bar_only_on_a_terminal(tty, capsys, monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    Trainer(toy_net(), progress="auto").fit(toy_batches(2), 1)
    err = capsys.readouterr().err
    assert ("epoch 1/1" in err) is tty


# ---------------------------------------------------------------------- metrics
def test_multi_timescale_meter():
    m = MultiTimescaleMeter("loss", decays=(0.0, 0.5, 0.9))
    assert math.isnan(m.average())
    for v in (1.0, 0.0, 0.0):
        m.update(v)
    assert m.average(0.0) == 0.0
    assert m.average(0.5) == pytest.approx(0.25 * 0.5 / (1 - 0.125))  # bias-corrected EMA
    m.update(torch.tensor(2.0))
    assert len(m.history) == 4 and len(m.history[0]) == 3
    n = MultiTimescaleMeter()
    n.load_state_dict(m.state_dict())
    assert n.averages() == m.averages() and "loss" in repr(n)
    constant = MultiTimescaleMeter(decays=(0.999,))
    constant.update(3.0)
    assert constant.average() == pytest.approx(3.0)  # no pull towards zero
    with pytest.raises(ValueError, match="decay"):
        MultiTimescaleMeter(decays=(1.0,))
    with pytest.raises(ValueError, match="NaN"):
        m.update(float("nan"))


def test_firing_rates_and_record_outputs():
    net = toy_net()
    x, _ = toy_batches(1)[0]
    with FiringRates(net) as rates:
        net.reset_states()
        with torch.no_grad():
            spikes = net[0](x)
    assert rates.rates()["0"] == pytest.approx(spikes.mean().item())
    rec = record_outputs(net, x)
    assert list(rec) == ["input", "0", "1"]
    assert rec["0"].shape == (12, 16, 32) and rec["1"].shape == (12, 16, 3)
    chunked = record_outputs(net, x.split(5))
    assert torch.equal(chunked["1"], rec["1"])
    assert net[0].membrane is None  # no state left behind


def test_accuracy_and_memory():
    assert accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1])) == 0.5
    with pytest.raises(ValueError, match="output"):
        accuracy(torch.zeros(3), torch.zeros(3))
    peak, now = peak_memory_mb(), current_memory_mb()
    assert now > 10 and peak > 0.9 * now  # ru_maxrss and statm count pages a bit differently
