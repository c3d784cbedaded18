"""The cost model on hand-computed cases: exchange prices, fused-stage cost with pushdown, capacity verdicts,
and the plan estimate (CPU, serialized/network bytes, hops, latency)."""

from __future__ import annotations

import pytest

from streamtune_cli.errors import UsageError
from streamtune_cli.fusion import CostModel, StageCost, plan_fusion
from streamtune_cli.spec import Operator, load_spec_text

MODEL = CostModel()


def op(kind: str, op_id: str, **fields) -> Operator:  # noqa: ANN003
    return Operator.model_validate({"id": op_id, "kind": kind, **fields})


def test_exchange_and_copy_prices() -> None:
    # per side 0.1 µs + 0.001 µs/B; both sides for 100 B: 2 * 0.2 = 0.4 µs. Copy: 0.05 + 0.0005 * 100 = 0.1 µs.
    assert MODEL.serde_us(100) == pytest.approx(0.4)
    assert MODEL.copy_us(100) == pytest.approx(0.1)
    assert MODEL.fused_saving_us(100, consumer_cost_us=1.5, composed=False) == pytest.approx(0.3)
    assert MODEL.fused_saving_us(100, consumer_cost_us=1.5, composed=True) == pytest.approx(0.4)
    # never more than half of the consumer's own cost
    assert MODEL.fused_saving_us(100, consumer_cost_us=0.2, composed=True) == pytest.approx(0.1)


def test_cost_model_rejects_nonsense() -> None:
    with pytest.raises(UsageError):
        CostModel(serde_us_per_byte=-1)
    with pytest.raises(UsageError):
        CostModel(copy_us_per_record=1.0)  # a copy dearer than serializing both sides


def test_chained_stage_cost_is_members_minus_saved_serialization() -> None:
    source = op("source", "s", cost_us=4.0, record_bytes=100)
    mapper = op("map", "m", cost_us=1.5, selectivity=0.5)
    stage = StageCost.single(source).extended(mapper, MODEL, composed=False, pushdown=True)
    assert stage.cost_us == pytest.approx(4.0 + 1.5 - 0.3)
    assert stage.through == pytest.approx(0.5)


def test_filter_moves_before_a_projection_and_costs_are_weighted_by_records_seen() -> None:
    mapper = op("map", "m", cost_us=2.0, columns={"total": "price * qty"}, record_bytes=100)
    keep = op("filter", "f", cost_us=0.5, selectivity=0.1, predicate="total > 100")
    stage = StageCost.single(mapper).extended(keep, MODEL, composed=True, pushdown=True)
    # f runs first on every record (0.5), m only on the 10% kept (2.0 * 0.1); the fused edge saves
    # min(0.4, 0.5 * 0.5) = 0.25 per record crossing it (1 per head record).
    assert stage.cost_us == pytest.approx(0.5 + 0.2 - 0.25)
    assert stage.moved == [("f", ("m",))]
    assert [stage.members[i].id for i in stage.eval_order] == ["f", "m"]
    no_pushdown = StageCost.single(mapper).extended(keep, MODEL, composed=True, pushdown=False)
    assert no_pushdown.cost_us == pytest.approx(2.0 + 0.5 - 0.25)


def test_filter_does_not_move_past_an_opaque_map() -> None:
    mapper = op("map", "m", cost_us=2.0)  # no declared columns: the predicate cannot be rewritten
    keep = op("filter", "f", cost_us=0.5, selectivity=0.1, predicate="total > 100")
    stage = StageCost.single(mapper).extended(keep, MODEL, composed=True, pushdown=True)
    assert stage.moved == []
    assert stage.cost_us == pytest.approx(2.0 + 0.5 - min(MODEL.serde_us(100), 0.25))


TWO_STEP = """
name: two-step
workload: {{rate_rps: {rate}}}
operators:
  - {{id: src, kind: source, parallelism: 1, cost_us: 4.0, record_bytes: 100}}
  - {{id: m, kind: map, parallelism: 1, cost_us: 1.5, record_bytes: 50}}
  - {{id: out, kind: sink, parallelism: 2, cost_us: 1.0}}
edges:
  - {{from: src, to: m}}
  - {{from: m, to: out, partitioning: rebalance}}
"""


def test_fusion_that_would_become_the_bottleneck_is_refused_with_its_ratio() -> None:
    # Fused src+m costs 4 + 1.5 - 0.3 = 5.2 µs/record: 1e6 / 5.2 = 192,308 rec/s at p=1.
    spec = load_spec_text(TWO_STEP.format(rate=200_000))
    plan = plan_fusion(spec)
    edge = next(b for b in plan.boundaries if (b.src, b.dst) == ("src", "m"))
    assert not edge.fused
    assert edge.reasons == (f"would exceed capacity: {200_000 / (1e6 / 5.2):.2f}x",)
    assert plan.after.max_utilization <= 1.0
    relaxed = plan_fusion(spec, rate_rps=150_000)
    assert next(b for b in relaxed.boundaries if (b.src, b.dst) == ("src", "m")).fused
    # Flink chains regardless of load.
    assert next(b for b in plan_fusion(spec, mode="flink").boundaries if b.src == "src").fused


def test_plan_estimate_by_hand() -> None:
    spec = load_spec_text(TWO_STEP.format(rate=100_000))
    plan = plan_fusion(spec)
    before, after = plan.before, plan.after
    # Unfused: CPU = 1e5 * (4 + 1.5 + 1); bytes = 1e5 * 100 + 1e5 * 50; hops = 2e5; 2 hops on the path.
    assert before.cpu_us_per_s == pytest.approx(1e5 * 6.5)
    assert before.serialized_bytes_per_s == pytest.approx(1e5 * 150)
    assert before.hops_per_s == pytest.approx(2e5)
    assert before.latency_ms == pytest.approx(2 * MODEL.hop_latency_ms)
    assert before.tasks == 4
    # Fused src+m: saves 0.3 µs per record (copy kept: the producer is a source), 100 B and one hop.
    assert after.cpu_us_per_s == pytest.approx(1e5 * (6.5 - 0.3))
    assert after.serialized_bytes_per_s == pytest.approx(1e5 * 50)
    assert after.hops_per_s == pytest.approx(1e5)
    assert after.latency_ms == pytest.approx(MODEL.hop_latency_ms)
    summary = plan.summary()
    assert summary["cpu_us_per_s"] == pytest.approx(1e5 * 0.3)
    assert summary["serialized_bytes_per_s"] == pytest.approx(1e7)
    assert summary["hops_per_s"] == pytest.approx(1e5)
    assert summary["latency_ms"] == pytest.approx(MODEL.hop_latency_ms)
    assert summary["chains"] == 1 and summary["fused_edges"] == 1 and summary["boundaries"] == 1


def test_broadcast_serializes_once_and_delivers_to_every_instance() -> None:
    spec = load_spec_text(
        """
name: bc
workload: {rate_rps: 1000}
operators:
  - {id: src, kind: source, parallelism: 1, record_bytes: 10}
  - {id: out, kind: sink, parallelism: 3}
edges:
  - {from: src, to: out, partitioning: broadcast}
"""
    )
    before = plan_fusion(spec).before
    assert before.serialized_bytes_per_s == pytest.approx(1000 * 10)
    assert before.network_bytes_per_s == pytest.approx(3 * 1000 * 10)
    assert before.hops_per_s == pytest.approx(3000)
