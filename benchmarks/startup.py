"""Start-up: whole-process times of the `ndpsim` command, beside `python -c pass`.

    python benchmarks/startup.py [--repeats N] [--cold-repeats M]

Rows: `python -c pass`; `ndpsim --help`; `ndpsim presets`; a warm `ndpsim simulate
models/kws_dscnn.onnx --timing-only` and a warm full run (kernels and the lowered program
in their caches); and the first `ndpsim simulate models/kws_dscnn.onnx --preset ndp120`
with empty caches (a fresh NUMBA_CACHE_DIR and NDPSIM_CACHE_DIR for every repeat: numba
compiles the kernels the model needs). Each figure is the median over the repeats of the
wall time and of the process's CPU time (user + system: less sensitive to other load on the
machine than the wall time), with the target marked PASS/FAIL on the wall time. The cold
rows also check that the first-run notice is on stderr, that stdout is the warm run's, and
that the warm run printed no notice. The caches are temporary folders: the user's are never
touched. Exit code 0 when every target passes, 1 when one fails, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KWS = str(ROOT / "models" / "kws_dscnn.onnx")
NOTICE = "ndpsim: compiling simulator kernels"


@dataclass
class Row:
    what: str
    wall_s: float
    cpu_s: float
    repeats: int
    target_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.target_s is None or self.wall_s <= self.target_s


def ndpsim_cmd() -> list[str]:
    """The `ndpsim` console script of this interpreter's environment."""
    here = Path(sys.executable).parent / "ndpsim"
    exe = str(here) if here.exists() else shutil.which("ndpsim")
    return [exe] if exe else [sys.executable, "-m", "ndpsim"]


def caches(folder: str) -> dict[str, str]:
    """Environment variables that put numba's kernels and ndpsim's programs in `folder`."""
    return {"NUMBA_CACHE_DIR": f"{folder}/numba", "NDPSIM_CACHE_DIR": f"{folder}/programs"}


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str, str]:
    """(wall s, CPU s, stdout, stderr) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, p.stdout, p.stderr


def measure(what: str, cmd: list[str], env: dict, repeats: int, target: float | None) -> Row:
    runs = [run_once(cmd, env) for _ in range(repeats)]
    notices = [err for *_, err in runs if NOTICE in err]
    if notices:
        raise SystemExit(f"{what}: a warm run printed the first-run notice: {notices[0]!r}")
    return Row(what, statistics.median(r[0] for r in runs),
               statistics.median(r[1] for r in runs), repeats, target)  # fmt: skip


def cold(cmd: list[str], env: dict, repeats: int, target: float, warm_stdout: str) -> Row:
    """The first run with empty kernel and program caches, `repeats` times."""
    walls, cpus = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="ndpsim-cold-") as tmp:
            wall, cpu, out, err = run_once(cmd, {**env, **caches(tmp)})
        if NOTICE not in err or len(err.strip().splitlines()) != 1:
            raise SystemExit(f"cold run: expected the one-line notice on stderr, got {err!r}")
        if out != warm_stdout:
            raise SystemExit("cold run: stdout differs from the warm run's")
        walls.append(wall)
        cpus.append(cpu)
    return Row("first simulate of KWS, empty caches (full, ndp120)", statistics.median(walls),
               statistics.median(cpus), repeats, target)  # fmt: skip


def render(rows: list[Row], load_before: tuple, load_after: tuple) -> str:
    w = max(len(r.what) for r in rows)
    lines = [
        f"machine: {platform.machine()} {platform.system()}, cpu_count {os.cpu_count()}, "
        f"python {platform.python_version()}",
        "load average (1, 5, 15 min): before "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; after "
        + ", ".join(f"{x:.2f}" for x in load_after),
        "",
        f"{'command'.ljust(w)}  {'wall s':>7}  {'CPU s':>6}  {'runs':>4}  {'target':>7}",
        "-" * (w + 34),
    ]
    for r in rows:
        target = "-" if r.target_s is None else f"<= {r.target_s:g}"
        mark = "" if r.target_s is None else ("  PASS" if r.ok else "  FAIL")
        lines.append(f"{r.what.ljust(w)}  {r.wall_s:>7.2f}  {r.cpu_s:>6.2f}  {r.repeats:>4}  "
                     f"{target:>7}{mark}")  # fmt: skip
    lines += [
        "-" * (w + 34),
        "wall s / CPU s: medians over the runs of whole processes (CPU: user + system time);",
        "warm rows after one unmeasured run; the targets apply to the wall time.",
    ]
    failed = sum(not r.ok for r in rows)
    lines.append(f"{sum(r.target_s is not None for r in rows) - failed} passed, {failed} failed")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="runs per warm row (>= 5)")
    parser.add_argument("--cold-repeats", type=int, default=3, help="cold runs (>= 1)")
    args = parser.parse_args(argv)
    if args.repeats < 5 or args.cold_repeats < 1:
        parser.error("--repeats must be >= 5 and --cold-repeats >= 1")
    load_before = os.getloadavg()
    ndpsim = ndpsim_cmd()
    with tempfile.TemporaryDirectory(prefix="ndpsim-warm-") as tmp:
        env = {**os.environ, **caches(tmp)}
        # as on a user's machine, Python keeps its bytecode caches: with them forbidden, every
        # run would time compiling the sources of ndpsim's recently edited modules
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        full = [*ndpsim, "simulate", KWS, "--preset", "ndp120"]
        timing = [*ndpsim, "simulate", KWS, "--timing-only"]
        for cmd in (full, timing):  # fill the warm caches
            run_once(cmd, env)
        warm_stdout = run_once(full, env)[2]
        rows = [
            measure("python -c pass", [sys.executable, "-c", "pass"], env, args.repeats, None),
            measure("ndpsim --help", [*ndpsim, "--help"], env, args.repeats, 0.5),
            measure("ndpsim presets", [*ndpsim, "presets"], env, args.repeats, 0.5),
            measure("ndpsim simulate KWS --timing-only (warm)", timing, env, args.repeats, 1.0),
            measure(
                "ndpsim simulate KWS --preset ndp120 (warm, full)", full, env, args.repeats, None
            ),  # fmt: skip
            cold(full, env, args.cold_repeats, 15.0, warm_stdout),
        ]
    print(render(rows, load_before, os.getloadavg()))
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
