"""`streamtune tune` (run a tuner on an executor until it converges) and `streamtune simulate` (what-if)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional

import typer

from streamtune_cli.cli.commands.run_commands import executor_option
from streamtune_cli.cli.common import fmt_compact, json_option
from streamtune_cli.executors.registry import EXECUTOR_NAMES, EXECUTOR_OPTIONS

ORDER = 30

# Flink's upper bound on max parallelism (spec.models.MAX_PARALLELISM_BOUND; not imported, to keep start-up light).
MAX_PARALLELISM = 32768

# tuning.tuners.TUNER_NAMES, the default first (not imported: the registry pulls in pydantic models, which
# `--help` does not need; tests/cli/test_conventions.py checks the two agree).
TUNER_NAMES = ("streamtune", "ds2", "conttune", "autoscaler")

# What `tune --json` prints: the summary.json fields (gated by the same rules) and the session's details.
TUNE_SCHEMA = "streamtune.tune-summary/1"
SIMULATE_SCHEMA = "streamtune.simulate/1"

TUNE_EXIT_HELP = (
    "Exit codes: 0 the job keeps up at the peak target at the end (and always for --dry-run); 1 it ran but "
    "does not keep up at the peak, or the loop stalled; 2 bad input; 3 internal error; 4 the executor "
    "failed; 130 interrupted."
)

# Executor options the CLI exposes as flags (flag -> option); each flag's help and bounds are the option's own.
_EXECUTOR_FLAGS = {
    "--seed": "seed",
    "--noise": "noise",
    "--rate": "rate_rps",
    "--window": "window_s",
    "--warmup": "warmup_s",
    "--no-fusion": "fusion",
    "--rest": "rest",
    "--job": "job",
}


def _executor_flag(flag: str, extra: str = "", default: Any = None) -> Any:
    """A typer option for an executor option: its meaning and bounds come from the registry (the first
    executor that has it), followed by which executors take it and their defaults; left out, the executor's
    own default applies. The registry's declarations import no pydantic: cheap enough for `--help`."""
    name = _EXECUTOR_FLAGS[flag]
    having = [(executor, option) for executor in EXECUTOR_NAMES for option in EXECUTOR_OPTIONS[executor] if option.name == name]
    option = having[0][1]
    takers = ", ".join(
        f"{executor} (default {other.default})" if other.default is not None and default is None else executor
        for executor, other in having
    )
    return typer.Option(
        default,
        flag,
        help=f"{option.help}; {option.requirement()}.{extra} Executors: {takers}.",
        show_default=default is not None,
    )


_EXECUTOR_HELP = f"Where the job runs, one of: {', '.join(EXECUTOR_NAMES)} (docs/executors.md)."
_RATE_EXTRA = " A square wave with low_factor 0.5 asks for half of it in its low half."


def _executor_settings(name: str, job_path: Path, **flags: Any) -> dict[str, Any]:
    """Executor options from the command's flags (by flag name without dashes), validated as data before
    anything runs. A flag the executor has no option for is an error; a bad value is reported as its flag's
    (`--noise must be ...`), not as the option's.
    """
    from streamtune_cli.cli.commands.run_commands import executor_options_from_flags
    from streamtune_cli.executors.sim import spec_dir_of

    named = {f"--{flag.replace('_', '-')}": (_EXECUTOR_FLAGS[f"--{flag.replace('_', '-')}"], value) for flag, value in flags.items()}
    options = executor_options_from_flags(name, named)
    # Trace schedules name their files relative to the spec.
    return {**options, "spec_dir": spec_dir_of(job_path)}


def _load_job(job: Path, executor: str = "sim"):  # noqa: ANN202 - JobSpec; kept out of the module's import cost
    from streamtune_cli.spec import load_spec

    # Every command checks a spec the same way (SQL included: spec/sql.py), so what `validate` accepts is
    # what `tune` accepts, whichever executor runs it.
    return load_spec(job)


def _fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def _step_line(step: Any, base_rate_rps: float) -> str:
    obs = step.observation
    share = obs.achieved_rate_rps / obs.target_rate_rps if obs.target_rate_rps else 0.0
    state = "[red]backpressured[/red]" if obs.backpressured else "[green]keeps up[/green]"
    total = sum(step.parallelism.values())
    proposed = sum(step.decision.parallelism.values()) if step.decision else total
    factor = obs.target_rate_rps / base_rate_rps
    return (
        f"step {step.step} (t={obs.t_s:,.0f} s, target x{factor:.3g} of base): {total} instances, "
        f"{_fmt_rate(obs.achieved_rate_rps)}/{_fmt_rate(obs.target_rate_rps)} rec/s ({share:.0%}) {state} "
        f"-> {proposed} instances"
    )


