"""Hypothesis strategies for fusion tests: valid job specs rich in forward edges, chaining settings and
consistent column schemas (so filters, projections and maps can really be composed)."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import strategies as st

from streamtune_cli.spec import JobSpec, load_spec_text

NUMERIC = ["auction", "bidder", "price", "category"]
BASE_SCHEMA = NUMERIC + ["date_time"]


@st.composite
def predicate(draw: st.DrawFn, schema: list[str]) -> str:
    numeric = [c for c in schema if c not in ("date_time",)] or schema
    col = draw(st.sampled_from(numeric))
    template = draw(st.sampled_from(["{c} > {n}", "MOD({c}, {m}) = 0", "{c} <> {n}", "{c} * 2 < {n} + 40"]))
    return template.format(c=col, n=draw(st.integers(0, 50)), m=draw(st.integers(2, 9)))


@st.composite
def columns(draw: st.DrawFn, schema: list[str], kind: str) -> dict[str, str]:
    keep = draw(st.lists(st.sampled_from(schema), min_size=1, max_size=len(schema), unique=True))
    out: dict[str, str] = {}
    for col in keep:
        if kind == "map" and col != "date_time" and draw(st.booleans()):
            out[col] = draw(st.sampled_from([f"{col} + 1", f"{col} * 3", f"MOD({col}, 10)"]))
        else:
            out[col] = col
    if kind == "map" and draw(st.booleans()):
        numeric = [c for c in schema if c != "date_time"]
        if numeric:
            src = draw(st.sampled_from(numeric))
            out[draw(st.sampled_from(["score", "bucket"]))] = f"{src} * 2 + 1"
    return out


@st.composite
def fusion_spec_data(
    draw: st.DrawFn, max_middle: int = 8, semantics: bool = True, max_sinks: int = 2
) -> dict[str, Any]:
    """A valid spec as plain data. Node i only feeds later nodes (acyclic); parallelism is usually copied
    from the upstream so forward edges, and so chains, are common."""
    ops: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    schema: dict[str, list[str]] = {}
    outputs: dict[str, int] = {}

    def hints(op: dict[str, Any]) -> None:
        kind = op["kind"]
        op["cost_us"] = draw(st.sampled_from([0.2, 0.5, 1.0, 2.5, 4.0, 12.0]))
        if kind == "filter":
            op["selectivity"] = draw(st.sampled_from([0.01, 0.5, 1.0]))
        elif kind == "flat_map":
            op["selectivity"] = draw(st.sampled_from([0.5, 2.0]))
        elif kind in ("aggregate", "window_aggregate", "join"):
            op["selectivity"] = draw(st.sampled_from([0.05, 0.5, 1.0]))
        elif kind in ("map", "project") and draw(st.integers(0, 5)) == 0:
            op["selectivity"] = 0.5
        if draw(st.integers(0, 2)) == 0:
            op["record_bytes"] = draw(st.integers(8, 600))
        if draw(st.integers(0, 4)) == 0:
            op["scaling"] = {"sigma": draw(st.sampled_from([0.0, 0.05])), "kappa": draw(st.sampled_from([0.0, 0.001]))}
        if draw(st.integers(0, 5)) == 0:
            op["chaining"] = draw(st.sampled_from(["always", "head", "never", "head_with_sources"]))
        if draw(st.integers(0, 7)) == 0:
            op["slot_sharing_group"] = "heavy"
        if draw(st.integers(0, 7)) == 0:
            op["max_parallelism"] = draw(st.sampled_from([op["parallelism"], 64]))

    def connect(src: dict[str, Any], dst: dict[str, Any], key: list[str] | None = None) -> None:
        same_p = src["parallelism"] == dst["parallelism"]
        if key is not None and dst["kind"] == "join" and same_p and draw(st.booleans()):
            key = None  # a join fed by forward edges (e.g. sources chained into a multi-input task)
        if key is not None:
            part = "hash"
        elif same_p and draw(st.integers(0, 9)) < 7:
            part = "forward"
        else:
            part = draw(st.sampled_from(["hash", "rebalance", "broadcast"]))
        edge: dict[str, Any] = {"from": src["id"], "to": dst["id"], "partitioning": part}
        if part == "hash":
            edge["key"] = key or [draw(st.sampled_from(schema[src["id"]]))]
        if draw(st.integers(0, 15)) == 0:
            edge["exchange"] = "batch"
        edges.append(edge)
        outputs[src["id"]] = outputs.get(src["id"], 0) + 1

    def parallelism_like(up: dict[str, Any]) -> int:
        return up["parallelism"] if draw(st.integers(0, 3)) else draw(st.sampled_from([1, 2, 4]))

    for i in range(draw(st.integers(1, 2))):
        op: dict[str, Any] = {"id": f"src{i}", "kind": "source", "parallelism": draw(st.sampled_from([1, 2, 4]))}
        hints(op)
        if draw(st.booleans()):
            op["rate_share"] = draw(st.sampled_from([1, 3]))
        ops.append(op)
        schema[op["id"]] = list(BASE_SCHEMA)
    kinds = ["filter", "filter", "project", "map", "map", "flat_map", "aggregate", "window_aggregate", "join"]
    for i in range(draw(st.integers(0, max_middle))):
        candidates = [o for o in ops]
        kind = draw(st.sampled_from(kinds if len(candidates) >= 2 else kinds[:-1]))
        up = draw(st.sampled_from(candidates))
        op = {"id": f"op{i}", "kind": kind, "parallelism": parallelism_like(up)}
        in_schema = schema[up["id"]]
        out_schema = list(in_schema)
        key: list[str] | None = None
        if kind == "filter" and semantics:
            op["predicate"] = draw(predicate(in_schema))
        elif kind in ("project", "map") and semantics:
            op["columns"] = draw(columns(in_schema, kind))
            out_schema = list(op["columns"])
        elif kind in ("aggregate", "window_aggregate"):
            key = [draw(st.sampled_from(in_schema))]
            if semantics:
                op["key"] = key
                op["aggregates"] = {"n": "COUNT(*)"}
            out_schema = key + ["n"] + (["window_end"] if kind == "window_aggregate" else [])
            if kind == "window_aggregate":
                op["window"] = {"type": "tumble", "size_s": 10}
            if draw(st.integers(0, 2)) == 0:
                op["key_skew"] = {"zipf_s": draw(st.sampled_from([0.0, 0.8, 1.2])), "keys": draw(st.integers(2, 500))}
        hints(op)
        ops.append(op)
        if kind == "join":
            other = draw(st.sampled_from([o for o in candidates if o["id"] != up["id"]]))
            left_key, right_key = draw(st.sampled_from(in_schema)), draw(st.sampled_from(schema[other["id"]]))
            connect(up, op, [left_key])
            connect(other, op, [right_key])
            if semantics:
                op["join"] = {"left": up["id"], "right": other["id"], "left_key": [left_key], "right_key": [right_key]}
            out_schema = sorted(set(in_schema) | set(schema[other["id"]]))
        else:
            connect(up, op, key)
            if kind in ("map", "filter", "project") and draw(st.integers(0, 6)) == 0:
                # occasionally a union: a second input with the same schema
                others = [o for o in candidates if o["id"] != up["id"] and schema[o["id"]] == in_schema]
                if others:
                    connect(draw(st.sampled_from(others)), op)
        schema[op["id"]] = out_schema
    n_sinks = draw(st.integers(1, max_sinks))
    sinks = []
    for i in range(n_sinks):
        up = draw(st.sampled_from(ops))
        sink = {"id": f"sink{i}", "kind": "sink", "parallelism": parallelism_like(up)}
        hints(sink)
        sink.pop("selectivity", None)
        sinks.append(sink)
        connect(up, sink)
    ops += sinks
    for op in ops:
        if op["kind"] != "sink" and not outputs.get(op["id"]):
            connect(op, sinks[-1])
    return {
        "name": "gen",
        "chaining_enabled": draw(st.integers(0, 12)) > 0,
        "workload": {"rate_rps": draw(st.sampled_from([1_000, 100_000, 1_000_000]))},
        "operators": ops,
        "edges": edges,
    }


def spec_of(data: dict[str, Any], *, check_sql: bool = False) -> JobSpec:
    return load_spec_text(yaml.safe_dump(data, sort_keys=False), "gen.yaml", check_sql_expressions=check_sql)
