"""Plots: a sweep's scatter with its Pareto front, and a profile's per-layer bar chart.

matplotlib is an optional extra (`pip install 'ndpsim[plot]'`); without it the commands fail
with one line that says so. Figures are written with the non-interactive Agg backend, at
DPI (text at 9-11 pt is legible at the default size).

A sweep plot has one row per model. With `--pareto`, each row has two panels: every point,
and the neighbourhood of the Pareto front (both axes minimized), where the front's points
are spread out instead of squeezed into a corner. One colour scale serves every panel.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ndpsim.errors import UserError

BOUND_COLORS = {"compute": "#1f77b4", "memory": "#d62728", "vector": "#2ca02c", "none": "#999999"}
DPI = 100
FRONT_COLOR = "#d62728"
MAX_CATEGORIES = 12  # distinct colour values shown as a legend; more get a colour bar
UNITS = {"_uj": "µJ", "_us": "µs", "_mw": "mW", "_pj": "pJ", "_bytes": "bytes",
         "_cycles": "cycles", "_mhz": "MHz", "_v": "V", "_db": "dB"}  # fmt: skip


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise UserError("plotting needs matplotlib: pip install 'ndpsim[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, output: str | Path, dpi: int = DPI) -> None:
    """PNGs are quantized to a 256-color palette (a third of the bytes, same look); any
    other format matplotlib knows (svg, pdf) is written as is."""
    if Path(output).suffix.lower() != ".png":
        fig.savefig(output, dpi=dpi)
        return
    from PIL import Image  # a dependency of matplotlib

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    buf.seek(0)
    Image.open(buf).convert("RGB").quantize(colors=256).save(output, optimize=True)


def pareto_mask(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Points no other point beats on both x and y (both minimized); ties keep the first."""
    order = np.lexsort((y, x))
    mask = np.zeros(len(x), dtype=bool)
    best = math.inf
    for i in order:
        if y[i] < best:
            mask[i] = True
            best = y[i]
    return mask


def label(column: str) -> str:
    """A column name with its unit, e.g. `energy_uj (µJ)`."""
    unit = next((u for suffix, u in UNITS.items() if column.endswith(suffix)), None)
    return f"{column} ({unit})" if unit else column


def _numeric(table) -> list[str]:
    import pyarrow.types as pt

    return [f.name for f in table.schema if pt.is_integer(f.type) or pt.is_floating(f.type)]


def _axis_values(table, name: str) -> np.ndarray:
    if name not in table.column_names:
        raise UserError(f"no column {name!r} in the results; numeric columns: "
                        f"{', '.join(_numeric(table))}")  # fmt: skip
    if name not in _numeric(table):
        raise UserError(f"column {name!r} is not numeric; numeric columns: "
                        f"{', '.join(_numeric(table))}")  # fmt: skip
    return np.asarray(table[name].to_pylist(), dtype=float)


def _group_of(results: Path, name: str) -> list[str] | None:
    """The fields a parameter group of the sweep's spec sets (e.g. `precision` ->
    weight_bits, activation_bits), or None when `name` is not a group of the last run."""
    path = results / "_sweep.json"
    try:
        spec = json.loads(path.read_text())[-1]["spec"]
    except (OSError, ValueError, LookupError, TypeError):
        return None
    values = spec.get("parameters", {}).get(name)
    if isinstance(values, list) and values and all(isinstance(v, dict) for v in values):
        return sorted({f for v in values for f in v})
    return None


def _varies(table, name: str) -> bool:
    values = table[name].to_pylist()
    return len({repr(v) if isinstance(v, list | dict) else v for v in values}) > 1


def _color_values(table, name: str, results: Path) -> list[Any]:
    """The colour of each point: a column, or a parameter group's fields together."""
    present = name in table.column_names
    if present and _varies(table, name):
        return table[name].to_pylist()
    fields = _group_of(results, name) if results.is_dir() else None
    if fields and all(f in table.column_names for f in fields):
        # the group's fields that vary, one per line: "weight_bits=4" rather than the lot
        shown = [f for f in fields if _varies(table, f)] or fields
        columns = [table[f].to_pylist() for f in shown]
        return ["\n".join(f"{f}={v}" for f, v in zip(shown, vs, strict=True))
                for vs in zip(*columns, strict=True)]  # fmt: skip
    varying = [c for c in table.column_names if _varies(table, c)]
    if present:
        value = table[name][0].as_py() if table.num_rows else None
        raise UserError(f"--color {name}: every point has {name} = {value!r}; columns that "
                        f"vary: {', '.join(varying)}")  # fmt: skip
    raise UserError(f"--color {name}: no such column or parameter group; columns that vary: "
                    f"{', '.join(varying)}")  # fmt: skip


