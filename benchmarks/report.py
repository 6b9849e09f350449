"""Turn the JSON results of a run into ``benchmarks.md`` (tables, goals) and ``bench_*.png``."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from .accuracy import ALL_METHODS, summarize

MiB = 2**20
TIME_KEYS = ("train_s", "fwd_s", "input_s")
LIB_ORDER = ["tracetorch", "tracetorch-bptt", "snntorch", "norse", "spikingjelly", "floor"]
LIB_LABEL = {
    "tracetorch": "tracetorch (trace)",
    "tracetorch-bptt": "tracetorch (BPTT mode)",
    "snntorch": "snnTorch (BPTT)",
    "norse": "Norse (BPTT)",
    "spikingjelly": "SpikingJelly (BPTT)",
    "floor": "floor (plain no-grad loop)",
}
PLOT_LABEL = {
    **LIB_LABEL,
    "floor": "floor (plain no-grad forward)",
}
METHOD_LABEL = {
    "tracetorch-trace": "tracetorch trace",
    "tracetorch-bptt": "tracetorch BPTT",
    "snntorch-bptt": "snnTorch BPTT",
    "tracetorch-eligibility": "tracetorch eligibility",
    "tracetorch-eligibility-kept": "tracetorch eligibility, reset kept",
    "gru": "GRU (non-spiking ceiling)",
}


# ----------------------------------------------------------------------------- helpers
def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _cost_index(rows: list[dict]) -> dict[tuple[str, int], dict]:
    return {(r["library"], r["steps"]): r for r in rows}


def _get(idx: dict, lib: str, steps: int, key: str) -> float | None:
    r = idx.get((lib, steps))
    return None if r is None or key not in r else r[key]


# ----------------------------------------------------------------------------- goals
def ratio_at(ratio: dict | None, steps: int, lib: str) -> dict | None:
    """The interleaved ratio summary of ``lib`` / tracetorch at ``steps`` (None if absent)."""
    for row in (ratio or {}).get("rows", []):
        if row["steps"] == steps and lib in row.get("ratios", {}):
            return row["ratios"][lib]
    return None


def fmt_ratio(s: dict) -> str:
    """``6.3x (6.1-6.5)``, with the flag when the min-max spread is over the limit."""
    text = f"{s['median']:.1f}x ({s['min']:.1f}-{s['max']:.1f})"
    if s.get("flagged"):
        text += f" **spread {100 * s['spread']:.0f} %**"
    return text


def goals(
    cost: list[dict] | None, acc: list[dict] | None, speed: dict | None = None
) -> list[tuple[str, str, str]]:
    """``(goal, measured, verdict)`` for each goal of the benchmark issue."""
    out: list[tuple[str, str, str]] = []

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "**not met**")

    if cost:
        idx = _cost_index(cost)
        steps = sorted({r["steps"] for r in cost})
        lo = 100 if 100 in steps else steps[0]
        hi = max(
            (t for t in steps if _get(idx, "tracetorch", t, "train_peak") is not None), default=None
        )
        p_lo = _get(idx, "tracetorch", lo, "train_peak")
        p_hi = _get(idx, "tracetorch", hi, "train_peak") if hi else None
        if p_lo and p_hi is not None:
            ratio = p_hi / p_lo
            verdict_text = verdict(ratio <= 1.1)
            if hi < 16000:
                verdict_text += f" up to T={hi:,} (T=16,000 not run)"
            out.append(
                (
                    f"tracetorch peak training memory flat: T=16,000 within 1.1x of T={lo}",
                    f"T={hi:,}: {p_hi / MiB:.1f} MiB vs T={lo}: {p_lo / MiB:.1f} MiB "
                    f"= {ratio:.2f}x",
                    verdict_text,
                )
            )
        t = 1000
        tt_train = _get(idx, "tracetorch", t, "train_s")
        snn_train = _get(idx, "snntorch", t, "train_s")
        tt_fwd = _get(idx, "tracetorch", t, "fwd_s")
        del snn_train  # the speed-up comes from the interleaved ratio case only
        if tt_train and tt_fwd:
            out.append(
                (
                    "train step at T=1000 at most 1.3x its own no-grad forward",
                    f"{tt_train:.2f} s / {tt_fwd:.2f} s = {tt_train / tt_fwd:.2f}x",
                    verdict(tt_train / tt_fwd <= 1.3),
                )
            )
    r = ratio_at(speed, 1000, "snntorch")
    goal = "train step at T=1000 at least 5x faster than snnTorch BPTT (interleaved, median)"
    if r:
        out.append(
            (
                goal,
                fmt_ratio(r),
                verdict(r["min"] >= 5) + (" (spread flagged)" if r["flagged"] else ""),
            )
        )
    else:
        out.append((goal, "being re-measured: `python -m benchmarks.run --cases ratio`", "n/a"))
    if acc:
        summary = summarize(acc)
        for key, limit in (("digits", 0.5), ("evidence-300", 3.0)):
            s = summary.get(key, {})
            tr, bp = s.get("tracetorch-trace"), s.get("tracetorch-bptt")
            if tr and bp:
                gap = bp["mean"] - tr["mean"]
                out.append(
                    (
                        f"{key}: trace learning within {limit} points of BPTT",
                        f"{tr['mean']:.1f} vs {bp['mean']:.1f} (gap {gap:+.1f}; n={tr['n']})",
                        verdict(gap <= limit),
                    )
                )
    return out


# ----------------------------------------------------------------------------- plots
def _fidelity_means(acc: list[dict]) -> dict[tuple[str, str], dict[tuple[str, str], float]]:
    """``{(task, layer): {(stage, comparison): mean cosine over seeds}}``."""
    sums: dict[tuple[str, str], dict[tuple[str, str], list[float]]] = {}
    for r in acc:
        if r.get("method") != "tracetorch-trace" or "fidelity_init" not in r:
            continue
        for stage in ("fidelity_init", "fidelity_final"):
            for which, res in r.get(stage, {}).items():
                if not isinstance(res, dict):
                    continue
                for layer, v in res["layer"].items():
                    sums.setdefault((r["key"], layer), {}).setdefault((stage, which), []).append(v)
    return {k: {kk: sum(v) / len(v) for kk, v in d.items()} for k, d in sums.items()}


def _series(idx: dict, lib: str, key: str, scale: float) -> list[tuple[int, float]]:
    pts = sorted((t, _get(idx, lib, t, key)) for (name, t) in idx if name == lib)
    return [(t, v / scale) for t, v in pts if v is not None and v > 0]


def plots(cost: list[dict] | None, acc: list[dict] | None, img: Path) -> list[str]:
    """Write the PNGs; return their file names (empty if matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    img.mkdir(parents=True, exist_ok=True)
    names = []
    if cost:
        idx = _cost_index(cost)
        libs = [lib for lib in LIB_ORDER if any(r["library"] == lib for r in cost)]
        for key, fname, ylabel, title, scale in (
            (
                "train_peak",
                "bench_memory.png",
                "peak RSS above baseline (MiB)",
                "Training-step memory vs sequence length",
                MiB,
            ),
            (
                "train_s",
                "bench_time.png",
                "seconds per training step",
                "Training-step time vs sequence length",
                1.0,
            ),
        ):
            fig, ax = plt.subplots(figsize=(6.4, 4.4))
            for lib in libs:
                k = {"train_peak": "fwd_peak", "train_s": "fwd_s"}[key] if lib == "floor" else key
                pts = _series(idx, lib, k, scale)
                if not pts:
                    continue
                label = PLOT_LABEL[lib]
                line = ax.plot(
                    *zip(*pts, strict=True),
                    "--" if lib == "floor" else "-",
                    marker="o",
                    label=label,
                )[0]
                if key == "train_s" and lib == "tracetorch":
                    fw = _series(idx, lib, "fwd_s", 1.0)
                    if fw:
                        ax.plot(
                            *zip(*fw, strict=True),
                            ":",
                            color=line.get_color(),
                            label="tracetorch no-grad forward",
                        )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("sequence length T (steps)")
            ax.set_ylabel(ylabel)
            ax.set_title(title)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
            fig.tight_layout()
            fig.savefig(img / fname, dpi=110)
            plt.close(fig)
            names.append(fname)
    if acc:
        summary = summarize(acc)
        tasks = list(summary)
        if tasks:
            methods = [m for m in ALL_METHODS if any(m in summary[t] for t in tasks)]
            fig, ax = plt.subplots(figsize=(max(6.4, 1.3 * len(tasks)), 4.6))
            width = 0.8 / len(methods)
            for i, m in enumerate(methods):
                have = [j for j, t in enumerate(tasks) if m in summary[t]]  # no empty bars
                xs = [j + (i - (len(methods) - 1) / 2) * width for j in have]
                means = [summary[tasks[j]][m]["mean"] for j in have]
                stds = [summary[tasks[j]][m]["std"] for j in have]
                ax.bar(xs, means, width, yerr=stds, capsize=3, label=METHOD_LABEL[m])
            ax.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right")
            ax.set_ylabel("test accuracy (%)")
            ax.set_ylim(0, 100)
            ax.set_title("Accuracy, same network (mean +- std over seeds)")
            ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=5)
            ax.grid(True, axis="y", alpha=0.3)
            fig.tight_layout()
            fig.savefig(img / "bench_accuracy.png", dpi=110)
            plt.close(fig)
            names.append("bench_accuracy.png")
        fid = _fidelity_means(acc)
        if fid:
            labels = [f"{k}\nlayer {layer}" for k, layer in fid]
            fig, ax = plt.subplots(figsize=(max(6.4, 0.75 * len(labels)), 4.2))
            series = (
                ("trace vs BPTT, init", "fidelity_init", "trace_vs_bptt"),
                ("trace vs BPTT, trained", "fidelity_final", "trace_vs_bptt"),
                ("BPTT vs BPTT (other surrogate), init", "fidelity_init", "bptt_vs_bptt_surrogate"),
            )
            width = 0.8 / len(series)
            for i, (label, stage, which) in enumerate(series):
                xs = [j + (i - 1) * width for j in range(len(labels))]
                ax.bar(xs, [fid[k].get((stage, which), 0.0) for k in fid], width, label=label)
            ax.set_xticks(range(len(labels)), labels, fontsize=7)
            ax.set_ylabel("cosine similarity (layer gradients)")
            ax.set_ylim(min(0.0, *(v for d in fid.values() for v in d.values())), 1.0)
            ax.set_title("Gradient fidelity per layer (mean over seeds)")
            ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
            ax.grid(True, axis="y", alpha=0.3)
            fig.tight_layout()
            fig.savefig(img / "bench_fidelity.png", dpi=110)
            plt.close(fig)
            names.append("bench_fidelity.png")
    return names