def _rates_line(base_rate_rps: float, peak_rps: float, last_target_rps: float) -> str:
    return (
        f"rates: base {_fmt_rate(base_rate_rps)} rec/s (x the schedule); peak target {_fmt_rate(peak_rps)} rec/s "
        f"(x{peak_rps / base_rate_rps:.3g}); last window's target {_fmt_rate(last_target_rps)} rec/s"
    )


def tune(
    job: Path = typer.Argument(..., help="Job spec YAML file."),
    executor: str = executor_option("sim", _EXECUTOR_HELP),
    tuner: str = typer.Option(
        "streamtune", "--tuner", "-t", metavar="NAME",
        help="streamtune (history-pretrained, the default), ds2, conttune or autoscaler (docs/tuners.md).",
        autocompletion=lambda incomplete: [n for n in TUNER_NAMES if n.startswith(incomplete)],
    ),
    tuner_option: List[str] = typer.Option(
        [], "--tuner-option", metavar="KEY=VALUE",
        help="A tuner option, repeatable: the tuner's own names (docs/tuners.md) or, for the autoscaler, the "
        "Flink autoscaler's (job.autoscaler.*, docs/cli.md).",
    ),
    models: Optional[Path] = typer.Option(
        None, "--models",
        help="streamtune: folder of pretrained models (`streamtune pretrain --out`); default: the shipped ones.",
    ),
    history: Optional[Path] = typer.Option(
        None, "--history",
        help="Add this session to the history at DIR (created if missing), so the next `pretrain` learns from it.",
    ),
    seed: Optional[int] = _executor_flag("--seed", " The trace records it (0 when not given)."),
    rate: Optional[float] = _executor_flag("--rate", _RATE_EXTRA),
    max_steps: int = typer.Option(10, "--max-steps", min=1, help="Most measurement windows before giving up."),
    parallelism_cap: Optional[int] = typer.Option(
        None,
        "--parallelism-cap",
        min=1,
        max=MAX_PARALLELISM,
        help="Most instances the tuner may give any operator, never above the operator's own max_parallelism "
        "(default: each operator's max_parallelism). Not Flink's max parallelism (key groups), which the "
        "spec sets per operator.",
    ),
    max_parallelism_alias: Optional[int] = typer.Option(
        None, "--max-parallelism", min=1, max=MAX_PARALLELISM, hidden=True, help="Old name of --parallelism-cap."
    ),
    max_change: Optional[float] = typer.Option(
        None, "--max-change", help="Safety bound per step: at most xF up or /F down (F >= 1, finite)."
    ),
    noise: Optional[float] = _executor_flag("--noise"),
    window: Optional[float] = _executor_flag("--window"),
    warmup: Optional[float] = _executor_flag("--warmup"),
    no_fusion: bool = typer.Option(False, "--no-fusion", help="local: one process per operator instance, nothing fused."),
    rest: Optional[str] = _executor_flag("--rest"),
    flink_job: Optional[str] = _executor_flag("--job"),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Observe once and print the first recommendation; deploy nothing."
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Folder for the reports: trace.json, summary.json, report.md, report.html."
    ),
    report_alias: Optional[Path] = typer.Option(None, "--report", hidden=True, help="Old name of --out."),
    as_json: Optional[str] = json_option("The result as JSON: summary.json's fields and more (schema tune-summary/1)."),
) -> None:
    """Tune a job's parallelism: deploy, observe, let the tuner propose, repeat until it converges.

    Exits 1 when the job does not keep up at the peak target at the end, so CI can trust it.
    """
    from streamtune_cli.cli.common import err_console, is_stdout, notice_console, quiet_progress
    from streamtune_cli.errors import StreamtuneError, UsageError
    from streamtune_cli.executors.registry import make_executor
    from streamtune_cli.tuning.loop import TuningConfig, run_tuning
    from streamtune_cli.tuning.tuners import make_tuner, tuner_options_from_text

    out = _one_of(out, "--out", report_alias, "--report")
    folder_option(out, "--out", "--json")
    parallelism_cap = _one_of(parallelism_cap, "--parallelism-cap", max_parallelism_alias, "--max-parallelism")
    if executor == "flink" and (rest is None or flink_job is None):
        raise UsageError("--executor flink needs --rest URL and --job ID (the running job; see `streamtune flink status`)")
    options = _executor_settings(
        executor, job, seed=seed, noise=noise, rate=rate, window=window, warmup=warmup,
        no_fusion=False if no_fusion else None, rest=rest, job=flink_job,
    )
    seed = 0 if seed is None else seed
    if executor == "flink" and dry_run:
        options["read_only"] = True  # a dry run never changes the cluster, not even the starting point
    config = TuningConfig(
        max_steps=max_steps, max_parallelism=parallelism_cap, max_change_factor=max_change, dry_run=dry_run
    )
    if models is not None and tuner != "streamtune":
        raise UsageError(f"--models is an option of the streamtune tuner, not of {tuner!r}")
    tuner_options = tuner_options_from_text(tuner, tuner_option)
    if models is not None:
        if "models" in tuner_options:
            raise UsageError("--models and --tuner-option models=... name the models twice; give one")
        tuner_options["models"] = str(models)
    chosen = make_tuner(tuner, **tuner_options)
    spec = _load_job(job, executor)
    json_on_stdout = is_stdout(as_json)
    show_steps = not json_on_stdout and not quiet_progress()
    steps: list[Any] = []
    with make_executor(executor, **options) as runner:  # type: ignore[attr-defined]
        if executor == "flink":
            from streamtune_cli.flink.tuning import vertex_spec

            # Tuners work per job vertex: a chain is one unit of parallelism, at what the job runs now.
            caps: list[str] = []
            spec = vertex_spec(spec, runner, notes=caps)
            for line in caps if show_steps else []:
                err_console.print(f"cap: {line}", highlight=False)
        # The rate the schedule multiplies: --rate, else the spec's (the sim's reading of both).
        base_rate_rps = runner.base_rate_rps(spec)

        def on_step(step: Any) -> None:
            steps.append(step)
            if show_steps:
                err_console.print(_step_line(step, base_rate_rps), highlight=False)

        in_flink_terms = None
        try:
            trace = run_tuning(spec, runner, chosen, config, seed=seed, on_step=on_step)
            if executor == "flink":
                from streamtune_cli.flink.tuning import flink_terms

                chosen_p = trace.meta["recommended_parallelism" if dry_run else "final_parallelism"]
                in_flink_terms = flink_terms(runner, spec, chosen_p)
        except StreamtuneError as exc:
            # Nothing measured is lost: the windows observed so far go to a file the message names.
            if steps:
                saved = _save_partial_trace(spec, executor, tuner, seed, steps, out, exc)
                if saved is not None:
                    raise _with_saved(exc, saved) from None
            raise
    meta = trace.meta
    oracle = meta["oracle"]  # at the schedule's peak target, under the same parallelism caps
    # The oracle is the sim's capacity model (the spec's cost hints): the truth of the sim, a guess about
    # real processes, so only the sim's reports and tables compare with it.
    modelled = trace.executor == "sim"
    files = _write_reports(trace, out, oracle["parallelism"] if modelled else None) if out is not None else []
    if history is not None:
        files.append(_add_to_history(trace, history, out))
    rows = [
        {
            "operator": op.id,
            "initial": meta["initial_parallelism"][op.id],
            "final": meta["final_parallelism"][op.id],
            "recommended": meta["recommended_parallelism"][op.id],
            "oracle": oracle["parallelism"][op.id],
            "reason": (trace.steps[-1].decision.reasons.get(op.id, "") if trace.steps[-1].decision else ""),
        }
        for op in spec.operators
    ]
    console = notice_console(json_on_stdout)
    if as_json is not None:
        from streamtune_cli.cli.common import write_output

        data = tune_json(trace, oracle["parallelism"] if modelled else None, base_rate_rps, rows, files)
        if in_flink_terms is not None:
            data["flink"] = in_flink_terms
        files.append(write_output(as_json, data))
    if not json_on_stdout:
        if not modelled:
            for row in rows:
                row.pop("oracle")
        if dry_run:
            _print_recommendation(console, trace, rows)
        else:
            _print_summary(console, trace, rows, oracle if modelled else None)
        console.print(_rates_line(base_rate_rps, meta["peak_target_rate_rps"], meta["final_target_rate_rps"]), highlight=False)
        if in_flink_terms is not None:
            console.print(
                "in Flink's terms (for a resubmission): pipeline.jobvertex-parallelism-overrides: "
                + in_flink_terms["pipeline.jobvertex-parallelism-overrides"],
                highlight=False,
            )
            console.print(
                "PUT /jobs/{id}/resource-requirements: " + json.dumps(in_flink_terms["resource-requirements"]),
                highlight=False,
            )
    from streamtune_cli.cli.common import print_written

    print_written(files, json_on_stdout)
    failure = tune_failure(meta)
    if failure is not None:
        err_console.print(f"tune: {failure} (exit 1)", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1)


