"""The ``tracetorch`` command: ``tracetorch demo`` and ``tracetorch train --task ...``.

``tracetorch demo`` trains a spiking network on scikit-learn's digits with trace learning
(about 15 s on two CPU cores) and prints the test accuracy, the time and the peak
memory; it writes a loss/accuracy plot and a spike raster of every layer. ``tracetorch train``
runs any bundled task (``digits``, ``evidence``, ``yinyang``, ``order``, ``seqdigits``), the
Spiking Heidelberg Digits from a folder (``--task shd --data-dir DIR``) or the user's own
``.npz`` file (``--data PATH``) with trace, eligibility or BPTT learning. Under
``torchrun --nproc_per_node N -m tracetorch train ...`` it trains data-parallel (DDP).
See ``docs/cli.md``.

The command only parses, builds and calls: the networks come from :mod:`tracetorch.models`,
the training loop, the checkpoint and resuming from :class:`tracetorch.training.Trainer`.
Expected failures (a bad argument, a bad or conflicting file, a missing extra, a diverging
loss) print one line; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from . import __version__
from .learning.modes import LEARNING_MODES
from .models import MAX_WIDTH, build_model, layer_class, parse_spec

__all__ = ["RECIPES", "Recipe", "build_model", "main"]

#: The longest ``--delay``: the evidence readout's decay ``1 - 1/T`` must stay below 1 in
#: float32 (it rounds to 1 from ``T`` of about 1.7e7 steps).
MAX_DELAY = 10_000_000


@dataclass(frozen=True)
class Recipe:
    """Default settings of one task for ``tracetorch train`` (each is a CLI option)."""

    steps: int | None
    epochs: int
    hidden: int | None  # None when --layers gives the hidden layers
    batch_size: int
    lr: float
    chunk_size: int | None = None
    cosine: bool = True  # cosine learning-rate decay over the epochs


RECIPES: dict[str, Recipe] = {
    "digits": Recipe(steps=25, epochs=30, hidden=128, batch_size=32, lr=5e-3),
    "evidence": Recipe(steps=None, epochs=4, hidden=64, batch_size=64, lr=3e-3, chunk_size=250),
    "yinyang": Recipe(steps=50, epochs=20, hidden=128, batch_size=32, lr=2e-3),
    "order": Recipe(steps=100, epochs=30, hidden=128, batch_size=64, lr=3e-3),
    "seqdigits": Recipe(steps=None, epochs=40, hidden=128, batch_size=32, lr=3e-3),
    # not tuned on the real data (this machine has no copy of SHD): a starting point
    "shd": Recipe(steps=100, epochs=20, hidden=128, batch_size=64, lr=2e-3),
}
#: The recipe of ``--data PATH.npz`` (the steps are the file's): a starting point.
DATA_RECIPE = Recipe(steps=None, epochs=20, hidden=128, batch_size=32, lr=2e-3)


# ---------------------------------------------------------------------- argument parsing
class UsageError(ValueError):
    """A bad combination of command-line arguments (exit status 2, like argparse's errors)."""


class _Parser(argparse.ArgumentParser):
    """argparse, with errors on one line."""

    def error(self, message: str):  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _int_type(low: int, high: int | None = None):
    if high is not None:
        what = f"an integer in [{low}, {high}]"
    else:
        what = "a positive integer" if low == 1 else f"an integer >= {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


_positive = _int_type(1)
_nonnegative = _int_type(0)


def _layers(text: str) -> str:
    """``--layers``: a spec that parses and whose layer classes exist (checked before any
    data are loaded); the spec string itself is what the run records."""
    try:
        for kind, _, _ in parse_spec(text):
            layer_class(kind)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text}")
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
    # The demo is the digits recipe, rerun from scratch each time (it takes seconds); the
    # train options it lacks read as unset (see _option).
    demo.set_defaults(task="digits", learning="trace", overwrite=True)

    train = sub.add_parser(
        "train",
        help="train on a bundled task (--task) or your own data (--data PATH.npz)",
        description="Train LIF(hidden) -> LI on a bundled task, SHD or your own .npz file with "
        "trace learning (constant memory in the sequence length) or BPTT. Unset options take "
        "the task's recipe. Under torchrun it trains data-parallel.",
    )
    source = train.add_mutually_exclusive_group()
    source.add_argument(
        "--task", choices=sorted([*RECIPES, "cartpole"]), help="a bundled task, shd or cartpole"
    )
    source.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="PATH",
        help="your own data: an .npz file with x [N, T, F] (or [N, T, C, H, W]) and y [N], "
        "optionally x_test and y_test (docs/data.md)",
    )
    train.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="shd: the folder with shd_train.h5 and shd_test.h5",
    )
    train.add_argument(
        "--test-fraction",
        type=_fraction,
        default=None,
        help="--data without x_test/y_test: share of each class held out for testing "
        "(default 0.2, seeded by --seed)",
    )
    train.add_argument(
        "--dt",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="shd: width of a time bin in seconds (default 0.014; --steps bins)",
    )
    train.add_argument(
        "--learning",
        choices=LEARNING_MODES,
        default="trace",
        help="trace (default: constant memory, rate gradients), eligibility (e-prop: "
        "timing-aware, constant memory) or bptt (backpropagation through time, memory O(T))",
    )
    train.add_argument(
        "--steps",
        type=_positive,
        default=None,
        help="timesteps per sample (digits 25, yinyang 50, shd 100; not for evidence)",
    )
    train.add_argument(
        "--delay",
        type=_int_type(0, MAX_DELAY),
        default=None,
        help=f"evidence: silent steps before the recall cue (default 300, at most {MAX_DELAY})",
    )
    train.add_argument(
        "--encoding",
        choices=("rate", "latency"),
        default=None,
        help="yinyang: spike coding of the inputs (default rate)",
    )
    train.add_argument("--epochs", type=_positive, default=None)
    network = train.add_mutually_exclusive_group()
    network.add_argument(
        "--hidden",
        type=_int_type(1, MAX_WIDTH),
        default=None,
        help="hidden LIF neurons per layer of the task's network (same as --layers lif:H, "
        "plus yinyang's second hidden layer)",
    )
    network.add_argument(
        "--layers",
        type=_layers,
        default=None,
        metavar="SPEC",
        help="hidden layers in order, KIND:WIDTH separated by commas (e.g. lif:128,lif:64); "
        "the readout stays the task's",
    )
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
    existing = train.add_mutually_exclusive_group()
    existing.add_argument(
        "--resume", action="store_true", help="continue from DIR/checkpoint.pt if it exists"
    )
    existing.add_argument(
        "--overwrite",
        action="store_true",
        help="start a new run even if DIR/checkpoint.pt exists (it is replaced when the "
        "new run's first epoch ends, not before)",
    )
    _common(train, "runs/<task>")
    _add_cartpole_options(train)
    return parser


