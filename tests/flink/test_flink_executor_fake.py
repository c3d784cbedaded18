"""The flink executor against a fake Flink REST API (httpx.MockTransport): what it reads, how it turns
cumulative counters into an Observation, how it rescales, and what it refuses. Counters grow with real
time at fixed rates, so every figure below is known in advance (tolerances cover the window edges)."""

from __future__ import annotations

import json
import math
import re
import time

import httpx
import pytest
import yaml

from streamtune_cli.errors import ExecutorError
from streamtune_cli.executors.flink import FlinkExecutor
from streamtune_cli.flink.importer import spec_from_rest
from streamtune_cli.flink.rest import FlinkRest
from streamtune_cli.flink.tuning import flink_terms, vertex_spec
from streamtune_cli.spec import load_spec_text

SOURCE = "Source: bid[1] -> Calc[2]"
AGG = "GroupAggregate[4] -> out[5]: Writer"


class FakeFlink:
    """One job: a legacy-source chain reading 1,000 records/s in all, and an aggregate busy 30% of the time."""

    def __init__(self, slots: int = 8, backlog_growth_rps: float | None = None):
        self.backlog_growth_rps = backlog_growth_rps  # a source reporting pendingRecords (FLIP-33) when set
        self.start = time.monotonic()
        self.parallelism = {"v1": 2, "v2": 2}
        self.slots = slots
        self.puts: list[dict] = []
        self.task_managers: list[dict] | None = None  # what /taskmanagers lists; None: not served (404)

    def seconds(self) -> float:
        return time.monotonic() - self.start

    def metric(self, vertex: str, subtask: int, name: str, at: float | None = None) -> float:
        t = (self.seconds() if at is None else at) * 1000.0  # ms
        p = self.parallelism[vertex]
        per = 1000.0 / p / 1000.0  # records per ms per subtask
        if vertex == "v1":
            values = {
                "accumulateBusyTimeMs": math.nan,
                "accumulateIdleTimeMs": 0.0,
                "accumulateBackPressuredTimeMs": 0.0,
                "Source__bid[1].numRecordsIn": 0.0,
                "Source__bid[1].numRecordsOut": per * t,
                "Calc[2].numRecordsIn": per * t,
                "Calc[2].numRecordsOut": per * t,
                "numRecordsIn": 0.0,
                "numRecordsOut": per * t,
            }
            if self.backlog_growth_rps is not None:
                values["Source__bid[1].pendingRecords"] = 500.0 + self.backlog_growth_rps / p * t / 1000.0
        else:
            values = {
                "accumulateBusyTimeMs": 0.3 * t,
                "accumulateIdleTimeMs": 0.7 * t,
                "accumulateBackPressuredTimeMs": 0.0,
                "GroupAggregate[4].numRecordsIn": per * t,
                "GroupAggregate[4].numRecordsOut": per * t / 10,
                "out[5]__Writer.numRecordsIn": per * t / 10,
                "out[5]__Writer.numRecordsOut": 0.0,
                "numRecordsIn": per * t,
                "numRecordsOut": 0.0,
            }
        return values.get(name, math.nan)

    def job(self) -> dict:
        return {
            "jid": "j1",
            "name": "fake",
            "state": "RUNNING",
            "duration": 10_000,
            "vertices": [
                {"id": "v1", "name": SOURCE, "parallelism": self.parallelism["v1"], "maxParallelism": 128, "status": "RUNNING"},
                {"id": "v2", "name": AGG, "parallelism": self.parallelism["v2"], "maxParallelism": 128, "status": "RUNNING"},
            ],
        }

    def plan(self) -> dict:
        return {
            "plan": {
                "nodes": [
                    {"id": "v1", "description": "[1]:TableSourceScan()<br/>+- [2]:Calc(select=[bidder])<br/>"},
                    {
                        "id": "v2",
                        "description": "[4]:GroupAggregate(groupBy=[bidder], select=[bidder, COUNT(*)])<br/>+- out[5]: Writer<br/>",
                        "inputs": [{"id": "v1", "ship_strategy": "HASH", "exchange": "pipelined_bounded"}],
                    },
                ]
            }
        }

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/overview":
            used = max(self.parallelism.values())
            return httpx.Response(200, json={"taskmanagers": 1, "slots-total": self.slots, "slots-available": self.slots - used})
        if path == "/taskmanagers" and self.task_managers is not None:
            return httpx.Response(200, json={"taskmanagers": self.task_managers})
        if path == "/jobs/j1":
            return httpx.Response(200, json=self.job())
        if path == "/jobs/j1/plan":
            return httpx.Response(200, json=self.plan())
        if path == "/jobs/j1/resource-requirements":
            if request.method == "PUT":
                body = json.loads(request.content)
                self.puts.append(body)
                for vertex, req in body.items():
                    self.parallelism[vertex] = req["parallelism"]["upperBound"]
                return httpx.Response(200, json={})
            return httpx.Response(
                200, json={v: {"parallelism": {"lowerBound": 1, "upperBound": p}} for v, p in self.parallelism.items()}
            )
        match = re.fullmatch(r"/jobs/j1/vertices/(v\d)/metrics", path)
        if match:
            vertex = match.group(1)
            rows = []
            for item in request.url.params.get("get", "").split(","):
                subtask, name = item.split(".", 1)
                value = self.metric(vertex, int(subtask), name)
                rows.append({"id": item, "value": "NaN" if math.isnan(value) else str(value)})
            return httpx.Response(200, json=rows)
        return httpx.Response(404, json={"errors": ["Not found: " + path]})


