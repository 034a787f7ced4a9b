"""Sweep plots render, readably: a zoomed panel per model puts the Pareto front in view,
one colour scale serves every panel, a parameter group can colour the points, and a colour
column that does not vary is refused instead of drawn as one colour. The PNGs written here
are the ones to look at (`pytest --basetemp DIR` keeps them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ndpsim.errors import UserError
from ndpsim.sweep import LocalEngine, make_plan, parse_spec, run_sweep
from tests.test_sweep_run import _compiled_core  # noqa: F401  (the numba core, compiled once)

pytest.importorskip("matplotlib")
from ndpsim.plot import _window, pareto_mask, pareto_plot  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS = [str(ROOT / "models" / m) for m in ("kws_dscnn.onnx", "ad_fc_autoencoder.onnx")]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plot") / "r"
    spec = parse_spec({
        "models": MODELS,
        "parameters": {
            "macro_cols": [8, 16, 32, 64, 128],
            "macro_rows": [64, 256],
            "precision": [{"weight_bits": 8, "activation_bits": 8},
                          {"weight_bits": 4, "activation_bits": 8}],
            "clock_mhz": {"min": 25, "max": 200, "log": True, "steps": 4},
        },
    })  # fmt: skip
    run_sweep(spec, make_plan(spec, ROOT), out, LocalEngine(2), quiet=True)
    return out


def _image(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize(
    ("color", "pareto"),
    [("parallelism_factor", True), ("precision", True), ("clock_mhz", False), (None, True)],
)
def test_plots_render_at_a_readable_size(results, tmp_path, color, pareto):
    png = tmp_path / f"{color}-{pareto}.png"
    info = pareto_plot(results, "energy_uj", "latency_us", png, color=color, pareto=pareto)
    assert info["points"] == 160 and info["models"] == 2
    image = _image(png)
    height, width, _ = image.shape
    assert width >= 1100 and height >= 400  # 100 dpi, 5.6 x 4.2 in a panel: 9-11 pt text
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 20  # drawn, not blank
    if pareto:
        assert set(info["pareto"]) == {"kws_dscnn", "ad_fc_autoencoder"}
        red = (image[..., 0] > 180) & (image[..., 1] < 80) & (image[..., 2] < 80)
        right = red[:, width // 2 :].sum()
        assert right > red[:, : width // 2].sum()  # the zoom shows the front larger


def test_a_parameter_group_colours_by_its_varying_fields(results, tmp_path):
    from ndpsim.plot import _color_values
    from ndpsim.sweep import read_points

    values = set(_color_values(read_points(results), "precision", results))
    assert values == {"weight_bits=4", "weight_bits=8"}


def test_a_colour_that_does_not_vary_is_refused(results, tmp_path):
    with pytest.raises(UserError, match="every point has cores = 1; columns that vary"):
        pareto_plot(results, "energy_uj", "latency_us", tmp_path / "x.png", color="cores")
    with pytest.raises(UserError, match="no such column or parameter group"):
        pareto_plot(results, "energy_uj", "latency_us", tmp_path / "x.png", color="nope")
    with pytest.raises(UserError, match="column 'config_name' is not numeric"):
        pareto_plot(results, "config_name", "latency_us", tmp_path / "x.png")


def test_the_zoom_window_holds_the_front_and_gives_it_room(results):
    from ndpsim.sweep import read_points

    table = read_points(results)
    for model in ("kws_dscnn", "ad_fc_autoencoder"):
        rows = [r for r in table.to_pylist() if r["model"] == model]
        for log in (True, False):
            x = np.array([r["energy_uj"] for r in rows])
            y = np.array([r["latency_us"] for r in rows])
            front = pareto_mask(x, y)
            for values in (x, y):
                lo, hi = _window(values, values[front], log)
                assert lo < values[front].min() and values[front].max() < hi
                f = np.log10 if log else (lambda a: a)
                span = f(values[front].max()) - f(values[front].min())
                assert span <= 0.5 * (f(hi) - f(lo))  # the front spread out, not in a corner
                assert f(hi) - f(lo) < f(values.max()) - f(values.min())  # a zoom
    rng = np.random.default_rng(0)  # a front across the whole cloud: the window is the cloud
    x, y = rng.lognormal(0, 1.5, 2000), rng.lognormal(0, 1.5, 2000)
    lo, hi = _window(x, x[pareto_mask(x, y)], True)
    assert np.log10(hi / lo) <= 1.25 * np.log10(x.max() / x.min())
