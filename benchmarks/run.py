"""Run the benchmark suite and write the report: ``python -m benchmarks.run [--quick]``.

Cases, in this order (the timed cases run alone, one process at a time, for clean timings):

0. ``dynamics``: every peer runs the same network (spike agreement from the same weights);
1. ``ratio``: training-step speed ratios vs the peers, measured interleaved with their spread
   (:mod:`benchmarks.ratio`): the speed-up figures come from here;
1. ``cost``: memory and time of a training step vs sequence length (:mod:`benchmarks.cost`);
2. ``accuracy``: trace learning vs BPTT vs snnTorch on the bundled tasks, with
   3. gradient fidelity measured inside the trace runs (:mod:`benchmarks.accuracy`,
   :mod:`benchmarks.fidelity`).

The full run writes ``benchmarks/results/*.json``, ``docs/benchmarks.md`` and
``docs/img/bench_*.png``; ``--quick`` (a few minutes, small settings) writes the same under
``out/bench-quick/`` unless ``--out`` says otherwise. ``--report-only`` rebuilds the report from
the JSON already there; cases not run this time are taken from it too.

Timings survive a re-run only on a quiet machine (issue 13): the command holds a lock that
makes a second ``benchmarks.run`` (or ``benchmarks.speed``/``benchmarks.ratio``) refuse to
start, and, when it times anything (``ratio``, ``cost``), it waits for the 1-min load average
to fall to 0.5 per core and refuses if it does not (``--allow-load`` times anyway, loudly
marked). The load is recorded before and after every case (``env.json``: ``cases``) and every
timed process (in its row).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from .accuracy import (
    ABLATION_TASKS,
    ALL_METHODS,
    FIDELITY_TASKS,
    FULL_TASKS,
    VARIANTS,
    quick_tasks,
    run_accuracy,
    task_config,
)
from .common import RESULTS, ROOT, machine_info, read_json, set_threads, write_json
from .cost import COST_LIBRARIES, FULL_STEPS, run_cost
from .guard import BusyError, SuiteLock, loud, snapshot, wait_until_quiet
from .ratio import LIBRARIES as RATIO_LIBRARIES
from .ratio import ROUNDS, run_ratio
from .report import write_report

CASES = ("dynamics", "ratio", "cost", "accuracy", "fidelity", "ablation")
TIMED_CASES = {"ratio", "cost"}

QUICK = {
    "cost": {
        "steps": [100, 1000],
        "budget_s": 20.0,
        "max_reps": 1,
        "mem_cap_gb": 4.0,
        "libs": [lib for lib in COST_LIBRARIES if lib != "tracetorch-bptt"],
    },
    "accuracy": {"seeds": [0], "jobs": 2, "budget_s": 120.0},
    "ratio": {"steps": [1000], "rounds": 3},
}
FULL = {
    "cost": {"steps": FULL_STEPS, "budget_s": 120.0, "max_reps": 5, "mem_cap_gb": 8.0},
    "accuracy": {"seeds": [0, 1, 2], "jobs": 2, "budget_s": 1200.0},
    "ratio": {"steps": [100, 1000], "rounds": ROUNDS},
}

NOTES = """
How each library is set up to run the same discrete network (checked above: identical spikes
from identical weights):

- **tracetorch**: `tt.nn.Sequential(tt.nn.LIF(64, 128, beta=0.9, threshold=1.0), tt.nn.LIF(128,
  128, ...), tt.nn.LI(128, 10, beta=0.9))`, library defaults otherwise (beta and threshold
  learnable, trace decay 0.95, bias correction on, `linear` rate function). A chunk `[t, B, F]`
  is one call (its sequence path); the loss is on the last output. "BPTT mode" is the same network
  under `tt.learning.set_learning(net, "bptt")` (ATan surrogate).