# ----------------------------------------------------------------------------- markdown
def _cost_tables(cost: list[dict], mem_cap_gb: float) -> str:
    idx = _cost_index(cost)
    steps = sorted({r["steps"] for r in cost})
    libs = [lib for lib in LIB_ORDER if any(r["library"] == lib for r in cost)]
    header = ["library", *[f"T={t:,}" for t in steps]]
    notes: dict[str, str] = {}

    def cell(lib: str, t: int, key: str, scale: float = 1.0, digits: int = 3) -> str:
        r = idx.get((lib, t))
        if r is None:
            return ""
        if "skipped" in r or "error" in r:
            why = r.get("skipped") or r.get("error")
            mark = (
                f"[{len(notes) + 1}]"
                if why not in notes.values()
                else next(k for k, v in notes.items() if v == why)
            )
            notes.setdefault(mark, why)
            return f"skip {mark}" if "skipped" in r else f"error {mark}"
        if key not in r:
            return "-"
        text = _fmt(max(r[key], 0) / scale, digits)
        if key in TIME_KEYS and r.get("contended"):
            text += " (busy)"
        return text

    parts = []
    specs = [
        (
            "Peak RSS above baseline during a training step (MiB)",
            "train_peak",
            MiB,
            [lib for lib in libs if lib != "floor"],
        ),
        (
            "Bytes saved for backward in a training step (MiB)",
            "saved",
            MiB,
            [lib for lib in libs if lib != "floor"],
        ),
        ("Median training-step time (s)", "train_s", 1.0, [lib for lib in libs if lib != "floor"]),
        ("Median no-grad forward time (s)", "fwd_s", 1.0, libs),
        (
            "Time to generate the input stream alone, included in every time above (s)",
            "input_s",
            1.0,
            [lib for lib in libs if lib == "floor"],
        ),
        ("Peak RSS above baseline during a no-grad forward (MiB)", "fwd_peak", MiB, libs),
    ]
    for title, key, scale, which in specs:
        rows = [[LIB_LABEL[lib], *[cell(lib, t, key, scale) for t in steps]] for lib in which]
        parts.append(f"**{title}**\n\n" + _table(header, rows))

    # ratios
    rows = []
    for t in steps:
        g = lambda lib, k, t=t: _get(idx, lib, t, k)  # noqa: E731
        tt_tr, tt_fw, tt_pk = (
            g("tracetorch", "train_s"),
            g("tracetorch", "fwd_s"),
            g("tracetorch", "train_peak"),
        )
        sn_tr, sn_pk = g("snntorch", "train_s"), g("snntorch", "train_peak")
        fl = g("floor", "fwd_s")

        def ratio(a: float | None, b: float | None) -> str:
            return "-" if not a or not b else f"{a / b:.2f}x"

        rows.append(
            [
                f"{t:,}",
                ratio(sn_pk, tt_pk),
                ratio(tt_tr, tt_fw),
                ratio(tt_tr, fl),
                ratio(tt_fw, fl),
                ratio(sn_tr, fl),
            ]
        )
    parts.append(
        "**Ratios** (memory saving vs snnTorch: snnTorch / tracetorch; vs the floor: library "
        "/ floor forward; times from the tables above, timed one library after the other. The "
        "speed-up vs the peers is measured interleaved: see *Speed ratios*)\n\n"
        + _table(
            [
                "T",
                "snnTorch / tt train memory",
                "tt train / tt forward",
                "tt train / floor",
                "tt forward / floor",
                "snnTorch train / floor",
            ],
            rows,
        )
    )
    if notes:
        parts.append("\n".join(f"{k} {v}" for k, v in notes.items()))
    return "\n\n".join(parts)