class CachedFakeFlink(FakeFlink):
    """Metrics served from a cache refreshed every `refresh_s`, as Flink's REST does; the counters of the
    subtasks in `late` (on a task manager that answers the fetcher late) arrive `delay_s` after the others,
    though they are as of the same moment."""

    def __init__(self, refresh_s: float, delay_s: float, late: set[tuple[str, int]]):
        super().__init__()
        self.refresh_s, self.delay_s, self.late = refresh_s, delay_s, late

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/overview":
            return httpx.Response(200, json={"taskmanagers": 2, "slots-total": self.slots, "slots-available": self.slots - 4})
        return super().handler(request)

    def metric(self, vertex: str, subtask: int, name: str, at: float | None = None) -> float:
        now = self.seconds() - (self.delay_s if (vertex, subtask) in self.late else 0.0)
        return super().metric(vertex, subtask, name, at=max(0.0, math.floor(now / self.refresh_s) * self.refresh_s))


@pytest.fixture
def fake() -> FakeFlink:
    return FakeFlink()


def _executor(fake: FakeFlink, **kwargs) -> FlinkExecutor:  # type: ignore[no-untyped-def]
    executor = FlinkExecutor(rest="http://fake", job="j1", window_s=1.0, warmup_s=0.0, **kwargs)
    executor._rest = FlinkRest("http://fake", attempts=1)
    executor._rest._client = httpx.Client(base_url="http://fake", transport=httpx.MockTransport(fake.handler))
    return executor


def _spec(fake: FakeFlink, rate: float = 2000.0):  # type: ignore[no-untyped-def]
    data = spec_from_rest(fake.job(), fake.plan()["plan"], rate_rps=rate)
    return load_spec_text(yaml.safe_dump(data, sort_keys=False), "fake.yaml")


def test_an_observation_from_counters_with_a_legacy_source(fake: FakeFlink) -> None:
    executor = _executor(fake)
    spec = vertex_spec(_spec(fake), executor, probe=False)
    assert [op.display_name for op in spec.operators] == [SOURCE, AGG]
    executor.deploy(spec, spec.parallelism)
    assert fake.puts == []  # the job already runs at the spec's parallelism: nothing is sent
    obs = executor.observe()
    source, agg = (obs.operators[op.id] for op in spec.operators)
    assert obs.achieved_rate_rps == pytest.approx(1000.0, rel=0.1)
    # No source was blocked, so the window read all that was offered: the target is what it read.
    assert obs.target_rate_rps == obs.achieved_rate_rps and obs.keeps_up
    # No time accounted for the legacy source's vertex: it is taken to run at the declared peak (2,000/s).
    assert source.busy == pytest.approx(0.5, rel=0.1) and source.input_rate_rps == pytest.approx(1000.0, rel=0.1)
    assert agg.busy == pytest.approx(0.3, abs=0.03) and agg.idle == pytest.approx(0.7, abs=0.03)
    assert agg.input_rate_rps == pytest.approx(1000.0, rel=0.1) and agg.output_rate_rps == 0.0


