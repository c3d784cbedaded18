"""`streamtune run`: run a job for a while on an executor and print what was measured, operator by operator."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from streamtune_cli.cli.common import fmt_compact, json_option
from streamtune_cli.executors.registry import EXECUTOR_NAMES

ORDER = 25

RUN_SCHEMA = "streamtune.run/1"


def executor_options_from_flags(name: str, flags: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """Executor options from command-line flags: {flag: (option name, value or None when not given)}.

    A flag given for an executor that has no such option is an error naming both; a bad value is reported
    as its flag's (`--window must be positive and finite, got 0`), not as the option's.
    """
    from streamtune_cli.errors import UsageError
    from streamtune_cli.executors.registry import EXECUTOR_OPTIONS, ExecutorOptionError, executor_options

    if name not in EXECUTOR_OPTIONS:
        executor_options(name, {})  # raises the registry's error: unknown, or not available yet
    declared = {option.name for option in EXECUTOR_OPTIONS[name]}
    options: dict[str, Any] = {}
    for flag, (option, value) in flags.items():
        if value is None:
            continue
        if option not in declared:
            owners = [n for n, opts in EXECUTOR_OPTIONS.items() if any(o.name == option for o in opts)]
            raise UsageError(f"{flag} is an option of executor {' and '.join(owners)}, not of {name!r}")
        options[option] = value
    try:
        executor_options(name, options)
    except ExecutorOptionError as exc:
        flag = next((f for f, (option, _) in flags.items() if option == exc.option), None)
        if flag is None:
            raise
        raise UsageError(f"{flag} {exc.detail} (option {exc.option!r} of executor {name!r})") from None
    return options


def executor_option(default: str, help_text: str) -> Any:
    """`--executor NAME`: the valid names in --help and completed by the shell; a wrong one is the registry's
    one-line error listing them (exit 2)."""
    return typer.Option(
        default, "--executor", "-e", metavar="<" + "|".join(EXECUTOR_NAMES) + ">", help=help_text,
        autocompletion=lambda incomplete: [n for n in EXECUTOR_NAMES if n.startswith(incomplete)],
    )


def run(
    job: Path = typer.Argument(..., help="Job spec YAML file."),
    executor: str = executor_option(
        "local", f"Where the job runs, one of: {', '.join(EXECUTOR_NAMES)} (docs/executors.md)."
    ),
    duration: float = typer.Option(10.0, "--duration", "-d", help="Seconds of the measured window (after --warmup)."),
    warmup: Optional[float] = typer.Option(None, "--warmup", help="Seconds the job runs before the window (local: 5)."),
    parallelism: Optional[str] = typer.Option(
        None, "--parallelism", "-p", help="op=N,op=N (operators not named keep the spec's)."
    ),
    no_fusion: bool = typer.Option(False, "--no-fusion", help="local: one process per operator instance, nothing fused."),
    rate: Optional[float] = typer.Option(
        None, "--rate", help="Base source rate, records/s, that the schedule multiplies (default: the spec's)."
    ),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the generated input (local) or of the noise (sim)."),
    sink: Optional[str] = typer.Option(None, "--sink", help="local: count (default), blackhole or parquet."),
    sink_dir: Optional[Path] = typer.Option(None, "--sink-dir", help="local: folder the parquet sinks write to."),
    as_json: Optional[str] = json_option(f"The measured window as JSON ({RUN_SCHEMA}; `calibrate` reads it)."),
) -> None:
    """Run a job at a parallelism for a while and print the measured observation per operator.

    On the local executor the job runs for real on this machine: one OS process per fused chain instance,
    Arrow batches between processes, bounded queues (so backpressure is real). Ctrl-C ends every process.
    """
    from streamtune_cli.cli.common import err_console, is_stdout, notice_console, print_written, quiet_progress, write_output
    from streamtune_cli.executors.registry import make_executor
    from streamtune_cli.executors.sim import spec_dir_of
    from streamtune_cli.spec import load_spec
    from streamtune_cli.tuning.parallelism import parse_parallelism

    flags: dict[str, tuple[str, Any]] = {
        "--duration": ("window_s", float(duration)),
        "--warmup": ("warmup_s", warmup),
        "--rate": ("rate_rps", rate),
        "--seed": ("seed", seed),
        "--no-fusion": ("fusion", False if no_fusion else None),
        "--sink": ("sink", sink),
        "--sink-dir": ("sink_dir", str(sink_dir) if sink_dir is not None else None),
    }
    if executor == "flink":
        from streamtune_cli.errors import UsageError

        raise UsageError(
            "`run` starts jobs; a Flink job runs already: read it with `streamtune tune JOB --executor flink "
            "--rest URL --job ID --dry-run`"
        )
    options = executor_options_from_flags(executor, flags)
    options["spec_dir"] = spec_dir_of(job)
    spec = load_spec(job)
    chosen = parse_parallelism(parallelism) if parallelism is not None else {}
    from streamtune_cli.spec.parallelism import complete_parallelism

    full = complete_parallelism(spec, chosen)
    with make_executor(executor, **options) as runner:  # type: ignore[attr-defined]
        if not is_stdout(as_json) and not quiet_progress():
            err_console.print(
                f"running {spec.name} on {executor} for {runner.warmup_s:g} s warm-up + {runner.window_s:g} s ...",
                highlight=False,
            )
        runner.deploy(spec, full)
        observation = runner.observe()
        stats = runner.stats() if hasattr(runner, "stats") else None
    if as_json is not None:
        data: dict[str, Any] = {"schema": RUN_SCHEMA, "job": spec.name, "executor": executor, "parallelism": full}
        data["observation"] = observation.model_dump(mode="json")
        if stats is not None:
            data["bytes_serialized"] = stats.bytes_serialized
        written = write_output(as_json, data)
        if is_stdout(as_json):
            return
        print_written([written])
    title = f"{spec.name} on {executor}: one {observation.window_s:.3g} s window"
    print_observation(notice_console(False), spec, observation, title)


def print_observation(console: Any, spec: Any, obs: Any, title: str) -> None:
    """The per-operator table of one measured window, and the job's line below it."""
    from rich import box
    from rich.table import Table

    table = Table(
        title=title,
        caption="busy/max: mean and busiest instance; bp: blocked on output; TPR: input / busy",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in ("operator", "p", "in/s", "out/s", "busy", "max", "bp", "idle", "TPR/s"):
        table.add_column(column, justify="left" if column == "operator" else "right", no_wrap=True)
    for op in spec.operators:
        m = obs.operators[op.id]
        table.add_row(
            op.id, str(m.parallelism), fmt_compact(m.input_rate_rps), fmt_compact(m.output_rate_rps), f"{m.busy:.2f}",
            f"{m.busy_max:.2f}", f"{m.backpressured:.2f}", f"{m.idle:.2f}", fmt_compact(m.true_processing_rate_rps),
        )
    console.print(table)
    share = obs.achieved_rate_rps / obs.target_rate_rps if obs.target_rate_rps else 0.0
    state = "[green]keeps up[/green]" if obs.keeps_up else "[red]backpressured[/red]"
    console.print(
        f"target {obs.target_rate_rps:,.0f} rec/s, achieved {obs.achieved_rate_rps:,.0f} rec/s ({share:.1%}) {state}; "
        f"lag {obs.lag_records:,.0f} records",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    from streamtune_cli.cli.common import add_command

    add_command(app, run, "run")
