"""`streamtune fuse`: which operators to chain, why every boundary is or is not fused, and the fused spec."""

from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from streamtune_cli.cli.common import OPTIONAL_PATH

ORDER = 20
STDOUT = "-"


class FuseMode(str, Enum):
    ours = "ours"
    flink = "flink"


def fuse(
    file: Path = typer.Argument(..., help="Job spec YAML file."),
    mode: FuseMode = typer.Option(
        FuseMode.ours,
        "--mode",
        help="ours: Flink's legal chaining + semantic fusion + cost model, and the joint plan (chains and "
        "parallelism for the peak rate); flink: Flink's chains exactly.",
    ),
    out: Optional[str] = typer.Option(None, "--out", "-o", metavar="PATH", help="Write the fused plan as a job spec (YAML; '-': stdout)."),
    joint_out: Optional[str] = typer.Option(
        None,
        "--joint-out",
        metavar="PATH",
        help="Write the joint plan as a job spec: every operator at its chain's parallelism, `chaining: head` "
        "where a chain must start (YAML; '-': stdout).",
    ),
    json_out: Optional[str] = typer.Option(
        None,
        "--json",
        metavar=OPTIONAL_PATH,
        help="Write the JSON report (schema streamtune.fusion/2) to PATH; to stdout, in place of the tables, "
        "when PATH is '-' or left out.",
    ),
    markdown: Optional[str] = typer.Option(
        None, "--markdown", "--md", metavar="PATH", help="Write a Markdown report with a Mermaid DAG ('-': stdout)."
    ),
    rate: Optional[float] = typer.Option(
        None, "--rate", metavar="RPS", help="Target total source rate, records/s (default: the workload's rate at its schedule peak)."
    ),
    strict_max_parallelism: bool = typer.Option(
        False,
        "--strict-max-parallelism",
        help="Chain only operators of equal max parallelism, as Flink does when its option to chain "
        "operators with different max parallelism is false (its default is true).",
    ),
    serde_us_per_record: float = typer.Option(0.1, metavar="US", help="Cost model: serialization CPU per record, per side (µs)."),
    serde_us_per_byte: float = typer.Option(0.001, metavar="US", help="Cost model: serialization CPU per byte, per side (µs)."),
    copy_us_per_record: float = typer.Option(0.05, metavar="US", help="Cost model: chained record copy per record (µs)."),
    copy_us_per_byte: float = typer.Option(0.0005, metavar="US", help="Cost model: chained record copy per byte (µs)."),
    hop_latency_ms: float = typer.Option(0.5, metavar="MS", help="Cost model: latency of one queue/network hop (ms)."),
    no_sql: bool = typer.Option(False, "--no-sql", help="Skip checking SQL expressions (other commands still check them)."),
    measure: bool = typer.Option(
        False,
        "--measure",
        help="Also run the job unfused and fused on the local executor (sources flat out) and print measured "
        "throughput, CPU per record and bytes serialized next to the cost model's prediction.",
    ),
    measure_window: float = typer.Option(10.0, "--measure-window", metavar="S", help="--measure: seconds measured per run (after 3 s warm-up)."),
    measure_json: Optional[str] = typer.Option(
        None, "--measure-json", metavar="PATH", help="--measure: write the figures as JSON ('-': stdout)."
    ),
    measure_cores: Optional[int] = typer.Option(
        None,
        "--measure-cores",
        min=1,
        metavar="N",
        help="--measure: pin both runs to this many CPUs, the same budget for each (default: every CPU; "
        "unfused then also gains from running its processes in parallel).",
    ),
) -> None:
    """Plan operator fusion: the chains, every boundary fused or not and why, the savings per second, and
    the joint plan (chains and parallelism together) at the rate the job must sustain.

    Every output option takes '-' for stdout; the tables are printed only when nothing else goes there.
    """
    from streamtune_cli.cli.common import check_one_stdout, console, print_written, write_output
    from streamtune_cli.errors import UsageError
    from streamtune_cli.fusion import CostModel, FlinkOptions, plan_fusion
    from streamtune_cli.report.fusion_report import fusion_json, fusion_markdown, fusion_renderables, joint_spec
    from streamtune_cli.spec import dump_spec, load_spec

    if rate is not None and not (math.isfinite(rate) and rate > 0):
        raise UsageError(f"--rate must be positive and finite (records/s), got {rate:g}")
    prices = {
        "--serde-us-per-record": serde_us_per_record,
        "--serde-us-per-byte": serde_us_per_byte,
        "--copy-us-per-record": copy_us_per_record,
        "--copy-us-per-byte": copy_us_per_byte,
        "--hop-latency-ms": hop_latency_ms,
    }
    for option, value in prices.items():
        if not (math.isfinite(value) and value >= 0):
            raise UsageError(f"cost model values must be >= 0 and finite: {option} is {value:g}")
    if measure and not (math.isfinite(measure_window) and measure_window > 0):
        raise UsageError(f"--measure-window must be positive and finite (seconds), got {measure_window:g}")
    outputs = {"out": out, "joint_out": joint_out, "json": json_out, "markdown": markdown, "measure_json": measure_json}
    check_one_stdout(**outputs)
    if joint_out is not None and mode != FuseMode.ours:
        raise UsageError("--joint-out needs --mode ours (the joint plan is ours)")
    data_on_stdout = any(value == STDOUT for value in outputs.values())
    spec = load_spec(file, check_sql_expressions=not no_sql)
    if rate is None:
        # Size for the schedule's peak, by the one definition `tune` and `bench` use (it reads trace files,
        # which the planner itself does not).
        from streamtune_cli.definitions import peak_target_rate_rps

        rate = peak_target_rate_rps(spec.workload.rate_rps, spec.workload.schedule, Path(file).resolve().parent)
    model = CostModel(
        serde_us_per_record=serde_us_per_record,
        serde_us_per_byte=serde_us_per_byte,
        copy_us_per_record=copy_us_per_record,
        copy_us_per_byte=copy_us_per_byte,
        hop_latency_ms=hop_latency_ms,
    )
    plan = plan_fusion(
        spec,
        mode=mode.value,
        rate_rps=rate,
        cost_model=model,
        flink=FlinkOptions(chain_different_max_parallelism=not strict_max_parallelism),
    )
    written = []
    if out is not None:
        header = (
            f"# Fused plan of {file} (streamtune fuse --mode {mode.value}).\n"
            "# A fused operator's id joins its members' ids with '__'; its name is the chain's Flink name.\n"
        )
        written.append(write_output(out, header + dump_spec(plan.fused_spec)))
    if joint_out is not None and plan.joint is not None:
        header = (
            f"# Joint plan of {file} at {plan.rate_rps:,.0f} rec/s (streamtune fuse): each operator at its chain's\n"
            "# parallelism; Flink chains every forward edge between equal parallelism unless `chaining: head`.\n"
        )
        written.append(write_output(joint_out, header + dump_spec(joint_spec(plan))))
    if json_out is not None:
        written.append(write_output(json_out, fusion_json(plan)))
    if markdown is not None:
        written.append(write_output(markdown, fusion_markdown(plan)))
    if not data_on_stdout:
        for renderable in fusion_renderables(plan):
            console.print(renderable)
    print_written(written, data_on_stdout)
    if measure:
        _measure(file, spec, measure_window, measure_json, measure_cores)


