"""Simulator speed: import, lower, timing-only, full and integer-only runs, the CLI and
onnxruntime, one row per model, with the speed targets marked PASS/FAIL.

    python benchmarks/sim_speed.py [--preset generic] [--repeats N] [--skip-resnet50]

Exit code 0 when every target passes, 1 when one fails, 2 on bad usage. The numba cache is
whatever the environment gives (NUMBA_CACHE_DIR or numba's default); every figure is taken
after a warm-up, so compilation is not timed.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np

import ndpsim
from ndpsim.api import SimOptions, random_inputs, simulate
from ndpsim.config import HardwareConfig, load_preset
from ndpsim.frontend import load_model
from ndpsim.lower import lower
from ndpsim.quant.bind import bind
from ndpsim.sim import core
from ndpsim.sim.calibrate import calibrate
from ndpsim.sim.run import run
from ndpsim.zoo import resnet50_like

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
TINY = ["kws_dscnn", "vww_mobilenetv1_025", "ic_resnet8", "ad_fc_autoencoder"]
LARGE = "resnet50_like"


@dataclass
class Row:
    """Figures of one model; None where not measured."""

    model: str
    import_ms: float | None = None
    lower_ms: float | None = None
    timing_ms: float | None = None
    full_ms: float | None = None
    int_ms: float | None = None
    cli_timing_s: float | None = None
    cli_full_s: float | None = None
    ort_ms: float | None = None
    repeats: dict[str, int] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.full_ms is None or not self.ort_ms:
            return None
        return self.full_ms / self.ort_ms


def median_s(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of `fn` in seconds over `repeats` calls, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ort_session(model_bytes: bytes):
    """An onnxruntime CPU session, or None when onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def cli_executable() -> list[str]:
    """The `ndpsim` console script of this interpreter's environment."""
    here = Path(sys.executable).parent / "ndpsim"
    exe = str(here) if here.exists() else shutil.which("ndpsim")
    return [exe] if exe else [sys.executable, "-m", "ndpsim"]


def cli_median_s(args: list[str], repeats: int) -> float:
    """Median whole-process wall time of `ndpsim ARGS`, after one run that warms the cache."""
    cmd = cli_executable() + args

    def once() -> None:
        subprocess.run(
            cmd,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=os.environ.copy(),
        )

    return median_s(once, repeats)


def measure(
    name: str,
    source: Path | bytes,
    hw: HardwareConfig,
    preset: str,
    repeats: int,
    cli_repeats: int,
    heavy_repeats: int,
) -> Row:
    """All figures of one model. `heavy_repeats` replaces `repeats` for full and integer-only
    runs of the large model, which take seconds each."""
    row = Row(name)
    model_bytes = source.read_bytes() if isinstance(source, Path) else source
    n_load = repeats if isinstance(source, Path) else heavy_repeats
    row.import_ms = 1e3 * median_s(lambda: load_model(source), n_load)
    graph = load_model(source)
    row.lower_ms = 1e3 * median_s(lambda: lower(graph, hw), repeats)
    row.timing_ms = 1e3 * median_s(
        lambda: simulate(graph, hw, SimOptions(timing_only=True)), repeats
    )

    n_full = repeats if name != LARGE else heavy_repeats
    full_opts = SimOptions(timing_only=False, seed=0, compare_reference=False)
    row.full_ms = 1e3 * median_s(lambda: simulate(graph, hw, full_opts), n_full)

    program = lower(graph, hw)
    inputs = random_inputs(graph, 0)  # the input `simulate` draws with seed 0
    plan = calibrate(program, hw, [inputs])
    row.int_ms = 1e3 * median_s(lambda: run(program, hw, bind(program, plan), inputs, plan), n_full)

    sess = ort_session(model_bytes)
    if sess is not None:
        feed = {
            i.name: inputs[i.name].reshape(i.shape)
            if all(isinstance(d, int) for d in i.shape)
            else inputs[i.name]
            for i in sess.get_inputs()
        }
        row.ort_ms = 1e3 * median_s(lambda: sess.run(None, feed), repeats)

    if isinstance(source, Path):
        base = ["simulate", str(source), "--preset", preset]
        row.cli_timing_s = cli_median_s(base + ["--timing-only"], cli_repeats)
        row.cli_full_s = cli_median_s(base, cli_repeats)
    row.repeats = {"load": n_load, "full": n_full}
    return row


def targets(rows: list[Row]) -> list[tuple[str, float, str, bool]]:
    """(what, figure, target, passed) for every figure that has a target."""
    out = []
    by = {r.model: r for r in rows}
    if "kws_dscnn" in by:
        kws = by["kws_dscnn"]
        out.append(("kws_dscnn timing-only ms", kws.timing_ms, "<= 5", kws.timing_ms <= 5))
        out.append(("kws_dscnn full ms", kws.full_ms, "<= 50", kws.full_ms <= 50))
    for r in rows:
        for label, s in (("timing-only", r.cli_timing_s), ("full", r.cli_full_s)):
            if s is not None:
                out.append((f"{r.model} CLI {label} s", s, "<= 1.5", s <= 1.5))
    if LARGE in by:
        big = by[LARGE]
        out.append((f"{LARGE} timing-only ms", big.timing_ms, "< 1000", big.timing_ms < 1000))
        if big.ratio is not None:
            out.append((f"{LARGE} full / onnxruntime x", big.ratio, "<= 20", big.ratio <= 20))
    return out


