"""The README's figures table, rendered from the stored results: ``python -m benchmarks.figures``.

Every row of the table under "## What it measures" in ``README.md`` is an entry of
:data:`ROWS`: the text of its first cell, the command that produces its figures, the JSON it
reads under ``benchmarks/results/`` and a function that renders the figure cell from that JSON.
No figure is typed by hand: a row whose JSON is not stored yet says "being re-measured" and
gives the command.

    python -m benchmarks.figures            # check README.md against the stored JSON (exit 1)
    python -m benchmarks.figures --write    # rewrite the figure cells of README.md
    python -m benchmarks.figures cli        # run the CLI rows' trainings, store cli.json

``tests/test_benchmark_figures.py`` runs the check: the numbers in each README cell must equal
the numbers rendered from the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import RESULTS, ROOT, machine_info, read_json, write_json

README = ROOT / "README.md"
SECTION = "## What it measures"
MiB = 2**20
#: the CLI trainings behind README rows, stored by ``python -m benchmarks.figures cli``
CLI_RUNS: dict[str, list[str]] = {
    "evidence-300-trace": ["train", "--task", "evidence", "--delay", "300"],
    "evidence-300-bptt": ["train", "--task", "evidence", "--delay", "300", "--learning", "bptt"],
    "evidence-20000-trace": ["train", "--task", "evidence", "--delay", "20000"],
}


def pending(command: str) -> str:
    return f"being re-measured: not stored yet (`{command}` writes it)"


def _load_note(machine: dict | None) -> str:
    """`` (load L at the time)`` when the stored run started on a busy machine, else ''."""
    load = (machine or {}).get("loadavg_at_start")
    cores = (machine or {}).get("cpu_count") or 1
    if load and load[0] > 0.5 * cores:
        return f" (timed at load {load[0]:.1f} on {cores} cores: to re-measure)"
    return ""


# ----------------------------------------------------------------------------- renderers
def _defaults_digits(d: dict) -> str:
    runs = d["runs"]

    def pm(mode: str) -> str:
        v = [100 * r["acc_last"] for r in runs if r["mode"] == mode]
        mean = sum(v) / len(v)
        sd = (sum((x - mean) ** 2 for x in v) / len(v)) ** 0.5
        return f"{mean:.2f} +- {sd:.2f} %"

    return f"trace **{pm('trace')}**, BPTT {pm('bptt')}"


def _defaults_cosine(d: dict) -> str:
    tr = [r for r in d["runs"] if r["mode"] == "trace" and "fidelity" in r]
    key = "0.weight"
    fid = sum(r["fidelity"][key] for r in tr) / len(tr)
    yard = sum(r["surrogate_yardstick"][key] for r in tr) / len(tr)
    return f"{fid:.3f} (two BPTT surrogates: {yard:.3f})"


def _cli_evidence_300(d: dict) -> str | None:
    tr, bp = d.get("evidence-300-trace"), d.get("evidence-300-bptt")
    if not (tr and bp):
        return None
    return f"trace {100 * tr['test_accuracy']:.1f} %, BPTT {100 * bp['test_accuracy']:.1f} %"


def _cli_evidence_20000(d: dict) -> str | None:
    long, short = d.get("evidence-20000-trace"), d.get("evidence-300-trace")
    if not (long and short):
        return None
    return (
        f"trace {100 * long['test_accuracy']:.1f} %, peak memory "
        f"{long['peak_memory_mb']:.0f} MB vs {short['peak_memory_mb']:.0f} MB at delay 300"
    )


def _cost_memory(d: dict) -> str:
    idx = {(r["library"], r["steps"]): r for r in d["rows"]}
    tt = sorted(t for (lib, t), r in idx.items() if lib == "tracetorch" and "train_peak" in r)
    sn = sorted(t for (lib, t), r in idx.items() if lib == "snntorch" and "train_peak" in r)
    lo = 100 if 100 in tt else tt[0]
    parts = [
        f"tracetorch {idx[('tracetorch', lo)]['train_peak'] / MiB:.1f} MiB at T = {lo:,}",
        f"{idx[('tracetorch', tt[-1])]['train_peak'] / MiB:.1f} MiB at T = {tt[-1]:,}",
    ]
    text = ", ".join(parts)
    if sn:
        text += (
            f"; snnTorch {idx[('snntorch', sn[-1])]['train_peak'] / MiB:,.0f} MiB at T = {sn[-1]:,}"
        )
    return text


def _ratio_time(d: dict) -> str | None:
    row = next((r for r in d["rows"] if r["steps"] == 1000), None)
    if row is None or "tracetorch" not in row["times"]:
        return None
    names = {"snntorch": "snnTorch", "norse": "Norse", "spikingjelly": "SpikingJelly"}
    parts = [f"tracetorch {row['times']['tracetorch']['median']:.3f} s"]
    for lib, label in names.items():
        r = row["ratios"].get(lib)
        if r is None:
            continue
        flag = f", spread {100 * r['spread']:.0f} % **flagged**" if r["flagged"] else ""
        parts.append(
            f"{label} {row['times'][lib]['median']:.3f} s "
            f"(**{r['median']:.1f}x**, {r['min']:.1f}-{r['max']:.1f} over {r['n']} rounds{flag})"
        )
    return ", ".join(parts) + " (interleaved; median)" + _load_note(d.get("machine"))


def _accuracy(d: dict) -> str:
    from .accuracy import summarize

    s = summarize(d["rows"])
    names = {
        "digits": "digits",
        "yinyang": "Yin-Yang",
        "evidence-300": "evidence at delay 300",
        "evidence-1000": "delay 1,000",
        "evidence-hard-1000": "low contrast, delay 1,000",
    }
    parts = []
    for key, label in names.items():
        by = s.get(key)
        if not by:
            continue
        cells = [by.get(m) for m in ("tracetorch-trace", "tracetorch-bptt", "snntorch-bptt")]
        text = label + " " + " / ".join("-" if c is None else f"{c['mean']:.1f}" for c in cells)
        sds = [c["std"] for c in cells if c is not None]
        if sds and max(sds) > 5:  # a spread that makes the differences noise: show it
            text += f" % (sd {min(sds):.1f}-{max(sds):.1f} over seeds)"
        else:
            text += " %"
        parts.append(text)
    return "; ".join(parts)


def _timing(d: dict) -> str | None:
    """The timing tasks, where trace learning is expected to lose (LIF hidden layers)."""
    from .accuracy import summarize

    s = summarize(d["rows"])
    methods = (
        "tracetorch-trace",
        "tracetorch-eligibility",
        "tracetorch-eligibility-kept",
        "tracetorch-bptt",
        "snntorch-bptt",
    )
    parts = []
    for key, label in (("order", "order"), ("seqdigits", "sequential digits")):
        by = s.get(key)
        if not by:
            continue
        cells = [by.get(m) for m in methods]
        text = " / ".join("-" if c is None else f"{c['mean']:.1f}" for c in cells) + " %"
        if "gru" in by:
            text += f" (GRU {by['gru']['mean']:.1f} %)"
        parts.append(f"{label} {text}")
    return "; ".join(parts) or None


def _speed(d: dict) -> str:
    row = next(r for r in d["rows"] if (r["batch"], r["hidden"], r["steps"]) == (64, 128, 10000))
    fl, mu, cpp = row["floor"], row["multi"], row.get("multi-cpp")
    text = f"{mu['fwd_us'] / fl['fwd_us']:.2f}x"
    if cpp:
        text += f" ({cpp['fwd_us'] / fl['fwd_us']:.2f}x with the optional C++ recursion)"
    text += f"; train step {mu['train_us'] / mu['fwd_us']:.2f}x its forward"
    return text + _load_note(d.get("machine"))


@dataclass(frozen=True)
class Row:
    what: str  #: the first cell, exactly
    command: str  #: the third cell, exactly
    source: str  #: JSON file under benchmarks/results/
    render: Callable[[Any], str | None]
    store: str  #: the command that writes ``source``

    def figure(self, results: Path = RESULTS) -> str:
        data = read_json(results / self.source)
        text = None if data is None else self.render(data)
        return text if text is not None else pending(self.store)


ROWS = [
    Row(
        "digits, `LIF(64,128) -> LI(128,10)`, T = 25, 3 seeds",
        "`python -m benchmarks.defaults --sections digits` ([defaults.md](docs/defaults.md))",
        "defaults_digits.json",
        _defaults_digits,
        "python -m benchmarks.defaults --sections digits",
    ),
    Row(
        "evidence accumulation, delay 300",
        "`tracetorch train --task evidence --delay 300` (`--learning bptt`)",
        "cli.json",
        _cli_evidence_300,
        "python -m benchmarks.figures cli",
    ),
    Row(
        "evidence accumulation, delay 20,000",
        "`tracetorch train --task evidence --delay 20000`",
        "cli.json",
        _cli_evidence_20000,
        "python -m benchmarks.figures cli",
    ),
    Row(
        "trace vs BPTT gradient cosine (digits, hidden weight)",
        "`python -m benchmarks.defaults --sections digits`",
        "defaults_digits.json",
        _defaults_cosine,
        "python -m benchmarks.defaults --sections digits",
    ),
    Row(
        "peak memory of a training step, 64-128-128-10, batch 64",
        "`python -m benchmarks.run --cases cost` ([benchmarks.md](docs/benchmarks.md))",
        "cost.json",
        _cost_memory,
        "python -m benchmarks.run --cases cost",
    ),
    Row(
        "training-step time at T = 1,000, same net, 1 thread",
        "`python -m benchmarks.run --cases ratio`",
        "ratio.json",
        _ratio_time,
        "python -m benchmarks.run --cases ratio",
    ),
    Row(
        "accuracy, 64-128-128-10, 3 seeds: trace / tracetorch BPTT / snnTorch BPTT",
        "`python -m benchmarks.run --cases accuracy`",
        "accuracy.json",
        _accuracy,
        "python -m benchmarks.run --cases accuracy",
    ),
    Row(
        "timing tasks, same net, 3 seeds: trace / eligibility (reset detached / kept) / "
        "tracetorch BPTT / snnTorch BPTT",
        "`python -m benchmarks.run --cases accuracy --tasks order,seqdigits`",
        "accuracy.json",
        _timing,
        "python -m benchmarks.run --cases accuracy --tasks order,seqdigits",
    ),
    Row(
        "forward time per step vs a plain per-step PyTorch loop (B = 64, hidden 128, T = 10,000)",
        "`python -m benchmarks.speed` ([speed.md](docs/speed.md))",
        "speed.json",
        _speed,
        "python -m benchmarks.speed",
    ),
]


# ----------------------------------------------------------------------------- README
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def numbers(text: str) -> list[float]:
    """Every number in ``text``, in order (``2,513`` -> 2513.0)."""
    return [float(m.replace(",", "")) for m in NUMBER.findall(text)]


def table_rows(readme: str) -> list[tuple[int, list[str]]]:
    """``(line index, cells)`` of the figures table's data rows."""
    lines = readme.splitlines()
    start = lines.index(SECTION)
    out = []
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line.startswith("## "):
            break
        if not line.startswith("|") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if cells[0] == "what":
            continue
        out.append((i, cells))
    return out