- **snnTorch**: `nn.Linear` + `snn.Leaky(beta, threshold, reset_mechanism="subtract",
  reset_delay=False)`, readout `snn.Leaky(reset_mechanism="none")` (its membrane), stepped in a
  Python loop. `reset_delay=False` puts the reset in the step of the spike, as tracetorch
  (snnTorch's default delays it one step). Spikes at `m > theta` (tracetorch: `>=`). Beta and
  threshold fixed (snnTorch's default): snnTorch learns beta unconstrained and clamps it, which
  wrecked the slow evidence readout in a probe (63% vs 94%).
- **Norse**: `nn.Linear` + `LIFBoxCell` (no synaptic current) with `reset_subtract`, readout
  `LIBoxCell`. Norse's Euler step `v += dt/tau (v_leak - v + i)` decays the input too, so with
  dt/tau = 0.1 the current is scaled by 10 to give `v = 0.9 v + c` (one extra multiply per layer
  and step). Fixed beta and threshold; SuperSpike surrogate (Norse's default).
- **SpikingJelly** (activation_based): `layer.Linear` + `neuron.LIFNode(tau=10.0,
  decay_input=False, v_reset=None, surrogate_function=surrogate.ATan())` in multi-step mode
  (`step_mode="m"`, torch backend: the GPU backends do not run on CPU). No leaky-integrator
  readout keeps its state across calls (`NonSpikingLIFNode` restarts at zero each call), so
  the readout is a `LIFNode` with `v_threshold=1e9` whose `.v` is read. Fixed beta/threshold.
- **floor**: the same dynamics as a plain per-step PyTorch loop under `no_grad` (addmm, decay,
  threshold, in-place reset): the cost of the arithmetic alone.
- **Recurrent hidden layers** (the `-rlif` accuracy tasks): `tt.nn.RLIF` (no self-connection,
  no recurrent bias) and snnTorch's `snn.RLeaky(all_to_all=True)` with its diagonal masked and
  its recurrent bias frozen at zero; same spikes from the same weights except where a membrane
  reaches twice the threshold (snnTorch then decides the next spike after the pending reset).
- **GRU** (the ceiling of the timing tasks, not a spiking library): `nn.GRU(n_in, 128,
  num_layers=2)` and an `nn.Linear` readout on its last output, BPTT.

Timing: each timed process runs under glibc's default allocator, as a user runs, and alone
(the suite holds a lock; see issue 13); speed ratios between libraries come from interleaved
rounds (section "Speed ratios"). Memory: measured in a separate process, peak RSS (kernel
high-water mark, reset with `/proc/self/clear_refs`) during the measured step minus the RSS
just before it, after a warm-up step, `gc` and `malloc_trim`; memory processes run with
glibc's mmap threshold fixed at 64 KiB (`MALLOC_MMAP_THRESHOLD_=65536`), so
every block of 64 KiB or more returns to the OS when freed (with the default, dynamic
threshold RSS depends on allocation history). Per-step tensors of a BPTT graph are smaller
(a `[64, 128]` float32 state is 32 KiB) and live in the heap, whose fragmentation is part of
the RSS a user sees: it is why the RSS of the BPTT libraries is several times their "saved for
backward". That column is the peak of the bytes autograd holds saved (distinct live storages,
counted through `torch.autograd.graph.saved_tensors_hooks` in a separate step), independent of
the allocator; for tracetorch it is its one-step local graphs, built in backward.
Accuracy runs: `--jobs` of them at once (their training times are not speed figures), Adam,
batch 64 (32 for `seqdigits`), cross-entropy on the readout at the last step, seeds vary the
initialisation, split and spike noise. Evidence tasks use a readout whose time constant is the
trial length (beta = 1 - 1/T) in every method, and tracetorch traces with horizon T (the
evidence is at the start of the trial; the default horizon of 20 steps would see only the
recall cue).
"""


def _paths(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """``(results dir, markdown file, image dir)`` for this run."""
    if args.out is not None:
        out = Path(args.out)
        return out / "results", out / "benchmarks.md", out / "img"
    if args.quick:
        out = ROOT / "out" / "bench-quick"
        return out / "results", out / "benchmarks.md", out / "img"
    return RESULTS, ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "img"


def _run_id(row: dict) -> tuple:
    return (row.get("key"), row.get("method"), row.get("variant", "default"), row.get("seed"))


def _merge_rows(path: Path, rows: list[dict], settings: dict[str, Any]) -> None:
    """Write ``rows`` to ``path``, replacing stored rows of the same (task, method, variant,
    seed) and keeping the others (``--tasks evidence-1000`` adds to the accuracy results; a
    re-run stopped halfway replaces only the runs it finished)."""
    old = read_json(path) or {}
    good = {_run_id(r) for r in rows if "test_acc" in r}
    failed = {_run_id(r) for r in rows if "test_acc" not in r}
    stored = old.get("rows", [])
    stored_good = {_run_id(r) for r in stored if "test_acc" in r}
    # a run that failed this time does not replace one that succeeded before
    new = [r for r in rows if _run_id(r) in good or _run_id(r) not in stored_good]
    ids = good | (failed - stored_good)
    kept = [r for r in stored if _run_id(r) not in ids]
    write_json(path, {"settings": settings, "rows": kept + new})


def _run_cases(
    args: argparse.Namespace,
    cases: list[str],
    results: Path,
    env: dict[str, Any],
    libs: list[str],
    peers_missing: dict[str, str],
    cost_cfg: dict[str, Any],
    ratio_cfg: dict[str, Any],
    acc_cfg: dict[str, Any],
    tasks: dict[str, dict[str, Any]],
    t_start: float,
) -> None:
    """Run ``cases`` in order (the caller holds the suite lock); write their JSON."""
    pre = None
    if TIMED_CASES & set(cases):
        # --quick is a validation run (out/, not published): it warns instead of refusing
        pre = wait_until_quiet(args.allow_load or args.quick, what="the timed cases")
    old_env = read_json(results / "env.json") or {}
    loads: dict[str, Any] = dict(old_env.get("cases") or {})

    def begin(name: str) -> dict[str, Any]:
        print(f"== {name}")
        return {
            "before": snapshot(),
            "start": time.monotonic(),
            "commit": env.get("commit"),
            "date": env.get("date"),
        }

    def end(name: str, rec: dict[str, Any]) -> None:
        rec["after"] = snapshot()
        rec["wall_s"] = round(time.monotonic() - rec.pop("start"), 1)
        loads[name] = rec
        write_json(
            results / "env.json",
            {**env, "peers_missing": peers_missing, "pre": pre, "cases": loads},
        )

    write_json(
        results / "env.json", {**env, "peers_missing": peers_missing, "pre": pre, "cases": loads}
    )
    if "dynamics" in cases:
        from .dynamics import agreement

        rec = begin("dynamics")
        write_json(
            results / "dynamics.json", agreement(["snntorch", "norse", "spikingjelly", "floor"])
        )
        end("dynamics", rec)
    if "ratio" in cases:
        rec = begin("ratio: interleaved training-step speed ratios")
        ratio_libs = [lib for lib in RATIO_LIBRARIES if lib not in peers_missing]
        doc = run_ratio(ratio_libs, ratio_cfg["steps"], ratio_cfg["rounds"])
        doc["settings"]["missing"] = {
            k: v for k, v in peers_missing.items() if k in RATIO_LIBRARIES
        }
        write_json(results / "ratio.json", {"machine": env, "pre": pre, **doc})
        end("ratio", rec)
    if "cost" in cases:
        rec = begin("cost vs sequence length")
        usable = [lib for lib in libs if lib.replace("-bptt", "") not in peers_missing]
        rows = run_cost(
            usable,
            cost_cfg["steps"],
            budget_s=cost_cfg["budget_s"],
            max_reps=cost_cfg["max_reps"],
            mem_cap_gb=cost_cfg["mem_cap_gb"],
        )
        rows += [
            {"library": lib, "steps": t, "error": peers_missing[lib]}
            for lib in libs
            if lib in peers_missing
            for t in cost_cfg["steps"]
        ]
        write_json(
            results / "cost.json", {"settings": cost_cfg, "machine": env, "pre": pre, "rows": rows}
        )
        end("cost", rec)
    if "accuracy" in cases or "fidelity" in cases:
        rec = begin("accuracy and gradient fidelity")
        methods = (
            (args.methods.split(",") if args.methods else None)
            if "accuracy" in cases
            else ["tracetorch-trace"]
        )
        run_tasks = (
            tasks
            if "accuracy" in cases
            else {k: v for k, v in tasks.items() if k in FIDELITY_TASKS}
        )
        done: list[dict] = []

        def save(row: dict) -> None:  # after every run, so that a stopped run keeps its rows
            row.setdefault("commit", env.get("commit"))
            row.setdefault("date", env.get("date"))
            done.append(row)
            _merge_rows(results / "accuracy.json", done, acc_cfg)

        try:
            run_accuracy(
                run_tasks,
                methods,
                acc_cfg["seeds"],
                skip={"snntorch-bptt"} if "snntorch" in peers_missing else set(),
                jobs=acc_cfg["jobs"],
                budget_s=acc_cfg["budget_s"],
                on_row=save,
            )
        except ValueError as e:  # e.g. --methods that none of --tasks runs
            loud(str(e))
            raise SystemExit(2) from None
        end("accuracy", rec)
    if "ablation" in cases:
        rec = begin("ablation: trace-learning options")
        abl_tasks = {k: v for k, v in tasks.items() if k in ABLATION_TASKS}
        if args.quick:  # two epochs of digits say nothing about an option
            abl_tasks.pop("digits", None)
        rows = run_accuracy(
            abl_tasks,
            ["tracetorch-trace"],
            acc_cfg["seeds"],
            jobs=acc_cfg["jobs"],
            budget_s=acc_cfg["budget_s"],
            fidelity_tasks=set(),
            variants=list(VARIANTS),
        )
        _merge_rows(results / "ablation.json", rows, acc_cfg)
        end("ablation", rec)
    write_json(
        results / "env.json",
        {
            **env,
            "peers_missing": peers_missing,
            "pre": pre,
            "cases": loads,
            "wall_s": time.monotonic() - t_start,
        },
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small settings, a few minutes")
    parser.add_argument(
        "--cases", default=",".join(CASES), help=f"comma-separated subset of {CASES}"
    )
    parser.add_argument("--out", help="write results, report and images under this folder")
    parser.add_argument("--report-only", action="store_true", help="only rebuild the report")
    parser.add_argument("--libs", help="cost-case libraries (default: all)")
    parser.add_argument("--steps", help="cost-case sequence lengths, e.g. 100,1000")
    parser.add_argument("--tasks", help="accuracy tasks, e.g. digits,evidence-300")
    parser.add_argument("--seeds", help="accuracy seeds, e.g. 0,1,2")
    parser.add_argument(
        "--methods",
        help="accuracy: only these methods of each task, e.g. snntorch-bptt (default: all)",
    )
    parser.add_argument("--jobs", type=int, help="accuracy runs at once (default 2)")
    parser.add_argument("--mem-cap-gb", type=float, help="skip cost runs above this RSS")
    parser.add_argument("--budget", type=float, help="seconds per cost (library, T) run")
    parser.add_argument("--ratio-steps", help="ratio-case sequence lengths (default 100,1000)")
    parser.add_argument("--rounds", type=int, help="ratio-case interleaved rounds (default 9)")
    parser.add_argument(
        "--allow-load",
        action="store_true",
        help="time even if the machine is busy (loudly marked; not for publication)",
    )
    args = parser.parse_args(argv)

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(cases) - set(CASES)
    if unknown:
        parser.error(f"unknown case(s) {sorted(unknown)}; expected some of {CASES}")
    if args.methods and (bad := set(args.methods.split(",")) - set(ALL_METHODS)):
        parser.error(f"unknown method(s) {sorted(bad)}; expected some of {ALL_METHODS}")
    cfg = QUICK if args.quick else FULL
    cost_cfg = dict(cfg["cost"])
    if args.steps:
        cost_cfg["steps"] = [int(s) for s in args.steps.split(",")]
    if args.mem_cap_gb:
        cost_cfg["mem_cap_gb"] = args.mem_cap_gb
    if args.budget:
        cost_cfg["budget_s"] = args.budget
    ratio_cfg = dict(cfg["ratio"])
    if args.ratio_steps:
        ratio_cfg["steps"] = [int(s) for s in args.ratio_steps.split(",")]
    if args.rounds:
        ratio_cfg["rounds"] = args.rounds
    acc_cfg = dict(cfg["accuracy"])
    if args.seeds:
        acc_cfg["seeds"] = [int(s) for s in args.seeds.split(",")]
    if args.jobs:
        acc_cfg["jobs"] = args.jobs
    tasks = quick_tasks() if args.quick else dict(FULL_TASKS)
    if args.tasks:
        wanted = args.tasks.split(",")
        try:
            tasks = {t: tasks.get(t) or task_config(t) for t in wanted}
        except ValueError as e:
            parser.error(str(e))

    results, md, img = _paths(args)
    set_threads(1)
    t_start = time.monotonic()
    env = machine_info(threads=1)
    command = "python -m benchmarks.run" + ("" if argv is None else " " + shlex.join(argv))
    if argv is None:
        command = "python -m benchmarks.run " + shlex.join(sys.argv[1:])

    from .peers import available

    libs = args.libs.split(",") if args.libs else cost_cfg.pop("libs", COST_LIBRARIES)
    cost_cfg.pop("libs", None)
    base_libs = sorted({lib.replace("-bptt", "") for lib in libs} | {"snntorch"})
    _, peers_missing = available(base_libs)

    if not args.report_only:
        try:
            with SuiteLock(command):
                _run_cases(
                    args,
                    cases,
                    results,
                    env,
                    libs,
                    peers_missing,
                    cost_cfg,
                    ratio_cfg,
                    acc_cfg,
                    tasks,
                    t_start,
                )
        except BusyError as e:
            loud(str(e))
            raise SystemExit(2) from None

    env = read_json(results / "env.json") or env
    cost = read_json(results / "cost.json")
    acc = read_json(results / "accuracy.json")
    ablation = read_json(results / "ablation.json")
    settings: dict[str, Any] = {
        "quick": args.quick,
        "command": command.strip(),
        "cost": {**((cost or {}).get("settings") or cost_cfg), "chunk": 100, "batch": 64},
        "notes": NOTES
        + (f"\nWall time of this run: {env['wall_s'] / 60:.1f} min." if env.get("wall_s") else ""),
    }
    write_report(
        md,
        img,
        env,
        (cost or {}).get("rows"),
        (acc or {}).get("rows"),
        read_json(results / "dynamics.json"),
        settings,
        env.get("peers_missing", peers_missing),
        (ablation or {}).get("rows"),
        ratio=read_json(results / "ratio.json"),
        temporal=read_json(results / "temporal.json"),
    )
    print(f"== report: {md}")


if __name__ == "__main__":
    main()
