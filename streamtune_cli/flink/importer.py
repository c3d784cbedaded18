"""`streamtune import flink`: a running Flink job as a job spec.

Read from the REST API: `/jobs/{id}` (vertices: names, parallelism, max parallelism) and `/jobs/{id}/plan`
(edges with their ship strategy, and each vertex's SQL description). A vertex name lists its chained
operators (`Source: bid[1] -> Calc[2]`), so each operator becomes a spec operator, chained members are joined
by forward edges, and vertices by their ship strategy. What REST does not say is inferred from what Flink
did, so that `fuse --mode flink` on the spec rebuilds exactly Flink's vertices:

- a forward edge between vertices of equal parallelism that Flink did not chain, into a writer (or another
  yielding operator), means the upstream chain starts with a legacy `SourceFunction` source;
- any other such edge means chaining is off for the job (when no vertex chains anything) or that the
  downstream operator starts a chain (`chaining: head`).

Per-record costs are not in REST: every operator gets the spec defaults (`streamtune calibrate` fits them
from measurements).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from streamtune_cli.flink.names import ChainedName, operator_id, parse_vertex_name

__all__ = ["import_flink_job", "spec_from_rest", "FlinkVertex"]

_SHIP = {
    "FORWARD": "forward",
    "HASH": "hash",
    "REBALANCE": "rebalance",
    "BROADCAST": "broadcast",
    "RESCALE": "rescale",
    "GLOBAL": "global",
    "SHUFFLE": "rebalance",
    "CUSTOM": "hash",
}
_LINE = re.compile(r"^\[(?P<n>\d+)\]:(?P<op>\w+)(?:\((?P<args>.*)\))?$")
_NUMBER = re.compile(r"\[(\d+)\]")
_AGGREGATES = ("Aggregate", "Rank", "Deduplicate", "Limit", "Sort", "Over")


@dataclass
class FlinkVertex:
    """One job vertex and the spec operators it holds (in chain order)."""

    id: str
    name: str
    parallelism: int
    max_parallelism: int
    chain: ChainedName
    operators: list[str] = field(default_factory=list)  # spec ids, chain order

    @property
    def head(self) -> str:
        """The operator the vertex's inputs reach: the first one that is not a chained source."""
        return self.operators[len(self.chain.chained_sources)]

    @property
    def tail(self) -> str:
        return self.operators[self.chain.tail]