class _Palette:
    """One colour scale for every panel: a legend for a few values, else a colour bar."""

    def __init__(self, plt, values: list[Any]):
        distinct = sorted(set(values), key=lambda v: (isinstance(v, str), v))
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in distinct)
        self.categorical = len(distinct) <= MAX_CATEGORIES or not numeric
        if self.categorical:
            cmap = plt.get_cmap("viridis" if numeric else "tab10")
            n = max(len(distinct) - 1, 1)
            pick = (lambda i: cmap(i / n)) if numeric else (lambda i: cmap(i % 10))
            self.lookup = {v: pick(i) for i, v in enumerate(distinct)}
        else:
            from matplotlib.colors import LogNorm, Normalize

            v = np.asarray(distinct, dtype=float)
            log = bool((v > 0).all()) and v.max() / v.min() >= 8
            self.norm = (LogNorm if log else Normalize)(v.min(), v.max())

    def style(self, values: list[Any]) -> dict[str, Any]:
        if self.categorical:
            return {"c": [self.lookup[v] for v in values]}
        return {"c": np.asarray(values, dtype=float), "cmap": "viridis", "norm": self.norm}


def _text(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _log_axis(values: np.ndarray, flag: bool | None) -> bool:
    if flag is not None:
        return flag
    return bool((values > 0).all() and values.max() / values.min() >= 5)


def _window(values: np.ndarray, front: np.ndarray, log: bool) -> tuple[float, float]:
    """Axis limits around the front: 2.5 times its span (so it fills about 40 % of the
    panel, with the points just behind it), at least 4 % of the data's span (a front of one
    point), at most the data's span (a front across all of it), in log space on a log axis."""
    f = np.log10 if log else (lambda a: a)
    lo, hi = float(f(front.min())), float(f(front.max()))
    full = float(f(values.max()) - f(values.min())) or 1.0
    width = min(max(2.5 * (hi - lo), 0.04 * full), 1.1 * full)  # never wider than the data
    a, b = lo - 0.1 * width, lo + width
    return (10**a, 10**b) if log else (a, b)


def _style_axis(ax, log: bool, lo_hi: tuple[float, float] | None, which: str) -> None:
    """Log when asked, except a zoomed range under a decade (its log ticks would be bare)."""
    from matplotlib.ticker import NullFormatter

    if lo_hi is not None and log and lo_hi[1] / lo_hi[0] < 10:
        log = False
    getattr(ax, f"set_{which}scale")("log" if log else "linear")
    if lo_hi is not None:
        getattr(ax, f"set_{which}lim")(*lo_hi)
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_minor_formatter(NullFormatter())  # minor labels of a short log axis overlap


def pareto_plot(
    results: str | Path,
    x: str,
    y: str,
    output: str | Path,
    color: str | None = None,
    pareto: bool = False,
    model: str | None = None,
    log_x: bool | None = None,
    log_y: bool | None = None,
) -> dict[str, Any]:
    """Scatter y over x of every successful point, one row per model, optionally coloured by
    a column (or a parameter group of the spec) and with each model's Pareto front and a
    panel zoomed on it (module doc). Returns counts."""
    import pyarrow.compute as pc

    from ndpsim.sweep.store import read_points

    plt = _pyplot()
    results = Path(results)
    table = read_points(results)
    table = table.filter(pc.equal(table["status"], "ok"))
    models_all = sorted(set(table["model"].to_pylist()))
    if model is not None:
        if model not in models_all:
            raise UserError(f"no model {model!r} in the results; models: {', '.join(models_all)}")
        table = table.filter(pc.equal(table["model"].cast("string"), model))
    if table.num_rows == 0:
        raise UserError(f"no successful points in {results}")
    xs_all, ys_all = _axis_values(table, x), _axis_values(table, y)
    colors = _color_values(table, color, results) if color else None
    palette = _Palette(plt, colors) if colors else None
    names = [str(m) for m in table["model"].to_pylist()]
    models = sorted(set(names))
    cols = 2 if pareto else min(len(models), 2)
    rows = len(models) if pareto else math.ceil(len(models) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.6 * cols + 1.6 * bool(color), 4.2 * rows),
                             squeeze=False, layout="constrained")  # fmt: skip
    panels = list(axes.flat)
    front_sizes: dict[str, int] = {}
    mappable = None
    for i, name in enumerate(models):
        keep = np.array([n == name for n in names])
        xs, ys = xs_all[keep], ys_all[keep]
        style = palette.style([c for c, k in zip(colors, keep, strict=True) if k]) if colors else {
            "color": "#1f77b4"}  # fmt: skip
        logs = (_log_axis(xs, log_x), _log_axis(ys, log_y))
        views = [panels[2 * i], panels[2 * i + 1]] if pareto else [panels[i]]
        mask = pareto_mask(xs, ys) if pareto else None
        for v, ax in enumerate(views):
            size = 7 if v == 0 else 16
            points = ax.scatter(xs, ys, s=size, alpha=0.7, linewidths=0, **style)
            mappable = mappable or (points if palette and not palette.categorical else None)
            if mask is not None:
                order = np.argsort(xs[mask])
                ax.step(xs[mask][order], ys[mask][order], where="post", color=FRONT_COLOR,
                        lw=1.6 if v else 1.2)  # fmt: skip
                ax.scatter(xs[mask], ys[mask], s=60 if v else 30, facecolors="none",
                           edgecolors=FRONT_COLOR, linewidths=1.4)  # fmt: skip
            zoom = v == 1
            _style_axis(ax, logs[0], _window(xs, xs[mask], logs[0]) if zoom else None, "x")
            _style_axis(ax, logs[1], _window(ys, ys[mask], logs[1]) if zoom else None, "y")
            ax.set_xlabel(label(x), fontsize=10)
            ax.set_ylabel(label(y), fontsize=10)
            ax.tick_params(labelsize=9)
            ax.grid(True, which="major", alpha=0.3)
            if zoom:
                on = int(mask.sum())
                ax.set_title(f"{name}: near the Pareto front ({on} point{'s' * (on > 1)} on it)",
                             fontsize=11)  # fmt: skip
            else:
                ax.set_title(f"{name}: {len(xs):,} points", fontsize=11)
        if mask is not None:
            front_sizes[name] = int(mask.sum())
    for ax in panels[(2 if pareto else 1) * len(models) :]:
        ax.set_visible(False)
    if mappable is not None:
        bar = fig.colorbar(mappable, ax=panels, shrink=0.6, aspect=40)
        bar.set_label(label(color), fontsize=10)
    elif palette is not None:
        handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=_text(k))
                   for k, c in palette.lookup.items()]  # fmt: skip
        fig.legend(handles=handles, title=color, loc="outside right center", fontsize=9,
                   title_fontsize=10, frameon=False)  # fmt: skip
    _save(fig, output)
    plt.close(fig)
    return {"points": table.num_rows, "models": len(models), "pareto": front_sizes}


