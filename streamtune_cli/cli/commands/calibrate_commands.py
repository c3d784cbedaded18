"""`streamtune calibrate`: fit each operator's cost, scaling and selectivity to real measurements."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import typer

ORDER = 35


def calibrate(
    traces: list[Path] = typer.Argument(..., help="trace.json files (`tune --report`) or `run --json` outputs."),
    job: Optional[Path] = typer.Option(
        None, "--job", help="The job spec the windows measured (default: the spec recorded in the first trace)."
    ),
    out: str = typer.Option(..., "--out", "-o", help="Where to write the calibrated spec ('-': stdout)."),
    min_busy: float = typer.Option(
        0.05, "--min-busy", help="Leave out windows where an operator was busy less than this (0 to 1)."
    ),
    as_json: Optional[str] = typer.Option(None, "--json", help="Also write the fits as JSON to this file ('-': stdout)."),
) -> None:
    """Fit each operator's cost_us, contention and coherency (USL sigma, kappa) and selectivity to windows a
    real executor measured at several parallelisms, and write a spec whose sim predictions match them.

    Use windows where each operator is measured on its own: local runs with --no-fusion, or a Flink trace
    (one operator per vertex). Operators never busy enough keep their hints, and the table says so."""
    import yaml

    from streamtune_cli.calibrate import calibrate as fit, load_samples
    from streamtune_cli.cli.common import console, write_text_atomic
    from streamtune_cli.errors import UsageError
    from streamtune_cli.spec import load_spec
    from streamtune_cli.spec.loader import spec_to_data
    from streamtune_cli.spec.models import JobSpec

    if not (math.isfinite(min_busy) and 0 <= min_busy < 1):
        raise UsageError(f"--min-busy must be a number in [0, 1), got {min_busy:g}")
    if out == "-" and as_json == "-":
        raise UsageError("--out - and --json - both want stdout; write one of them to a file")
    samples, recorded = load_samples(traces)
    if job is not None:
        spec = load_spec(job, check_sql_expressions=False)
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
    if out == "-":
        typer.echo(text, nl=False)
    else:
        write_text_atomic(out, text)
    report = {"schema": "streamtune.calibration/1", "job": spec.name, "windows": len(samples), "operators": [f.as_dict() for f in fits]}
    if as_json == "-":
        typer.echo(json.dumps(report, indent=2))
    elif as_json is not None:
        write_text_atomic(as_json, json.dumps(report, indent=2) + "\n")
    if out != "-" and as_json != "-":
        from rich.table import Table

        before = {op.id: op for op in spec.operators}
        table = Table(title=f"{spec.name}: calibrated from {len(samples)} windows")
        for column in ("operator", "p seen", "cost µs (was)", "sigma", "kappa", "selectivity", "fit error", "note"):
            table.add_column(column, justify="left" if column in ("operator", "note", "p seen") else "right")
        for f in fits:
            table.add_row(
                f.operator,
                ",".join(map(str, f.parallelisms)) or "-",
                f"{f.cost_us:.3g} ({before[f.operator].cost_us:.3g})" if f.cost_us is not None else f"({before[f.operator].cost_us:.3g})",
                f"{f.sigma:.3g}" if f.sigma is not None else "-",
                f"{f.kappa:.3g}" if f.kappa is not None else "-",
                f"{f.selectivity:.3g}" if f.selectivity is not None else "-",
                f"{f.rel_error:.1%}" if f.rel_error is not None else "-",
                f.note,
            )
        console.print(table)
        console.print(f"wrote {out}", highlight=False)


def register(app: typer.Typer) -> None:
    from streamtune_cli.cli.common import add_command

    add_command(app, calibrate, "calibrate")