# ---------------------------------------------------------------------- running
#: What to do about a checkpoint problem, in the command's words (the library's advice
#: names ``resume=True`` and friends).
CHECKPOINT_ADVICE = {
    "exists": "pass --resume to continue it, --overwrite to start a new run (the old "
    "checkpoint is replaced when the new run's first epoch ends), or choose another --out",
    "settings": "resume with the same settings, or choose another --out",
    "model": "resume with the settings it was trained with, or choose another --out",
    "corrupt": "pass --overwrite to start a new run in its place, or choose another --out",
}


class Interrupted(Exception):
    """Ctrl-C during a run; the message says what is left to resume (exit status 130)."""


def _option(args: argparse.Namespace, name: str) -> Any:
    """A ``train`` option, ``None`` when unset or absent (``demo`` has only the common ones)."""
    return getattr(args, name, None)


#: Options that belong to some tasks only (``--data``: ``"data"``): flag -> (dest, tasks).
TASK_OPTIONS: dict[str, tuple[str, set[str]]] = {
    "--delay": ("delay", {"evidence"}),
    "--steps": ("steps", {"digits", "yinyang", "order", "shd"}),
    "--encoding": ("encoding", {"yinyang"}),
    "--train-size": ("train_size", {"evidence", "yinyang", "order"}),
    "--test-size": ("test_size", {"evidence", "yinyang", "order"}),
    "--data-dir": ("data_dir", {"shd"}),
    "--dt": ("dt", {"shd"}),
    "--test-fraction": ("test_fraction", {"data"}),
}