def check(readme: str, results: Path = RESULTS) -> list[str]:
    """Mismatches between the README's figures table and the stored results (empty: none)."""
    problems = []
    by_what = {r.what: r for r in ROWS}
    seen = set()
    for _, cells in table_rows(readme):
        if len(cells) != 3:
            problems.append(f"row with {len(cells)} cells: {cells}")
            continue
        what, figure, command = cells
        row = by_what.get(what)
        if row is None:
            problems.append(f"README row {what!r} has no entry in benchmarks.figures.ROWS")
            continue
        seen.add(what)
        want = row.figure(results)
        if figure != want:  # the numbers, and the words around them (a placeholder is caught)
            problems.append(f"{what}: README says {figure!r}, the stored results say {want!r}")
        if command != row.command:
            problems.append(f"{what}: command {command!r}, expected {row.command!r}")
    for what in by_what.keys() - seen:
        problems.append(f"no README row for {what!r}")
    return problems


def render(readme: str, results: Path = RESULTS) -> str:
    """``readme`` with the figure and command cells of every known row rewritten."""
    lines = readme.splitlines()
    by_what = {r.what: r for r in ROWS}
    for i, cells in table_rows(readme):
        row = by_what.get(cells[0])
        if row is not None:
            lines[i] = f"| {row.what} | {row.figure(results)} | {row.command} |"
    return "\n".join(lines) + ("\n" if readme.endswith("\n") else "")


