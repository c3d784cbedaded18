"""A real Apache Flink 2.3 cluster, started and stopped by the test (by PID), driven as a user would.

One module-scoped cluster (the first run installs Flink from the PyPI wheels into the cache dir). In order:
every SQL job in configs/flink/ is submitted, imported with `import flink`, and `fuse --mode flink` on the
imported spec must give exactly Flink's vertices and names; then a job is tuned for two steps with
`--executor flink` (a vertex's parallelism must change on the cluster); the executor passes the conformance
suite; `flink down` leaves no process behind. Skipped only where there is no `java`.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from streamtune_cli.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
SQL_JOBS = sorted((ROOT / "configs" / "flink").glob("*.sql"))

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="needs a JDK (java) to run Flink")
runner = CliRunner()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _invoke(*args: str, codes: tuple[int, ...] = (0,), stdout: bool = False) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code in codes, f"streamtune {' '.join(args)}\n{result.output}"
    return result.stdout if stdout else result.output  # stdout: without the `wrote PATH` lines on stderr


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    state_dir = tmp_path_factory.mktemp("flink-state")
    port = _free_port()
    _invoke("flink", "up", "--port", str(port), "--state-dir", str(state_dir), "--slots", "8")
    state = json.loads((state_dir / "cluster.json").read_text())
    pids = [state["jobmanager_pid"], state["taskmanager_pid"]]
    try:
        yield {"rest": f"http://127.0.0.1:{port}", "state_dir": state_dir, "pids": pids}
    finally:
        runner.invoke(app, ["flink", "down", "--state-dir", str(state_dir)])
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in pids:  # never leave a JVM behind, even when `down` is broken
            if _alive(pid):
                os.kill(pid, 9)


def _submit(cluster: dict, sql: Path, *flags: str) -> str:
    return _invoke("flink", "submit", str(sql), "--rest", cluster["rest"], *flags).strip().splitlines()[-1]


def _cancel(cluster: dict, job_id: str) -> None:
    from streamtune_cli.flink.rest import FlinkRest

    with FlinkRest(cluster["rest"]) as rest:
        rest.cancel(job_id)


def test_there_are_enough_sql_jobs_of_the_shapes_we_claim() -> None:
    assert len(SQL_JOBS) >= 6
    text = " ".join(p.read_text() for p in SQL_JOBS)
    for shape in ("HOP(", "TUMBLE(", " JOIN ", "GROUP BY bidder", "pipeline.operator-chaining.enabled", "COUNT(*), SUM(price) FROM bid;"):
        assert shape in text, shape


def test_import_then_fuse_gives_flinks_vertices_for_every_sql_job(cluster: dict, tmp_path: Path) -> None:
    from streamtune_cli.flink.rest import FlinkRest
    from streamtune_cli.fusion.flink_rules import flink_chains
    from streamtune_cli.spec import JobGraph, load_spec

    # Every shipped job, and three of them with FLIP-27 sources (`--flip27-source`), which chain differently:
    # a sink writer chains behind one, not behind Flink 2.3's legacy datagen.
    flip27 = [ROOT / "configs" / "flink" / f"{n}.sql" for n in ("q1_euro", "q2_filter_unchained", "q5_hop_window")]
    for sql, flags in [(s, ()) for s in SQL_JOBS] + [(s, ("--flip27-source",)) for s in flip27]:
        job_id = _submit(cluster, sql, *flags)
        try:
            out = tmp_path / f"{sql.stem}{'-flip27' if flags else ''}.yaml"
            _invoke("import", "flink", "--rest", cluster["rest"], "--job", job_id, "--out", str(out), "--rate", "20000")
            with FlinkRest(cluster["rest"]) as rest:
                theirs = sorted(v["name"] for v in rest.job(job_id)["vertices"])
            ours = sorted(chain.name for chain in flink_chains(JobGraph(load_spec(out))))
            assert ours == theirs, (sql.name, flags)
            # The same through the CLI: the stages table names every vertex.
            fused = json.loads(_invoke("fuse", str(out), "--mode", "flink", "--json", "-", "--no-sql"))
            assert sorted(stage["name"] for stage in fused["stages"]) == theirs, (sql.name, flags)
        finally:
            _cancel(cluster, job_id)


def test_tuning_a_real_job_rescales_a_vertex(cluster: dict, tmp_path: Path) -> None:
    from streamtune_cli.flink.rest import FlinkRest

    job_id = _submit(cluster, ROOT / "configs" / "flink" / "q5_hop_window.sql")
    try:
        spec = tmp_path / "q5.yaml"
        _invoke("import", "flink", "--rest", cluster["rest"], "--job", job_id, "--out", str(spec), "--rate", "20000")
        with FlinkRest(cluster["rest"]) as rest:
            before = {v["id"]: v["parallelism"] for v in rest.job(job_id)["vertices"]}
        report = tmp_path / "report"
        # Deterministic on a real cluster: --parallelism-cap 1 makes the first deployment rescale every vertex
        # from 2 to 1 (the starting point obeys the caps), and a peak far above what datagen offers keeps the
        # session from converging on its first window, so it runs both steps whatever DS2 proposes.
        output = _invoke(
            "tune", str(spec), "--executor", "flink", "--rest", cluster["rest"], "--job", job_id, "--tuner", "ds2",
            "--window", "6", "--warmup", "3", "--max-steps", "2", "--parallelism-cap", "1", "--rate", "1000000",
            "--out", str(report), "--json", codes=(0, 1), stdout=True,  # 1: the far peak is not met, as intended
        )
        data = json.loads(output)
        trace = json.loads((report / "trace.json").read_text())
        assert trace["executor"] == "flink" and len(trace["steps"]) >= 1
        first = trace["steps"][0]["observation"]
        assert first["achieved_rate_rps"] > 0, "no records were read from the cluster's metrics"
        assert any(m["busy"] > 0 or m["idle"] > 0 for m in first["operators"].values())
        with FlinkRest(cluster["rest"]) as rest:
            after = {v["id"]: v["parallelism"] for v in rest.job(job_id)["vertices"]}
        assert after != before and set(after.values()) == {1}, f"the cluster runs {after}, not the capped deployment"
        assert set(trace["steps"][0]["parallelism"].values()) == {1}
        overrides = data["flink"]["pipeline.jobvertex-parallelism-overrides"]
        assert set(part.split(":")[0] for part in overrides.split(",")) == set(before)
    finally:
        _cancel(cluster, job_id)


class _OneChange:
    """A tuner that asks for one change and then none: the session's steps do not depend on a real
    tuner's reading of a noisy cluster."""

    name = "one-change"

    def __init__(self, vertex: str, p: int):
        self.vertex, self.p = vertex, p

    def propose(self, view, parallelism, observation, history):  # type: ignore[no-untyped-def]
        from streamtune_cli.executors.base import Decision

        target = {**parallelism, self.vertex: self.p}
        return Decision(parallelism=target, reasons={op: "scripted" for op in target}, summary="scripted")