def _ratio_section(ratio: dict) -> str:
    """Interleaved speed ratios: median, min-max and IQR per (T, peer); flagged spreads."""
    st = ratio.get("settings", {})
    names = {"tracetorch": "tracetorch (trace)", **LIB_LABEL}
    rows = []
    for row in ratio.get("rows", []):
        for lib, r in row.get("ratios", {}).items():
            t = row["times"]
            rows.append(
                [
                    f"{row['steps']:,}",
                    names.get(lib, lib),
                    f"{t[lib]['median']:.3g}",
                    f"{t[st.get('base', 'tracetorch')]['median']:.3g}",
                    f"**{r['median']:.2f}x**",
                    f"{r['min']:.2f}-{r['max']:.2f}",
                    f"{r['q1']:.2f}-{r['q3']:.2f}",
                    f"{100 * r['spread']:.0f} %" + (" **flagged**" if r["flagged"] else ""),
                    f"{r['n']}"
                    + (f" ({row['contended_rounds']} busy)" if row.get("contended_rounds") else ""),
                ]
            )
    pre = ratio.get("pre") or {}
    load = pre.get("loadavg")
    text = (
        "Training step (as in section 1) of each library in its own process, one thread, "
        "glibc's default allocator; the processes take turns, one timed step each per round "
        "(the order rotates every round), so that the load of the machine hits both sides of "
        "a ratio alike. Ratio = peer's time / tracetorch's time in the same round; median over "
        f"the rounds, min-max and interquartile range; a ratio whose min-max spread exceeds "
        f"{100 * st.get('max_spread', 0.2):.0f} % of its median is flagged. "
        + (f"Load average before: {', '.join(f'{v:.2f}' for v in load)}. " if load else "")
        + ("**The machine was not quiet (`--allow-load`).** " if pre.get("forced") else "")
        + "\n\n"
        + _table(
            [
                "T",
                "peer",
                "peer step (s)",
                "tracetorch step (s)",
                "peer / tracetorch",
                "min-max",
                "IQR",
                "spread",
                "rounds",
            ],
            rows,
        )
    )
    missing = {
        **st.get("missing", {}),
        **{k: v for r in ratio["rows"] for k, v in r["errors"].items()},
    }
    if missing:
        text += "\n\nNot measured: " + "; ".join(f"{k} ({v[:80]})" for k, v in missing.items())
    return text


