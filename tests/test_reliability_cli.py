"""The ``tracetorch`` command under careless or hostile use: resuming, rerunning, damaged
checkpoints, interrupts and real bugs (each test pins a failure that once happened)."""

from __future__ import annotations

import json

import pytest
import torch

from tracetorch import cli
from tracetorch.training import Trainer, cosine_schedule, load_checkpoint, save_checkpoint

TINY = ["--task", "digits", "--steps", "4", "--hidden", "8", "--max-batches", "2", "--no-plots"]


def run(argv, capsys):
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error_line(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("tracetorch: error:")


def test_resume_with_more_epochs_follows_the_new_cosine_schedule(capsys, tmp_path):
    """A finished 2-epoch run ends at the bottom of its cosine; resumed to 4 epochs, epoch 3
    once trained at lr 0 (the restored lr). It must train at the 4-epoch schedule's lr."""
    base = ["train", *TINY, "--lr", "0.01", "--out", str(tmp_path)]
    assert run([*base, "--epochs", "2"], capsys)[0] == 0
    code, stdout, err = run([*base, "--epochs", "4", "--resume"], capsys)
    assert code == 0, err
    lr = json.loads((tmp_path / "history.json").read_text())["lr"]
    assert lr[:2] == pytest.approx([0.01 * cosine_schedule(e, 2) for e in (0, 1)])
    assert lr[2:] == pytest.approx([0.01 * cosine_schedule(e, 4) for e in (2, 3)])
    assert lr[2] == pytest.approx(0.005)


def test_rerun_without_resume_refuses_and_keeps_the_checkpoint(capsys, tmp_path):
    base = ["train", *TINY, "--epochs", "1", "--out", str(tmp_path)]
    assert run(base, capsys)[0] == 0
    before = (tmp_path / "checkpoint.pt").read_bytes()
    code, stdout, err = run(base, capsys)
    assert code == 1 and one_error_line(err), err
    assert "already exists" in err and "--resume" in err and "--out" in err
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    assert stdout == ""  # refused before any work


def test_interrupted_overwrite_keeps_the_previous_checkpoint(capsys, tmp_path, monkeypatch):
    base = ["train", *TINY, "--epochs", "1", "--out", str(tmp_path)]
    assert run(base, capsys)[0] == 0
    before = (tmp_path / "checkpoint.pt").read_bytes()

    def ctrl_c(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_epoch", ctrl_c)  # Ctrl-C in the first epoch
    code, _, err = run([*base, "--overwrite"], capsys)
    assert code == 130 and "still holds the previous run" in err
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    code, _, err = run(["train", *TINY, "--out", str(tmp_path / "new")], capsys)
    assert code == 130 and "no checkpoint to resume" in err


def test_interrupt_after_an_epoch_says_what_to_resume(capsys, tmp_path, monkeypatch):
    calls = []
    real = Trainer._epoch

    def ctrl_c_in_epoch_2(self, data, split, epoch, train, desc):
        if train and epoch == 1:
            raise KeyboardInterrupt
        calls.append(epoch)
        return real(self, data, split, epoch, train, desc)

    monkeypatch.setattr(Trainer, "_epoch", ctrl_c_in_epoch_2)
    code, _, err = run(["train", *TINY, "--epochs", "3", "--out", str(tmp_path)], capsys)
    assert code == 130 and "holds 1 of 3 epochs; continue with --resume" in err
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 1


def _flip_middle_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b""),
        lambda p: p.write_bytes(bytes(range(256)) * 20),
        lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
        _flip_middle_byte,
    ],
    ids=["empty", "random", "truncated", "flipped-byte"],
)
def test_damaged_checkpoint_is_one_error_line(damage, capsys, tmp_path):
    base = ["train", *TINY, "--epochs", "1", "--out", str(tmp_path)]
    assert run(base, capsys)[0] == 0
    damage(tmp_path / "checkpoint.pt")
    code, _, err = run([*base, "--resume"], capsys)
    assert code == 1 and one_error_line(err), err
    assert str(tmp_path / "checkpoint.pt") in err and "--overwrite" in err
    assert run([*base, "--overwrite"], capsys)[0] == 0  # the way out it names works


def test_checkpoint_of_another_model_is_one_error_line(capsys, tmp_path):
    base = ["train", *TINY, "--epochs", "1", "--out", str(tmp_path)]
    assert run(base, capsys)[0] == 0
    code, _, err = run([*base, "--resume", "--hidden", "9"], capsys)
    assert code == 1 and one_error_line(err) and "different settings" in err
    path = tmp_path / "checkpoint.pt"
    state = load_checkpoint(path)
    del state["settings"]  # a checkpoint with nothing to compare: the model itself must fail
    save_checkpoint(path, state)
    code, _, err = run([*base, "--resume", "--hidden", "9"], capsys)
    assert code == 1 and one_error_line(err) and "does not fit this model" in err


def test_layers_spec_builds_records_and_guards_resume(capsys, tmp_path):
    base = ["train", *[a for a in TINY if a not in ("--hidden", "8")], "--epochs", "1"]
    code, stdout, err = run([*base, "--layers", "lif:7,lif:5", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert "LIF(in_features=64, out_features=7" in stdout
    assert "LIF(in_features=7, out_features=5" in stdout
    assert "LI(in_features=5, out_features=10" in stdout
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["layers"] == "lif:7,lif:5" and config["recipe"]["hidden"] is None
    code, _, err = run(
        [*base, "--layers", "lif:7", "--epochs", "2", "--resume", "--out", str(tmp_path)], capsys
    )
    assert code == 1 and "different settings" in err and "layers" in err


def test_real_bugs_keep_their_traceback(capsys, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("a bug in tracetorch")

    monkeypatch.setattr(cli, "build_model", broken)
    with pytest.raises(ValueError, match="a bug in tracetorch"):
        cli.main(["train", *TINY, "--out", str(tmp_path)])


def test_demo_reruns_in_place(capsys, tmp_path, monkeypatch):
    from dataclasses import replace

    tiny = replace(cli.RECIPES["digits"], steps=4, epochs=1, hidden=8, batch_size=256)
    monkeypatch.setitem(cli.RECIPES, "digits", tiny)
    argv = ["demo", "--out", str(tmp_path), "--no-progress", "--no-plots"]
    assert run(argv, capsys)[0] == 0
    code, _, err = run(argv, capsys)
    assert code == 0, err


def test_evidence_delay_bound_keeps_the_decay_below_one():
    task_steps = cli.MAX_DELAY + 120  # listen 100 + recall 20
    assert float(torch.tensor(1.0 - 1.0 / task_steps, dtype=torch.float32)) < 1.0