def fmt(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def source_stamp() -> float:
    """Newest modification time of ndpsim's sources: an edit during the run invalidates the
    numba cache and the code measured, so the figures after it are not comparable."""
    return max(p.stat().st_mtime for p in Path(ndpsim.__file__).parent.rglob("*.py"))


def machine_info() -> list[str]:
    try:
        import onnxruntime as ort

        ort_version = ort.__version__
    except ImportError:
        ort_version = "not installed"
    cache = os.environ.get("NUMBA_CACHE_DIR") or "unset (numba default: __pycache__ by the sources)"
    return [
        f"machine: {platform.machine()} {platform.system()} {platform.release()}, "
        f"cpu_count {os.cpu_count()}",
        f"python {platform.python_version()}, numba {numba.__version__}, numpy {np.__version__}, "
        f"onnxruntime {ort_version}, ndpsim {ndpsim.__version__}",
        f"NUMBA_CACHE_DIR: {cache}",
        f"simulator threads: {numba.get_num_threads()} ({numba.threading_layer()} layer; MVM runs "
        f">= {core.PARALLEL_MIN_MACS:,} MACs are split, docs/architecture.md 'Threads')",
        "load average (1, 5, 15 min) at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    ]


def render(rows: list[Row], preset: str, repeats: int, cli_repeats: int, heavy_repeats: int) -> str:
    head = [
        "model",
        "import ms",
        "lower ms",
        "timing ms",
        "full ms",
        "int-only ms",
        "CLI timing s",
        "CLI full s",
        "ort ms",
        "full/ort",
    ]
    body = [
        [
            r.model,
            fmt(r.import_ms),
            fmt(r.lower_ms),
            fmt(r.timing_ms, 2),
            fmt(r.full_ms),
            fmt(r.int_ms),
            fmt(r.cli_timing_s, 2),
            fmt(r.cli_full_s, 2),
            fmt(r.ort_ms, 2),
            "-" if r.ratio is None else f"{r.ratio:.1f}x",
        ]
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [head, *body]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "-" * len(line(head))
    out = [*machine_info(), f"preset: {preset}", "", line(head), rule, *map(line, body), rule]
    out += [
        f"import ms   : median of {repeats} load_model(path) after 1 warm-up "
        f"({heavy_repeats} for {LARGE}, from its serialized bytes, built in memory)",
        f"lower ms    : median of {repeats} lower(graph, hw)",
        f"timing ms   : median of {repeats} simulate(graph, hw, SimOptions(timing_only=True)) "
        "after 1 warm-up, graph already imported: lower + timing run + report",
        f"full ms     : median of {repeats} ({heavy_repeats} for {LARGE}) simulate(graph, hw, "
        "SimOptions(seed=0, compare_reference=False)) after 1 warm-up: lower + random input + "
        "calibration (float run) + bind + integer run + report; import excluded",
        "int-only ms : same repeats, run(program, hw, bind(program, plan), inputs, plan) with a "
        "precomputed QuantPlan",
        f"CLI s       : median of {cli_repeats} whole-process runs of `ndpsim simulate MODEL "
        f"--preset {preset} [--timing-only]` after 1 warm run; the full CLI also compares with "
        f"onnxruntime (its default). Not run for {LARGE} (no model file)",
        f"ort ms      : median of {repeats} InferenceSession.run (CPU, default threads = all "
        "cores, float32, same input) "
        "after 1 warm-up; full/ort = full ms / ort ms",
        "",
        "targets:",
    ]
    checks = targets(rows)
    w = max(len(c[0]) for c in checks)
    for what, figure, target, ok in checks:
        out.append(f"  {what.ljust(w)}  {figure:>9.2f}  {target:>7}  {'PASS' if ok else 'FAIL'}")
    failed = sum(not c[3] for c in checks)
    out.append(f"{len(checks) - failed} passed, {failed} failed")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="generic", help="hardware preset (default generic)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per figure, >= 7")
    parser.add_argument("--cli-repeats", type=int, default=5, help="timed CLI runs, >= 5")
    parser.add_argument(
        "--heavy-repeats",
        type=int,
        default=3,
        help=f"timed full and import runs of {LARGE} (seconds each)",
    )
    parser.add_argument("--skip-resnet50", action="store_true", help=f"leave out {LARGE}")
    args = parser.parse_args(argv)
    if args.repeats < 7 or args.cli_repeats < 5 or args.heavy_repeats < 1:
        parser.error("--repeats must be >= 7, --cli-repeats >= 5, --heavy-repeats >= 1")
    hw = load_preset(args.preset)

    t0 = time.perf_counter()
    stamp = source_stamp()
    rows = []
    for name in TINY:
        rows.append(
            measure(
                name,
                MODELS_DIR / f"{name}.onnx",
                hw,
                args.preset,
                args.repeats,
                args.cli_repeats,
                args.heavy_repeats,
            )
        )
        print(f"  measured {name} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    if not args.skip_resnet50:
        model_bytes = resnet50_like(seed=0).SerializeToString()
        rows.append(
            measure(
                LARGE,
                model_bytes,
                hw,
                args.preset,
                args.repeats,
                args.cli_repeats,
                args.heavy_repeats,
            )
        )
        print(f"  measured {LARGE} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    text = render(rows, args.preset, args.repeats, args.cli_repeats, args.heavy_repeats)
    print(text)
    print(f"benchmark wall time: {time.perf_counter() - t0:.0f} s")
    if source_stamp() != stamp:
        print(
            "WARNING: ndpsim sources changed during the run (numba recompiled, code differs); "
            "run again"
        )
    return 1 if "FAIL" in text else 0


if __name__ == "__main__":
    sys.exit(main())