def tune_failure(meta: dict[str, Any]) -> Optional[str]:
    """Why a finished session is a failure for CI (exit 1), or None: the job does not keep up at the peak
    target at the end, or the loop stalled. A dry run only recommends, so it never fails."""
    if meta["stop_reason"] == "dry_run":
        return None
    if meta["stop_reason"] == "stalled":
        return "the loop stalled: the job is backpressured and the tuner proposes no change"
    if not meta["target_met"]:
        return f"the job does not keep up at the peak target ({meta['peak_target_rate_rps']:,.0f} rec/s) at the end"
    return None


def tune_json(
    trace: Any, oracle: Optional[dict[str, int]], base_rate_rps: float, rows: list[dict[str, Any]], files: list[Any]
) -> dict[str, Any]:
    """`tune --json`: summary.json's fields (trace_summary: what the gate rules read), then the details."""
    from streamtune_cli.report.trace_report import trace_summary

    summary = {k: v for k, v in trace_summary(trace, oracle).items() if k != "schema"}
    return {
        "schema": TUNE_SCHEMA,
        **summary,
        "base_rate_rps": base_rate_rps,
        "meta": trace.meta,
        "operators": rows,
        "report_files": [str(f) for f in files if f is not None],
    }


def folder_option(path: Optional[Path], option: str, instead: str) -> None:
    """A folder cannot be stdout: `-` there is a mistake, not a folder named `-`."""
    if path is not None and str(path) == "-":
        from streamtune_cli.errors import UsageError

        raise UsageError(f"{option} names a folder (several files go there), so it cannot be '-'; for stdout use {instead} -")


