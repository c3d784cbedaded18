"""Hypothesis strategies that generate valid job specs (as plain YAML-ready data) and mutations of them."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

__all__ = ["job_spec_data", "mutated_spec_data", "MIDDLE_KINDS"]

MIDDLE_KINDS = ["map", "filter", "project", "flat_map", "aggregate", "window_aggregate", "join"]
_COLUMNS = ["auction", "bidder", "price", "seller", "id", "category"]


@st.composite
def _window(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["tumble", "hop", "session"]))
    if kind == "tumble":
        return {"type": "tumble", "size_s": draw(st.integers(1, 60))}
    if kind == "hop":
        size = draw(st.integers(2, 60))
        return {"type": "hop", "size_s": size, "slide_s": draw(st.integers(1, size))}
    return {"type": "session", "gap_s": draw(st.integers(1, 30))}


@st.composite
def _schedule(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["constant", "step", "square", "sine"]))
    if kind == "constant":
        return {"kind": "constant"}
    if kind == "step":
        times = sorted(draw(st.lists(st.integers(0, 3600), min_size=1, max_size=3, unique=True)))
        return {"kind": "step", "steps": [{"at_s": t, "factor": draw(st.sampled_from([0.5, 1.0, 1.5, 2.0]))} for t in times]}
    if kind == "square":
        return {"kind": "square", "period_s": draw(st.integers(10, 900)), "low_factor": 0.5, "high_factor": 1.0}
    return {"kind": "sine", "period_s": draw(st.integers(10, 900)), "amplitude": draw(st.sampled_from([0.0, 0.3, 0.5]))}


@st.composite
def job_spec_data(
    draw: st.DrawFn, min_operators: int = 2, max_operators: int = 10, semantics: bool = True
) -> dict[str, Any]:
    """A valid job spec as plain data: a DAG of sources, middle operators and one sink.

    Node i only feeds nodes after it, so the result is acyclic by construction; every node without an
    output feeds the sink, so every non-sink has an output. `semantics` adds SQL and keys/windows.
    """
    n_middle = draw(st.integers(max(0, min_operators - 2), max(0, max_operators - 2)))
    n_sources = draw(st.integers(1, 2))
    ops: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    inputs: dict[str, list[str]] = {}
    outputs: dict[str, int] = {}

    def parallelism() -> int:
        return draw(st.integers(1, 8))

    def hints(op: dict[str, Any], kind: str) -> None:
        op["cost_us"] = draw(st.sampled_from([0.5, 1.0, 2.5, 4.0, 12.0]))
        if kind not in ("source", "sink"):
            op["selectivity"] = draw(st.sampled_from([0.01, 0.5, 1.0, 2.0] if kind == "flat_map" else [0.01, 0.5, 1.0]))
        if draw(st.booleans()):
            op["record_bytes"] = draw(st.integers(8, 600))
        if draw(st.integers(0, 3)) == 0:
            op["scaling"] = {"sigma": draw(st.sampled_from([0.0, 0.05])), "kappa": draw(st.sampled_from([0.0, 0.001]))}
        if draw(st.integers(0, 4)) == 0:
            op["chaining"] = draw(st.sampled_from(["always", "head", "never", "head_with_sources"]))
        if draw(st.integers(0, 5)) == 0:
            op["slot_sharing_group"] = draw(st.sampled_from(["default", "heavy"]))

    def connect(src: str, dst: str, dst_parallelism: int) -> None:
        src_op = next(o for o in ops if o["id"] == src)
        options = ["rebalance", "hash", "broadcast"]
        if src_op["parallelism"] == dst_parallelism:
            options.append("forward")
        part = draw(st.sampled_from(options))
        edge: dict[str, Any] = {"from": src, "to": dst, "partitioning": part}
        if part == "hash":
            edge["key"] = [draw(st.sampled_from(_COLUMNS))]
        edges.append(edge)
        inputs.setdefault(dst, []).append(src)
        outputs[src] = outputs.get(src, 0) + 1

    for i in range(n_sources):
        op = {"id": f"src{i}", "kind": "source", "parallelism": parallelism()}
        hints(op, "source")
        if n_sources > 1:
            op["rate_share"] = draw(st.sampled_from([1, 3]))
        ops.append(op)
    for i in range(n_middle):
        earlier = [o["id"] for o in ops]
        kind = draw(st.sampled_from(MIDDLE_KINDS if len(earlier) >= 2 else MIDDLE_KINDS[:-1]))
        op_id = f"op{i}"
        op = {"id": op_id, "kind": kind, "parallelism": parallelism()}
        hints(op, kind)
        if semantics:
            if kind == "filter":
                op["predicate"] = draw(st.sampled_from(["price > 10", "MOD(auction, 123) = 0", "category = 10"]))
            elif kind in ("project", "map"):
                op["columns"] = {"auction": "auction", "price": draw(st.sampled_from(["price", "price * 0.9"]))}
            elif kind in ("aggregate", "window_aggregate"):
                op["key"] = [draw(st.sampled_from(_COLUMNS))]
                op["aggregates"] = {"n": "COUNT(*)"}
        if kind == "window_aggregate":
            op["window"] = draw(_window())
        if draw(st.integers(0, 3)) == 0 and kind in ("aggregate", "window_aggregate", "join"):
            op["key_skew"] = {"zipf_s": draw(st.sampled_from([0.0, 0.8, 1.2])), "keys": draw(st.integers(1, 5000))}
        ops.append(op)
        n_inputs = 2 if kind == "join" else 1
        ups = draw(st.lists(st.sampled_from(earlier), min_size=n_inputs, max_size=n_inputs, unique=True))
        for up in ups:
            connect(up, op_id, op["parallelism"])
        if kind == "join" and semantics:
            op["join"] = {"left": ups[0], "right": ups[1], "left_key": ["id"], "right_key": ["seller"]}
    sink = {"id": "sink", "kind": "sink", "parallelism": parallelism()}
    hints(sink, "sink")
    ops.append(sink)
    for op in ops[:-1]:
        if not outputs.get(op["id"]):
            connect(op["id"], "sink", sink["parallelism"])
    for op in ops:
        op["max_parallelism"] = draw(st.sampled_from([op["parallelism"], 16, 128]))
    return {
        "name": draw(st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True)),
        "workload": {"rate_rps": draw(st.sampled_from([1000, 50_000, 1_000_000])), "schedule": draw(_schedule())},
        "operators": ops,
        "edges": edges,
    }


_WEIRD_VALUES = [
    None, -1, 0, "", "x", [], {}, float("inf"), float("-inf"), float("nan"), 1e300, True, [1, 2], {"a": 1},
    "MOD(,", 10**12, 10**9, 40_000, "ü→💥",
]


@st.composite
def mutated_spec_data(draw: st.DrawFn) -> Any:
    """A valid spec with one random structural mutation: most results are invalid, some stay valid."""
    data = copy.deepcopy(draw(job_spec_data(max_operators=6)))
    # Collect every (container, key) pair so a mutation can hit any node of the document.
    slots: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in list(node):
                slots.append((node, key))
                walk(node[key])
        elif isinstance(node, list):
            for index in range(len(node)):
                slots.append((node, index))
                walk(node[index])

    walk(data)
    action = draw(st.sampled_from(["replace", "delete", "add_key", "duplicate_item", "root"]))
    if action == "root":
        return draw(st.sampled_from(_WEIRD_VALUES))
    container, key = draw(st.sampled_from(slots))
    if action == "replace":
        container[key] = draw(st.sampled_from(_WEIRD_VALUES))
    elif action == "delete":
        del container[key]
    elif action == "add_key" and isinstance(container[key], dict):
        container[key][draw(st.sampled_from(["bogus", "id", "from", "kind", "window"]))] = draw(
            st.sampled_from(_WEIRD_VALUES)
        )
    elif action == "duplicate_item" and isinstance(container, list):
        container.append(copy.deepcopy(container[key]))
    return data
