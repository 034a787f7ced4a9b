"""Which data branches a timing-only run takes: `--branch then|else|both`.

A full run takes, for every If on run-time data, the branch the data picks (Session.
execute_settled). A timing-only run has no data, so the user names the branch: `then` or
`else` for every such If, or `both` (the default): one run with every If on its then-branch
and one with every If on its else-branch, so the report shows the cheap and the expensive
cost side by side. (`SimOptions.branches` picks per If through the API.)
"""

from __future__ import annotations

from ndpsim.errors import UserError

CHOICES = ("then", "else", "both")


def branch_runs(data_ifs: list[str], choice: str | None) -> list[tuple[str, dict[str, bool]]]:
    """(label, If name -> True for then) of each timing-only run `choice` asks for; one run
    without a label when the model has no If on run-time data."""
    choice = choice or "both"
    if choice not in CHOICES:
        raise UserError(f"--branch must be one of {', '.join(CHOICES)}, got {choice!r}")
    if not data_ifs:
        return [("", {})]
    flags = {"then": (True,), "else": (False,), "both": (True, False)}[choice]
    return [("then" if f else "else", dict.fromkeys(data_ifs, f)) for f in flags]


def timing_runs(model, hw, opts, branch: str | None) -> list:
    """[(label, timing-only report)] of `model` for each run `branch` asks for: one Session
    (programs kept in the user's cache), its If names, one report per choice."""
    from ndpsim.program_cache import ProgramCache
    from ndpsim.session import Session
    from ndpsim.sim.notice import compile_notice

    session = Session(model, input_shapes=opts.input_shapes, input_values=opts.input_values,
                      cache=ProgramCache.default())  # fmt: skip
    runs = branch_runs(session.data_ifs, branch)
    with compile_notice():
        return [(label, session.simulate(hw, opts.model_copy(update={"branches": chosen})))
                for label, chosen in runs]  # fmt: skip


def check_full_run(choice: str | None, timing_only: bool) -> None:
    """`--branch` is a timing-only choice: a full run takes the branch the data picks."""
    if choice is not None and not timing_only:
        raise UserError("--branch applies with --timing-only; a full run takes the branch the "
                        "data picks (add --timing-only to choose it)")  # fmt: skip
