"""Plots: a sweep's scatter with its Pareto front, and a profile's per-layer bar chart.

matplotlib is an optional extra (`pip install 'ndpsim[plot]'`); without it the commands fail
with one line that says so. Figures are written with the non-interactive Agg backend.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from ndpsim.errors import UserError

BOUND_COLORS = {"compute": "#1f77b4", "memory": "#d62728", "vector": "#2ca02c", "none": "#999999"}


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise UserError("plotting needs matplotlib: pip install 'ndpsim[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, output: str | Path, dpi: int = 80) -> None:
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


def _column(table, name: str) -> np.ndarray:
    if name not in table.column_names:
        numeric = [
            f.name
            for f in table.schema
            if f.type in ("int64", "double", "int32", "float") and not f.name.startswith("error")
        ]
        raise UserError(f"no column {name!r} in the results; numeric columns: {', '.join(numeric)}")
    return np.asarray(table[name].to_pylist(), dtype=object)


def _log_axis(values: np.ndarray, flag: bool | None) -> bool:
    if flag is not None:
        return flag
    positive = values[values > 0]
    return bool(len(positive) == len(values) and positive.max() / positive.min() >= 20)


def _colors(plt, values: np.ndarray) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Scatter style for a color column: a colormap for numbers, a palette for categories."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        from matplotlib.colors import LogNorm, Normalize

        v = values.astype(float)
        positive = bool((v > 0).all())
        log = positive and v.max() / v.min() >= 8
        norm = LogNorm(v.min(), v.max()) if log else Normalize(v.min(), v.max())
        return {"c": v, "cmap": "viridis", "norm": norm}, None
    cats = sorted({str(v) for v in values})
    cmap = plt.get_cmap("tab10")
    lookup = {c: cmap(i % 10) for i, c in enumerate(cats)}
    return {"c": [lookup[str(v)] for v in values]}, lookup


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
    """Scatter y over x of every successful point, one panel per model, optionally colored
    by a column and with each panel's Pareto front (both axes minimized). Returns counts."""
    import pyarrow.compute as pc

    from ndpsim.sweep.store import read_points

    plt = _pyplot()
    from matplotlib.ticker import NullFormatter

    table = read_points(results)
    table = table.filter(pc.equal(table["status"], "ok"))
    if model is not None:
        models_all = sorted(set(table["model"].to_pylist()))
        if model not in models_all:
            raise UserError(f"no model {model!r} in the results; models: {', '.join(models_all)}")
        table = table.filter(pc.equal(table["model"].cast("string"), model))
    if table.num_rows == 0:
        raise UserError(f"no successful points in {results}")
    for name in (x, y) + ((color,) if color else ()):
        _column(table, name)
    models = sorted(set(table["model"].to_pylist()))
    cols = min(len(models), 2)
    rows = math.ceil(len(models) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    front_sizes: dict[str, int] = {}
    legend = None
    for ax, name in zip(axes.flat, models, strict=False):
        part = table.filter(pc.equal(table["model"].cast("string"), name))
        xs = _column(part, x).astype(float)
        ys = _column(part, y).astype(float)
        style: dict[str, Any] = {"color": "#1f77b4"}
        if color:
            style, legend = _colors(plt, _column(part, color))
        points = ax.scatter(xs, ys, s=6, alpha=0.6, linewidths=0, **style)
        if color and legend is None:
            fig.colorbar(points, ax=ax, label=color)
        if pareto:
            mask = pareto_mask(xs, ys)
            order = np.argsort(xs[mask])
            ax.step(xs[mask][order], ys[mask][order], where="post", color="#d62728", lw=1.2)
            ax.scatter(xs[mask], ys[mask], s=14, facecolors="none", edgecolors="#d62728")
            front_sizes[name] = int(mask.sum())
        ax.set_xscale("log" if _log_axis(xs, log_x) else "linear")
        ax.set_yscale("log" if _log_axis(ys, log_y) else "linear")
        for axis in (ax.xaxis, ax.yaxis):  # minor labels of a short log axis overlap
            axis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        extra = f", {front_sizes[name]} on the Pareto front" if pareto else ""
        ax.set_title(f"{name} ({len(xs):,} points{extra})", fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
    for ax in list(axes.flat)[len(models) :]:
        ax.set_visible(False)
    if legend:
        handles = [
            plt.Line2D([], [], marker="o", ls="", color=c, label=k) for k, c in legend.items()
        ]
        fig.legend(handles=handles, title=color, loc="upper right", fontsize=8)
    fig.tight_layout()
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