def _task_manager(host: str, port: int, cores: object) -> dict:
    return {"id": f"{host}:{port}-tm", "path": f"pekko.tcp://flink@{host}:{port}/user/rpc/taskmanager_0", "hardware": {"cpuCores": cores}}


@pytest.mark.parametrize(
    ("task_managers", "cores"),
    [
        (None, None),  # a cluster that does not list its task managers: nothing is known
        ([_task_manager("10.0.0.5", 6122, 2)], 2),
        # Two task managers on one host share its cores; one on another host brings its own.
        ([_task_manager("10.0.0.5", 6122, 2), _task_manager("10.0.0.5", 6123, 2), _task_manager("10.0.0.6", 6122, 4)], 6),
        ([_task_manager("10.0.0.5", 6122, "many"), _task_manager("10.0.0.6", 6122, 0)], None),  # nothing usable
    ],
)
def test_each_window_says_how_many_cores_the_task_managers_hosts_have(task_managers: list | None, cores: int | None) -> None:
    fake = FakeFlink()
    fake.task_managers = task_managers
    executor = _executor(fake)
    spec = vertex_spec(_spec(fake), executor, probe=False)
    executor.deploy(spec, spec.parallelism)
    assert executor.observe().machine_cores == cores


def test_a_source_reporting_its_backlog_gives_lag_and_a_target_above_what_it_read() -> None:
    fake = FakeFlink(backlog_growth_rps=400.0)  # 1,000 records/s read, the backlog grows 400/s more
    executor = _executor(fake)
    spec = vertex_spec(_spec(fake), executor, probe=False)
    executor.deploy(spec, spec.parallelism)
    obs = executor.observe()
    # Two subtasks, each 500 pending plus its share of the growth: the lag is their sum at the window's end.
    assert obs.lag_records >= 1000.0
    assert obs.target_rate_rps == pytest.approx(1400.0, rel=0.1) and not obs.keeps_up
    steady = _executor(FakeFlink(backlog_growth_rps=0.0))
    spec = vertex_spec(_spec(fake), steady, probe=False)
    steady.deploy(spec, spec.parallelism)
    obs = steady.observe()
    # A constant backlog is lag, but the source reads what arrives: it keeps up.
    assert obs.lag_records == pytest.approx(1000.0) and obs.keeps_up


def test_rescaling_puts_the_whole_map_and_waits_for_it(fake: FakeFlink) -> None:
    executor = _executor(fake)
    spec = vertex_spec(_spec(fake), executor, probe=False)
    agg_id = spec.operators[1].id
    executor.deploy(spec, {**spec.parallelism, agg_id: 3})
    assert fake.puts == [
        {
            "v1": {"parallelism": {"lowerBound": 1, "upperBound": 2}},
            "v2": {"parallelism": {"lowerBound": 1, "upperBound": 3}},
        }
    ]
    assert executor.restarts == 1 and fake.parallelism == {"v1": 2, "v2": 3}
    terms = flink_terms(executor, spec, {**spec.parallelism, agg_id: 3})
    assert terms["pipeline.jobvertex-parallelism-overrides"] == "v1:2,v2:3"


def test_a_deployment_beyond_the_slots_is_refused_at_once(fake: FakeFlink) -> None:
    executor = _executor(fake)
    spec = vertex_spec(_spec(fake), executor, probe=False)
    with pytest.raises(ExecutorError, match="needs 12 task slots, but the cluster can give this job 8"):
        executor.deploy(spec, {**spec.parallelism, spec.operators[1].id: 12})
    assert fake.puts == []


def test_tune_caps_vertices_at_the_slots_and_holds_an_unmeasured_source(fake: FakeFlink) -> None:
    executor = _executor(fake)
    notes: list[str] = []
    spec = vertex_spec(_spec(fake), executor, notes=notes)
    source, agg = spec.operators
    assert source.max_parallelism == 2 and agg.max_parallelism == 8
    assert any("legacy SourceFunction" in n for n in notes) and any("8 task slots" in n for n in notes)