def _make_task(args: argparse.Namespace, recipe: Recipe):
    from . import data

    name = args.task or "data"
    for flag, (option, tasks) in TASK_OPTIONS.items():
        if _option(args, option) is not None and name not in tasks:
            where = "--data" if name == "data" else f"--task {name}"
            only = ", ".join("--data" if t == "data" else t for t in sorted(tasks))
            raise UsageError(f"{flag} does not apply to {where} (only to {only})")
    if name == "data":
        arrays = data.load_npz(args.data)
        if _option(args, "test_fraction") is not None and (
            "x_test" in arrays or "y_test" in arrays
        ):
            raise UsageError(
                f"--test-fraction does not apply: {args.data} has its own test split "
                "(x_test, y_test)"
            )
        return data.ArrayTask.from_arrays(
            arrays,
            source=str(args.data),
            test_fraction=_option(args, "test_fraction"),
            seed=args.seed,
            layout="flat",  # the hidden layers of --layers are dense
        )
    if name == "shd":
        if _option(args, "data_dir") is None:
            raise UsageError(
                "--task shd needs --data-dir DIR, a folder with shd_train.h5 and shd_test.h5"
            )
        dt = _option(args, "dt")
        return data.SHD(
            args.data_dir,
            steps=_option(args, "steps") or recipe.steps,
            dt=0.014 if dt is None else dt,
            seed=args.seed,
        )
    kwargs: dict[str, Any] = {"seed": args.seed}
    if name == "evidence":
        delay = _option(args, "delay")
        kwargs["delay"] = 300 if delay is None else delay
    elif recipe.steps is not None:
        kwargs["steps"] = _option(args, "steps") or recipe.steps
    for option in ("encoding", "train_size", "test_size"):
        if _option(args, option):
            kwargs[option] = _option(args, option)
    return data.get_task(name, **kwargs)