def test_a_two_step_session_rescales_between_its_windows(cluster: dict) -> None:
    from streamtune_cli.executors.registry import make_executor
    from streamtune_cli.flink.importer import import_flink_job
    from streamtune_cli.flink.rest import FlinkRest
    from streamtune_cli.flink.tuning import vertex_spec
    from streamtune_cli.spec import load_spec_text
    from streamtune_cli.tuning.loop import TuningConfig, run_tuning

    job_id = _submit(cluster, ROOT / "configs" / "flink" / "bids_per_bidder.sql")
    try:
        with FlinkRest(cluster["rest"]) as rest:
            data, _ = import_flink_job(rest, job_id, rate_rps=20000.0)
        spec = load_spec_text(yaml.safe_dump(data, sort_keys=False), "imported.yaml")
        with make_executor("flink", rest=cluster["rest"], job=job_id, window_s=4.0, warmup_s=2.0) as executor:
            job = vertex_spec(spec, executor, probe=False)
            aggregate = next(op.id for op in job.operators if "GroupAggregate" in op.display_name)
            trace = run_tuning(job, executor, _OneChange(aggregate, 1), TuningConfig(max_steps=2))
        assert [s.parallelism[aggregate] for s in trace.steps] == [2, 1]
        assert trace.meta["reconfigurations"] == 1
        assert all(s.observation.achieved_rate_rps > 0 for s in trace.steps)
        assert trace.steps[1].observation.operators[aggregate].parallelism == 1
        with FlinkRest(cluster["rest"]) as rest:
            vertices = {v["name"]: v["parallelism"] for v in rest.job(job_id)["vertices"]}
        assert vertices[job.operator(aggregate).display_name] == 1
    finally:
        _cancel(cluster, job_id)


def test_the_flink_executor_passes_the_conformance_suite(cluster: dict, tmp_path: Path) -> None:
    from streamtune_cli.executors.registry import make_executor
    from streamtune_cli.executors.testing import check_executor
    from streamtune_cli.flink.importer import import_flink_job
    from streamtune_cli.flink.rest import FlinkRest
    from streamtune_cli.flink.tuning import vertex_spec
    from streamtune_cli.spec import load_spec_text

    job_id = _submit(cluster, ROOT / "configs" / "flink" / "bids_per_bidder.sql")
    try:
        with FlinkRest(cluster["rest"]) as rest:
            data, _ = import_flink_job(rest, job_id, rate_rps=20000.0)
        spec = load_spec_text(yaml.safe_dump(data, sort_keys=False), "imported.yaml")
        factory = functools.partial(make_executor, "flink", rest=cluster["rest"], job=job_id, window_s=3.0, warmup_s=1.0)
        with factory() as executor:
            job = vertex_spec(spec, executor)
        check_executor(factory, job)
    finally:
        _cancel(cluster, job_id)


def test_down_ends_every_process_by_pid(cluster: dict) -> None:
    status = json.loads(_invoke("flink", "status", "--state-dir", str(cluster["state_dir"]), "--json"))
    assert status["running"] and status["slots_total"] == 8
    _invoke("flink", "down", "--state-dir", str(cluster["state_dir"]))
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in cluster["pids"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in cluster["pids"])
    result = runner.invoke(app, ["flink", "status", "--state-dir", str(cluster["state_dir"])])
    assert result.exit_code == 1 and "not running" in result.output
