"""`streamtune calibrate`: the fit recovers the model that produced the windows, and the command behaves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from streamtune_cli.calibrate import Sample, calibrate, cpu_shares, cpu_us_per_record, fit_cores, fit_usl, predicted_throughput
from streamtune_cli.cli.app import app
from streamtune_cli.executors.sim import SimExecutor
from streamtune_cli.spec import load_spec
from streamtune_cli.tuning.testing import chain_spec

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _windows(spec, parallelisms, noise: float = 0.0, seed: int = 0):  # type: ignore[no-untyped-def]
    samples = []
    for p in parallelisms:
        par = {op.id: p for op in spec.operators}
        with SimExecutor(seed=seed, noise=noise, rate_rps=1e9) as sim:  # sources flat out: every operator works
            sim.deploy(spec, par)
            samples.append(Sample(par, sim.observe(), "sim"))
    return samples


@settings(max_examples=25, deadline=None)
@given(
    cost=st.floats(0.2, 50.0),
    sigma=st.floats(0.0, 0.3),
    kappa=st.floats(0.0, 0.01),
)
def test_the_fit_recovers_the_usl_that_produced_the_rates(cost: float, sigma: float, kappa: float) -> None:
    points = [(p, 1e6 / cost * p / (1 + sigma * (p - 1) + kappa * p * (p - 1))) for p in (1, 2, 3, 5, 8)]
    got_cost, got_sigma, got_kappa, error = fit_usl(points, 0.5, 0.5)
    assert got_cost == pytest.approx(cost, rel=1e-6)
    assert got_sigma == pytest.approx(sigma, abs=1e-6) and got_kappa == pytest.approx(kappa, abs=1e-7)
    assert error < 1e-9


def test_sim_windows_give_back_the_sims_costs_and_predict_held_out_parallelism() -> None:
    truth = load_spec(ROOT / "configs" / "nexmark" / "q5.yaml")
    blank = truth.model_copy(update={"operators": [op.model_copy(update={"cost_us": 1.0, "scaling": None}) for op in truth.operators]})
    calibrated, fits = calibrate(blank, _windows(truth, (1, 2, 4)))
    fitted = {f.operator: f for f in fits}
    # The operators that work hard enough to be measured come back exactly; the others keep their hints.
    assert fitted["bids_per_auction"].cost_us == pytest.approx(12.0, rel=1e-9)
    assert fitted["bids"].cost_us == pytest.approx(4.0, rel=1e-9)
    assert fitted["max_per_window"].selectivity == pytest.approx(0.02, rel=1e-9)
    assert any(f.cost_us is None and "hints kept" in f.note for f in fits)
    held_out = {op.id: 3 for op in truth.operators}
    assert predicted_throughput(calibrated, held_out) == pytest.approx(predicted_throughput(truth, held_out), rel=1e-6)


@settings(max_examples=20, deadline=None)
@given(budget=st.floats(0.3, 6.0), held_out=st.integers(1, 6))
def test_a_job_held_back_by_its_cores_gives_them_back_and_predicts_at_other_parallelisms(budget: float, held_out: int) -> None:
    spec = chain_spec([("src", "source", 2.0, 1.0), ("work", "map", 10.0, 0.5), ("out", "sink", 1.0, 1.0)], rate_rps=1000.0, name="c")
    windows = _windows(spec, (1, 2))
    calibrated, _ = calibrate(spec, windows)
    # The same windows on a machine that gives the job `budget` cores: sources ingest what that CPU allows.
    held = []
    for w in windows:
        capped = min(w.observation.achieved_rate_rps, budget * 1e6 / cpu_us_per_record(calibrated, w.parallelism))
        held.append(Sample(w.parallelism, w.observation.model_copy(update={"achieved_rate_rps": capped}), "held"))
    effective = fit_cores(calibrated, held)
    par = {op.id: held_out for op in spec.operators}
    expected = min(predicted_throughput(calibrated, par), budget * 1e6 / cpu_us_per_record(calibrated, par))
    if any(h.observation.achieved_rate_rps < w.observation.achieved_rate_rps / 1.05 for h, w in zip(held, windows)):
        assert effective == pytest.approx(budget, rel=1e-6)
        assert predicted_throughput(calibrated, par, cores=effective) == pytest.approx(expected, rel=1e-6)
    else:  # no window was held back: nothing says how many cores the job gets
        assert effective is None


def test_cpu_per_record_counts_selectivity_and_contention() -> None:
    spec = chain_spec([("src", "source", 2.0, 1.0), ("work", "map", 10.0, 0.5), ("out", "sink", 1.0, 1.0)], rate_rps=1000.0, name="c")
    one = {op.id: 1 for op in spec.operators}
    assert cpu_us_per_record(spec, one) == pytest.approx(2.0 + 10.0 + 0.5 * 1.0)
    from streamtune_cli.capacity import usl_params

    sigma, kappa = usl_params(spec.operator("work"))
    slowdown = 1 + sigma * 2 + kappa * 3 * 2
    assert cpu_us_per_record(spec, {**one, "work": 3}) == pytest.approx(2.0 + 10.0 * slowdown + 0.5 * 1.0)


def test_noisy_windows_still_give_costs_within_a_few_percent() -> None:
    spec = chain_spec([("src", "source", 2.0, 1.0), ("work", "map", 10.0, 1.0), ("out", "sink", 0.5, 1.0)], rate_rps=1000.0, name="c")
    calibrated, fits = calibrate(spec, _windows(spec, (1, 2, 3, 4), noise=0.02, seed=3))
    work = next(f for f in fits if f.operator == "work")
    assert work.cost_us == pytest.approx(10.0, rel=0.08)
    assert work.rel_error is not None and work.rel_error < 0.1


def test_the_command_writes_a_loadable_spec_and_its_fits(tmp_path: Path) -> None:
    report = tmp_path / "report"
    result = runner.invoke(app, ["tune", str(ROOT / "configs/nexmark/q5.yaml"), "--tuner", "ds2", "--out", str(report), "--json"])
    # ds2 stalls on q5 at the sim's peak (tune exits 1 then), but every window it measured is in the trace.
    assert result.exit_code in (0, 1), result.output
    out = tmp_path / "calibrated.yaml"
    result = runner.invoke(app, ["calibrate", str(report / "trace.json"), "--out", str(out), "--json", str(tmp_path / "fit.json")])
    assert result.exit_code == 0, result.output
    spec = load_spec(out)
    fits = json.loads((tmp_path / "fit.json").read_text())
    assert fits["schema"] == "streamtune.calibration/1" and fits["windows"] >= 2
    window = next(op for op in fits["operators"] if op["operator"] == "bids_per_auction")
    # Sim noise is 2% by default: the fitted cost lands near the spec's 12 µs.
    assert window["cost_us"] == pytest.approx(12.0, rel=0.1)
    assert spec.operator("bids_per_auction").cost_us == pytest.approx(window["cost_us"], rel=1e-5)
    assert "wrote" in result.output and "bids_per_auction" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "bad.json:1:2: invalid JSON"),
        ('{"hello": 1}', "bad.json: not a tuning trace (trace.json) nor a `streamtune run --json` output"),
        ('{"parallelism": {"a": 1}, "observation": {"t_s": 1}}', "bad.json: window_s: Field required"),
    ],
)
def test_bad_files_are_one_line_and_exit_2(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = runner.invoke(app, ["calibrate", str(bad), "--job", str(ROOT / "configs/nexmark/q5.yaml"), "--out", str(tmp_path / "x.yaml")])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x.yaml").exists()


def test_busy_that_counts_waiting_for_a_core_is_scaled_to_the_cpu_the_window_used() -> None:
    spec = chain_spec([("src", "source", 2.0, 1.0), ("work", "map", 10.0, 1.0), ("out", "sink", 0.5, 1.0)], rate_rps=1000.0, name="c")
    honest = []
    for p in (1, 2, 3):  # 40,000 rec/s: work (100,000 rec/s per instance) is busy 0.4 at most
        par = {op.id: p for op in spec.operators}
        with SimExecutor(seed=0, noise=0.0, rate_rps=40_000.0) as sim:
            sim.deploy(spec, par)
            honest.append(Sample(par, sim.observe(), "sim"))
    assert max(m.busy for w in honest for m in w.observation.operators.values()) <= 0.5
    # The same windows as a wall-time clock would read them with every thread waiting half its time for a
    # core: busy doubled (true processing rates halved), while the CPU the window used stays what it was.
    inflated = []
    for w in honest:
        obs = w.observation
        used = sum(m.busy * m.parallelism for m in obs.operators.values())
        ops = {
            k: m.model_copy(update={"busy": min(1.0, 2 * m.busy), "true_processing_rate_rps": m.true_processing_rate_rps / 2})
            for k, m in obs.operators.items()
        }
        inflated.append(Sample(w.parallelism, obs.model_copy(update={"operators": ops, "cpu_cores": used}), "wall"))
    # Without the machine's core count, one ratio serves every operator.
    assert all(share == pytest.approx(0.5, rel=1e-6) for s in inflated for share in cpu_shares(s.observation).values())
    _, fits = calibrate(spec, inflated)
    work = next(f for f in fits if f.operator == "work")
    assert work.cost_us == pytest.approx(10.0, rel=1e-3)
    # Without the window's CPU, nothing says the busy time was inflated: the cost doubles.
    _, blind = calibrate(spec, [Sample(s.parallelism, s.observation.model_copy(update={"cpu_cores": None}), "x") for s in inflated])
    assert next(f for f in blind if f.operator == "work").cost_us == pytest.approx(20.0, rel=1e-3)


def _as_wall_time(window: Sample, cores: int) -> Sample:
    """The window as a wall-time clock reads it on `cores` cores: each instance's CPU busy stretched by the
    time it waits for a core (it runs only while fewer than `cores` of the others are busy)."""
    from streamtune_cli.calibrate import _free_core_chance

    obs = window.observation
    cpu = {k: m.busy for k, m in obs.operators.items()}
    count = {k: m.parallelism for k, m in obs.operators.items()}
    free = _free_core_chance(list(cpu), count, cpu, cores)
    ops = {
        k: m.model_copy(update={"busy": m.busy / free[k], "true_processing_rate_rps": m.true_processing_rate_rps * free[k]})
        for k, m in obs.operators.items()
    }
    used = sum(cpu[k] * count[k] for k in cpu)
    return Sample(window.parallelism, obs.model_copy(update={"operators": ops, "cpu_cores": used, "machine_cores": cores}), "wall")


def test_busy_that_counts_waiting_is_split_by_what_the_other_instances_hold() -> None:
    spec = chain_spec([("src", "source", 4.0, 1.0), ("work", "map", 10.0, 1.0), ("out", "sink", 1.0, 1.0)], rate_rps=1000.0, name="c")
    honest = []
    for p in (1, 2, 3):  # 60,000 rec/s: work busy 0.6 / p, src 0.24 / p, out 0.06 / p, on 2 cores
        par = {op.id: p for op in spec.operators}
        with SimExecutor(seed=0, noise=0.0, rate_rps=60_000.0) as sim:
            sim.deploy(spec, par)
            honest.append(Sample(par, sim.observe(), "sim"))
    walled = [_as_wall_time(w, 2) for w in honest]
    # The wait is not the same for every operator: the light ones wait more of their busy time (the heavy
    # instances hold the cores), so one ratio cannot take it out.
    stretch = {k: walled[2].observation.operators[k].busy / m.busy for k, m in honest[2].observation.operators.items()}
    assert stretch["out"] > stretch["work"] * 1.05
    for wall, true in zip(walled, honest):
        shares = cpu_shares(wall.observation)
        for k, m in wall.observation.operators.items():
            assert m.busy * shares[k] == pytest.approx(true.observation.operators[k].busy, rel=1e-4)
    _, fits = calibrate(spec, walled)
    assert {f.operator: f.cost_us for f in fits} == pytest.approx({"src": 4.0, "work": 10.0, "out": 1.0}, rel=1e-3)
    # A window whose CPU counter did not move (0 used, a stale read) says nothing: its busy is taken as read.
    stale = walled[0].observation.model_copy(update={"cpu_cores": 0.0})
    assert set(cpu_shares(stale).values()) == {1.0}
    # One ratio for every operator (the core count unknown) gets the costs wrong.
    _, blind = calibrate(spec, [Sample(s.parallelism, s.observation.model_copy(update={"machine_cores": None}), "x") for s in walled])
    assert next(f for f in blind if f.operator == "out").cost_us > 1.02


def test_an_operator_never_busy_enough_for_a_scaling_still_gets_its_measured_cost() -> None:
    # `light` costs 0.1 us against the source's 20 us: at the source's pace it is about 0.5% busy, below
    # MIN_BUSY in every window but well above LOW_BUSY, and it sees ~50,000 records/s per instance.
    spec = chain_spec([("src", "source", 20.0, 1.0), ("light", "map", 0.1, 1.0), ("out", "sink", 0.05, 1.0)], rate_rps=1000.0, name="c")
    blank = spec.model_copy(update={"operators": [op.model_copy(update={"cost_us": 3.0}) for op in spec.operators]})
    calibrated, fits = calibrate(blank, _windows(spec, (1, 2)))
    fitted = {f.operator: f for f in fits}
    assert fitted["light"].cost_us == pytest.approx(0.1, rel=1e-6)
    assert "cost only" in fitted["light"].note
    assert calibrated.operator("light").cost_us == pytest.approx(0.1, rel=1e-6)
    # Its scaling is the spec's (chain_spec: 0, 0), not one read from two nearly idle windows.
    assert fitted["light"].sigma == 0.0 and fitted["light"].kappa == 0.0


def test_an_operator_that_sees_a_few_records_a_second_keeps_its_hints() -> None:
    # A window's results: the sink sees 1% of 1% of the records; its busy is timers, not records.
    spec = chain_spec([("src", "source", 20.0, 0.01), ("agg", "map", 1.0, 0.01), ("out", "sink", 5.0, 1.0)], rate_rps=1000.0, name="c")
    fits = {f.operator: f for f in calibrate(spec, _windows(spec, (1, 2)))[1]}
    assert fits["out"].cost_us is None and "hints kept" in fits["out"].note


@settings(max_examples=40, deadline=None)
@given(
    loads=st.lists(st.tuples(st.integers(0, 3), st.floats(0.0, 1.0)), min_size=1, max_size=4),
    cores=st.integers(1, 4),
)
def test_busy_instance_counts_match_brute_force(loads: list[tuple[int, float]], cores: int) -> None:
    import itertools

    import numpy as np

    from streamtune_cli.calibrate import _with_binomial

    dist = np.eye(1, cores + 1).ravel()
    for n, p in loads:
        dist = _with_binomial(dist, n, p, cores)
    probs = [p for n, p in loads for _ in range(n)]
    expected = [0.0] * (cores + 1)
    for bits in itertools.product((0, 1), repeat=len(probs)):
        weight = 1.0
        for bit, p in zip(bits, probs):
            weight *= p if bit else 1.0 - p
        expected[min(sum(bits), cores)] += weight
    assert dist.tolist() == pytest.approx(expected, abs=1e-12)


def _contention_by_hand(costs: list[float], rate_hi: float) -> float:
    """Three single-instance operators, selectivity 1, on 2 cores: each needs rate x cost / 1e6 of a core and
    waits while both others are busy, so it fits while rate x c_i / 1e6 <= 1 - b_j b_k. Bisection."""
    def fits(rate: float) -> bool:
        b = [min(1.0, rate * c / 1e6) for c in costs]
        return all(b[i] <= 1.0 - b[(i + 1) % 3] * b[(i + 2) % 3] + 1e-12 for i in range(3))

    low, high = 0.0, rate_hi
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low


@settings(max_examples=30, deadline=None)
@given(costs=st.lists(st.floats(0.2, 5.0), min_size=3, max_size=3))
def test_contention_on_two_cores_matches_the_closed_form(costs: list[float]) -> None:
    from streamtune_cli.calibrate import contention_limit
    from streamtune_cli.executors.sim import SimDeployment

    spec = chain_spec(
        [("src", "source", costs[0], 1.0), ("work", "map", costs[1], 1.0), ("out", "sink", costs[2], 1.0)], rate_rps=1000.0, name="c"
    )
    par = {op.id: 1 for op in spec.operators}
    deployment = SimDeployment(spec, par)
    upper = deployment.max_ingest_rps
    got = contention_limit(deployment, 2, upper)
    assert got == pytest.approx(_contention_by_hand(costs, upper), rel=1e-5)
    assert got < upper  # three busy instances on two cores always wait some of the time
    # As many cores as instances: nothing waits.
    assert contention_limit(deployment, 3, upper) == upper
    # More cores never predict less.
    assert predicted_throughput(spec, par, cores=2, contention=True) <= predicted_throughput(spec, par, cores=3, contention=True)


def _three(costs: list[float]):  # type: ignore[no-untyped-def]
    return chain_spec(
        [("src", "source", costs[0], 1.0), ("work", "map", costs[1], 1.0), ("out", "sink", costs[2], 1.0)], rate_rps=1000.0, name="c"
    )


@settings(max_examples=25, deadline=None)
@given(costs=st.lists(st.floats(0.2, 5.0), min_size=3, max_size=3), p=st.integers(1, 4), preemption=st.floats(0.0, 0.3))
def test_preemption_changes_nothing_where_every_unit_runs_at_one_parallelism(costs: list[float], p: int, preemption: float) -> None:
    # The costs were fitted from windows with every unit at one parallelism: they carry those preemptions.
    spec = _three(costs)
    par = {op.id: p for op in spec.operators}
    plain = predicted_throughput(spec, par, cores=2, contention=True)
    assert predicted_throughput(spec, par, cores=2, contention=True, preemption=preemption) == pytest.approx(plain, rel=1e-9)


def test_a_busy_instance_among_many_pays_for_their_wakeups() -> None:
    spec = _three([1.0, 4.0, 0.5])
    hot = {"src": 3, "work": 1, "out": 3}  # the heavy operator alone at 1 among six light instances
    rates = [predicted_throughput(spec, hot, cores=2, contention=True, preemption=value) for value in (0.0, 0.04, 0.08)]
    assert rates[0] > rates[1] > rates[2]
    # The loss is what the hot instance pays over the windows at 1 (it was busy there too, among fewer).
    assert rates[2] < rates[0] * 0.95
    # With a core per instance nobody is preempted.
    few = {"src": 1, "work": 1, "out": 1}
    assert predicted_throughput(spec, few, cores=3, contention=True, preemption=0.1) == predicted_throughput(spec, few, cores=3, contention=True)


def test_the_preemption_cost_is_read_back_from_mixed_windows_and_not_from_uniform_ones() -> None:
    from streamtune_cli.calibrate import fit_preemption

    specs = [_three([1.0, 4.0, 0.5]), _three([3.0, 1.0, 0.3])]
    mixed = [{"src": 3, "work": 1, "out": 3}, {"src": 1, "work": 3, "out": 2}, {"src": 2, "work": 1, "out": 1}]
    cases = [(s, par, predicted_throughput(s, par, cores=2, contention=True, preemption=0.07)) for s in specs for par in mixed]
    assert fit_preemption(cases, 2) == pytest.approx(0.07)
    plain = [(s, par, predicted_throughput(s, par, cores=2, contention=True)) for s in specs for par in mixed]
    assert fit_preemption(plain, 2) == 0.0
    # Windows with every unit at one parallelism fit any value equally well: the least one, 0, is kept.
    uniform = [(s, {op.id: p for op in s.operators}, predicted_throughput(s, {op.id: p for op in s.operators}, cores=2, contention=True) * 0.9)
               for s in specs for p in (1, 2, 3)]
    assert fit_preemption(uniform, 2) == 0.0


def test_windows_with_a_core_per_instance_carried_no_preemption() -> None:
    from streamtune_cli.calibrate import _carried_preemption
    from streamtune_cli.executors.sim import SimDeployment

    spec = chain_spec([("src", "source", 4.0, 1.0), ("out", "sink", 2.0, 1.0)], rate_rps=1000.0, name="two")
    mixed = SimDeployment(spec, {"src": 1, "out": 2})
    carried = _carried_preemption(spec, mixed, ["src", "out"], 2, 0.1)
    # src's cost came from windows at 1,1: two instances on two cores, nobody preempted. out's from 2,2:
    # four instances, each busy one paying for the other three.
    assert carried["src"] == 1.0
    assert carried["out"] > 1.0
    # So at 1,2 the source, now among three instances, pays its whole preemption.
    plain = predicted_throughput(spec, {"src": 1, "out": 2}, cores=2, contention=True)
    assert predicted_throughput(spec, {"src": 1, "out": 2}, cores=2, contention=True, preemption=0.1) < plain