def _descriptions(plan: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Planner node number -> (node type, its arguments), from the plan's HTML descriptions."""
    found: dict[str, tuple[str, str]] = {}
    for node in plan.get("nodes", []):
        for raw in html.unescape(node.get("description", "")).split("<br/>"):
            line = raw.strip().lstrip("+- ").strip()
            match = _LINE.match(line)
            if match:
                found[match.group("n")] = (match.group("op"), match.group("args") or "")
    return found


def _bracket_list(args: str, name: str) -> list[str]:
    match = re.search(rf"\b{name}=\[([^\]]*)\]", args)
    return [part.strip() for part in match.group(1).split(",") if part.strip()] if match else []


def _window(args: str) -> dict[str, Any] | None:
    match = re.search(r"window=\[(TUMBLE|HOP|CUMULATE|SESSION)\((.*?)\)\]", args)
    if match is None:
        return None

    def seconds(key: str) -> float | None:
        found = re.search(rf"\b{key}=\[(\d+(?:\.\d+)?) ?(ms|s|min|h)\]", match.group(2))
        if found is None:
            return None
        return float(found.group(1)) * {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0}[found.group(2)]

    kind = match.group(1)
    size, slide, gap = seconds("size"), seconds("slide"), seconds("gap")
    if kind == "TUMBLE" and size:
        return {"type": "tumble", "size_s": size}
    if kind == "HOP" and size and slide:
        return {"type": "hop", "size_s": size, "slide_s": slide}
    if kind == "SESSION" and gap:
        return {"type": "session", "gap_s": gap}
    return None


def _operator(name: str, described: dict[str, tuple[str, str]], inputs: int, outputs: int) -> dict[str, Any]:
    """Spec fields of one Flink operator, from its name and its planner description."""
    if name.startswith("Source: "):
        return {"kind": "source", "name": name.removeprefix("Source: ")}
    if name.endswith(": Writer") and outputs == 0:
        return {"kind": "sink", "name": name.removesuffix(": Writer"), "sink_writer": True}
    if name.startswith("Sink: "):
        return {"kind": "sink", "name": name.removeprefix("Sink: ")}
    if outputs == 0:
        return {"kind": "sink", "name": name}
    number = _NUMBER.search(name)
    node, args = described.get(number.group(1), ("", "")) if number else ("", "")
    node = node or re.sub(r"\[\d+\]$", "", name)
    fields: dict[str, Any] = {"name": name}
    group = _bracket_list(args, "groupBy")
    if "WindowAggregate" in node and not node.startswith("Local"):
        window = _window(args)
        if window is not None:
            fields.update(kind="window_aggregate", window=window)
            if group:
                fields["key"] = group
            return fields
    if "Join" in node and inputs == 2:
        return {**fields, "kind": "join"}
    if any(token in node for token in _AGGREGATES):
        fields["kind"] = "aggregate"
        if group:
            fields["key"] = group
        return fields
    if node == "Calc" and "where=[" in args:
        return {**fields, "kind": "filter"}
    return {**fields, "kind": "map"}


def spec_from_rest(job: dict[str, Any], plan: dict[str, Any], *, rate_rps: float, source_url: str = "") -> dict[str, Any]:
    """The job spec (as YAML-ready data) of a Flink job, from its `/jobs/{id}` and `/jobs/{id}/plan` answers."""
    described = _descriptions(plan)
    vertices: dict[str, FlinkVertex] = {}
    taken: set[str] = set()
    for v in job.get("vertices", []):
        chain = parse_vertex_name(v["name"])
        vertex = FlinkVertex(
            id=v["id"], name=v["name"], parallelism=int(v["parallelism"]),
            max_parallelism=int(v.get("maxParallelism") or 128), chain=chain,
        )
        vertex.operators = [operator_id(name, taken) for name in chain.operators]
        vertices[v["id"]] = vertex
    # Edges: inside each vertex (chained, forward), then between vertices (ship strategy from the plan).
    edges: list[dict[str, Any]] = []
    for vertex in vertices.values():
        for up, down in vertex.chain.links:
            edges.append({"from": vertex.operators[up], "to": vertex.operators[down], "partitioning": "forward"})
    between: list[tuple[FlinkVertex, FlinkVertex, str]] = []
    for node in plan.get("nodes", []):
        down = vertices.get(node["id"])
        for link in node.get("inputs", []) or []:
            up = vertices.get(link["id"])
            if up is None or down is None:
                continue
            ship = _SHIP.get(str(link.get("ship_strategy", "")).upper(), "rebalance")
            edge: dict[str, Any] = {"from": up.tail, "to": down.head, "partitioning": ship}
            if str(link.get("exchange", "")).lower() == "blocking":
                edge["exchange"] = "batch"
            between.append((up, down, ship))
            edges.append(edge)
    inputs: dict[str, int] = {}
    outputs: dict[str, int] = {}
    for e in edges:
        outputs[e["from"]] = outputs.get(e["from"], 0) + 1
        inputs[e["to"]] = inputs.get(e["to"], 0) + 1
    operators: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    for vertex in vertices.values():
        for name, op_id in zip(vertex.chain.operators, vertex.operators):
            op = {"id": op_id, **_operator(name, described, inputs.get(op_id, 0), outputs.get(op_id, 0))}
            op["parallelism"] = vertex.parallelism
            op["max_parallelism"] = max(vertex.max_parallelism, vertex.parallelism)
            operators.append(op)
            by_id[op_id] = op
    for e in edges:  # a hash edge needs its key: the downstream grouping, else a placeholder
        if e["partitioning"] == "hash":
            e["key"] = list(by_id[e["to"]].get("key") or ["key"])
    chained_anything = any(len(v.operators) > 1 for v in vertices.values())
    chaining_enabled = True
    for up, down, ship in between:
        if ship != "forward" or up.parallelism != down.parallelism:
            continue
        head_up = by_id[up.head]
        down_head = by_id[down.head]
        if down_head.get("sink_writer") and head_up["kind"] == "source":
            head_up["legacy_source"] = True
        elif not chained_anything:
            chaining_enabled = False
        else:
            down_head["chaining"] = "head"
    spec: dict[str, Any] = {
        "name": _spec_name(job.get("name") or "flink-job"),
        "description": f"Imported from Flink job {job.get('jid', '?')}{' at ' + source_url if source_url else ''} by `streamtune import flink`.",
        "workload": {"rate_rps": rate_rps},
    }
    if not chaining_enabled:
        spec["chaining_enabled"] = False
    spec["operators"] = operators
    spec["edges"] = edges
    return spec


def _spec_name(name: str) -> str:
    return re.sub(r"\s+", "-", name.strip()) or "flink-job"


def import_flink_job(rest: Any, job_id: str, *, rate_rps: float | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Read job `job_id` from a cluster; returns the spec data and the operator -> vertex id mapping."""
    job = rest.job(job_id)
    plan = rest.plan(job_id)
    placeholder = False
    if rate_rps is None:
        rate_rps = _observed_source_rate(job)
        placeholder = rate_rps == _PLACEHOLDER_RATE
    spec = spec_from_rest(job, plan, rate_rps=rate_rps, source_url=rest.url)
    if placeholder:
        spec["description"] += f" {PLACEHOLDER_NOTE}"
    mapping = vertex_mapping(job)
    return spec, mapping


def vertex_mapping(job: dict[str, Any]) -> dict[str, str]:
    """Spec operator id -> Flink vertex id, as spec_from_rest names operators (same order, same ids)."""
    taken: set[str] = set()
    mapping: dict[str, str] = {}
    for v in job.get("vertices", []):
        for name in parse_vertex_name(v["name"]).operators:
            mapping[operator_id(name, taken)] = v["id"]
    return mapping


def _observed_source_rate(job: dict[str, Any]) -> float:
    """Records/s read by the job's source vertices so far (records they wrote / time running); 1000 when
    nothing was read yet. A chained source vertex counts what leaves its last operator, a lower bound."""
    seconds = max(float(job.get("duration", 0)) / 1000.0, 1e-3)
    total = 0.0
    for v in job.get("vertices", []):
        if v["name"].startswith("Source: ") or " [Source: " in v["name"]:
            total += float((v.get("metrics") or {}).get("write-records", 0) or 0)
    rate = total / seconds
    return round(rate, 1) if rate > 0 else _PLACEHOLDER_RATE


_PLACEHOLDER_RATE = 1000.0
PLACEHOLDER_NOTE = "The workload rate (1000 rec/s) is a placeholder: no source records were counted yet (set it with --rate)."
