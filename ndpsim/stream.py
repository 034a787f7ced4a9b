"""An always-on stream (`ndpsim stream`): the model run once per audio hop, functional and
timed, as an always-on part runs it.

Each hop's input is simulated on the integer datapath with the branches its data picks (Ifs on
run-time data, ndpsim/session.py); its latency and energy are that run's. Between inferences
the part idles. Over the stream (docs/machine_model.md, "Always-on power"):

    duty cycle    = sum of latencies / (hops x hop period)
    average power = (sum of inference energies + idle power x idle time) / stream time
    battery life  = capacity (mAh x V) / average power

so a stream of identical inputs gives `simulate --rate`'s average power. A hop whose latency
exceeds the hop period misses its deadline (the next input arrives before it finishes).
`float_datapath` runs float32 arithmetic (a float model's own decisions); `timing_only` has
no data, so every hop runs the branches `opts.branches` names (ndpsim/branching.py).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from ndpsim.config import HardwareConfig
from ndpsim.errors import UserError
from ndpsim.inputs import calibration_inputs, load_npz, random_inputs
from ndpsim.options import SimOptions
from ndpsim.session import Session

MAX_HOPS = 100_000


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Hop(_Model):
    index: int
    latency_us: float
    energy_uj: float  # the inference, static power while active included
    deadline_missed: bool
    branches: dict[str, str]  # If on run-time data -> "then" | "else"


class StreamReport(_Model):
    model: str
    hardware: str
    config_id: str
    hops: int
    hop_ms: float
    stream_s: float
    duty_cycle: float
    mean_latency_us: float
    max_latency_us: float
    deadline_misses: int
    inference_energy_uj: float  # all hops
    idle_power_mw: float
    average_power_mw: float
    branch_shares: dict[str, dict[str, float]]  # If -> branch -> share of hops
    battery_mah: float | None = None
    battery_v: float | None = None
    battery_life_h: float | None = None
    per_hop: list[Hop]


def stream_inputs(session: Session, inputs: str | None, hops: int | None, seed: int):
    """The hop inputs: the .npz's samples (a leading hop axis), or `hops` seeded random ones."""
    if inputs is not None:
        samples = load_npz(inputs, session.graph)
        return samples[:hops] if hops else samples
    if not hops:
        raise UserError("give --inputs STREAM.npz or --hops N (seeded random input per hop)")
    return [random_inputs(session.graph, seed + i) for i in range(hops)]


def run_stream(
    session: Session,
    hw: HardwareConfig,
    samples: list[dict[str, np.ndarray]],
    hop_ms: float,
    opts: SimOptions | None = None,
    battery_mah: float | None = None,
    battery_v: float | None = None,
    progress=None,
) -> StreamReport:
    """Run every hop (module docstring); `progress(1)` after each one."""
    opts = opts or SimOptions()
    if not (hop_ms > 0 and math.isfinite(hop_ms)):
        raise UserError(f"--hop must be a positive period, got {hop_ms:g} ms")
    if not 1 <= len(samples) <= MAX_HOPS:
        raise UserError(f"a stream has 1 to {MAX_HOPS:,} hops, got {len(samples):,}")
    for name, v in (("--battery-mah", battery_mah), ("--battery-v", battery_v)):
        if v is not None and not (v > 0 and math.isfinite(v)):
            raise UserError(f"{name} must be positive, got {v:g}")
    # one quantization per program variant, calibrated on the calibration set or the stream
    calib = calibration_inputs(session.graph, opts, samples[:16])
    plans: dict = {}
    rows: list[Hop] = []
    timed = None
    if opts.timing_only:  # no data: every hop runs the branches opts.branches names
        program = session.program(hw, opts.precision, opts.branches)
        timed = session.report(program, session.time(hw, opts.precision, opts.branches), hw,
                               "timing-only", with_layers=False)  # fmt: skip
    for i, x in enumerate(samples):
        if timed is None:
            program, res, _ = session.execute_settled(hw, x, calib, opts, plans)
            rep = session.report(program, res, hw, "full", with_layers=False)
        else:
            rep = timed
        rows.append(Hop(index=i, latency_us=rep.latency_us, energy_uj=rep.energy_uj,
                        deadline_missed=rep.latency_us > hop_ms * 1e3,
                        branches=rep.branches))  # fmt: skip
        if progress is not None:
            progress(1)
    n = len(rows)
    stream_s = n * hop_ms / 1e3
    busy_s = sum(min(r.latency_us * 1e-6, hop_ms / 1e3) for r in rows)
    energy_uj = sum(r.energy_uj for r in rows)
    idle_mw = hw.idle_power_total_mw
    avg_mw = (energy_uj * 1e-3 + idle_mw * (stream_s - busy_s)) / stream_s  # uJ/s = uW
    shares: dict[str, dict[str, float]] = {}
    for name in sorted({k for r in rows for k in r.branches}):
        counts = Counter(r.branches.get(name, "not reached") for r in rows)
        shares[name] = {b: c / n for b, c in sorted(counts.items())}
    life = None
    if battery_mah is not None:
        battery_v = battery_v if battery_v is not None else 3.0
        life = battery_mah * battery_v / avg_mw
    lat = [r.latency_us for r in rows]
    return StreamReport(
        model=session.name,
        hardware=hw.name,
        config_id=hw.config_id(),
        hops=n,
        hop_ms=hop_ms,
        stream_s=stream_s,
        duty_cycle=busy_s / stream_s,
        mean_latency_us=float(np.mean(lat)),
        max_latency_us=float(np.max(lat)),
        deadline_misses=sum(r.deadline_missed for r in rows),
        inference_energy_uj=energy_uj,
        idle_power_mw=idle_mw,
        average_power_mw=avg_mw,
        branch_shares=shares,
        battery_mah=battery_mah,
        battery_v=battery_v if battery_mah is not None else None,
        battery_life_h=life,
        per_hop=rows,
    )