def test_a_dry_run_refuses_to_change_the_job_and_a_failed_rescale_is_undone(fake: FakeFlink) -> None:
    from streamtune_cli.errors import UsageError

    executor = _executor(fake, read_only=True)
    spec = vertex_spec(_spec(fake), executor, probe=False)
    with pytest.raises(UsageError, match="--dry-run changes nothing"):
        executor.deploy(spec, {**spec.parallelism, spec.operators[1].id: 1})
    assert fake.puts == []

    stuck = _executor(fake, settle_timeout_s=0.5)
    fake_put = fake.handler

    def ignoring_rescales(request: httpx.Request) -> httpx.Response:  # accepts the PUT, never rescales
        if request.method == "PUT":
            fake.puts.append(json.loads(request.content))
            return httpx.Response(200, json={})
        return fake_put(request)

    stuck._rest._client = httpx.Client(base_url="http://fake", transport=httpx.MockTransport(ignoring_rescales))
    with pytest.raises(ExecutorError, match="did not run at the new parallelism"):
        stuck.deploy(spec, {**spec.parallelism, spec.operators[1].id: 3})
    assert fake.puts[-1] == {v: {"parallelism": {"lowerBound": 1, "upperBound": 2}} for v in ("v1", "v2")}


def test_a_counter_that_goes_back_means_a_restart(fake: FakeFlink) -> None:
    executor = _executor(fake)
    spec = vertex_spec(_spec(fake), executor, probe=False)
    executor.deploy(spec, spec.parallelism)
    time.sleep(0.3)
    first = executor._counters()
    fake.start = time.monotonic()  # the job restarted: every counter starts again from 0
    with pytest.raises(ExecutorError, match=r"restarted during the window \(counter .*numRecords"):
        executor._observation(0.0, first, 1.0, executor._counters())


def test_observe_before_deploy_and_a_spec_of_another_job_are_refused(fake: FakeFlink) -> None:
    executor = _executor(fake)
    with pytest.raises(ExecutorError, match="before deploy"):
        executor.observe()
    other = load_spec_text(
        "name: other\nworkload: {rate_rps: 10}\noperators:\n  - {id: s, kind: source}\n  - {id: k, kind: sink}\n"
        "edges:\n  - {from: s, to: k}\n",
        "other.yaml",
    )
    from streamtune_cli.errors import UsageError

    with pytest.raises(UsageError, match="matches no vertex"):
        executor.deploy(other, other.parallelism)


def test_counters_are_read_when_every_task_manager_has_refreshed_them() -> None:
    # Subtask 1 of each vertex sits on a task manager whose counters reach the REST cache 0.4 s after the
    # others'. Read as soon as the first ones change, they would be a whole refresh (2 s) older: where that
    # happens at one end of a window only, a fifth of a 10 s window's records are missed or counted twice.
    # The first vertex's late subtask changing is not the next refresh: only its fresh one changing is.
    fake = CachedFakeFlink(refresh_s=2.0, delay_s=0.4, late={("v1", 1), ("v2", 1)})
    fake.start -= 60.0  # a job running for a minute
    executor = _executor(fake)
    spec = vertex_spec(_spec(fake), executor, probe=False)
    executor.deploy(spec, spec.parallelism)
    # Start reading 0.5 s into a refresh (the late counters are in): the next change seen is the next
    # refresh's on-time counters, with the late ones still to come.
    time.sleep((0.5 - fake.seconds()) % fake.refresh_s)
    _, counters = executor._fresh_counters()
    records, idle = counters["v1"]["numRecordsOut"], counters["v2"]["accumulateIdleTimeMs"]
    # Every subtask as of the same refresh: 0.7 s idle per second of the job, 500 records per second
    # (idle ms = 0.7 x 1000 x records / 500).
    assert records[0] == records[1] and idle[0] == idle[1] == pytest.approx(1.4 * records[0], rel=1e-9)
    obs = executor.observe()
    agg = obs.operators[spec.operators[1].id]
    assert obs.achieved_rate_rps == pytest.approx(1000.0, rel=0.05)
    assert agg.busy == pytest.approx(0.3, abs=0.02) and agg.input_rate_rps == pytest.approx(1000.0, rel=0.05)
