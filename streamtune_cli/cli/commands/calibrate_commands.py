"""`streamtune calibrate`: fit each operator's cost, scaling and selectivity to real measurements."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from streamtune_cli.cli.common import json_option

ORDER = 35


def calibrate(
    traces: list[Path] = typer.Argument(..., help="trace.json files (`tune --report`) or `run --json` outputs."),
    job: Optional[Path] = typer.Option(
        None, "--job", help="The job spec the windows measured (default: the spec recorded in the first trace)."
    ),
    out: str = typer.Option(..., "--out", "-o", metavar="PATH", help="Where to write the calibrated spec ('-': stdout)."),
    min_busy: float = typer.Option(
        0.05, "--min-busy", help="Leave out windows where an operator was busy less than this (0 to 1)."
    ),
    as_json: Optional[str] = json_option("Also the fits as JSON (streamtune.calibration/1)."),
) -> None:
    """Fit operators' cost, scaling and selectivity to measured windows; write a spec the sim reproduces.

    Each operator's cost_us, contention and coherency (USL sigma, kappa) and selectivity are fitted to windows
    a real executor measured at several parallelisms.

    Use windows where each operator is measured on its own: local runs with --no-fusion, or a Flink trace
    (one operator per vertex). Operators never busy enough keep their hints, and the table says so."""
    import yaml

    from streamtune_cli.calibrate import calibrate as fit, load_samples
    from streamtune_cli.cli.common import check_one_stdout, console, print_written, write_output
    from streamtune_cli.errors import UsageError
    from streamtune_cli.spec import load_spec
    from streamtune_cli.spec.loader import spec_to_data
    from streamtune_cli.spec.models import JobSpec

    if not (math.isfinite(min_busy) and 0 <= min_busy < 1):
        raise UsageError(f"--min-busy must be a number in [0, 1), got {min_busy:g}")
    check_one_stdout(out=out, json=as_json)
    samples, recorded = load_samples(traces)
    if job is not None:
        spec = load_spec(job)
    elif recorded is not None:
        spec = JobSpec.model_validate(recorded)
    else:
        raise UsageError("--job is needed: `run --json` outputs do not record the spec")
    unknown = sorted({op for s in samples for op in s.observation.operators} - {op.id for op in spec.operators})
    if unknown:
        raise UsageError(f"the windows measure operators the spec does not have: {', '.join(unknown[:5])} (wrong --job?)")
    calibrated, fits = fit(spec, samples, min_busy=min_busy)
    header = (
        f"# Calibrated by `streamtune calibrate` from {len(samples)} windows in {len(traces)} file(s);\n"
        "# cost_us, scaling and selectivity are fitted to them, every other field is the job's.\n"
    )
    text = header + yaml.safe_dump(spec_to_data(calibrated), sort_keys=False, default_flow_style=False, allow_unicode=True)
    written = [write_output(out, text)]
    report = {"schema": "streamtune.calibration/1", "job": spec.name, "windows": len(samples), "operators": [f.as_dict() for f in fits]}
    if as_json is not None:
        written.append(write_output(as_json, report))
    if out != "-" and as_json != "-":
        from rich import box
        from rich.table import Table

        before = {op.id: op for op in spec.operators}
        table = Table(
            title=f"{spec.name}: calibrated from {len(samples)} windows", box=box.SIMPLE_HEAD, pad_edge=False,
            collapse_padding=True,
        )
        # Operator names and figures stay whole on 80 columns: the notes go below the table, one line each.
        for column in ("operator", "p seen", "cost µs\n(was)", "sigma", "kappa", "selec-\ntivity", "fit\nerror"):
            table.add_column(column, justify="left" if column in ("operator", "p seen") else "right", no_wrap=column != "p seen")
        for f in fits:
            table.add_row(
                f.operator,
                ", ".join(map(str, f.parallelisms)) or "-",
                f"{f.cost_us:.3g} ({before[f.operator].cost_us:.3g})" if f.cost_us is not None else f"({before[f.operator].cost_us:.3g})",
                f"{f.sigma:.3g}" if f.sigma is not None else "-",
                f"{f.kappa:.3g}" if f.kappa is not None else "-",
                f"{f.selectivity:.3g}" if f.selectivity is not None else "-",
                f"{f.rel_error:.1%}" if f.rel_error is not None else "-",
            )
        console.print(table)
        for f in fits:
            if f.note:
                console.print(f"{f.operator}: {f.note}", highlight=False, markup=False, soft_wrap=True)
    print_written(written, data_on_stdout=out == "-" or as_json == "-")


def register(app: typer.Typer) -> None:
    from streamtune_cli.cli.common import add_command

    add_command(app, calibrate, "calibrate")
