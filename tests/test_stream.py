"""`ndpsim stream`: a model run once per hop of an audio stream (ndpsim/stream.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ndpsim.config import load_preset
from ndpsim.errors import UserError
from ndpsim.report.power import always_on
from ndpsim.session import Session
from ndpsim.stream import run_stream, stream_inputs

ROOT = Path(__file__).resolve().parents[1]
KWS = ROOT / "models" / "kws_dscnn.onnx"


def test_identical_hops_give_the_always_on_average_power():
    hw = load_preset("ndp120").at_operating_point("0.9V")
    session = Session(KWS)
    x = stream_inputs(session, None, 1, seed=0)[0]
    r = run_stream(session, hw, [x] * 4, hop_ms=20.0)
    one = session.simulate(hw)  # the same input, full run
    aon = always_on(one, hw, 50.0)
    assert r.average_power_mw == pytest.approx(aon.average_power_mw, rel=1e-12)
    assert r.duty_cycle == pytest.approx(aon.duty_cycle, rel=1e-12)
    assert all(h.latency_us == one.latency_us for h in r.per_hop)
    assert r.deadline_misses == 0 and r.hops == 4 and r.branch_shares == {}


def test_a_hop_longer_than_its_period_misses_its_deadline():
    hw = load_preset("ndp120").at_operating_point("0.9V")  # KWS takes ~4.4 ms there
    session = Session(KWS)
    r = run_stream(session, hw, stream_inputs(session, None, 3, seed=1), hop_ms=2.0)
    assert r.deadline_misses == 3 and r.duty_cycle == pytest.approx(1.0)


def test_bad_streams_are_refused():
    session = Session(KWS)
    hw = load_preset("generic")
    with pytest.raises(UserError, match="--hops"):
        stream_inputs(session, None, None, 0)
    with pytest.raises(UserError, match="hop"):
        run_stream(session, hw, stream_inputs(session, None, 1, 0), hop_ms=0.0)


def test_cli_stream_from_an_npz_with_json_and_plot(tmp_path):
    rng = np.random.default_rng(0)
    npz = tmp_path / "s.npz"
    np.savez(npz, input=rng.standard_normal((3, 1, 1, 49, 10)).astype(np.float32))
    out, png = tmp_path / "s.json", tmp_path / "p.png"
    done = subprocess.run(
        [sys.executable, "-m", "ndpsim", "stream", str(KWS), "--hop", "20ms", "--inputs",
         str(npz), "-p", "ndp120", "--json", str(out), "--plot", str(png)],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert data["hops"] == 3 and len(data["per_hop"]) == 3 and data["average_power_mw"] > 0
    assert png.stat().st_size > 10_000
    bad = subprocess.run([sys.executable, "-m", "ndpsim", "stream", str(KWS), "--hop", "fast"],
                         capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert bad.returncode == 2 and "--hop expects" in bad.stderr


def test_streaming_wake_word_at_its_hop_matches_simulate_rate(tmp_path):
    """The streaming wake-word network at its 32.072 ms hop: `stream` of identical inputs
    reports `simulate --rate 32.072ms`'s average power (the CLI, both commands)."""
    sww = ROOT / "models" / "sww_streaming_wakeword.onnx"
    x = np.random.default_rng(3).standard_normal((1, 40, 30, 1)).astype(np.float32)
    one, hops = tmp_path / "one.npz", tmp_path / "hops.npz"
    np.savez(one, input=x)
    np.savez(hops, input=np.stack([x] * 5))
    s_json, r_json = tmp_path / "s.json", tmp_path / "r.json"
    common = ["-p", "ndp120"]
    s = subprocess.run([sys.executable, "-m", "ndpsim", "stream", str(sww), "--hop", "32.072ms",
                        "--inputs", str(hops), "--json", str(s_json), *common],
                       capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert s.returncode == 0, s.stderr
    r = subprocess.run([sys.executable, "-m", "ndpsim", "simulate", str(sww), "--rate",
                        "32.072ms", "--inputs", str(one), "--json", str(r_json), *common],
                       capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert r.returncode == 0, r.stderr
    stream, sim = json.loads(s_json.read_text()), json.loads(r_json.read_text())
    aon = sim["always_on"]
    assert stream["hops"] == 5 and stream["hop_ms"] == pytest.approx(aon["period_ms"])
    assert stream["average_power_mw"] == pytest.approx(aon["average_power_mw"], rel=1e-9)
    assert stream["duty_cycle"] == pytest.approx(aon["duty_cycle"], rel=1e-9)
    assert stream["idle_power_mw"] > 0 and 0 < stream["duty_cycle"] < 1
