"""`streamtune flink up|down|status|submit` (a local Flink cluster) and `streamtune import flink` (a running
job as a job spec)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from streamtune_cli.cli.common import StreamtuneGroup, json_option

ORDER = 60

flink_app = typer.Typer(
    cls=StreamtuneGroup,
    help="A local standalone Apache Flink cluster (from the PyPI wheels; needs a JDK 17): up, down, status, submit.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
import_app = typer.Typer(
    cls=StreamtuneGroup,
    help="Turn a running job into a job spec.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_PORT_HELP = "REST port on 127.0.0.1."
_STATE_HELP = "Folder for the cluster's conf, logs, checkpoints and PIDs (default: cluster/ in ~/.cache/streamtune)."


def _settings(port: int, slots: int = 8, state_dir: Optional[Path] = None):  # noqa: ANN202
    from streamtune_cli.flink.cluster import ClusterSettings

    return ClusterSettings(rest_port=port, slots=slots, state_dir=state_dir)


def _say(message: str) -> None:
    from streamtune_cli.cli.common import err_console, quiet_progress

    if not quiet_progress():
        err_console.print(message, highlight=False)


def up(
    port: int = typer.Option(8081, "--port", min=1, max=65535, help=_PORT_HELP),
    slots: int = typer.Option(8, "--slots", min=1, max=256, help="Task slots of the one task manager."),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help=_STATE_HELP),
    timeout: float = typer.Option(180.0, "--timeout", min=1.0, help="Seconds to wait for the task manager's slots."),
) -> None:
    """Start a local Flink cluster: installs Flink 2.3 from PyPI on first use, writes a conf of its own
    (loopback only, adaptive scheduler, checkpoints every 5 s), starts a job manager and a task manager and
    records their PIDs. Stop it with `streamtune flink down`."""
    from streamtune_cli.cli.common import console
    from streamtune_cli.flink.cluster import cluster_up

    state = cluster_up(_settings(port, slots, state_dir), timeout_s=timeout, say=_say)
    console.print(
        f"Flink is up at {state.rest_url} (job manager PID {state.jobmanager_pid}, task manager PID "
        f"{state.taskmanager_pid}; logs in {state.log_dir})",
        highlight=False,
    )


def down(
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help=_STATE_HELP),
) -> None:
    """Stop the cluster `flink up` started (by its recorded PIDs; nothing else is touched)."""
    from streamtune_cli.cli.common import console
    from streamtune_cli.flink.cluster import cluster_down

    state = cluster_down(_settings(8081, state_dir=state_dir))
    if state is None:
        console.print("no cluster started by streamtune is recorded; nothing to stop")
    else:
        console.print(f"stopped the cluster at {state.rest_url} (PIDs {state.jobmanager_pid}, {state.taskmanager_pid})", highlight=False)


def status(
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help=_STATE_HELP),
    as_json: Optional[str] = json_option("The status as JSON (streamtune.flink-status/1)."),
) -> None:
    """Whether the cluster runs, its slots, and its jobs. Exit 1 when it is not running."""
    from streamtune_cli.cli.common import console, print_written, write_output
    from streamtune_cli.flink.cluster import cluster_status

    report = cluster_status(_settings(8081, state_dir=state_dir))
    if as_json is not None:
        print_written([write_output(as_json, {"schema": "streamtune.flink-status/1", **report})])
    if as_json == "-":
        pass
    elif not report["running"]:
        console.print("not running" + (f" (processes: {report['processes']})" if "processes" in report else ""), highlight=False)
    else:
        console.print(
            f"running at {report['rest_url']}: {report.get('slots_available', '?')} of {report.get('slots_total', '?')} slots free",
            highlight=False,
        )
        for job in report.get("jobs", []):
            console.print(f"  {job['id']}  {job['state']:<10} {job['name']}", highlight=False)
    if not report["running"]:
        raise typer.Exit(1)


def submit(
    sql_file: Path = typer.Argument(..., help="SQL file: SET, CREATE and INSERT statements (one job)."),
    rest: str = typer.Option("http://127.0.0.1:8081", "--rest", help="The cluster's REST address."),
    parallelism: Optional[int] = typer.Option(None, "--parallelism", "-p", min=1, help="Default parallelism of the job."),
    flip27: bool = typer.Option(
        False,
        "--flip27-source",
        help="Read every `datagen` table through streamtune's FLIP-27 generator (same options), which reports "
        "busy and idle time; Flink 2.3's datagen is a legacy source that reports none. The job name gets -flip27.",
    ),
    as_json: Optional[str] = json_option("The job id as JSON (streamtune.flink-submit/1)."),
) -> None:
    """Run a SQL file as one Flink job, through streamtune's SQL runner (compiled with javac at first use,
    uploaded over REST); prints the job id once the job is RUNNING."""
    from streamtune_cli.errors import UsageError
    from streamtune_cli.flink.cluster import submit_sql, with_flip27_generator

    try:
        sql = sql_file.read_text()
    except OSError as exc:
        raise UsageError(f"{sql_file}: cannot read: {exc.strerror or exc}") from None
    if "INSERT" not in sql.upper():
        raise UsageError(f"{sql_file}: no INSERT statement, so there is no job to run")
    if flip27:
        sql = with_flip27_generator(sql)
    job_id = submit_sql(rest, sql, parallelism=parallelism, say=_say)
    if as_json is None:
        typer.echo(job_id)
        return
    from streamtune_cli.cli.common import print_written, write_output

    print_written([write_output(as_json, {"schema": "streamtune.flink-submit/1", "job_id": job_id})], data_on_stdout=True)


def import_flink(
    rest: str = typer.Option(..., "--rest", help="The cluster's REST address, e.g. http://127.0.0.1:8081."),
    job: str = typer.Option(..., "--job", help="Job id (see `streamtune flink status` or Flink's web UI)."),
    out: str = typer.Option("-", "--out", "-o", metavar="PATH", help="Where to write the spec ('-': stdout)."),
    rate: Optional[float] = typer.Option(
        None, "--rate", help="Workload rate of the spec, records/s (default: what the sources read so far)."
    ),
) -> None:
    """Write a running Flink job as a job spec: one operator per chained Flink operator, vertices joined by
    their ship strategy, parallelism and max parallelism as deployed, and the Flink facts chaining needs, so
    that `streamtune fuse --mode flink` rebuilds Flink's vertices and names."""
    import math

    import yaml

    from streamtune_cli.errors import UsageError
    from streamtune_cli.flink.importer import import_flink_job
    from streamtune_cli.flink.rest import FlinkRest
    from streamtune_cli.spec import load_spec_text

    if rate is not None and not (math.isfinite(rate) and rate > 0):
        raise UsageError(f"--rate must be positive and finite (records/s), got {rate:g}")
    from streamtune_cli.flink.importer import PLACEHOLDER_NOTE

    with FlinkRest(rest) as client:
        data, _ = import_flink_job(client, job, rate_rps=rate)
    if PLACEHOLDER_NOTE in data.get("description", ""):
        _say("note: " + PLACEHOLDER_NOTE)
    text = f"# Imported from Flink job {job} at {rest} by `streamtune import flink`.\n" + yaml.safe_dump(
        data, sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    load_spec_text(text, out if out != "-" else "<imported>")  # what we write must load
    from streamtune_cli.cli.common import print_written, write_output

    print_written([write_output(out, text)], data_on_stdout=True)


def register(app: typer.Typer) -> None:
    from streamtune_cli.cli.common import add_command

    add_command(flink_app, up, "up")
    add_command(flink_app, down, "down")
    add_command(flink_app, status, "status")
    add_command(flink_app, submit, "submit")
    app.add_typer(flink_app, name="flink")
    add_command(import_app, import_flink, "flink")
    app.add_typer(import_app, name="import")