def stream_command(model, hw: HardwareConfig, hop_ms: float, *, inputs, hops, seed, shapes,
                   values, precision, timing_only, branch, float_datapath, battery, json_out,
                   plot, echo) -> list[StreamReport]:  # fmt: skip
    """`ndpsim stream`: one stream, or with --timing-only one per branch --branch asks for
    (ndpsim/branching.py); prints the summaries, writes the JSON ({"then": ..., "else": ...}
    for several) and the plot (of the first)."""
    import json
    import sys

    import typer

    from ndpsim.branching import branch_runs, check_full_run

    check_full_run(branch, timing_only)
    session = Session(model, input_shapes=shapes, input_values=values)
    samples = stream_inputs(session, inputs, hops, seed)
    runs = branch_runs(session.data_ifs, branch) if timing_only else [("", None)]
    reports = []
    for label, chosen in runs:
        opts = SimOptions(seed=seed, precision=precision, timing_only=timing_only,
                          branches=chosen or None, float_datapath=float_datapath)  # fmt: skip
        with typer.progressbar(length=len(samples), label="hops", file=sys.stderr) as bar:
            r = run_stream(session, hw, samples, hop_ms, opts, *battery, bar.update)
        head = f"== every If on run-time data on its {label}-branch ==\n" if len(runs) > 1 else ""
        echo(head + render(r))
        reports.append(r)
    if json_out:
        data = {label: r.model_dump(mode="json")
                for (label, _), r in zip(runs, reports, strict=True)}  # fmt: skip
        json_out.write_text(reports[0].model_dump_json(indent=2) if len(runs) == 1 else
                            json.dumps(data, indent=2))  # fmt: skip
        echo(f"report written to {json_out}")
    if plot:
        plot_power(reports[0], plot)
        echo(f"plot written to {plot}")
    return reports


def render(r: StreamReport) -> str:
    """The stream's summary as text."""
    lines = [
        f"stream    {r.hops:,} hops of {r.hop_ms:g} ms ({r.stream_s:,.3f} s) of {r.model} on "
        f"{r.hardware}",
        f"latency   mean {r.mean_latency_us:,.2f} us, max {r.max_latency_us:,.2f} us; deadline "
        f"misses {r.deadline_misses:,}",
        f"power     average {r.average_power_mw:.4g} mW at duty cycle {100 * r.duty_cycle:.2f}% "
        f"(inferences {r.inference_energy_uj:,.4g} uJ + idle {r.idle_power_mw:.4g} mW)",
    ]
    for name, shares in r.branch_shares.items():
        parts = ", ".join(f"{b} {100 * s:.1f}%" for b, s in shares.items())
        lines.append(f"branches  {name}: {parts}")
    if r.battery_life_h is not None:
        lines.append(f"battery   {r.battery_mah:g} mAh at {r.battery_v:g} V: "
                     f"{r.battery_life_h:,.0f} h ({r.battery_life_h / 24:,.1f} days)")  # fmt: skip
    return "\n".join(lines)


def plot_power(r: StreamReport, path: Path) -> None:
    """Power over time: each hop's inference (its energy over its latency) then idle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t, p = [0.0], [r.idle_power_mw]
    for h in r.per_hop:
        t0 = h.index * r.hop_ms
        active_mw = h.energy_uj / h.latency_us * 1e3 if h.latency_us else 0.0
        t1 = t0 + min(h.latency_us / 1e3, r.hop_ms)
        t += [t0, t0, t1, t1]
        p += [r.idle_power_mw, active_mw, active_mw, r.idle_power_mw]
    t.append(r.hops * r.hop_ms)
    p.append(r.idle_power_mw)
    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=120)
    ax.plot(t, p, lw=0.8, color="tab:blue", label="power")
    ax.axhline(r.average_power_mw, color="tab:red", lw=1.2, ls="--",
               label=f"average {r.average_power_mw:.3g} mW")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("power (mW)")
    ax.set_title(f"{Path(r.model).name} on {r.hardware}: {r.hops} hops of {r.hop_ms:g} ms, "
                 f"duty cycle {100 * r.duty_cycle:.2f}%")  # fmt: skip
    ax.legend(loc="upper right")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
