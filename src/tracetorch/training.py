r"""A training loop for any model on spike sequences: trace or BPTT learning, streamed input.

:class:`Trainer` (and the shortcuts :func:`fit` and :func:`evaluate`) runs a model on batches
``(x, y)``, ``x`` a spike sequence ``[T, B, F]`` (a tensor, or a
:class:`~tracetorch.data.SpikeStream` / any iterable of chunks ``[t, B, F]``) and ``y`` the
labels ``[B]``. The model sees the sequence chunk by chunk, with its state carried across
chunks, so memory does not depend on ``T``.

**When it learns.** ``learn_every=None``: once per sequence, with the loss on the output at
the last step, :math:`L = \ell(\hat y_T, y)`. ``learn_every=k``: every ``k`` steps, with the
loss :math:`\ell(\hat y_t, y)` on the output at step ``t = k, 2k, ..., T`` (steps before the
task's ``target_from``, where the label is not yet known from the input, are skipped); an
optimizer step follows each loss. The forward pass between learning points runs without
autograd.

**How it learns.** ``learning="trace"``: each tracetorch layer learns from its local graph,
built at backward time (constant memory in ``T``). ``learning="bptt"``: backpropagation
through time with surrogate spikes; with ``learn_every=k`` it is truncated BPTT (the state is
detached after each learning point); memory grows with the window.

Metrics: loss and accuracy at the end of each sequence, the firing rate of each spiking layer,
multi-timescale running averages of the training loss and accuracy
(:class:`~tracetorch.metrics.MultiTimescaleMeter`), time and peak memory per epoch.

**Several processes** (``torchrun``; see ``docs/distributed.md``): when a process group of
more than one process is initialised, the trainer wraps the model in
``DistributedDataParallel`` without buffer synchronisation (the stream state is per rank)
and each process (rank) keeps its share ``x[:, rank::world]``, ``y[rank::world]`` of every
global batch (every rank must be given the same data, as a task's seeded batches are); the
gradients, losses, accuracies and firing rates are those of the global batch (a loss that is
a mean over the batch). Rank 0 alone saves checkpoints and calls ``log`` and ``callback``.

Checkpoints hold the model, the optimizer (and scheduler), the epoch, the history, the meters
and the RNG state; data are seeded per epoch, so a resumed run repeats the uninterrupted one.
A checkpoint is written atomically after every epoch, with a sha256 checksum of its content
that is verified on load; a file that is in the way of a new run is never deleted
(:meth:`Trainer.open_checkpoint`). Every problem with a checkpoint file raises
:class:`CheckpointError`, one line that names the file.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import math
import os
import pickle
import random
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from .data.base import SpikeStream, SpikeTask
from .learning.bptt import LEARNING_MODES, set_learning
from .metrics import FiringRates, MultiTimescaleMeter, peak_memory_mb
from .nn.state import load_stream_state_dict, stream_state_dict

__all__ = [
    "CheckpointError",
    "Trainer",
    "cosine_schedule",
    "default_loss",
    "evaluate",
    "exit_process_group",
    "fit",
    "load_checkpoint",
    "save_checkpoint",
    "seed_everything",
]

LossFn = Callable[[Tensor, Tensor], Tensor]
Batch = tuple[Any, Tensor]
Data = SpikeTask | Iterable[Batch] | Callable[[int], Iterable[Batch]]
LRSchedule = Callable[[int, int], float]
#: Format 2: ``{"format", "sha256", "payload"}``, the payload a ``torch.save`` of the state.
#: Format 1 (the state itself, no checksum) is still read.
CHECKPOINT_FORMAT = 2


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: unreadable or corrupt, saved from another model
    or with other settings, or in the way of a new run.

    ``str(error)`` is one line, ``"{problem}; {advice}"``. ``kind`` (``"corrupt"``,
    ``"model"``, ``"settings"`` or ``"exists"``) lets a front end such as the ``tracetorch``
    command replace the advice with its own words (its flags instead of ``resume=True``).
    """

    def __init__(self, problem: str, kind: str, advice: str) -> None:
        super().__init__(f"{problem}; {advice}")
        self.problem, self.kind, self.advice = problem, kind, advice

    def __reduce__(self):  # pickle (multiprocessing) with the three fields, not str(self)
        return type(self), (self.problem, self.kind, self.advice)


def cosine_schedule(epoch: int, epochs: int) -> float:
    r"""Cosine decay of the learning rate: the factor :math:`\tfrac12(1 + \cos(\pi e / E))`
    for epoch ``e`` (0-based) of ``E``: 1 in the first epoch, small but not 0 in the last."""
    return 0.5 * (1.0 + math.cos(math.pi * min(epoch, epochs) / epochs))


