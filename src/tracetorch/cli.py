"""The ``tracetorch`` command: ``tracetorch demo`` and ``tracetorch train --task ...``.

``tracetorch demo`` trains a spiking network on scikit-learn's digits with trace learning
(about 15 s on two CPU cores) and prints the test accuracy, the time and the peak
memory; it writes a loss/accuracy plot and a spike raster of every layer. ``tracetorch train``
runs any bundled task (``digits``, ``evidence``, ``yinyang``) with trace or BPTT learning.
See ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from . import __version__

__all__ = ["RECIPES", "Recipe", "build_model", "main"]


@dataclass(frozen=True)
class Recipe:
    """Default settings of one task for ``tracetorch train`` (each is a CLI option)."""

    steps: int | None
    epochs: int
    hidden: int
    batch_size: int
    lr: float
    chunk_size: int | None = None
    cosine: bool = True  # cosine learning-rate decay over the epochs


RECIPES: dict[str, Recipe] = {
    "digits": Recipe(steps=25, epochs=30, hidden=128, batch_size=32, lr=5e-3),
    "evidence": Recipe(steps=None, epochs=4, hidden=64, batch_size=64, lr=3e-3, chunk_size=250),
    "yinyang": Recipe(steps=50, epochs=20, hidden=128, batch_size=32, lr=2e-3),
}


def build_model(task, hidden: int) -> torch.nn.Module:
    """The network ``tracetorch train`` uses for ``task``: ``LIF(F, hidden) -> LI(hidden, C)``.

    ``digits`` uses the library's default layers; ``yinyang`` the same with a second hidden
    ``LIF(hidden, hidden)``. ``evidence`` needs memory:
    the readout is a slow leaky integrator (``beta = 1 - 1/T``) whose trace decay is tied to
    ``beta`` without bias correction, so its trace-learning gradient is exact, and it has no
    bias (a bias would grow to ``b / (1 - beta)``); the hidden layer has no bias either (silent
    without input) and an input trace as long as the trial.
    """
    from . import nn as ttnn

    f, c = task.n_inputs, task.n_classes
    if task.name == "evidence":
        slow = 1.0 - 1.0 / task.steps
        return ttnn.Sequential(
            ttnn.LIF(f, hidden, bias=False, trace_decay=slow, bias_correction=False),
            ttnn.LI(hidden, c, bias=False, beta=slow, trace_decay=slow, bias_correction=False),
        )
    if task.name == "yinyang":  # a curved boundary: two hidden layers do better than one
        return ttnn.Sequential(ttnn.LIF(f, hidden), ttnn.LIF(hidden, hidden), ttnn.LI(hidden, c))
    return ttnn.Sequential(ttnn.LIF(f, hidden), ttnn.LI(hidden, c))


# ---------------------------------------------------------------------- argument parsing
class UsageError(ValueError):
    """A bad combination of command-line arguments (exit status 2, like argparse's errors)."""


class _Parser(argparse.ArgumentParser):
    """argparse, with errors on one line."""

    def error(self, message: str):  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _int_type(low: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


_positive = _int_type(1, "a positive integer")
_nonnegative = _int_type(0, "an integer >= 0")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _device(text: str) -> str:
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(
            f"unknown device {text!r} (try cpu, cuda, cuda:1, mps or auto)"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError("CUDA is not available on this machine (use --device cpu)")
    if device.type == "cuda" and device.index is not None:
        if device.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(
                f"no {text}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError("MPS is not available on this machine (use --device cpu)")
    return str(device)


def _common(p: argparse.ArgumentParser, out_default: str) -> None:
    p.add_argument("--seed", type=_nonnegative, default=0, help="seeds the model and the data")
    p.add_argument(
        "--device", type=_device, default="cpu", help="cpu (default), cuda, cuda:N, mps or auto"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path(out_default),
        metavar="DIR",
        help=f"output folder for plots, history and checkpoint (default {out_default})",
    )
    p.add_argument(
        "--threads",
        type=_positive,
        default=1,
        help="CPU threads for torch (default 1: these small networks gain nothing "
        "from more, and lose a lot on a busy machine)",
    )
    p.add_argument("--no-plots", action="store_true", help="write no PNG files")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def make_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tracetorch`` command."""
    parser = _Parser(
        prog="tracetorch",
        description="Train spiking neural networks in constant memory with input traces.",
        epilog="Start with 'tracetorch demo'. Options of a command: 'tracetorch train --help'.",
    )
    parser.add_argument("--version", action="version", version=f"tracetorch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{demo,train}")

    demo = sub.add_parser(
        "demo",
        help="train on digits with trace learning (about 15 s), print accuracy, time, memory",
        description="The main job, no arguments needed: a LIF -> LI network learns scikit-"
        "learn's 8x8 digits (rate-coded spikes) with trace learning. Prints the test "
        "accuracy, time and peak memory; writes curves.png and activity.png.",
    )
    _common(demo, "runs/demo")

    train = sub.add_parser(
        "train",
        help="train on a bundled task: digits, evidence or yinyang",
        description="Train LIF(hidden) -> LI on a bundled task with trace learning (constant "
        "memory in the sequence length) or BPTT. Unset options take the task's recipe.",
    )
    train.add_argument("--task", required=True, choices=sorted([*RECIPES, "cartpole"]))
    train.add_argument(
        "--learning",
        choices=("trace", "bptt"),
        default="trace",
        help="trace (default) or bptt (backpropagation through time)",
    )
    train.add_argument(
        "--steps",
        type=_positive,
        default=None,
        help="timesteps per sample (digits 25, yinyang 50; not for evidence)",
    )
    train.add_argument(
        "--delay",
        type=_nonnegative,
        default=None,
        help="evidence: silent steps before the recall cue (default 300)",
    )
    train.add_argument(
        "--encoding",
        choices=("rate", "latency"),
        default=None,
        help="yinyang: spike coding of the inputs (default rate)",
    )
    train.add_argument("--epochs", type=_positive, default=None)
    train.add_argument("--hidden", type=_positive, default=None, help="hidden LIF neurons")
    train.add_argument("--batch-size", type=_positive, default=None)
    train.add_argument("--lr", type=_positive_float, default=None, help="Adam learning rate")
    train.add_argument(
        "--learn-every",
        type=_positive,
        default=None,
        metavar="K",
        help="learn every K steps (default: once, at the end of each sequence)",
    )
    train.add_argument(
        "--chunk-size",
        type=_positive,
        default=None,
        help="steps fed to the network at once (memory of a forward call)",
    )
    train.add_argument(
        "--train-size",
        type=_positive,
        default=None,
        help="evidence, yinyang: training samples per epoch",
    )
    train.add_argument(
        "--test-size", type=_positive, default=None, help="evidence, yinyang: test samples"
    )
    train.add_argument(
        "--max-batches",
        type=_positive,
        default=None,
        help="stop each epoch after this many batches (quick checks)",
    )
    train.add_argument(
        "--resume", action="store_true", help="continue from DIR/checkpoint.pt if it exists"
    )
    _common(train, "runs/<task>")
    _add_cartpole_options(train)
    return parser


# ---------------------------------------------------------------------- running
def _make_task(args: argparse.Namespace, recipe: Recipe):
    from . import data

    name = args.task
    misplaced = {
        "--delay": (args.delay, {"evidence"}),
        "--steps": (args.steps, {"digits", "yinyang"}),
        "--encoding": (args.encoding, {"yinyang"}),
        "--train-size": (args.train_size, {"evidence", "yinyang"}),
        "--test-size": (args.test_size, {"evidence", "yinyang"}),
    }
    for flag, (value, tasks) in misplaced.items():
        if value is not None and name not in tasks:
            raise UsageError(
                f"{flag} does not apply to --task {name} (only to {', '.join(sorted(tasks))})"
            )
    kwargs: dict[str, Any] = {"seed": args.seed}
    if name == "evidence":
        kwargs["delay"] = 300 if args.delay is None else args.delay
    else:
        kwargs["steps"] = args.steps or recipe.steps
    if args.encoding:
        kwargs["encoding"] = args.encoding
    if args.train_size:
        kwargs["train_size"] = args.train_size
    if args.test_size:
        kwargs["test_size"] = args.test_size
    return data.get_task(name, **kwargs)


def _progress_enabled(args: argparse.Namespace) -> bool | str:
    if args.no_progress or not sys.stderr.isatty():
        return False
    return "auto"


def run_training(args: argparse.Namespace, *, title: str) -> dict[str, Any]:
    """Train as ``args`` say; print and return the summary."""
    from .learning.bptt import set_learning
    from .metrics import peak_memory_mb
    from .training import Trainer, load_checkpoint, seed_everything

    torch.set_num_threads(args.threads)
    recipe = RECIPES[args.task]
    recipe = replace(
        recipe,
        epochs=args.epochs or recipe.epochs,
        hidden=args.hidden or recipe.hidden,
        batch_size=args.batch_size or recipe.batch_size,
        lr=args.lr or recipe.lr,
        chunk_size=args.chunk_size or recipe.chunk_size,
    )
    start = time.perf_counter()
    task = _make_task(args, recipe)
    seed_everything(args.seed)
    model = build_model(task, recipe.hidden)
    set_learning(model, args.learning)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    scheduler = None
    if recipe.cosine:  # closed form, so a resumed run with more epochs follows the new schedule
        epochs = recipe.epochs
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda e: 0.5 * (1 + math.cos(math.pi * min(e, epochs) / epochs))
        )
    trainer = Trainer(
        model,
        optimizer,
        scheduler=scheduler,
        learning=args.learning,
        learn_every=args.learn_every,
        chunk_size=recipe.chunk_size,
        batch_size=recipe.batch_size,
        device=args.device,
        progress=_progress_enabled(args),
        max_batches=args.max_batches,
    )
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "command": args.command,
        "task": task.describe(),
        "recipe": asdict(recipe),
        "learning": args.learning,
        "learn_every": args.learn_every,
        "seed": args.seed,
        "device": args.device,
        "version": __version__,
    }
    checkpoint = out / "checkpoint.pt"
    if args.resume and checkpoint.exists():
        state = load_checkpoint(checkpoint, map_location=trainer.device)
        saved = state.get("extra", {}).get("config")
        if saved is not None and _model_config(saved) != _model_config(config):
            raise ValueError(
                f"{checkpoint} was trained with different settings "
                f"({_diff(_model_config(saved), _model_config(config))}); "
                "use another --out or the same settings"
            )
        trainer.load_state_dict(state)
        print(f"resuming from {checkpoint} ({trainer.epoch} of {recipe.epochs} epochs done)")
    elif checkpoint.exists() and not args.resume:
        checkpoint.unlink()
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    print(f"{title}: {task!r}")
    print(
        f"model: {' -> '.join(repr(m) for m in model)}; {args.learning} learning"
        + (f" every {args.learn_every} steps" if args.learn_every else " at sequence end")
        + f"; {recipe.epochs} epochs on {args.device}"
    )
    fit_start = time.perf_counter()

    def on_epoch(tr: Trainer, record: dict) -> None:
        tr.save(checkpoint, extra={"config": config})

    history = trainer.fit(task, recipe.epochs, callback=on_epoch, log=print)
    train_seconds = time.perf_counter() - fit_start
    peak = peak_memory_mb()
    summary = {
        "task": task.name,
        "test_accuracy": history["test_accuracy"][-1],
        "test_loss": history["test_loss"][-1],
        "train_accuracy": history["train_accuracy"][-1],
        "epochs": trainer.epoch,
        "train_seconds": train_seconds,
        "peak_memory_mb": peak,
        "firing_rates": {k[5:]: v[-1] for k, v in history.items() if k.startswith("rate/")},
    }
    if args.device.startswith("cuda"):
        summary["peak_cuda_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    (out / "history.json").write_text(json.dumps(history, indent=2) + "\n")
    written = [out / "checkpoint.pt", out / "history.json"]
    if not args.no_plots:
        written += _plots(trainer, task, out, title)
    summary["total_seconds"] = time.perf_counter() - start
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    written.append(out / "summary.json")
    acc = summary["test_accuracy"]
    print(
        f"test accuracy {100 * acc:.1f}% | training {train_seconds:.1f} s "
        f"(total {summary['total_seconds']:.1f} s) | peak memory {peak:.0f} MB"
        + (
            f" (CUDA {summary['peak_cuda_memory_mb']:.0f} MB)"
            if "peak_cuda_memory_mb" in summary
            else ""
        )
    )
    print("wrote " + ", ".join(str(p) for p in written))
    return summary


def _model_config(config: dict) -> dict:
    keep = {k: v for k, v in config.items() if k in ("task", "learning", "learn_every", "seed")}
    recipe = dict(config.get("recipe", {}))
    recipe.pop("epochs", None)
    keep["recipe"] = recipe
    return keep


def _diff(a: dict, b: dict) -> str:
    keys = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return ", ".join(f"{k}: {a.get(k)} -> {b.get(k)}" for k in keys)


def _plots(trainer, task, out: Path, title: str) -> list[Path]:
    try:
        from . import plot
    except ImportError:  # pragma: no cover
        return []
    from .metrics import record_outputs

    try:
        fig = plot.training_curves(trainer.history, trainer.meters, title=title)
    except ImportError as e:
        print(f"plots skipped: {e}")
        return []
    paths = [out / "curves.png", out / "activity.png"]
    fig.savefig(paths[0], dpi=120)
    x, y = next(task.batches("test", batch_size=2, device=trainer.device))
    trainer.model.eval()
    recorded = record_outputs(trainer.model, x)
    names = {
        name: f"layer {name} ({type(m).__name__})" for name, m in trainer.model.named_modules()
    }
    recorded = {names.get(k, k) if k != "input" else "input": v for k, v in recorded.items()}
    fig = plot.activity(recorded, title=f"{title}: one test sample (label {int(y[0])})")
    fig.savefig(paths[1], dpi=120)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tracetorch`` command; returns the exit status."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "demo":
            args.task = "digits"
            args.learning = "trace"
            for name in (
                "steps",
                "delay",
                "encoding",
                "epochs",
                "hidden",
                "batch_size",
                "lr",
                "learn_every",
                "chunk_size",
                "train_size",
                "test_size",
                "max_batches",
            ):
                setattr(args, name, None)
            args.resume = False
            run_training(args, title="tracetorch demo (digits, trace learning)")
        else:
            if str(args.out) == "runs/<task>":
                args.out = Path("runs") / args.task
            if args.task == "cartpole":
                run_cartpole(args)
            else:
                run_training(args, title=f"tracetorch train --task {args.task}")
    except UsageError as e:
        prog = f"tracetorch {args.command}"
        print(f"{prog}: error: {e} (see '{prog} --help')", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; continue with --resume", file=sys.stderr)
        return 130
    except (ValueError, TypeError, ImportError, OSError, FloatingPointError) as e:
        print(f"tracetorch: error: {e}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------- reward learning
# `tracetorch train --task cartpole`: kept apart from the supervised tasks' loop on purpose
# (reward learning has no epochs, batches or test split). See docs/reward.md.
def _add_cartpole_options(train: argparse.ArgumentParser) -> None:
    group = train.add_argument_group("cartpole (reward learning with REFLECT; extra [rl])")
    group.add_argument("--episodes", type=_positive, default=None, help="episode budget (2000)")
    group.add_argument("--envs", type=_positive, default=None, help="environments at once (8)")
    group.add_argument(
        "--continuing", action="store_true", help="no episode ends seen by the learner"
    )


def run_cartpole(args: argparse.Namespace) -> dict[str, Any]:
    """Train the spiking CartPole policy with REFLECT; print and save the outcome."""
    if args.learning != "trace":
        raise UsageError("--task cartpole learns with REFLECT (trace learning); drop --learning")
    ignored = ("steps", "delay", "encoding", "epochs", "batch_size", "chunk_size", "train_size",
               "test_size", "max_batches")
    used = [f"--{n.replace('_', '-')}" for n in ignored if getattr(args, n, None) is not None]
    if used or args.resume:
        raise UsageError(f"{', '.join(used) or '--resume'} does not apply to --task cartpole")
    if args.device not in ("cpu", "auto"):
        raise UsageError("--task cartpole runs on the CPU (a small policy, one env step at a time)")
    from .data.envs import train_cartpole

    torch.set_num_threads(args.threads)
    episodes = args.episodes or 2000
    print(f"tracetorch train --task cartpole: REFLECT, {episodes} episodes, seed {args.seed}")
    result = train_cartpole(
        seed=args.seed,
        episodes=episodes,
        envs=args.envs or 8,
        hidden=args.hidden or 64,
        lr=args.lr or 1e-3,
        learn_every=args.learn_every or 1,
        continuing=args.continuing,
        log=lambda n, mean, s: print(f"  episode {n:5d}  mean100 {mean:6.1f}  {s:6.0f} s"),
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model": result["model"].state_dict(),
            "stream": result["model"].stream_state_dict(),
            "optimizer": result["optimizer"].state_dict(),
            "learner": result["learner"].state_dict(),
        },
        out / "checkpoint.pt",
    )
    keep = {k: v for k, v in result.items() if k not in ("model", "learner", "optimizer")}
    (out / "history.json").write_text(json.dumps(keep))
    if not args.no_plots:
        from .plot import _axes

        fig, ax = _axes(None, figsize=(7, 4))
        ret = result["returns"]
        ax.plot(ret, lw=0.5, alpha=0.5, label="return")
        w = min(100, len(ret))
        if w:
            c = [sum(ret[max(0, i - w + 1) : i + 1]) / min(w, i + 1) for i in range(len(ret))]
            ax.plot(c, label=f"mean of the last {w}")
        ax.axhline(475, color="k", ls="--", lw=0.8)
        ax.set(xlabel="episode", ylabel="return", title="CartPole-v1, REFLECT")
        ax.legend()
        fig.savefig(out / "returns.png", dpi=100)
    solved = result["solved_at"]
    print(
        f"solved at episode {solved}" if solved else "not solved",
        f"| best mean100 {result['best_mean100']} | {result['wall_s']} s | wrote {out}",
    )
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