# ----------------------------------------------------------------------------- CLI rows
def store_cli(names: list[str], results: Path = RESULTS) -> None:
    """Run the CLI trainings ``names`` (keys of :data:`CLI_RUNS`); store their summaries."""
    path = results / "cli.json"
    doc = read_json(path) or {}
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "tracetorch", *CLI_RUNS[name], "--out", tmp]
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            print("$ tracetorch " + " ".join(CLI_RUNS[name]), flush=True)
            before = machine_info(threads=1)
            subprocess.run(cmd, cwd=ROOT, env=env, check=True)
            summary = json.loads((Path(tmp) / "summary.json").read_text())
        doc[name] = {
            **summary,
            "command": "tracetorch " + " ".join(CLI_RUNS[name]),
            "machine": before,
        }
        write_json(path, doc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.figures", description=__doc__)
    parser.add_argument("what", nargs="?", choices=["check", "cli"], default="check")
    parser.add_argument("--write", action="store_true", help="rewrite README.md's figure cells")
    parser.add_argument("--only", help=f"cli: a subset of {sorted(CLI_RUNS)}")
    args = parser.parse_args(argv)
    if args.what == "cli":
        store_cli(args.only.split(",") if args.only else list(CLI_RUNS))
        return 0
    text = README.read_text()
    if args.write:
        README.write_text(render(text))
        text = README.read_text()
    problems = check(text)
    for p in problems:
        print(p)
    if not problems:
        print("README figures table matches benchmarks/results/")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