def _one_of(value: Any, name: str, alias_value: Any, alias: str) -> Any:
    """An option and its old name (kept as a hidden alias): either one, not both."""
    if value is not None and alias_value is not None:
        from streamtune_cli.errors import UsageError

        raise UsageError(f"{alias} is the old name of {name}; give only {name}")
    return alias_value if value is None else value


def _with_saved(exc: Any, saved: Path) -> Any:
    """The same error, its message followed by where the steps observed so far were saved."""
    from streamtune_cli.errors import ExecutorError, UsageError

    note = f"; the {_steps_in(saved)} steps observed so far are saved in {saved}"
    if isinstance(exc, ExecutorError):
        return ExecutorError(exc.executor, exc.detail + note)
    return UsageError(str(exc) + note)


def _steps_in(saved: Path) -> int:
    return len(json.loads(saved.read_text())["steps"])


def _save_partial_trace(
    spec: Any, executor: str, tuner: str, seed: int, steps: list[Any], report: Optional[Path], exc: Any
) -> Optional[Path]:
    """The steps observed before a failure, as a trace file `calibrate` and `history add` read; None when
    even that cannot be written (the original error is what the user needs then)."""
    from streamtune_cli.errors import StreamtuneError
    from streamtune_cli.executors.base import Trace
    from streamtune_cli.io import write_json_atomic
    from streamtune_cli.spec.loader import spec_to_data

    folder = report if report is not None else Path(".")
    path = folder / ("partial-trace.json" if report is not None else f"streamtune-{spec.name}-partial-trace.json")
    trace = Trace(
        job=spec.name,
        spec=spec_to_data(spec),
        executor=executor,
        tuner=tuner,
        seed=seed,
        steps=steps,
        meta={"partial": True, "error": str(exc)},
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, trace.model_dump(mode="json"))
    except (OSError, StreamtuneError):
        return None
    if report is not None:
        # A complete report of an earlier run in the folder would read as this one's: replace it with the
        # partial session's (its page says FAILED at the top), or at least take its manifest away.
        from streamtune_cli.report.trace_report import write_trace_reports

        try:
            write_trace_reports(trace, folder)
        except Exception:  # noqa: BLE001 - the session's own error is what the user must see
            (folder / "manifest.json").unlink(missing_ok=True)
    return path