#: why trace learning loses on the temporal tasks (section "Temporal tasks")
TEMPORAL_WHY = (
    "Why trace learning loses here: it learns from each layer's *average* input over its "
    "trace window (a rate), and the one-step local graph it differentiates cannot see the "
    "order of events inside that window. `order` (which of two events came first) and "
    "`seqdigits` (an image fed row by row) carry their label in *when* things happen, not in "
    "how often: two inputs with the same rates and different timing get the same trace and "
    "the same gradient. BPTT differentiates through the timing, and the GRU ceiling shows what "
    "the data allow. Eligibility mode keeps, in constant memory, each neuron's forward-mode "
    "derivatives through its own dynamics, so it can credit timing inside one neuron (not "
    "across neurons or layers: e-prop's approximation)."
)


def _temporal_table(rows: list[dict]) -> str:
    """Mean +- sd over seeds per (task, net, mode) of ``benchmarks/results/temporal.json``;
    the GRU rows (non-spiking, BPTT) last in each task, as the ceiling."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in rows:
        if "test_accuracy" in r:
            groups.setdefault((r["task"], r["net"], r["mode"]), []).append(r)
    mode_order = {"trace": 0, "eligibility": 1, "bptt": 2}

    def order(key: tuple[str, str, str]) -> tuple:
        task, net, mode = key
        return (task, net == "gru", net, mode_order.get(mode, 9), mode)

    out = []
    for task, net, mode in sorted(groups, key=order):
        rs = groups[(task, net, mode)]
        acc = [100 * float(r["test_accuracy"]) for r in rs]
        mean = sum(acc) / len(acc)
        sd = statistics.stdev(acc) if len(acc) > 1 else None
        secs = [r["seconds"] for r in rs if "seconds" in r]
        label = "GRU (non-spiking ceiling)" if net == "gru" else net
        out.append(
            [
                task,
                label,
                mode,
                f"{mean:.1f} +- {sd:.1f}" if sd is not None else f"{mean:.1f}",
                str(len(rs)),
                _fmt(sum(secs) / len(secs)) if secs else "-",
                ", ".join(sorted({str(r.get("commit", "?")) for r in rs})),
            ]
        )
    return _table(
        ["task", "net", "mode", "test accuracy % (mean +- sd)", "seeds", "s/run", "commit"], out
    )


def _accuracy_table(acc: list[dict]) -> str:
    summary = summarize(acc)
    methods = [m for m in ALL_METHODS if any(m in by for by in summary.values())]
    rows = []
    for key, by_method in summary.items():
        cells = []
        for m in methods:
            s = by_method.get(m)
            cells.append("-" if s is None else f"{s['mean']:.1f} +- {s['std']:.1f} (n={s['n']})")
        tr, bp = by_method.get("tracetorch-trace"), by_method.get("tracetorch-bptt")
        gap = "-" if not (tr and bp) else f"{bp['mean'] - tr['mean']:+.1f}"
        cfg = next(r for r in acc if r.get("key") == key and "test_acc" in r)
        setting = f"T={cfg['steps']}, {cfg['epochs']} ep, lr {cfg['lr']:g}"
        if cfg.get("batch"):
            setting += f", batch {cfg['batch']}"
        setting += f", readout beta {cfg['readout_beta']:.4g}"
        if cfg.get("neuron", "lif") != "lif":
            setting += f", hidden {cfg['neuron'].upper()}"
        if cfg.get("tt_kwargs"):
            setting += ", tt: " + ", ".join(f"{k}={v}" for k, v in cfg["tt_kwargs"].items())
        rows.append([key, *cells, gap, setting])
    text = _table(["task", *[METHOD_LABEL[m] for m in methods], "BPTT - trace", "setting"], rows)
    stopped = [r for r in acc if r.get("stopped")]
    failed = [r for r in acc if r.get("error")]
    notes = [f"- {r['key']} {r['method']} seed {r['seed']}: {r['stopped']}" for r in stopped]
    notes += [f"- {r['key']} {r['method']} seed {r['seed']}: {r['error']}" for r in failed]
    mean_s: dict[str, list[float]] = {}
    for r in acc:
        if "train_s" in r:
            mean_s.setdefault(f"{r['key']}|{r['method']}", []).append(r["train_s"])
    trows = []
    for key in summary:
        trows.append(
            [
                key,
                *[
                    _fmt(sum(v) / len(v)) if (v := mean_s.get(f"{key}|{m}")) else "-"
                    for m in methods
                ],
            ]
        )
    text += "\n\nTraining time per run (s, mean over seeds; jobs ran side by side: not a speed "
    text += "claim):\n\n"
    text += _table(["task", *[METHOD_LABEL[m] for m in methods]], trows)
    if notes:
        text += "\n\n" + "\n".join(notes)
    if any(k.startswith(("order", "seqdigits")) for k in summary):
        text += "\n\n" + TEMPORAL_WHY
    return text


def _fidelity_table(acc: list[dict]) -> str:
    rows = []
    by_key: dict[str, list[dict]] = {}
    for r in acc:
        if r.get("method") == "tracetorch-trace" and "fidelity_init" in r:
            by_key.setdefault(r["key"], []).append(r)
    for key, runs in by_key.items():
        layers = sorted(runs[0]["fidelity_init"]["trace_vs_bptt"]["layer"], key=int)
        for layer in layers:

            def mean(stage: str, which: str, layer=layer, runs=runs) -> str:
                vals = [r[stage][which]["layer"][layer] for r in runs if which in r.get(stage, {})]
                return "-" if not vals else f"{sum(vals) / len(vals):.3f}"

            w = f"{layer}.weight"

            def wmean(stage: str, w=w, runs=runs) -> str:
                vals = [r[stage]["trace_vs_bptt"]["param"].get(w) for r in runs if stage in r]
                vals = [v for v in vals if v is not None]
                return "-" if not vals else f"{sum(vals) / len(vals):.3f}"

            rows.append(
                [
                    key,
                    layer,
                    mean("fidelity_init", "trace_vs_bptt"),
                    wmean("fidelity_init"),
                    mean("fidelity_final", "trace_vs_bptt"),
                    wmean("fidelity_final"),
                    mean("fidelity_init", "bptt_vs_bptt_surrogate"),
                    mean("fidelity_final", "bptt_vs_bptt_surrogate"),
                ]
            )
    kinds = ("weight", "bias", "beta_raw", "threshold_raw")
    krows = []
    for key, runs in by_key.items():
        cells = []
        for kind in kinds:
            pair = []
            for stage in ("fidelity_init", "fidelity_final"):
                params = [r.get(stage, {}).get("trace_vs_bptt", {}).get("param", {}) for r in runs]
                vals = [v for p in params for n, v in p.items() if n.split(".", 1)[-1] == kind]
                pair.append("-" if not vals else f"{sum(vals) / len(vals):.2f}")
            cells.append(" / ".join(pair))
        krows.append([key, *cells])
    by_kind = _table(["task", *[f"{k} (init / trained)" for k in kinds]], krows)
    intro = (
        "Per kind of parameter (trace vs BPTT cosine, mean over layers and seeds; `beta_raw` "
        "and `threshold_raw` are the stored parameters behind beta and the threshold):\n\n"
    )
    return (
        intro
        + by_kind
        + "\n\nPer layer:\n\n"
        + _table(
            [
                "task",
                "layer",
                "trace vs BPTT, init (all params)",
                "init (weight)",
                "after training (all)",
                "after (weight)",
                "BPTT atan vs fast-sigmoid, init",
                "after",
            ],
            rows,
        )
    )


def _ablation_table(rows: list[dict]) -> str:
    from .accuracy import VARIANTS

    summary = summarize(rows)
    names = {v: "tracetorch-trace" + ("" if v == "default" else f"[{v}]") for v in VARIANTS}
    out = []
    for key, by in summary.items():
        cells = []
        for v in VARIANTS:
            s = by.get(names[v])
            cells.append("-" if s is None else f"{s['mean']:.1f} +- {s['std']:.1f}")
        out.append([key, *cells])
    failed = [
        f"- {r['key']} {r.get('variant')} seed {r['seed']}: {r['error']}"
        for r in rows
        if r.get("error")
    ]
    text = _table(["task", *VARIANTS], out)
    legend = (
        "\n\n`no-bias-correction`: traces not divided by `1 - d^n`; `log-rate`: the leak-aware "
        "rate `ln(beta)/ln(1 - theta(1-beta)/c)` instead of the default `linear` rate; "
        "`tied-readout`: the readout's trace decay equal to its beta (exact LI reconstruction); "
        "`short-horizon`: traces over 20 steps (decay 0.95, the layers' default). "
        "A variant that equals a task's own setting repeats it (digits already uses horizon "
        "20; the evidence tasks already tie the readout). Multi-timescale traces are not in "
        "tracetorch yet."
    )
    return text + legend + ("\n\n" + "\n".join(failed) if failed else "")


def write_report(
    out_md: Path,
    img_dir: Path,
    env: dict[str, Any],
    cost: list[dict] | None,
    acc: list[dict] | None,
    dynamics: dict | None,
    settings: dict[str, Any],
    peers_missing: dict[str, str],
    ablation: list[dict] | None = None,
    ratio: dict | None = None,
    temporal: list[dict] | None = None,
) -> None:
    """Write the markdown report and its plots."""
    img_names = plots(cost, acc, img_dir)
    rel = Path(__import__("os").path.relpath(img_dir, out_md.parent))
    v = env["versions"]
    kind = (
        "**Quick validation run** (`--quick`): small settings, not the reference numbers."
        if settings.get("quick")
        else "Full run."
    )
    lines = [
        "# Benchmarks: tracetorch vs snnTorch, Norse and SpikingJelly",
        "",
        f"> {kind} Generated by `{settings.get('command', 'python -m benchmarks.run')}`.",
        "",
        f"- date: {env['date']}; commit {env.get('commit')}",
        f"- machine: {env['cpu']}, {env['cpu_count']} CPUs, "
        f"{(env.get('memory_bytes') or 0) / 2**30:.0f} GiB; {env['platform']}; "
        f"load average at start {tuple(round(x, 2) for x in env['loadavg_at_start'] or ())}",
        f"- threads: {env['threads']} (torch intra- and inter-op, OMP/MKL)",
        "- versions: " + ", ".join(f"{k} {v[k]}" for k in v if v[k]) + f", Python {env['python']}",
    ]
    for name, rec in (env.get("cases") or {}).items():
        b, a = (rec.get("before") or {}), (rec.get("after") or {})
        lines.append(
            f"- case `{name}`: {rec.get('date')}, commit {rec.get('commit')}, "
            f"{rec.get('wall_s')} s; load average before {b.get('loadavg')} / after "
            f"{a.get('loadavg')}; other processes busy before {b.get('busy_cores')} cores"
        )
    if peers_missing:
        lines.append(
            "- not installed for the latest run (the tables show their rows from the runs that "
            "had them; see each case's date): "
            + "; ".join(f"{k}: {w}" for k, w in peers_missing.items())
        )
    lines += ["", "## Goals", ""]
    g = goals(cost, acc, ratio)
    lines.append(
        _table(["goal", "measured", "verdict"], [list(x) for x in g]) if g else "(no results)"
    )
    if dynamics:
        lines += [
            "",
            "## Same network in every library",
            "",
            "Each peer gets tracetorch's initial weights and the same input; agreement of "
            "the spike trains with tracetorch's, per hidden layer, and the largest readout "
            "difference:",
            "",
        ]
        rows = []
        for lib, d in dynamics.items():
            if "error" in d:
                rows.append([lib, "error: " + d["error"], "", ""])
            else:
                rows.append(
                    [
                        lib,
                        ", ".join(f"{a:.5f}" for a in d["layer_agreement"]),
                        f"{d['readout_max_abs_diff']:.2g} (scale {d['readout_scale']:.2g})",
                        f"{d['steps']}",
                    ]
                )
        lines.append(
            _table(["library", "spike agreement per layer", "readout max |diff|", "steps"], rows)
        )
        rates = next((d.get("spike_rates") for d in dynamics.values() if "spike_rates" in d), None)
        if rates:
            lines.append(
                "\nHidden-layer spike rates (tracetorch): "
                + ", ".join(f"{r:.3f}" for r in rates)
                + " spikes per step."
            )
    lines += ["", "## Speed ratios (interleaved)", ""]
    if ratio:
        lines.append(_ratio_section(ratio))
    else:
        lines.append(
            "Being re-measured (issue 13): `python -m benchmarks.run --cases ratio` on a quiet "
            "machine writes `benchmarks/results/ratio.json`."
        )
    if cost:
        c = settings.get("cost", {})
        lines += [
            "",
            "## 1. Cost vs sequence length",
            "",
            f"Network 64-128-128-10 (LIF, LIF, LI readout), beta 0.9, threshold 1, "
            f"subtractive reset; Bernoulli input p=0.2 streamed in chunks of "
            f"{c.get('chunk', 100)} steps; batch {c.get('batch', 64)}; Adam. A training "
            "step = reset, T steps, cross-entropy on the last readout, backward, Adam "
            "step. Each (library, T) in a fresh process, one thread; medians of "
            f"up to {c.get('max_reps', 5)} repetitions within {c.get('budget_s')} s; "
            f"runs predicted to pass {c.get('mem_cap_gb')} GB are skipped. Times: a process "
            "under glibc's default allocator; memory (RSS): a separate process with "
            "`MALLOC_MMAP_THRESHOLD_=65536` (see Notes). "
            + (
                "`(busy)`: timed while other processes kept more than half the cores busy."
                if any("load_before" in r for r in cost)
                else "**These rows record no load: they come from a run before issue 13, "
                "timed while another case ran on the second core; the times of the BPTT "
                "libraries are inflated. Being re-measured.**"
            ),
            "",
        ]
        for name in ("bench_memory.png", "bench_time.png"):
            if name in img_names:
                lines.append(f"![{name}]({rel / name})")
        lines += ["", _cost_tables(cost, c.get("mem_cap_gb", 8.0))]
    if acc:
        lines += [
            "",
            "## 2. Accuracy",
            "",
            "Test accuracy (%), mean +- std over seeds; same architecture "
            "(n_in-128-128-n_out, LIF, LIF, LI; RLIF, RLIF, LI for the `-rlif` tasks), data, "
            "epochs and learning rate for every method; loss: cross-entropy on the readout "
            "at the last step. The GRU column is a non-spiking `nn.GRU` of the same width and "
            "depth with a linear readout, the ceiling of the timing tasks. The timing tasks "
            "(`order`, `seqdigits`) are where trace learning is expected to lose (below the "
            "tables); `evidence-hard-1000` is the setting where no method saturates.",
            "",
        ]
        if "bench_accuracy.png" in img_names:
            lines.append(f"![accuracy]({rel / 'bench_accuracy.png'})\n")
        lines.append(_accuracy_table(acc))
        fid = _fidelity_table(acc)
        lines += [
            "",
            "## 3. Gradient fidelity",
            "",
            "Cosine between trace and BPTT gradients (same parameters, same input, summed "
            "over the first test batches), per layer (all its parameters) and for its "
            "weight; at initialisation and after trace training (mean over seeds). The "
            "last columns are the yardstick: two BPTT runs that differ only in the "
            "surrogate.",
            "",
            fid,
        ]
    if ablation:
        lines += [
            "",
            "## Trace-learning options (ablation)",
            "",
            "tracetorch trace learning with one option of the design changed at a time "
            "(same settings as section 2); test accuracy (%), mean +- std over seeds.",
            "",
            _ablation_table(ablation),
        ]
    if temporal:
        lines += [
            "",
            "## Temporal tasks",
            "",
            "From `python -m benchmarks.temporal` (`benchmarks/results/temporal.json`): each "
            "(task, network, learning mode, seed) trained with the same budget; test accuracy "
            "at the last epoch, mean +- sd over seeds. The GRU (same width, BPTT) is the "
            "non-spiking ceiling.",
            "",
            _temporal_table(temporal),
            "",
            TEMPORAL_WHY + " `digits-image` is rate-coded: trace learning and BPTT should tie "
            "there.",
        ]
    lines += ["", "## Notes", "", settings.get("notes", "").strip(), ""]
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text("\n".join(lines))