def run_training(args: argparse.Namespace, *, title: str) -> dict[str, Any]:
    """Train as ``args`` say; print and return the summary."""
    from .metrics import peak_memory_mb
    from .training import Trainer, seed_everything

    torch.set_num_threads(args.threads)
    rank, world = _rank_and_world()
    main_rank = rank == 0
    say = print if main_rank else _quiet
    layers = _option(args, "layers")
    recipe = RECIPES[args.task] if args.task else DATA_RECIPE
    recipe = replace(
        recipe,
        epochs=_option(args, "epochs") or recipe.epochs,
        hidden=None if layers else _option(args, "hidden") or recipe.hidden,
        batch_size=_option(args, "batch_size") or recipe.batch_size,
        lr=_option(args, "lr") or recipe.lr,
        chunk_size=_option(args, "chunk_size") or recipe.chunk_size,
    )
    if recipe.batch_size % world:
        raise UsageError(
            f"--batch-size {recipe.batch_size} must be divisible by the number of processes "
            f"({world}): it is the global batch, split among them"
        )
    start = time.perf_counter()
    task = _make_task(args, recipe)
    seed_everything(args.seed)
    model = build_model(task, recipe.hidden, layers=layers)
    learn_every = _option(args, "learn_every")
    trainer = Trainer(
        model,
        lr=recipe.lr,
        lr_schedule="cosine" if recipe.cosine else None,
        learning=args.learning,
        learn_every=learn_every,
        chunk_size=recipe.chunk_size,
        batch_size=recipe.batch_size,
        device=args.device,
        progress=False if args.no_progress else "auto",
        max_batches=_option(args, "max_batches"),
    )
    out: Path = args.out
    if main_rank:
        out.mkdir(parents=True, exist_ok=True)
    config = {
        "command": args.command,
        "task": task.describe(),
        "recipe": asdict(recipe),
        "layers": layers,
        "learning": args.learning,
        "learn_every": learn_every,
        "seed": args.seed,
        "device": args.device,
        "processes": world,
        "version": __version__,
    }
    checkpoint = out / "checkpoint.pt"
    resumed = trainer.open_checkpoint(
        checkpoint,
        resume=bool(_option(args, "resume")),
        overwrite=bool(_option(args, "overwrite")),
        settings=_resume_settings(config),
    )
    if resumed:
        say(f"resuming from {checkpoint} ({trainer.epoch} of {recipe.epochs} epochs done)")
    if main_rank:
        (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    say(f"{title}: {task!r}")
    say(
        f"model: {' -> '.join(repr(m) for m in model)}; {args.learning} learning"
        + (f" every {learn_every} steps" if learn_every else " at sequence end")
        + f"; {recipe.epochs} epochs on {args.device}"
        + (f" x {world} processes (DDP)" if world > 1 else "")
    )

    def write_history(tr: Trainer, record: dict) -> None:  # in step with the checkpoint
        (out / "history.json").write_text(json.dumps(tr.history, indent=2) + "\n")

    first_epoch = trainer.epoch
    fit_start = time.perf_counter()
    try:
        history = trainer.fit(task, recipe.epochs, callback=write_history, log=say)
    except KeyboardInterrupt:
        if trainer.epoch > first_epoch or resumed:
            left = f"{checkpoint} holds {trainer.epoch} of {recipe.epochs} epochs; "
            left += "continue with --resume"
        elif checkpoint.exists():
            left = f"no epoch ended, {checkpoint} still holds the previous run"
        else:
            left = "no epoch ended, so there is no checkpoint to resume"
        raise Interrupted(f"interrupted: {left}") from None
    train_seconds = time.perf_counter() - fit_start
    if not main_rank:  # rank 0 writes the files and the summary
        return {}
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
    write_history(trainer, {})
    written = [checkpoint, out / "history.json"]
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


def _quiet(*args: Any, **kwargs: Any) -> None:
    """``print`` of the ranks other than 0 under torchrun."""


def _rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (``(0, 1)`` without torchrun)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _start_distributed(args: argparse.Namespace) -> bool:
    """Under torchrun (``WORLD_SIZE`` > 1): join the process group (``nccl`` on CUDA,
    ``gloo`` otherwise) and put this rank on ``cuda:LOCAL_RANK``. Returns whether it did."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise UsageError(
            f"WORLD_SIZE must be an integer, got {os.environ['WORLD_SIZE']!r}"
        ) from None
    if world <= 1 or (dist.is_available() and dist.is_initialized()):
        return False
    if not dist.is_available():
        raise UsageError("this torch has no torch.distributed, which torchrun needs")
    cuda = args.device.startswith("cuda")
    if cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if local_rank >= torch.cuda.device_count():
            raise UsageError(
                f"local rank {local_rank} has no GPU: this machine has "
                f"{torch.cuda.device_count()} (use --nproc_per_node <= that, or --device cpu)"
            )
        args.device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    return True


def _resume_settings(config: dict) -> dict:
    """The part of a run's config that must match to resume it: all but the epochs (which
    a resumed run may raise), the device, the command and the version."""
    keep = {k: config[k] for k in ("task", "layers", "learning", "learn_every", "seed")}
    recipe = dict(config["recipe"])
    recipe.pop("epochs", None)
    keep["recipe"] = recipe
    return keep


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
    """Entry point of the ``tracetorch`` command; returns the exit status.

    Exit status 0: done; 1: an expected failure, one line on stderr (a checkpoint that is
    corrupt, from other settings or in the way; a file that cannot be written; a missing
    extra; a loss that diverged; out of memory); 2: a bad argument; 130: interrupted. Any
    other exception is a bug in tracetorch and propagates with its traceback.
    """
    from .data import DataError
    from .training import CheckpointError, exit_process_group

    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "demo":
        title = "tracetorch demo (digits, trace learning)"
    else:
        if args.task is None and args.data is None:
            parser.exit(  # as argparse's own errors: SystemExit(2)
                2,
                "tracetorch train: error: one of the arguments --task --data is required "
                "(see 'tracetorch train --help')\n",
            )
        name = args.task or Path(args.data).stem
        if str(args.out) == "runs/<task>":
            args.out = Path("runs") / name
        title = (
            f"tracetorch train --task {args.task}"
            if args.task
            else f"tracetorch train --data {args.data}"
        )
    prog = f"tracetorch {args.command}"
    distributed = False
    code = 0
    try:
        distributed = _start_distributed(args)
        if args.command == "train" and args.task == "cartpole":
            run_cartpole(args)
        else:
            run_training(args, title=title)
        if distributed:  # the others wait for rank 0's files; then all leave the group together
            dist.barrier()
    except UsageError as e:
        print(f"{prog}: error: {e} (see '{prog} --help')", file=sys.stderr)
        code = 2
    except Interrupted as e:
        print(f"\n{e}", file=sys.stderr)
        code = 130
    except KeyboardInterrupt:
        print("\ninterrupted before training started", file=sys.stderr)
        code = 130
    except CheckpointError as e:
        advice = CHECKPOINT_ADVICE.get(e.kind, e.advice)
        print(f"tracetorch: error: {e.problem}; {advice}", file=sys.stderr)
        code = 1
    except DataError as e:
        print(f"tracetorch: error: {' '.join(str(e).split())}", file=sys.stderr)
        code = 1
    except (
        OSError,
        ImportError,
        FloatingPointError,
        MemoryError,
        torch.cuda.OutOfMemoryError,
    ) as e:
        print(f"tracetorch: error: {' '.join(str(e).split())}", file=sys.stderr)
        code = 1
    finally:
        if distributed:  # a torchrun worker: leave without gloo's teardown (see there)
            exit_process_group(code)
    return code


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
    ignored = (
        "steps",
        "delay",
        "encoding",
        "epochs",
        "batch_size",
        "chunk_size",
        "train_size",
        "test_size",
        "max_batches",
    )
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
