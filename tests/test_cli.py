"""The ``tracetorch`` command, in process and through its entry points, with tiny settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import tracetorch
from tracetorch import cli

SCRIPT = Path(sys.executable).with_name("tracetorch")
TINY_DIGITS = ["--steps", "4", "--epochs", "1", "--hidden", "8", "--max-batches", "3"]


def run(argv, capsys):
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"tracetorch {tracetorch.__version__}"
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--help"])
    assert e.value.code == 0
    help_text = capsys.readouterr().out
    for flag in (
        "--task",
        "--learning",
        "--steps",
        "--delay",
        "--epochs",
        "--hidden",
        "--device",
        "--out",
        "--resume",
        "--learn-every",
    ):
        assert flag in help_text
    code, out, _ = run([], capsys)
    assert code == 2 and "demo" in out and "train" in out


@pytest.mark.parametrize(
    "argv, match",
    [
        (["train"], "--task"),
        (["train", "--task", "mnist"], "invalid choice: 'mnist'"),
        (["train", "--task", "digits", "--steps", "0"], "expected a positive integer, got 0"),
        (["train", "--task", "evidence", "--delay", "x"], "expected an integer in [0, 10000000]"),
        (["train", "--task", "evidence", "--delay", "1000000000"], "argument --delay: expected"),
        (["train", "--task", "digits", "--hidden", "1e8"], "argument --hidden: expected"),
        (["train", "--task", "digits", "--hidden", "100000000"], "in [1, 65536], got 100000000"),
        (["train", "--task", "digits", "--layers", "lif:"], "argument --layers: expected KIND:"),
        (["train", "--task", "digits", "--layers", "foo:3"], "unknown layer kind 'foo'"),
        (["train", "--task", "digits", "--layers", "lif:-1"], "argument --layers: layer width"),
        (["train", "--task", "digits", "--layers", "lif:1e9"], "got '1e9' in 'lif:1e9'"),
        (
            ["train", "--task", "digits", "--hidden", "8", "--layers", "lif:8"],
            "argument --layers: not allowed with argument --hidden",
        ),
        (
            ["train", "--task", "digits", "--resume", "--overwrite"],
            "argument --overwrite: not allowed with argument --resume",
        ),
        (["train", "--task", "digits", "--lr", "-1"], "expected a positive number"),
        (["train", "--task", "digits", "--learning", "hebb"], "invalid choice: 'hebb'"),
        (["train", "--task", "digits", "--device", "tpu9"], "device"),
        (["demo", "--bogus"], "unrecognized arguments: --bogus"),
        (["fly"], "invalid choice: 'fly'"),
    ],
)
def test_bad_arguments_are_one_clear_line(argv, match, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and match in err


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--task", "digits", "--delay", "10"], "--delay does not apply to --task digits"),
        (["--task", "evidence", "--steps", "10"], "--steps does not apply to --task evidence"),
        (["--task", "digits", "--encoding", "latency"], "--encoding does not apply"),
    ],
)
def test_options_of_other_tasks_are_refused(argv, match, capsys, tmp_path):
    code, _, err = run(["train", *argv, "--out", str(tmp_path)], capsys)
    assert code == 2 and err.count("\n") == 1 and match in err


def test_unwritable_output_is_one_line(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run(["train", "--task", "digits", *TINY_DIGITS, "--out", str(blocker)], capsys)
    assert code == 1 and err.count("\n") == 1 and err.startswith("tracetorch: error:")


def test_train_digits_writes_results_and_plots(capsys, tmp_path):
    out = tmp_path / "run"
    code, stdout, _ = run(["train", "--task", "digits", *TINY_DIGITS, "--out", str(out)], capsys)
    assert code == 0
    assert "test accuracy" in stdout and "peak memory" in stdout
    for name in (
        "checkpoint.pt",
        "history.json",
        "summary.json",
        "config.json",
        "curves.png",
        "activity.png",
    ):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert 0 <= summary["test_accuracy"] <= 1 and summary["peak_memory_mb"] > 0
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "argv",
    [
        [
            "--task",
            "evidence",
            "--delay",
            "20",
            "--train-size",
            "8",
            "--test-size",
            "4",
            "--batch-size",
            "4",
            "--hidden",
            "8",
            "--chunk-size",
            "16",
            "--learn-every",
            "30",
        ],
        [
            "--task",
            "yinyang",
            "--encoding",
            "latency",
            "--steps",
            "6",
            "--train-size",
            "16",
            "--test-size",
            "8",
            "--hidden",
            "8",
        ],
        ["--task", "digits", "--learning", "bptt", *TINY_DIGITS[:-2], "--max-batches", "2"],
    ],
)
def test_train_each_task(argv, capsys, tmp_path):
    code, stdout, err = run(
        ["train", *argv, "--epochs", "1", "--no-plots", "--out", str(tmp_path)], capsys
    )
    assert code == 0, err
    assert "test accuracy" in stdout
    assert not (tmp_path / "curves.png").exists()


def test_resume(capsys, tmp_path):
    base = ["train", "--task", "digits", *TINY_DIGITS, "--no-plots", "--out", str(tmp_path)]
    assert run(base, capsys)[0] == 0
    code, stdout, _ = run([*base, "--epochs", "2", "--resume"], capsys)
    assert code == 0 and "resuming from" in stdout and "epoch 2/2" in stdout
    assert "epoch 1/2 |" not in stdout
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["epoch"] == [1, 2]
    code, _, err = run([*base, "--hidden", "9", "--resume"], capsys)
    assert code == 1 and err.count("\n") == 1 and "different settings" in err


def test_demo_runs_the_main_job(capsys, tmp_path, monkeypatch):
    """The demo's code path, with a recipe shrunk to a second."""
    tiny = replace(cli.RECIPES["digits"], steps=4, epochs=1, hidden=8, batch_size=256)
    monkeypatch.setitem(cli.RECIPES, "digits", tiny)
    code, stdout, _ = run(["demo", "--out", str(tmp_path), "--no-progress"], capsys)
    assert code == 0
    assert "test accuracy" in stdout and "peak memory" in stdout and "training" in stdout
    assert (tmp_path / "activity.png").is_file() and (tmp_path / "curves.png").is_file()


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(tracetorch.__file__).parents[1])
    return env


@pytest.mark.skipif(not SCRIPT.exists(), reason="console script not installed")
def test_console_script_entry_point(tmp_path):
    r = subprocess.run(
        [
            str(SCRIPT),
            "train",
            "--task",
            "digits",
            *TINY_DIGITS,
            "--no-plots",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
    )
    assert r.returncode == 0, r.stderr
    assert "test accuracy" in r.stdout and (tmp_path / "summary.json").is_file()


def test_python_dash_m():
    r = subprocess.run(
        [sys.executable, "-m", "tracetorch", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert r.returncode == 0 and r.stdout.strip() == f"tracetorch {tracetorch.__version__}"