LR_SCHEDULES: dict[str, LRSchedule] = {"cosine": cosine_schedule}


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy (if installed) and torch (CPU and CUDA)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover
        pass
    torch.manual_seed(seed)


def _nll_of_probabilities(p: Tensor, y: Tensor) -> Tensor:
    return F.nll_loss(torch.log(p.clamp_min(1e-12)), y)


def default_loss(model: nn.Module) -> LossFn:
    """Cross-entropy on the output at the last step: on logits (``LI`` or any module), or on
    probabilities when the model ends in a :class:`tracetorch.nn.LIS` (``nll(log p)``)."""
    last = None
    for m in model.modules():
        if hasattr(m, "average_output"):
            last = m
    from .nn import LIS

    if isinstance(last, LIS):
        return _nll_of_probabilities
    return F.cross_entropy


def _positive_int_or_none(value, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value


def _process_group(distributed: bool | None) -> tuple[int, int]:
    """``(rank, world size)`` of the training: ``(0, 1)`` unless ``distributed`` (or, for
    ``None``, an initialised process group of more than one process)."""
    ready = dist.is_available() and dist.is_initialized()
    if distributed is None:
        distributed = ready and dist.get_world_size() > 1
    if not distributed:
        return 0, 1
    if not ready:
        raise ValueError(
            "distributed=True needs a process group: call torch.distributed.init_process_group "
            "first (torchrun sets its environment)"
        )
    return dist.get_rank(), dist.get_world_size()


def exit_process_group(code: int = 0) -> NoReturn:
    """End a data-parallel worker process: leave the process group, exit with ``code``.

    The exit skips the interpreter's teardown: gloo's worker threads can abort a finished
    process there ("terminate called without an active exception", SIGABRT), about one run in
    five on this project's machines, which turns a finished run into a failed one. Call it at
    the very end of a worker (after a final ``barrier`` if ranks write files), as the CLI does
    under torchrun. An exception on its way out is printed first and the exit code is 1.
    """
    import torch.distributed as dist

    error = sys.exc_info()[1]
    if error is not None:
        traceback.print_exception(error)
        code = 1
    try:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _no_buffer_sync() -> dict[str, bool]:
    """DDP's option that keeps each rank's buffers (the stream state) its own at every forward:
    ``forward_sync_buffers=False`` where torch has it (2.13 deprecates ``broadcast_buffers``),
    else ``broadcast_buffers=False``. The trainer resets the state before every batch, so the
    one copy at construction that the former still makes is harmless."""
    params = inspect.signature(nn.parallel.DistributedDataParallel.__init__).parameters
    if "forward_sync_buffers" in params:
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}