def _add_to_history(trace: Any, history: Path, report: Optional[Path]) -> Path:
    """Record the session as a run of the history (through the trace file, as `history add` does)."""
    import tempfile

    from streamtune_cli.history.importers import add_trace
    from streamtune_cli.io import write_json_atomic

    if report is not None and (report / "trace.json").is_file():
        add_trace(report / "trace.json", history)
        return history
    with tempfile.TemporaryDirectory(prefix="streamtune-trace-") as tmp:
        path = Path(tmp) / "trace.json"
        write_json_atomic(path, trace.model_dump(mode="json"))
        add_trace(path, history)
    return history


def _print_recommendation(console: Any, trace: Any, rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    step = trace.steps[0]
    obs = step.observation
    table = Table(title=f"{trace.job}: first {trace.tuner} recommendation (dry run, nothing deployed)")
    modelled = all("oracle" in row for row in rows)
    columns = ("operator", "current", "recommended") + (("oracle",) if modelled else ()) + ("reason",)
    for column in columns:
        # Operator names stay whole on 80 columns; the reason wraps at word boundaries instead.
        table.add_column(
            column, justify="left" if column in ("operator", "reason") else "right", no_wrap=column != "reason"
        )
    for row in rows:
        changed = row["recommended"] != row["initial"]
        rec = f"[bold]{row['recommended']}[/bold]" if changed else str(row["recommended"])
        oracle_cell = (str(row["oracle"]),) if modelled else ()
        table.add_row(row["operator"], str(row["initial"]), rec, *oracle_cell, row["reason"])
    console.print(table)
    console.print(
        f"observed {_fmt_rate(obs.achieved_rate_rps)} of {_fmt_rate(obs.target_rate_rps)} rec/s; "
        f"{step.decision.summary if step.decision else ''}"
    )


def _print_summary(console: Any, trace: Any, rows: list[dict[str, Any]], oracle: Optional[dict[str, Any]]) -> None:
    """The run's outcome; `oracle` (the sim's model) is shown next to the final parallelism when given."""
    from rich.table import Table

    meta = trace.meta
    table = Table(title=f"{trace.job}: {trace.tuner} on {trace.executor}")
    for column in ("operator", "initial", "final") + (("oracle",) if oracle is not None else ()):
        table.add_column(column, justify="left" if column == "operator" else "right", no_wrap=True)
    for row in rows:
        final = str(row["final"])
        if oracle is None:
            table.add_row(row["operator"], str(row["initial"]), final)
            continue
        if row["final"] < row["oracle"]:
            final = f"[yellow]{final}[/yellow]"
        table.add_row(row["operator"], str(row["initial"]), final, str(row["oracle"]))
    table.add_section()
    total = ["[bold]total[/bold]", str(sum(r["initial"] for r in rows)), str(meta["final_total"])]
    if oracle is not None:
        total.append(str(oracle["total"]) + ("" if oracle["feasible"] else " (infeasible)"))
    table.add_row(*total)
    console.print(table)
    met = "[green]yes[/green]" if meta["target_met"] else "[red]no[/red]"
    console.print(
        f"reconfigurations: {meta['reconfigurations']}   target met at the peak "
        f"({_fmt_rate(meta['peak_target_rate_rps'])} rec/s): {met}"
    )
    console.print(f"backpressured windows: {meta['backpressured_windows']} of {meta['steps']}")
    drain = meta.get("final_drain_s")
    drain_text = "no lag" if meta["final_lag_records"] <= 0 else (
        f"drains in about {drain:,.0f} s at the last window's rate" if drain is not None else "[yellow]not draining[/yellow]"
    )
    console.print(f"lag at the end: {_fmt_rate(meta['final_lag_records'])} records ({drain_text})")
    console.print(f"stop: {meta['stop_reason']} ({meta['stop_detail']})")
    if oracle is not None and not oracle["feasible"]:
        console.print(f"[yellow]oracle: {oracle['reason']}[/yellow]")


def _write_reports(trace: Any, out_dir: Path, oracle: Optional[dict[str, int]]) -> list[Path]:
    """trace.json, summary.json, report.md and report.html."""
    from streamtune_cli.report.trace_report import write_trace_reports

    return write_trace_reports(trace, Path(out_dir), oracle=oracle)


def simulate(
    job: Path = typer.Argument(..., help="Job spec YAML file."),
    parallelism: Optional[str] = typer.Option(None, "--parallelism", "-p", help="op=N,op=N (operators not named keep the spec's)."),
    rate: Optional[float] = _executor_flag("--rate", _RATE_EXTRA),
    seed: int = _executor_flag("--seed", default=0),
    noise: Optional[float] = _executor_flag("--noise"),
    as_json: Optional[str] = json_option(f"The window, its bottlenecks and the oracles as JSON ({SIMULATE_SCHEMA})."),
) -> None:
    """What-if: one simulated window at a chosen parallelism, its bottleneck(s), and the oracle for comparison."""
    from streamtune_cli.cli.common import is_stdout, notice_console, print_written, write_output
    from streamtune_cli.tuning.parallelism import parse_parallelism
    from streamtune_cli.tuning.whatif import what_if

    options = _executor_settings("sim", job, seed=seed, noise=noise, rate=rate)
    chosen = parse_parallelism(parallelism) if parallelism is not None else {}
    spec = _load_job(job)
    result = what_if(spec, chosen, **options)
    if as_json is not None:
        written = write_output(as_json, {"schema": SIMULATE_SCHEMA, "job": spec.name, **result.to_data()})
        if is_stdout(as_json):
            return
        print_written([written])
    _print_what_if(notice_console(False), spec, result)


def _print_what_if(console: Any, spec: Any, result: Any) -> None:
    from rich.table import Table

    obs = result.observation
    from rich import box

    table = Table(
        title=f"{spec.name}: one {obs.window_s:g} s window in the sim",
        caption="busy/max: mean and busiest instance; bp: blocked on output; TPR: input / busy",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    columns = ("operator", "p", "oracle", "in/s", "out/s", "busy", "max", "bp", "idle", "TPR/s")
    for column in columns:
        table.add_column(column, justify="left" if column == "operator" else "right", no_wrap=True)
    for op in spec.operators:
        m = obs.operators[op.id]
        name = op.id
        if op.id in result.bottlenecks:
            name = f"[bold red]{op.id}[/bold red]"
        elif op.id in result.saturated:
            name = f"[red]{op.id}[/red]"
        table.add_row(
            name, str(m.parallelism), str(result.oracle.parallelism[op.id]), fmt_compact(m.input_rate_rps),
            fmt_compact(m.output_rate_rps), f"{m.busy:.2f}", f"{m.busy_max:.2f}", f"{m.backpressured:.2f}",
            f"{m.idle:.2f}", fmt_compact(m.true_processing_rate_rps),
        )
    console.print(table)
    share = obs.achieved_rate_rps / obs.target_rate_rps
    console.print(
        f"target {_fmt_rate(obs.target_rate_rps)} rec/s (x{obs.target_rate_rps / result.base_rate_rps:.3g} of the base "
        f"{_fmt_rate(result.base_rate_rps)} rec/s at t={obs.t_s - obs.window_s / 2:,.0f} s), "
        f"achieved {_fmt_rate(obs.achieved_rate_rps)} rec/s ({share:.1%})"
    )
    if result.bottlenecks:
        console.print(
            f"bottleneck: [bold]{', '.join(result.bottlenecks)}[/bold] (saturated, most downstream; "
            f"the sources ingest {share:.0%} of the target)"
        )
    else:
        console.print(f"no bottleneck: every operator keeps up (tightest capacity / demand = {result.headroom:.2f})")
    oracle = result.oracle
    console.print(
        f"oracle at this window's target: {oracle.total} instances ({sum(result.parallelism.values())} deployed); "
        f"{oracle.reason}"
    )
    peak = result.peak_oracle
    if peak is not oracle:
        console.print(
            f"oracle at the schedule's peak ({_fmt_rate(result.peak_target_rate_rps)} rec/s, what `tune` and `fuse` "
            f"size for): {peak.total} instances; {peak.reason}"
        )


def register(app: typer.Typer) -> None:
    from streamtune_cli.cli.common import add_command

    add_command(app, tune, "tune", epilog=TUNE_EXIT_HELP)
    add_command(app, simulate, "simulate")
