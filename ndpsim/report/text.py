"""Plain-text renderings of a SimulationReport for the terminal."""

from __future__ import annotations

from ndpsim.report.schema import SimulationReport


def _si_bytes(n: int) -> str:
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _mixed(r: SimulationReport) -> str:
    """' (mixed: w4a8 x3, w8a8 x2)' when MAC layers run at different bits."""
    mac = [f"w{x.w_bits}a{x.a_bits}" for x in r.layers if x.kind == "mac"]
    kinds = sorted(set(mac))
    if len(kinds) < 2 and not r.hardware.get("precision"):
        return ""
    return " (per layer: " + ", ".join(f"{k} x{mac.count(k)}" for k in kinds) + ")"


def summary(r: SimulationReport) -> str:
    hw = r.hardware
    lines = [
        f"model     {r.model}",
        f"hardware  {hw['name']} ({r.config_id}): {hw['cores']} core(s) x {hw['macros_per_core']} "
        f"macros of {hw['macro_rows']}x{hw['macro_cols']}, "
        f"w{hw['weight_bits']}a{hw['activation_bits']}{_mixed(r)}, "
        f"{r.clock_mhz:g} MHz @ {r.voltage_v:g} V",
        f"mode      {r.mode}",
        "",
        f"latency   {r.latency_us:,.2f} us ({r.latency_cycles:,} cycles)",
        f"energy    {r.energy_uj:,.3f} uJ  (dynamic {r.dynamic_energy_uj:,.3f} uJ, "
        f"static {r.static_power_mw:g} mW)",
    ]
    parts = ", ".join(f"{k} {v:.3f}" for k, v in r.energy_breakdown_uj.items() if v > 0)
    lines.append(f"          {parts}")
    lines.append(f"MACs      {r.macs:,}   macro utilization {100 * r.macro_utilization:.1f}%")
    t = r.traffic_bytes
    lines.append(
        f"traffic   SRAM r/w {_si_bytes(t['sram_read'])} / {_si_bytes(t['sram_write'])}, "
        f"external r/w {_si_bytes(t['ext_read'])} / {_si_bytes(t['ext_write'])}, "
        f"weight reload {_si_bytes(t['weight_write'])}"
    )
    lines.append(
        f"memory    weights {_si_bytes(r.weight_bytes)} of {_si_bytes(r.weight_capacity_bytes)} "
        f"({'resident' if r.weights_resident else 'streamed'}), peak activations "
        f"{_si_bytes(r.peak_activation_bytes)} of {_si_bytes(r.sram_bytes)} SRAM; "
        f"fits on chip: {'yes' if r.fits_on_chip else 'no'}"
    )
    for name, taken in r.branches.items():
        other = "else" if taken == "then" else "then"
        lines.append(f"branches  {name}: ran its {taken}-branch (the {other}-branch's weights "
                     "stay resident beside it)")  # fmt: skip
    if r.idle_branch_layers:
        idle = sum(ly.weight_bytes for ly in r.idle_branch_layers)
        lines.append(f"          resident weights of branches not run: {_si_bytes(idle)} in "
                     f"{sum(ly.tiles for ly in r.idle_branch_layers)} weight sets; all "
                     f"branches {_si_bytes(idle + r.weight_bytes)}")  # fmt: skip
    for a in r.agreement:
        top1 = (
            ""
            if a.top1_agreement is None
            else f", top-1 {'agrees' if a.top1_agreement else 'differs'}"
            if a.samples == 1
            else f", top-1 agrees on {a.top1_agreed} of {a.samples} samples"
        )
        over = f" over {a.samples} samples" if a.samples > 1 else ""
        lines.append(
            f"vs {a.reference}  {a.output}: SQNR {a.sqnr_db:.1f} dB{over}, "
            f"max abs error {a.max_abs_error:.4g}{top1}"
        )
    return "\n".join(lines)


def layer_table(r: SimulationReport) -> str:
    head = (
        f"{'layer':<28} {'op':<18} {'w/a bits':>8} {'cycles':>9} {'start':>9} {'bound':<8} "
        f"{'MACs':>11} "
        f"{'util%':>6} {'tiles':>5} {'energy nJ':>10} {'SRAM B':>9} {'ext B':>8}"
    )
    rows = [head, "-" * len(head)]
    for lay in r.layers:
        op = lay.op_type + ("+" + "+".join(lay.fused) if lay.fused else "")
        bits = (f"w{lay.w_bits}" if lay.w_bits else "") + (f"a{lay.a_bits}" if lay.a_bits else "")
        rows.append(
            f"{lay.name[:28]:<28} {op[:18]:<18} {bits:>8} {lay.cycles:>9,} {lay.start_cycle:>9,} "
            f"{lay.bound:<8} {lay.macs:>11,} {100 * lay.macro_utilization:>6.1f} {lay.tiles:>5} "
            f"{1000 * lay.energy_uj:>10.2f} {lay.sram_read_bytes + lay.sram_write_bytes:>9,} "
            f"{lay.ext_read_bytes + lay.ext_write_bytes:>8,}"
        )
    rows.append("-" * len(head))
    rows.append(
        f"{'total':<28} {'':<18} {'':>8} {r.latency_cycles:>9,} {'':>9} {'':<8} {r.macs:>11,} "
        f"{100 * r.macro_utilization:>6.1f} {'':>5} {1000 * r.energy_uj:>10.2f}"
    )
    return "\n".join(rows)