def _pieces(
    x: Any, chunk_size: int | None, learn_every: int | None
) -> Iterator[tuple[Tensor, int, bool]]:
    """Cut ``x`` into pieces ``[t, B, F]``; yield ``(piece, step after it, is_last)``.

    Pieces never straddle a multiple of ``learn_every``; they are at most ``chunk_size``
    long (a stream keeps its own chunk size when ``chunk_size`` is None). A tensor or a
    :class:`~tracetorch.data.SpikeStream` knows its length, so only one piece exists at a time;
    a plain iterable of chunks is read one chunk ahead to find the last one.
    """
    if isinstance(x, Tensor):
        if x.dim() < 2:
            raise ValueError(f"x must be a sequence [T, B, ...], got shape {tuple(x.shape)}")
        source: Iterable[Tensor] = x.split(chunk_size) if chunk_size else (x,)
        total: int | None = x.shape[0]
    elif isinstance(x, SpikeStream):
        source, total = x.chunks(chunk_size), x.steps
    elif isinstance(x, Iterable):
        source, total = x, None
    else:
        raise TypeError(
            f"a batch's input must be a tensor [T, B, F], a SpikeStream or an iterable of "
            f"chunks, got {type(x).__name__}"
        )
    if total == 0:
        raise ValueError("empty input sequence")
    done = 0
    pending: Tensor | None = None
    for chunk in source:
        cuts = [0]
        if learn_every:
            first = (done // learn_every + 1) * learn_every
            cuts += list(range(first - done, chunk.shape[0], learn_every))
        cuts.append(chunk.shape[0])
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            if b <= a:
                continue
            if total is not None:
                done += b - a
                yield chunk[a:b], done, done >= total
                continue
            if pending is not None:
                yield pending, done, False
            pending = chunk[a:b]
            done += b - a
    if total is not None:
        if done != total:
            raise ValueError(f"the input produced {done} steps, expected {total}")
        return
    if pending is None:
        raise ValueError("empty input sequence")
    yield pending, done, True


class Trainer:
    """Train and evaluate a model on spike sequences (see the module docstring).

    Args:
        model: any module mapping ``[t, B, F]`` to ``[t, B, C]`` (e.g. a
            :class:`tracetorch.nn.Sequential`); ``reset_states()`` is called per sequence.
        optimizer: default ``Adam(model.parameters(), lr=lr)``.
        lr: learning rate of the default optimizer.
        loss_fn: ``loss_fn(output [B, C], y [B]) -> scalar``, on the output of a learning
            step; default :func:`default_loss`.
        learning: ``"trace"`` or ``"bptt"``: sets every tracetorch layer of ``model`` to it;
            ``None`` keeps the layers' own modes (``"bptt"`` if any layer is in BPTT mode).
        learn_every: learn every ``k`` steps, or ``None`` (once, at the end of the sequence).
        chunk_size: steps fed to the model at once (memory of a forward call grows with it);
            ``None``: a whole tensor at once, a stream's own chunk size.
        batch_size: batch size when the data are a :class:`~tracetorch.data.SpikeTask`.
        grad_clip: clip the gradient norm to this value before each optimizer step.
        scheduler: a PyTorch learning-rate scheduler, stepped after each epoch; on resume its
            saved state (and the saved learning rate) is restored as it was.
        lr_schedule: ``"cosine"`` (:func:`cosine_schedule`) or a function
            ``(epoch, epochs) -> factor``: each epoch trains at ``initial_lr * factor``, computed
            from the ``epochs`` of the current :meth:`fit`, so a run resumed with more epochs
            follows the schedule of its new length (a ``scheduler`` cannot, its state is fixed
            at construction). Not with ``scheduler``.
        device: where the model and data go; default the model's device.
        progress: tqdm progress bar: ``True``, ``False``, or ``"auto"`` (if tqdm is installed
            and stderr is a terminal, so that logs redirected to a file get no bar); rank 0's
            only.
        max_batches: stop an epoch after this many batches (quick runs).
        distributed: train data-parallel over the processes of the default process group:
            ``None`` (default) when one of more than one process is initialised. Each rank
            runs its share of every batch (``batch_size`` is the global batch and must be
            divisible by the number of processes); see the module docstring.

    Example:
        >>> task = tt.data.Digits(steps=25)
        >>> net = tt.nn.Sequential(tt.nn.LIF(64, 128), tt.nn.LI(128, 10))
        >>> trainer = Trainer(net, lr=2e-3)
        >>> history = trainer.fit(task, epochs=10, checkpoint="runs/digits.pt")
        >>> history["test_accuracy"][-1]
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        lr: float = 1e-3,
        loss_fn: LossFn | None = None,
        learning: str | None = None,
        learn_every: int | None = None,
        chunk_size: int | None = None,
        batch_size: int = 64,
        grad_clip: float | None = None,
        scheduler: Any | None = None,
        lr_schedule: str | LRSchedule | None = None,
        device: torch.device | str | None = None,
        progress: bool | str = "auto",
        max_batches: int | None = None,
        distributed: bool | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if learning is not None and learning not in LEARNING_MODES:
            raise ValueError(f"learning must be one of {LEARNING_MODES}, got {learning!r}")
        if not (isinstance(lr, (int, float)) and lr > 0):
            raise ValueError(f"lr must be a number > 0, got {lr!r}")
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {grad_clip}")
        if progress not in (True, False, "auto"):
            raise ValueError(f"progress must be True, False or 'auto', got {progress!r}")
        if loss_fn is not None and not callable(loss_fn):
            raise TypeError("loss_fn must be callable: loss_fn(output [B, C], y [B]) -> loss")
        if isinstance(lr_schedule, str):
            if lr_schedule not in LR_SCHEDULES:
                raise ValueError(
                    f"lr_schedule must be one of {tuple(LR_SCHEDULES)} or a function "
                    f"(epoch, epochs) -> factor, got {lr_schedule!r}"
                )
            lr_schedule = LR_SCHEDULES[lr_schedule]
        elif lr_schedule is not None and not callable(lr_schedule):
            raise TypeError("lr_schedule must be a name or a function (epoch, epochs) -> factor")
        if lr_schedule is not None and scheduler is not None:
            raise ValueError("give scheduler or lr_schedule, not both")
        self.learn_every = _positive_int_or_none(learn_every, "learn_every")
        self.chunk_size = _positive_int_or_none(chunk_size, "chunk_size")
        self.batch_size = _positive_int_or_none(batch_size, "batch_size")
        self.max_batches = _positive_int_or_none(max_batches, "max_batches")
        self.rank, self.world_size = _process_group(distributed)
        if self.world_size > 1 and self.batch_size is not None:
            if self.batch_size % self.world_size:
                raise ValueError(
                    f"batch_size ({self.batch_size}) must be divisible by the number of "
                    f"processes ({self.world_size}): it is the global batch, split among them"
                )
        if device is None:
            p = next(model.parameters(), None)
            device = p.device if p is not None else torch.device("cpu")
        self.device = torch.device(device)
        self.model = model.to(self.device)
        #: what a forward with autograd goes through: ``model``, or its DDP wrapper, whose
        #: backward all-reduces the gradients (stream state lives in buffers: never broadcast)
        self.ddp: nn.Module | None = None
        if self.world_size > 1:
            if hasattr(self.model, "reset_states"):  # no rank's stream state is copied at init
                self.model.reset_states()
            self.ddp = nn.parallel.DistributedDataParallel(
                self.model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                **_no_buffer_sync(),
            )
        if learning is None:
            modes = {getattr(m, "learning", None) for m in model.modules()}
            learning = "bptt" if "bptt" in modes else "trace"
        else:
            set_learning(model, learning)
        self.learning = learning
        self.optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
        self.loss_fn = loss_fn or default_loss(model)
        self.scheduler = scheduler
        self.lr_schedule = lr_schedule
        if lr_schedule is not None:
            for group in self.optimizer.param_groups:  # PyTorch's schedulers' name for it
                group.setdefault("initial_lr", group["lr"])
        self.grad_clip = grad_clip
        self.progress = progress
        self.epoch = 0  # epochs completed
        self.checkpoint: Path | None = None  # where fit saves (see open_checkpoint)
        self.settings: dict[str, Any] | None = None  # must match to resume (open_checkpoint)
        self.history: dict[str, list] = {}
        self.meters = {
            "loss": MultiTimescaleMeter("loss"),
            "accuracy": MultiTimescaleMeter("accuracy"),
        }

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and logs: rank 0, or the only process."""
        return self.rank == 0

    # ------------------------------------------------------------------ one batch
    def _learn(self, out: Tensor, y: Tensor, loss_weight: float = 1.0) -> Tensor:
        loss = self.loss_fn(out[-1], y)
        self.optimizer.zero_grad(set_to_none=True)
        (loss * loss_weight if loss_weight != 1.0 else loss).backward()
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        return loss.detach()

    def run_batch(
        self,
        x: Any,
        y: Tensor,
        *,
        train: bool = True,
        target_from: int = 0,
        loss_weight: float = 1.0,
    ) -> dict[str, Tensor]:
        """Run one sequence batch; learn if ``train``. Returns the end-of-sequence
        ``{"loss", "correct", "count", "output"}`` (tensors, not synchronised).

        Under DDP, ``x``/``y`` are this rank's share, and ``loss_weight`` scales the loss
        that is backpropagated (its share of the global batch times the number of ranks), so
        that the averaged gradients are those of the global batch's mean loss."""
        model, device = self.model, self.device
        grad_model = self.ddp if self.ddp is not None else model
        y = y.to(device)
        model.train(train)
        if hasattr(model, "reset_states"):
            model.reset_states()
        bptt = train and self.learning == "bptt"
        learn_every = self.learn_every if train else None
        out = loss = None
        for piece, step, last in _pieces(x, self.chunk_size, learn_every):
            piece = piece.to(device, non_blocking=True)
            learn_here = train and (
                last
                or (learn_every is not None and step % learn_every == 0 and step >= target_from)
            )
            if bptt or learn_here:
                with torch.enable_grad():
                    out = grad_model(piece)
                if learn_here:
                    loss = self._learn(out, y, loss_weight)
                    if bptt and hasattr(model, "detach_states"):
                        model.detach_states()
            elif last:
                with torch.no_grad():
                    out = model(piece)
            else:
                with torch.no_grad():
                    model(piece)
        last_out = out[-1].detach()
        if loss is None:
            with torch.no_grad():
                loss = self.loss_fn(last_out, y)
        if hasattr(model, "reset_states"):
            model.reset_states()  # free the state (and, in BPTT, its graph)
        correct = (last_out.argmax(-1) == y).sum()
        return {"loss": loss, "correct": correct, "count": torch.tensor(len(y)), "output": last_out}

    # ------------------------------------------------------------------ epochs
    def _batches(self, data: Data, split: str, epoch: int) -> tuple[Iterable[Batch], int | None]:
        if isinstance(data, SpikeTask):
            if self.batch_size is None:
                raise ValueError("batch_size is needed to draw batches from a task")
            total = data.num_batches(split, self.batch_size)
            return data.batches(split, self.batch_size, epoch=epoch, device=self.device), total
        if callable(data) and not isinstance(data, Iterable):
            batches = data(epoch)
        elif isinstance(data, Iterable):
            batches = data
        else:
            raise TypeError(
                "data must be a SpikeTask, an iterable of (x, y) batches, or a function "
                f"epoch -> iterable, got {type(data).__name__}"
            )
        total = len(batches) if hasattr(batches, "__len__") else None
        return batches, total

    def _bar(self, batches: Iterable, total: int | None, desc: str):
        if self.progress is False or (self.progress == "auto" and not _stderr_is_terminal()):
            return batches
        if not self.is_main:
            return batches
        try:
            from tqdm.auto import tqdm
        except ImportError:
            if self.progress is True:
                raise ImportError(
                    "the progress bar needs tqdm: pip install 'tracetorch[examples]' "
                    "(or pass progress=False)"
                ) from None
            return batches
        if self.max_batches is not None and total is not None:
            total = min(total, self.max_batches)
        return tqdm(batches, total=total, desc=desc, leave=False, dynamic_ncols=True)

    def _epoch(self, data: Data, split: str, epoch: int, train: bool, desc: str) -> dict:
        batches, total = self._batches(data, split, epoch)
        target_from = data.target_from if isinstance(data, SpikeTask) else 0
        bar = self._bar(batches, total, desc)
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        count = 0
        start = time.perf_counter()
        with FiringRates(self.model) as rates:
            for i, (x, y) in enumerate(bar):
                if self.max_batches is not None and i >= self.max_batches:
                    break
                if self.world_size > 1:
                    n, batch_loss_sum, batch_correct = self._distributed_batch(
                        x, y, train, target_from
                    )
                    loss_sum += batch_loss_sum
                    correct += batch_correct
                    count += n
                    batch_loss = float(batch_loss_sum) / n
                else:
                    r = self.run_batch(x, y, train=train, target_from=target_from)
                    n = int(r["count"])
                    loss_sum += r["loss"].float() * n
                    correct += r["correct"]
                    count += n
                    batch_correct = r["correct"]
                    batch_loss = float(r["loss"]) if train else math.nan
                if train:
                    if not math.isfinite(batch_loss):
                        raise FloatingPointError(
                            f"training loss became {batch_loss} at epoch {epoch + 1}, batch {i}; "
                            "lower the learning rate or clip gradients (grad_clip=)"
                        )
                    self.meters["loss"].update(batch_loss)
                    self.meters["accuracy"].update(float(batch_correct) / n)
                    if hasattr(bar, "set_postfix"):
                        bar.set_postfix(
                            loss=f"{self.meters['loss'].average(0.9):.3f}",
                            acc=f"{self.meters['accuracy'].average(0.9):.3f}",
                        )
            firing = self._mean_over_ranks(rates.rates())
        if hasattr(bar, "close"):
            bar.close()
        if count == 0:
            raise ValueError(f"no batches in the {split} data")
        result = {"loss": float(loss_sum) / count, "accuracy": float(correct) / count}
        result.update({f"rate/{k}": v for k, v in firing.items()})
        result["seconds"] = time.perf_counter() - start
        return result

    def _distributed_batch(
        self, x: Any, y: Tensor, train: bool, target_from: int
    ) -> tuple[int, Tensor, Tensor]:
        """Run this rank's share ``[rank::world]`` of a global batch; return the global
        ``(count, loss sum, correct)``, all-reduced.

        Shares may differ by one sample: each rank's loss is weighted by its share of the
        batch (times the number of ranks), so DDP's average of the gradients is the gradient
        of the global batch's mean loss. A rank whose share is empty (a last batch smaller
        than the number of ranks) still takes part in the backward, on the batch's first
        sample with weight 0, as every rank must run as many backwards; it evaluates nothing.
        """
        rank, world = self.rank, self.world_size
        n_global = len(y)
        part = slice(rank, None, world)
        n_local = len(range(n_global)[part])
        stats = torch.zeros(3, device=self.device)
        if n_local == 0 and train:
            part = slice(0, 1)  # a stand-in: its loss is weighted 0
        if n_local or train:
            if isinstance(x, Tensor):
                x = x[:, part]
            elif isinstance(x, SpikeStream):
                x = x.select(part)
            elif isinstance(x, Iterable):
                x = (chunk[:, part] for chunk in x)
            r = self.run_batch(
                x,
                y[part],
                train=train,
                target_from=target_from,
                loss_weight=n_local * world / n_global,
            )
            if n_local:
                stats[0] = r["loss"].detach().float() * n_local
                stats[1] = r["correct"].float()
                stats[2] = n_local
        dist.all_reduce(stats)
        return int(stats[2].item()), stats[0], stats[1].round().long()

    def _mean_over_ranks(self, values: dict[str, float]) -> dict[str, float]:
        """Average per-rank figures (firing rates) over the ranks; as is in one process."""
        if self.world_size == 1 or not values:
            return values
        t = torch.tensor(list(values.values()), dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return dict(zip(values, (t / self.world_size).tolist(), strict=True))

    def evaluate(self, data: Data, split: str = "test") -> dict[str, float]:
        """Loss, accuracy (at the last step) and firing rates on ``data`` (no learning)."""
        return self._epoch(data, split, 0, train=False, desc=f"eval {split}")

    def fit(
        self,
        train: Data,
        epochs: int,
        *,
        test: Data | None | bool = None,
        checkpoint: str | os.PathLike | None = None,
        resume: bool = False,
        overwrite: bool = False,
        settings: dict[str, Any] | None = None,
        callback: Callable[[Trainer, dict], None] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> dict[str, list]:
        """Train for ``epochs`` epochs in total (a resumed run continues up to that number).

        Args:
            train: a :class:`~tracetorch.data.SpikeTask` (its ``"train"`` split, and its
                ``"test"`` split for evaluation unless ``test`` is given), an iterable of
                ``(x, y)`` batches, or a function ``epoch -> iterable`` (new data per epoch).
            epochs: total number of epochs.
            test: data to evaluate on after each epoch; ``None``: a task's test split (no
                evaluation for other data); ``False``: no evaluation.
            checkpoint: file to save after every epoch (atomically, before ``log`` and
                ``callback`` see the epoch); opened with :meth:`open_checkpoint` unless it is
                already this trainer's. ``None``: the trainer's checkpoint, if it has one.
            resume, overwrite, settings: what to do with an existing ``checkpoint``, see
                :meth:`open_checkpoint` (by default an existing file is an error).
            callback: ``callback(trainer, epoch_record)`` after each epoch.
            log: called with a one-line summary after each epoch (e.g. ``print``).

        Returns:
            the history: ``{"epoch": [...], "lr": [...], "train_loss": [...],
            "train_accuracy": [...], "test_loss": [...], "test_accuracy": [...],
            "rate/<layer>": [...], "seconds": [...], "peak_memory_mb": [...]}``, one entry per
            epoch (``lr``: the learning rate the epoch trained at).
        """
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"epochs must be an int >= 0, got {epochs!r}")
        if resume and checkpoint is None:
            raise ValueError("resume=True needs a checkpoint path")
        if checkpoint is not None and Path(checkpoint) != self.checkpoint:
            self.open_checkpoint(checkpoint, resume=resume, overwrite=overwrite, settings=settings)
        if test is None and isinstance(train, SpikeTask):
            test = train
        elif test is False:
            test = None
        while self.epoch < epochs:
            e = self.epoch
            if self.lr_schedule is not None:
                factor = float(self.lr_schedule(e, epochs))
                for group in self.optimizer.param_groups:
                    group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor
            record: dict[str, Any] = {"epoch": e + 1, "lr": self.optimizer.param_groups[0]["lr"]}
            tr = self._epoch(train, "train", e, train=True, desc=f"epoch {e + 1}/{epochs}")
            record.update({f"train_{k}" if "/" not in k else k: v for k, v in tr.items()})
            if test is not None:
                te = self._epoch(test, "test", 0, train=False, desc="test")
                record["test_loss"], record["test_accuracy"] = te["loss"], te["accuracy"]
            if self.scheduler is not None:
                self.scheduler.step()
            record["seconds"] = record.pop("train_seconds")
            record["peak_memory_mb"] = peak_memory_mb()
            for k, v in record.items():
                self.history.setdefault(k, []).append(v)
            self.epoch = e + 1
            if self.checkpoint is not None and self.is_main:
                self.save(self.checkpoint)
            if self.is_main:
                if log is not None:
                    log(_summary(record, epochs))
                if callback is not None:
                    callback(self, record)
            if self.world_size > 1:
                dist.barrier()  # the others wait for rank 0's checkpoint
        return self.history

    # ------------------------------------------------------------------ checkpoints
    def open_checkpoint(
        self,
        path: str | os.PathLike,
        *,
        resume: bool = False,
        overwrite: bool = False,
        settings: dict[str, Any] | None = None,
    ) -> bool:
        """Make ``path`` the checkpoint this trainer saves to; resume from it if asked.

        An existing file is never deleted here: it is loaded (``resume``), left in place until
        the first epoch of the new run replaces it (``overwrite``), or refused. So an interrupt
        before the first epoch ends leaves the previous run's checkpoint intact.

        Args:
            path: the checkpoint file.
            resume: load ``path`` if it exists (model, optimizer, scheduler, epoch, history,
                meters, RNG); a missing file starts a new run.
            overwrite: start a new run even if ``path`` exists.
            settings: plain values (numbers, strings, lists, dicts) that must be equal to
                resume, such as the model's shape and the data; saved in every checkpoint.
                Resuming a checkpoint saved with other settings is an error.

        Returns:
            whether the trainer resumed from ``path``.

        Raises:
            CheckpointError: ``path`` exists and neither ``resume`` nor ``overwrite`` is set
                (``kind="exists"``); or, resuming, it is unreadable or corrupt
                (``"corrupt"``), its settings differ (``"settings"``) or its state does not
                fit the model or optimizer (``"model"``).
        """
        if resume and overwrite:
            raise ValueError("resume and overwrite exclude each other")
        path = Path(path)
        resumed = False
        if path.exists():
            if resume:
                state = load_checkpoint(path, map_location=self.device)
                _check_settings(path, state.get("settings"), settings)
                self._load_checked(path, state)
                resumed = True
            elif not overwrite:
                raise CheckpointError(
                    f"{path} already exists (a previous run's checkpoint)",
                    "exists",
                    "resume it (resume=True), replace it (overwrite=True) or choose another path",
                )
        self.checkpoint, self.settings = path, settings
        return resumed

    def state_dict(self) -> dict[str, Any]:
        """Model, its stream state, optimizer, scheduler, epoch, history, meters, RNG state."""
        state = {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "history": self.history,
            "meters": {k: m.state_dict() for k, m in self.meters.items()},
            "learning": self.learning,
            "stream": stream_state_dict(self.model),
            "rng": {"torch": torch.get_rng_state()},
        }
        if torch.cuda.is_available():
            state["rng"]["cuda"] = torch.cuda.get_rng_state_all()
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        if self.settings is not None:
            state["settings"] = self.settings
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` (the model and optimizer must be built alike)."""
        self.model.load_state_dict(state["model"])
        if state.get("stream"):
            load_stream_state_dict(self.model, state["stream"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.history = {k: list(v) for k, v in state["history"].items()}
        for k, m in self.meters.items():
            if k in state.get("meters", {}):
                m.load_state_dict(state["meters"][k])
        rng = state.get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> None:
        """Save a checkpoint to ``path`` (written to a temporary file, then renamed)."""
        save_checkpoint(path, self.state_dict() | ({"extra": extra} if extra else {}))

    def load(self, path: str | os.PathLike) -> dict[str, Any]:
        """Load a checkpoint saved by :meth:`save`; returns the raw checkpoint.

        Raises:
            CheckpointError: the file is unreadable or corrupt, or its state does not fit
                this trainer's model or optimizer.
        """
        state = load_checkpoint(path, map_location=self.device)
        self._load_checked(Path(path), state)
        return state

    def _load_checked(self, path: Path, state: dict[str, Any]) -> None:
        try:
            self.load_state_dict(state)
        except KeyError as e:
            raise CheckpointError(
                f"{path} is an incomplete checkpoint (no {e.args[0]!r})",
                "corrupt",
                "start a new run or choose another path",
            ) from e
        except (RuntimeError, ValueError) as e:  # load_state_dict's shape or group mismatch
            raise CheckpointError(
                f"{path} does not fit this model or optimizer ({_one_line(e)})",
                "model",
                "resume with the model it was saved from, or choose another path",
            ) from e


def _stderr_is_terminal() -> bool:
    """Whether stderr (where tqdm writes) is a terminal; False for a file, a pipe or None."""
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _one_line(error: BaseException) -> str:
    """An exception's message on one line: torch's ``load_state_dict`` and zip errors span
    several lines, a heading then one problem per line; keep the first problem."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    if len(lines) > 1 and lines[0].endswith(":"):
        more = len(lines) - 2
        return lines[1] + (f" (and {more} more)" if more else "")
    return lines[0]


def _check_settings(path: Path, saved: Any, current: dict[str, Any] | None) -> None:
    """Refuse to resume when both sides have settings and they differ; name what differs."""
    if saved is None or current is None or saved == current:
        return
    keys = sorted(set(saved) | set(current), key=str)
    diff = ", ".join(
        f"{k}: {saved.get(k)} -> {current.get(k)}" for k in keys if saved.get(k) != current.get(k)
    )
    raise CheckpointError(
        f"{path} was trained with different settings ({diff})",
        "settings",
        "resume with the same settings, or choose another path",
    )


def _summary(record: dict, epochs: int) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}"]
    parts.append(f"train loss {record['train_loss']:.4f} acc {record['train_accuracy']:.3f}")
    if "test_accuracy" in record:
        parts.append(f"test loss {record['test_loss']:.4f} acc {record['test_accuracy']:.3f}")
    rates = [f"{k[5:]} {v:.3f}" for k, v in record.items() if k.startswith("rate/")]
    if rates:
        parts.append("firing rate " + ", ".join(rates))
    parts.append(f"{record['seconds']:.1f}s")
    return " | ".join(parts)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """``torch.save`` ``state`` to ``path`` atomically, with a sha256 checksum of its bytes.

    The state is serialised to bytes, hashed, and saved as ``{"format", "sha256",
    "payload"}`` to a temporary file that is flushed to disk and then renamed over ``path``:
    a crash leaves the old file or the new one, never a mix, and :func:`load_checkpoint`
    detects any later change of the bytes (a flipped bit, a truncated copy).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    wrapped = {
        "format": CHECKPOINT_FORMAT,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "payload": payload,
    }
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(wrapped, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


_UNREADABLE = "start a new run or choose another path"


def _torch_load(source: Any, path: Path, map_location: torch.device | str | None) -> Any:
    """``torch.load(weights_only=True)`` with its many failure types as one CheckpointError."""
    try:
        return torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:  # torch's text here is about unsafe pickles; not ours
        raise CheckpointError(
            f"{path} is not a tracetorch checkpoint (not written by torch.save, or damaged)",
            "corrupt",
            _UNREADABLE,
        ) from e
    except (EOFError, RuntimeError, OSError, ValueError) as e:
        if isinstance(e, (PermissionError, IsADirectoryError)):
            raise
        raise CheckpointError(
            f"{path} is truncated or corrupt ({type(e).__name__}: {_one_line(e)})",
            "corrupt",
            _UNREADABLE,
        ) from e


def load_checkpoint(
    path: str | os.PathLike, map_location: torch.device | str | None = None
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors and plain types only).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is empty, truncated, corrupt (its sha256 checksum does not
            match), from a newer tracetorch, or not a tracetorch checkpoint.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.is_file() and path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty", "corrupt", _UNREADABLE)
    state = _torch_load(path, path, map_location)
    if isinstance(state, dict) and "payload" in state:
        fmt = state.get("format")
        if not isinstance(fmt, int) or fmt > CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{path} has checkpoint format {fmt!r}; this tracetorch reads up to "
                f"{CHECKPOINT_FORMAT}",
                "corrupt",
                "upgrade tracetorch, or start a new run",
            )
        payload = state["payload"]
        if not isinstance(payload, bytes) or hashlib.sha256(payload).hexdigest() != state.get(
            "sha256"
        ):
            raise CheckpointError(
                f"{path} is corrupt: its content does not match its sha256 checksum",
                "corrupt",
                _UNREADABLE,
            )
        state = _torch_load(io.BytesIO(payload), path, map_location)
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path} is not a tracetorch checkpoint", "corrupt", _UNREADABLE)
    return state


def fit(model: nn.Module, train: Data, epochs: int, **kwargs) -> dict[str, list]:
    """Train ``model``: ``Trainer(model, **options).fit(train, epochs, **fit_options)``.

    Keyword arguments named like :meth:`Trainer.fit`'s (``test``, ``checkpoint``, ``resume``,
    ``callback``, ``log``) go there; the others to :class:`Trainer`. Returns the history.
    """
    fit_keys = {"test", "checkpoint", "resume", "overwrite", "settings", "callback", "log"}
    fit_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in fit_keys}
    return Trainer(model, **kwargs).fit(train, epochs, **fit_kwargs)


def evaluate(model: nn.Module, data: Data, split: str = "test", **kwargs) -> dict[str, float]:
    """Loss, accuracy and firing rates of ``model`` on ``data`` (options as :class:`Trainer`)."""
    kwargs.setdefault("progress", False)
    return Trainer(model, **kwargs).evaluate(data, split)
