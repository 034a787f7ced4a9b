"""Sweep throughput: points per second over the four MLPerf Tiny models, timing-only and full,
with peak memory and memory at 25 / 50 / 75 / 100 % of a longer sweep; the 10,800-point
example end to end; planning a 1,000,000-configuration grid.

    python benchmarks/sweep_throughput.py [--jobs 2] [--skip-full] [--plan-reference]

Every figure runs the real path (`run_sweep`: plan, local process pool, Parquet store) into
a temporary directory. Workloads (configurations x the four models):

- grid     : 24 structures (macro_cols x macro_rows x weight_bits) x 12 operating points
             (clock x voltage) = 288 configurations, the shape of a design sweep; a worker
             lowers each (model, structure) once and re-times it for the operating points;
- distinct : 288 Latin-hypercube configurations over structural fields only, so every
             point needs its own lowering (the worst case for a sweep);
- long     : the grid with 50 operating points (1,200 configurations), memory sampled.

points/s = points / wall time from the first submitted point to the last stored row
(worker start-up, which loads the compiled core from numba's cache, included). Memory is
the resident set (VmRSS) of the sweep process plus all its descendants (pool workers),
sampled every 50 ms.

End to end:
- example : `ndpsim sweep examples/sweep_10k.yaml -o TMP` as a command, from its start to
            its exit (interpreter, imports, planning, pool start-up, Parquet writes);
- plan    : `ndpsim sweep PLAN_1M --dry-run` on a 1,000,000-configuration grid (the
            example's parameters with 100 clocks and 50 voltages, two models), and
            make_plan alone in this process; with --plan-reference also the plain
            definition (a HardwareConfig, its constraints and its config_id per
            configuration, as the planner did before it worked on value codes).

Exit code 0 when the timing-only grid (>= 200 points/s) and the example end to end
(>= 500 points/s) pass with no failed point, and, with --plan-reference, make_plan is at
least 10 times faster than the plain definition.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import ndpsim
from ndpsim.sweep import LocalEngine, make_plan, parse_spec, run_sweep

ROOT = Path(__file__).resolve().parent.parent
# the four MLPerf Tiny reference models (models/ also holds recurrent ones with symbolic dims)
TINY = ("kws_dscnn", "vww_mobilenetv1_025", "ic_resnet8", "ad_fc_autoencoder")
MODELS = [str(ROOT / "models" / f"{m}.onnx") for m in TINY]
STRUCTURE = {"macro_cols": [16, 32, 64, 128], "macro_rows": [64, 128, 256], "weight_bits": [4, 8]}
TARGET_POINTS_PER_S = 200
EXAMPLE = ROOT / "examples" / "sweep_10k.yaml"
EXAMPLE_POINTS = 10_800
TARGET_EXAMPLE_POINTS_PER_S = 500
PLAN_1M = {
    "models": MODELS[:1] + MODELS[3:],
    "parameters": {
        "macro_cols": [8, 16, 32, 64, 128],
        "macro_rows": [32, 64, 128, 256, 512],
        "macros_per_core": [1, 2, 4, 8],
        "precision": [{"weight_bits": 8, "activation_bits": 8},
                      {"weight_bits": 4, "activation_bits": 8}],
        "clock_mhz": {"min": 25, "max": 200, "log": True, "steps": 100},
        "voltage_v": {"min": 0.6, "max": 1.0, "steps": 50},
    },
    "constraints": ["macro_rows * macro_cols * total_macros <= 65536"],
}  # fmt: skip


def grid(op_points: int) -> dict:
    clocks = [25, 50, 100, 200] if op_points == 12 else None
    params = dict(STRUCTURE)
    if clocks:
        params.update(clock_mhz=clocks, voltage_v=[0.7, 0.8, 0.9])
    else:  # op_points operating points: 10 clocks x op_points/10 voltages
        params.update(
            clock_mhz={"min": 10, "max": 200, "log": True, "steps": 10},
            voltage_v={"min": 0.6, "max": 1.0, "steps": op_points // 10},
        )
    return {"models": MODELS, "parameters": params}


def distinct(n: int) -> dict:
    return {
        "models": MODELS,
        "sampling": {"method": "lhs", "samples": n, "seed": 0},
        "parameters": {
            "macro_cols": {"min": 8, "max": 128},
            "macro_rows": {"min": 32, "max": 512},
            "macros_per_core": [1, 2, 4, 8],
            "weight_bits": [4, 8],
            "sram_bytes": {"min": 65536, "max": 1048576, "log": True},
        },
    }


def _tree_rss_kib(root_pid: int) -> int:
    """VmRSS of a process and all its descendants, KiB (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


class MemorySampler(threading.Thread):
    def __init__(self, interval_s: float = 0.05, root_pid: int | None = None):
        super().__init__(daemon=True)
        self.interval_s, self.peak_kib, self._halt = interval_s, 0, threading.Event()
        self.root_pid = root_pid or os.getpid()

    def now_kib(self) -> int:
        kib = _tree_rss_kib(self.root_pid)
        self.peak_kib = max(self.peak_kib, kib)
        return kib

    def run(self) -> None:
        while not self._halt.is_set():
            self.now_kib()
            time.sleep(self.interval_s)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def measure_once(spec, plan, jobs: int) -> dict:
    marks: dict[int, int | None] = {25: None, 50: None, 75: None, 100: None}
    first: list[float] = []
    sampler = MemorySampler()

    def on_point(outcome) -> None:
        if not first:
            first.append(time.perf_counter())
        pct = 100 * outcome.ran // plan.total
        if pct in marks and marks[pct] is None:
            marks[pct] = sampler.now_kib()

    sampler.start()
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        outcome = run_sweep(spec, plan, out, LocalEngine(jobs), quiet=True, on_point=on_point)
        end = time.perf_counter()
    sampler.stop()
    return {
        "points": outcome.ran,
        "failed": outcome.failed,
        "wall_s": end - t0,
        "startup_s": first[0] - t0,
        "rate": outcome.ran / (end - t0),
        "steady": (outcome.ran - 1) / (end - first[0]),
        "peak_mib": sampler.peak_kib / 1024,
        "marks": {k: (v or 0) / 1024 for k, v in marks.items()},
    }


def measure(label: str, spec_data: dict, mode: str, jobs: int, repeats: int) -> dict:
    """Median of `repeats` runs by points/s (the machine is shared: one run is noisy)."""
    spec = parse_spec({**spec_data, "mode": mode})
    plan = make_plan(spec, ROOT)
    runs = [measure_once(spec, plan, jobs) for _ in range(repeats)]
    median = sorted(runs, key=lambda r: r["rate"])[len(runs) // 2]
    return {"workload": label, "mode": mode, "configs": len(plan.configs),
            "repeats": repeats, "rates": [r["rate"] for r in runs], **median}  # fmt: skip


def _command(args: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak MiB of the process tree, stdout) of one `ndpsim` command."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "ndpsim", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    sampler = MemorySampler(root_pid=proc.pid)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    sampler.stop()
    if proc.returncode != 0:
        raise SystemExit(f"ndpsim {' '.join(args)} failed: {err.strip()}")
    return wall, sampler.peak_kib / 1024, out


def measure_example(jobs: int, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            wall, peak, text = _command(["sweep", str(EXAMPLE), "-o", out, "-q",
                                         "--jobs", str(jobs)])  # fmt: skip
        assert f"{EXAMPLE_POINTS} points" in text and " 0 failed" in text, text
        runs.append({"wall_s": wall, "rate": EXAMPLE_POINTS / wall, "peak_mib": peak})
    median = sorted(runs, key=lambda r: r["rate"])[len(runs) // 2]
    return {**median, "rates": [r["rate"] for r in runs]}


def reference_plan(spec, root: Path) -> int:
    """The plain definition of a plan (a grid only): every configuration built, validated,
    constrained, keyed by config_id(), ordered by structure. Returns its size."""
    import itertools

    from ndpsim.config import STRUCTURAL_FIELDS
    from ndpsim.errors import ConfigError
    from ndpsim.sweep.configs import _grid_values
    from ndpsim.sweep.plan import base_config, constraint_env

    base, constraints = base_config(spec, root), spec.compiled_constraints()
    names = list(spec.parameters)
    axes = [_grid_values(n, spec.parameters[n]) for n in names]
    seen, keyed = set(), []
    for combo in itertools.product(*axes):
        changes = {}
        for name, value in zip(names, combo, strict=True):
            changes.update(value if isinstance(value, dict) else {name: value})
        try:
            hw = base.with_(**changes)
        except ConfigError:
            continue
        env = constraint_env(hw)
        if not all(c(env) for c in constraints):
            continue
        cid = hw.config_id()
        if cid not in seen:
            seen.add(cid)
            keyed.append((tuple(repr(getattr(hw, f)) for f in sorted(STRUCTURAL_FIELDS)), cid))
    keyed.sort(key=lambda item: item[0])
    return len(keyed)


def measure_plan(reference: bool) -> dict:
    import json

    spec = parse_spec(PLAN_1M)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "plan_1m.json"
        path.write_text(json.dumps(PLAN_1M))
        wall, peak, text = _command(["sweep", str(path), "--dry-run", "-o",
                                     str(Path(folder) / "none")])  # fmt: skip
    start = time.perf_counter()
    plan = make_plan(spec, ROOT)
    inside = time.perf_counter() - start
    out = {"configs": plan.generated, "kept": len(plan.configs), "command_s": wall,
           "command_peak_mib": peak, "make_plan_s": inside,
           "summary": text.splitlines()[0]}  # fmt: skip
    if reference:
        start = time.perf_counter()
        kept = reference_plan(spec, ROOT)
        out["reference_s"] = time.perf_counter() - start
        assert kept == out["kept"], (kept, out["kept"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="worker processes")
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing-only figure")
    parser.add_argument("--skip-full", action="store_true", help="timing-only workloads only")
    parser.add_argument("--plan-reference", action="store_true",
                        help="also plan the 1M grid the plain way (about a minute)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.repeats < 1:
        parser.error("--jobs and --repeats must be >= 1")
    n = args.repeats
    runs = [
        measure("grid", grid(12), "timing-only", args.jobs, n),
        measure("distinct", distinct(288), "timing-only", args.jobs, n),
    ]
    if not args.skip_full:
        runs.append(measure("grid", grid(12), "full", args.jobs, 1))
    runs.append(measure("long", grid(50), "timing-only", args.jobs, n))
    example = measure_example(args.jobs, n)
    plan = measure_plan(args.plan_reference)

    print(
        f"machine: {platform.machine()} {platform.system()}, cpu_count {os.cpu_count()}, "
        f"python {platform.python_version()}, ndpsim {ndpsim.__version__}, jobs {args.jobs}"
    )
    head = ("workload", "mode", "configs", "points", "failed", "wall s", "start s", "points/s",
            "steady/s", "all runs points/s", "peak MiB", "MiB@25%", "MiB@50%", "MiB@75%",
            "MiB@100%")  # fmt: skip
    rows = [
        (
            r["workload"],
            r["mode"],
            str(r["configs"]),
            str(r["points"]),
            str(r["failed"]),
            f"{r['wall_s']:.1f}",
            f"{r['startup_s']:.1f}",
            f"{r['rate']:.0f}",
            f"{r['steady']:.0f}",
            " ".join(f"{x:.0f}" for x in r["rates"]),
            f"{r['peak_mib']:.0f}",
            *(f"{r['marks'][k]:.0f}" for k in (25, 50, 75, 100)),
        )  # fmt: skip
        for r in runs
    ]
    widths = [max(len(x[i]) for x in (head, *rows)) for i in range(len(head))]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    print(line(head))
    print("-" * len(line(head)))
    for row in rows:
        print(line(row))
    print(
        "points/s: median run, points / wall time (plan excluded; pool start-up, the numba "
        "core loaded from cache, Parquet writes included); start s: to the first stored row; "
        "steady/s: after it; all runs: in order (the very first run also starts the pool's "
        "fork server, which imports ndpsim and loads the compiled core once per process, as "
        "every `ndpsim sweep` command does); MiB: RSS of the sweep process and its workers"
    )
    print()
    print(
        f"example end to end ({EXAMPLE.name}, {EXAMPLE_POINTS:,} points, a command from start "
        f"to exit): median {example['rate']:.0f} points/s ({example['wall_s']:.1f} s), all "
        f"runs {' '.join(f'{r:.0f}' for r in example['rates'])} points/s, peak "
        f"{example['peak_mib']:.0f} MiB"
    )
    print(
        f"plan of {plan['configs']:,} configurations ({plan['summary']}): `sweep --dry-run` "
        f"{plan['command_s']:.1f} s and {plan['command_peak_mib']:.0f} MiB as a command, "
        f"make_plan {plan['make_plan_s']:.2f} s"
        + (f"; the plain definition {plan['reference_s']:.1f} s "
           f"({plan['reference_s'] / plan['make_plan_s']:.0f}x)" if "reference_s" in plan else "")
    )  # fmt: skip
    print(
        "load average (1, 5, 15 min) at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    grid_rate = runs[0]["rate"]
    failed = sum(r["failed"] for r in runs)
    ok = grid_rate >= TARGET_POINTS_PER_S and failed == 0  # a failed point is fast: no credit
    ok_example = example["rate"] >= TARGET_EXAMPLE_POINTS_PER_S
    if "reference_s" in plan:  # planning >= 10x faster than the plain definition
        ok_example = ok_example and plan["reference_s"] >= 10 * plan["make_plan_s"]
    print(
        f"target: timing-only grid >= {TARGET_POINTS_PER_S} points/s with no failed point: "
        f"{grid_rate:.0f} points/s, {failed} failed {'PASS' if ok else 'FAIL'}; example end "
        f"to end >= {TARGET_EXAMPLE_POINTS_PER_S} points/s: {example['rate']:.0f} "
        f"{'PASS' if ok_example else 'FAIL'}"
    )
    return 0 if ok and ok_example else 1


if __name__ == "__main__":
    sys.exit(main())
