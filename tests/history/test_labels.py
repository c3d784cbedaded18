"""The bottleneck label: both rules on hand-built windows, and agreement with the noise-free sim's saturation."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtune_cli.executors.sim import SimExecutor, steady_state
from streamtune_cli.definitions import BUSY_THRESHOLD
from streamtune_cli.history.labels import bottleneck_labels
from streamtune_cli.spec.graph import JobGraph
from streamtune_cli.spec.models import JobSpec
from streamtune_cli.testing.strategies import job_spec_data


@dataclass
class M:
    busy_max: float
    backpressured_max: float = 0.0


def chain(*ids: str) -> nx.DiGraph:
    graph = nx.DiGraph()
    nx.add_path(graph, ids)
    return graph


def test_saturated_operator_behind_a_backpressured_upstream_is_a_bottleneck() -> None:
    dag = chain("src", "a", "b", "sink")
    labels = bottleneck_labels(dag, {"src": M(0.3, 0.7), "a": M(0.95), "b": M(0.4), "sink": M(0.1)})
    assert labels == {"src": False, "a": True, "b": False, "sink": False}


def test_busy_but_unbackpressured_upstream_still_counts_when_most_downstream() -> None:
    # Rule 2: a saturated operator with no saturated operator downstream, even though nobody is blocked.
    dag = chain("src", "a", "sink")
    assert bottleneck_labels(dag, {"src": M(0.5), "a": M(0.92), "sink": M(0.2)})["a"] is True


def test_a_saturated_source_is_a_bottleneck_only_if_nothing_downstream_is_saturated() -> None:
    dag = chain("src", "a", "sink")
    assert bottleneck_labels(dag, {"src": M(1.0), "a": M(0.5), "sink": M(0.1)})["src"] is True
    labels = bottleneck_labels(dag, {"src": M(1.0), "a": M(0.97), "sink": M(0.1)})
    assert labels["src"] is False and labels["a"] is True


def test_below_the_busy_threshold_is_never_a_bottleneck() -> None:
    dag = chain("src", "a", "sink")
    labels = bottleneck_labels(dag, {"src": M(0.2, 0.9), "a": M(0.89), "sink": M(0.1)})
    assert not any(labels.values())
    assert bottleneck_labels(dag, {"src": M(0.2, 0.9), "a": M(0.89), "sink": M(0.1)}, busy_threshold=0.85)["a"]


def test_parallel_branches_can_each_have_their_bottleneck() -> None:
    dag = nx.DiGraph([("src", "l"), ("src", "r"), ("l", "sink"), ("r", "sink")])
    labels = bottleneck_labels(dag, {"src": M(0.2, 0.8), "l": M(0.99), "r": M(0.95), "sink": M(0.3)})
    assert labels == {"src": False, "l": True, "r": True, "sink": False}


def test_operators_unknown_to_the_dag_only_use_the_saturation_rule() -> None:
    labels = bottleneck_labels(chain("src", "sink"), {"src": M(0.1), "sink": M(0.2), "chain_vertex": M(0.93)})
    assert labels["chain_vertex"] is True


@settings(max_examples=40, deadline=None)
@given(data=job_spec_data(semantics=False), scale=st.sampled_from([0.3, 1.0, 3.0, 30.0]))
def test_labels_agree_with_the_noise_free_sim(data: dict, scale: float) -> None:
    spec = JobSpec.model_validate(data)
    rate = spec.workload.rate_rps * scale
    executor = SimExecutor(noise=0.0, rate_rps=rate)
    executor.deploy(spec, spec.parallelism)
    obs = executor.observe()
    # The sim observes at the scheduled rate (base rate x the schedule's factor at the window's time), so the
    # reference steady state is taken at the observation's own target rate, not at the flat rate.
    state = steady_state(spec, spec.parallelism, obs.target_rate_rps)
    graph = JobGraph(spec)
    labels = bottleneck_labels(graph.nx, obs.operators)
    labelled = {op for op, is_b in labels.items() if is_b}
    # The sim's own bottlenecks (saturated, nothing saturated downstream) are labelled, except in a near tie:
    # an operator downstream running just under its capacity (busy >= BUSY_THRESHOLD but < 1) reads as
    # saturated to an observer, who then labels that operator instead (found by a random example: a source
    # at capacity feeding a map at 98% busy).
    for op in set(state.bottlenecks) - labelled:
        near_ties = nx.descendants(graph.nx, op) & labelled
        assert near_ties and all(BUSY_THRESHOLD <= obs.operators[d].busy_max < 1.0 for d in near_ties), op
    # ... every label is on a saturated operator ...
    assert all(obs.operators[op].busy_max >= 0.9 for op, is_b in labels.items() if is_b)
    # ... and a window whose sources are throttled always has a bottleneck.
    if obs.achieved_rate_rps < 0.98 * obs.target_rate_rps:
        assert any(labels.values())