def _measure(file: Path, spec: object, window_s: float, json_out: Optional[str], cores: Optional[int]) -> None:
    from streamtune_cli.cli.common import console, err_console, print_written, quiet_progress, write_output
    from streamtune_cli.executors.sim import spec_dir_of
    from streamtune_cli.errors import UsageError
    from streamtune_cli.fusion.measure import measure_fusion

    def progress(fused: bool) -> None:
        if json_out != "-" and not quiet_progress():
            err_console.print(f"measuring {'fused' if fused else 'unfused'} on the local executor ({window_s:g} s) ...")

    try:
        result = measure_fusion(spec, window_s=window_s, spec_dir=spec_dir_of(file), cores=cores, on_run=progress)  # type: ignore[arg-type]
    except ValueError as exc:  # --measure-cores beyond this machine's CPUs
        raise UsageError(f"--measure-cores: {exc}") from None
    if json_out is not None:
        path = write_output(json_out, result.to_dict())
        if path is None:
            return
        print_written([path])
    from rich.table import Table

    budget = f"pinned to {cores} CPU{'s' if cores != 1 else ''}" if cores else "every CPU"
    table = Table(title=f"{result.job} on the local executor ({budget}) vs the cost model (fuse --mode flink chains)")
    for column in ("run", "procs", "rec/s", "cores", "CPU µs/rec", "model", "ser. B/rec", "model "):
        table.add_column(column, justify="left" if column == "run" else "right")
    for run in result.runs:
        table.add_row(
            "fused" if run.fused else "unfused",
            str(run.processes),
            f"{run.throughput_rps:,.0f}",
            f"{run.cores_used:.2f}",
            f"{run.cpu_us_per_record:.3g}",
            f"{run.predicted_cpu_us_per_record:.3g}",
            f"{run.serialized_bytes_per_record:.3g}",
            f"{run.predicted_serialized_bytes_per_record:.3g}",
        )
    console.print(table)
    unfused, fused = result.runs
    cpu = unfused.cpu_us_per_record / fused.cpu_us_per_record if fused.cpu_us_per_record else float("inf")
    model_cpu = (
        unfused.predicted_cpu_us_per_record / fused.predicted_cpu_us_per_record if fused.predicted_cpu_us_per_record else float("inf")
    )
    console.print(
        f"fused / unfused throughput: measured x{result.speedup:.2f}, cost model x{result.predicted_speedup:.2f} "
        f"(the model gives every task its own core); CPU per record: measured /{cpu:.2f}, cost model /{model_cpu:.2f}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    from streamtune_cli.cli.common import add_command

    add_command(app, fuse, "fuse")
