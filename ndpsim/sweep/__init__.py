"""Design-space sweeps: thousands of (model, configuration) points on a local process pool or
a Dask cluster, into a resumable Hive-partitioned Parquet dataset.

`run_points(fn, points, engine)` is the reusable part: any module-level function over
picklable points, on a `LocalEngine(jobs)` or a `DaskEngine(address | local_workers)`.
"""

from ndpsim.sweep.engine import LocalEngine, make_engine, run_points
from ndpsim.sweep.plan import Plan, make_plan
from ndpsim.sweep.run import SweepOutcome, prepare, run_sweep
from ndpsim.sweep.spec import SweepSpec, load_spec, parse_spec
from ndpsim.sweep.store import ResultStore, read_points

__all__ = [
    "LocalEngine",
    "Plan",
    "ResultStore",
    "SweepOutcome",
    "SweepSpec",
    "load_spec",
    "make_engine",
    "make_plan",
    "parse_spec",
    "prepare",
    "read_points",
    "run_points",
    "run_sweep",
]