def layers_plot(report, output: str | Path) -> None:
    """Per-layer bars of a SimulationReport: cycles (colored by what bounds the layer) and
    energy split by component."""
    from ndpsim.report.energy import COMPONENTS

    plt = _pyplot()
    layers = [lay for lay in report.layers if lay.kind != "io"] or list(report.layers)
    names = [lay.name for lay in layers]
    n = len(names)
    fig, (ax_c, ax_e) = plt.subplots(1, 2, figsize=(11, 0.9 + 0.28 * n), sharey=True)
    pos = np.arange(n)
    ax_c.barh(pos, [lay.cycles for lay in layers],
              color=[BOUND_COLORS.get(lay.bound, "#999999") for lay in layers])  # fmt: skip
    ax_c.set_yticks(pos, [f"{nm} ({lay.op_type})" for nm, lay in zip(names, layers, strict=True)],
                    fontsize=7)  # fmt: skip
    ax_c.invert_yaxis()
    ax_c.set_xlabel("cycles")
    ax_c.set_title(f"{Path(report.model).name}: {report.latency_cycles:,} cycles", fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in BOUND_COLORS.values()]
    ax_c.legend(handles, [f"{b}-bound" for b in BOUND_COLORS], fontsize=7, loc="lower right")
    left = np.zeros(n)
    cmap = plt.get_cmap("tab10")
    for i, comp in enumerate(COMPONENTS):
        vals = np.array([lay.energy_breakdown_uj.get(comp, 0.0) for lay in layers])
        ax_e.barh(pos, vals, left=left, color=cmap(i), label=comp)
        left += vals
    ax_e.set_xlabel("energy (uJ)")
    ax_e.set_title(f"{report.energy_uj:.3g} uJ per inference", fontsize=9)
    ax_e.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    _save(fig, output)
    plt.close(fig)
