"""Operator logic of the local engine: incremental results equal one polars query over all the data.

The property tests stream random keyed data, split into random batches with random (legal) watermarks in
between, through several instances of an operator (records routed by key group), and at a random point
snapshot every instance, redistribute the state by key group to a random new number of fresh instances and
restore it there. The union of everything emitted must equal one polars query over the whole input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from streamtune_cli.executors.local.operators import (
    OperatorLogic,
    OperatorSemanticsError,
    build_logic,
    parse_aggregate,
)
from streamtune_cli.executors.local.partition import instances_of, key_group_range, key_groups
from streamtune_cli.spec.models import Operator

MAXP = 16
DT = pl.Datetime("ms")
SCHEMA = pl.Schema({"k": pl.Int64, "v": pl.Int64, "date_time": DT})
RIGHT_SCHEMA = pl.Schema({"k": pl.Int64, "b": pl.Int64, "date_time": DT})
AGGREGATES = {
    "n": "COUNT(*)",
    "c": "COUNT(v)",
    "s": "SUM(v)",
    "mn": "MIN(v)",
    "mx": "MAX(v)",
    "avg": "AVG(v)",
    "s2": "sum(v * 2 + k)",
}


def reference_aggregates() -> list[pl.Expr]:
    return [
        pl.len().cast(pl.Int64).alias("n"),
        pl.col("v").count().cast(pl.Int64).alias("c"),
        pl.col("v").sum().alias("s"),
        pl.col("v").min().alias("mn"),
        pl.col("v").max().alias("mx"),
        pl.col("v").mean().alias("avg"),
        (pl.col("v") * 2 + pl.col("k")).sum().alias("s2"),
    ]


# ------------------------------------------------------------------------------------------------- harness


class Cluster:
    """`p` instances of one operator: records routed by key group, watermarks broadcast, rescale via snapshots."""

    def __init__(self, op: Operator, inputs: dict[str, pl.Schema], keys: dict[str, list[str]], parallelism: int) -> None:
        self.op = op
        self.inputs = inputs
        self.keys = keys
        self.outputs: list[pl.DataFrame] = []
        # (frame, previous watermark, the watermark that fired it: None at finish) of everything fired
        self.fired: list[tuple[pl.DataFrame, int | None, int | None]] = []
        self.last_watermark: int | None = None
        self.instances = [build_logic(op, inputs) for _ in range(parallelism)]
        self.schema = self.instances[0].output_schema

    def _collect(self, frames: list[pl.DataFrame], fired_by: tuple[int | None, int | None] | None = None) -> None:
        for frame in frames:
            if fired_by is not None:
                self.fired.append((frame, *fired_by))
            assert frame.height > 0, "an operator emitted an empty frame"
            assert frame.schema == self.schema, f"{frame.schema} != {self.schema}"
            self.outputs.append(frame)

    def process(self, input_id: str, batch: pl.DataFrame) -> None:
        p = len(self.instances)
        target = instances_of(batch, self.keys[input_id], p, MAXP)
        for i, logic in enumerate(self.instances):
            part = batch.filter(target == i)
            if part.height:
                self._collect(logic.process(input_id, part))

    def watermark(self, w: int) -> None:
        for logic in self.instances:
            self._collect(logic.on_watermark(w), (self.last_watermark, w))
        self.last_watermark = w

    def finish(self) -> None:
        for logic in self.instances:
            self._collect(logic.finish(), (self.last_watermark, None))

    def rescale(self, parallelism: int) -> None:
        snapshots = [logic.snapshot() for logic in self.instances]
        state_keys = self.instances[0].state_keys
        for snap in snapshots:
            assert set(snap) == set(state_keys)
        fresh = [build_logic(self.op, self.inputs) for _ in range(parallelism)]
        for name, key in state_keys.items():
            frames = [s[name] for s in snapshots if s[name].height]
            if not frames:
                continue
            table = pl.concat(frames, how="vertical")
            for column in key:
                assert column in table.columns
            groups = key_groups(table, key, MAXP)
            for j, logic in enumerate(fresh):
                owned = key_group_range(j, parallelism, MAXP)
                part = table.filter((groups >= owned.start) & (groups < owned.stop))
                if part.height:  # the runtime only passes non-empty tables
                    logic.restore({name: part})
        self.instances = fresh

    def assert_fired_on_time(self) -> None:
        """Every window fired at the first watermark >= its end: not before it ends, not a watermark later."""
        for frame, previous, current in self.fired:
            end = frame["window_end"].dt.epoch("ms")
            if current is not None:
                assert (end <= current).all(), f"fired early at watermark {current}: {frame}"
            if previous is not None:
                assert (end > previous).all(), f"fired late (complete at watermark {previous}): {frame}"

    def result(self) -> pl.DataFrame:
        return pl.concat(self.outputs, how="vertical") if self.outputs else pl.DataFrame(schema=self.schema)


@dataclass
class Stream:
    """Batches (input id, frame) with optional watermarks after them, and where to rescale."""

    steps: list[tuple[str, pl.DataFrame, int | None]] = field(default_factory=list)
    rescale_at: int = 0
    parallelism: tuple[int, int] = (1, 1)


@st.composite
def records(draw: Any, side_values: tuple[str, ...] = ("v",), max_rows: int = 40) -> list[dict[str, Any]]:
    """Rows with side, key, value and event time; in arrival order (event time with bounded disorder)."""
    n = draw(st.integers(0, max_rows))
    rows = []
    for _ in range(n):
        side = draw(st.sampled_from(side_values))
        rows.append(
            {
                "side": side,
                "k": draw(st.one_of(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3), st.none())),
                "x": draw(st.one_of(st.integers(-5, 20), st.integers(-5, 20), st.none())),
                # a coarse grid (times often exactly a gap or a window apart) with some off-grid offsets
                "t": draw(st.integers(0, 40)) * 100 + draw(st.sampled_from([0, 0, 0, 1, 50, 99])),
                "jitter": draw(st.integers(0, 700)),
            }
        )
    rows.sort(key=lambda r: r["t"] + r["jitter"])
    return rows


def frame_of(rows: list[dict[str, Any]], value: str, schema: pl.Schema) -> pl.DataFrame:
    return pl.DataFrame(
        {"k": [r["k"] for r in rows], value: [r["x"] for r in rows], "date_time": [r["t"] for r in rows]},
        schema={"k": pl.Int64, value: pl.Int64, "date_time": pl.Int64},
    ).with_columns(pl.col("date_time").cast(DT)).select(schema.names())


@st.composite
def streams(draw: Any, sides: dict[str, tuple[str, pl.Schema]]) -> tuple[Stream, dict[str, pl.DataFrame]]:
    """A random stream over `sides` (input id -> (value column, schema)) and all data per input."""
    rows = draw(records(side_values=tuple(sides)))
    stream = Stream(parallelism=(draw(st.integers(1, 4)), draw(st.integers(1, 4))))
    i = 0
    watermark = 0
    chunks = []
    while i < len(rows):
        size = draw(st.integers(1, 8))
        chunks.append((i, rows[i : i + size]))
        i += size
    for start, chunk in chunks:
        later = [r["t"] for r in rows[start + len(chunk) :]]
        batches = []
        for side, (value, schema) in sides.items():
            mine = [r for r in chunk if r["side"] == side]
            if mine:
                batches.append((side, frame_of(mine, value, schema)))
        if draw(st.booleans()):
            batches.reverse()
        for j, (side, frame) in enumerate(batches):
            w = None
            if j == len(batches) - 1 and draw(st.integers(0, 2)) > 0:
                bound = min(later) if later else 6000
                # often on a boundary: the bound (the next record's time), just below it, or a round time
                # (windows end on round times: those ending exactly at w fire, those ending at w + 1 wait)
                choices = [bound, bound - 1, bound // 100 * 100, draw(st.integers(watermark, max(watermark, bound)))]
                w = max(watermark, draw(st.sampled_from(choices)))
                watermark = w
            stream.steps.append((side, frame, w))
    stream.rescale_at = draw(st.integers(0, len(stream.steps)))
    every = {
        side: frame_of([r for r in rows if r["side"] == side], value, schema) for side, (value, schema) in sides.items()
    }
    return stream, every


def run(
    op: Operator, inputs: dict[str, pl.Schema], keys: dict[str, list[str]], stream: Stream, windowed: bool = False
) -> pl.DataFrame:
    cluster = Cluster(op, inputs, keys, stream.parallelism[0])
    for i, (side, frame, w) in enumerate(stream.steps):
        if i == stream.rescale_at:
            cluster.rescale(stream.parallelism[1])
        cluster.process(side, frame)
        if w is not None:
            cluster.watermark(w)
    if stream.rescale_at == len(stream.steps):
        cluster.rescale(stream.parallelism[1])
    cluster.finish()
    if windowed:
        cluster.assert_fired_on_time()
    else:
        assert not cluster.fired, "only windows fire on watermarks"
    return cluster.result()


def assert_same_rows(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert got.columns == want.columns
    by = got.columns
    assert_frame_equal(got.sort(by, nulls_last=True), want.sort(by, nulls_last=True), check_exact=False)


ONE = {"up": ("v", SCHEMA)}
TWO = {"l": ("v", SCHEMA), "r": ("b", RIGHT_SCHEMA)}
PROPERTY = settings(max_examples=50, deadline=None)


def t_ms() -> pl.Expr:
    return pl.col("date_time").dt.epoch("ms")


def with_bounds(frame: pl.DataFrame, start: str, size: int | None = None, end: str | None = None) -> pl.DataFrame:
    end_expr = pl.col(start) + size if end is None else pl.col(end)
    return frame.with_columns(pl.col(start).cast(DT).alias("window_start"), end_expr.cast(DT).alias("window_end"))


# ------------------------------------------------------------------------------------------------- aggregates


@PROPERTY
@given(streams(ONE))
def test_updating_aggregate_ends_at_the_group_by_of_all_data(data: tuple[Stream, dict[str, pl.DataFrame]]) -> None:
    stream, every = data
    op = Operator(id="agg", kind="aggregate", key=["k"], aggregates=AGGREGATES)
    got = run(op, {"up": SCHEMA}, {"up": ["k"]}, stream)
    last = got.unique(subset=["k"], keep="last", maintain_order=True)
    want = every["up"].group_by("k").agg(reference_aggregates())
    assert_same_rows(last, want)


@PROPERTY
@given(streams(ONE), st.sampled_from([(1000, 1000), (1000, 250), (1000, 400), (700, 700)]))
def test_tumble_and_hop_window_aggregates_equal_one_group_by(
    data: tuple[Stream, dict[str, pl.DataFrame]], size_slide: tuple[int, int]
) -> None:
    stream, every = data
    size, slide = size_slide
    window = {"type": "tumble", "size_s": size / 1000} if size == slide else {"type": "hop", "size_s": size / 1000, "slide_s": slide / 1000}
    op = Operator(id="win", kind="window_aggregate", key=["k"], window=window, aggregates=AGGREGATES)
    got = run(op, {"up": SCHEMA}, {"up": ["k"]}, stream, windowed=True)
    first = ((t_ms() - size) // slide + 1) * slide
    want = (
        every["up"]
        .with_columns(pl.int_ranges(first, (t_ms() // slide) * slide + slide, slide).alias("ws"))
        .explode("ws")
        .group_by("k", "ws")
        .agg(reference_aggregates())
    )
    want = with_bounds(want, "ws", size).select(["k", "window_start", "window_end"] + list(AGGREGATES))
    assert_same_rows(got, want)


@PROPERTY
@given(streams(ONE), st.sampled_from([1, 300, 1000]))
def test_session_window_aggregate_equals_sessions_of_all_data(data: tuple[Stream, dict[str, pl.DataFrame]], gap: int) -> None:
    stream, every = data
    op = Operator(id="sess", kind="window_aggregate", key=["k"], window={"type": "session", "gap_s": gap / 1000}, aggregates=AGGREGATES)
    got = run(op, {"up": SCHEMA}, {"up": ["k"]}, stream, windowed=True)
    want = (
        every["up"]
        .with_columns(t_ms().alias("t"))
        .sort("k", "t")
        .with_columns((pl.col("t").diff().over("k").fill_null(gap) >= gap).cum_sum().over("k").alias("sid"))
        .group_by("k", "sid")
        .agg([pl.col("t").min().alias("first"), (pl.col("t").max() + gap).alias("last")] + reference_aggregates())
    )
    want = with_bounds(want, "first", end="last").select(["k", "window_start", "window_end"] + list(AGGREGATES))
    assert_same_rows(got, want)


# ------------------------------------------------------------------------------------------------- joins

CONDITIONS = [None, "v <= b", "v + b > 10 OR v IS NULL"]


@PROPERTY
@given(streams(TWO), st.sampled_from(CONDITIONS))
def test_regular_join_emits_every_matching_pair_once(data: tuple[Stream, dict[str, pl.DataFrame]], condition: str | None) -> None:
    stream, every = data
    op = Operator(id="j", kind="join", join={"left": "l", "right": "r", "left_key": ["k"], "right_key": ["k"], "condition": condition})
    got = run(op, {"l": SCHEMA, "r": RIGHT_SCHEMA}, {"l": ["k"], "r": ["k"]}, stream)
    want = every["l"].join(every["r"], on="k", how="inner", coalesce=False, suffix="_right")
    if condition is not None:
        want = want.filter(pl.sql_expr(condition))
    assert got.columns == ["k", "v", "date_time", "k_right", "b", "date_time_right"]
    assert_same_rows(got, want)


@PROPERTY
@given(streams(TWO), st.sampled_from([(1000, 1000), (1000, 500), (900, 400)]), st.sampled_from(CONDITIONS))
def test_window_join_pairs_rows_of_the_same_window(
    data: tuple[Stream, dict[str, pl.DataFrame]], size_slide: tuple[int, int], condition: str | None
) -> None:
    stream, every = data
    size, slide = size_slide
    window = {"type": "tumble", "size_s": size / 1000} if size == slide else {"type": "hop", "size_s": size / 1000, "slide_s": slide / 1000}
    op = Operator(
        id="wj",
        kind="join",
        join={"left": "l", "right": "r", "left_key": ["k"], "right_key": ["k"], "condition": condition, "window": window},
    )
    got = run(op, {"l": SCHEMA, "r": RIGHT_SCHEMA}, {"l": ["k"], "r": ["k"]}, stream, windowed=True)
    first = ((t_ms() - size) // slide + 1) * slide
    starts = pl.int_ranges(first, (t_ms() // slide) * slide + slide, slide).alias("ws")
    left = every["l"].with_columns(starts).explode("ws")
    right = every["r"].with_columns(starts).explode("ws")
    want = left.join(right, on=["k", "ws"], how="inner", coalesce=False, suffix="_right")
    want = with_bounds(want, "ws", size).select(["k", "v", "date_time", "k_right", "b", "date_time_right", "window_start", "window_end"])
    if condition is not None:
        want = want.filter(pl.sql_expr(condition))
    assert_same_rows(got, want)


# ------------------------------------------------------------------------------------------------- stateless


@settings(max_examples=40, deadline=None)
@given(streams(ONE))
def test_filter_and_project_equal_one_query_in_order(data: tuple[Stream, dict[str, pl.DataFrame]]) -> None:
    stream, every = data
    filt = Operator(id="f", kind="filter", predicate="v > 3 AND k <> 2")
    proj = Operator(id="p", kind="project", columns={"k2": "k * 2", "tag": "'x'", "v": "v", "dt": "date_time"})
    for op, want in (
        (filt, every["up"].filter(pl.sql_expr("v > 3 AND k <> 2"))),
        (proj, every["up"].select(pl.col("k") * 2, pl.lit("x").alias("tag"), "v", "date_time").rename({"k": "k2", "date_time": "dt"})),
    ):
        logic = build_logic(op, {"up": SCHEMA})
        out = []
        for side, frame, w in stream.steps:
            for emitted in logic.process(side, frame):
                assert emitted.height and emitted.schema == logic.output_schema
                out.append(emitted)
            if w is not None:
                assert logic.on_watermark(w) == []
        assert logic.finish() == [] and logic.snapshot() == {} and logic.state_keys == {}
        got = pl.concat(out) if out else pl.DataFrame(schema=logic.output_schema)
        assert_frame_equal(got, want.cast(dict(logic.output_schema)), check_dtypes=True)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 50), max_size=12),
    st.sampled_from([("filter", 0.0), ("filter", 0.3), ("filter", 1.0), ("map", 0.5), ("map", 2.5), ("flat_map", 8.0), ("project", 1.0)]),
)
def test_synthetic_selectivity_is_a_running_fraction(sizes: list[int], kind_s: tuple[str, float]) -> None:
    kind, s = kind_s
    logic = build_logic(Operator(id="syn", kind=kind, selectivity=s), {"up": SCHEMA})
    assert logic.output_schema == SCHEMA
    seen = emitted = 0
    for n in sizes:
        batch = pl.DataFrame({"k": range(n), "v": range(n), "date_time": range(n)}, schema={"k": pl.Int64, "v": pl.Int64, "date_time": pl.Int64}).with_columns(pl.col("date_time").cast(DT))
        out = logic.process("up", batch)
        seen += n
        got = sum(f.height for f in out)
        emitted += got
        assert emitted == math.floor(s * seen + 1e-9)
        assert all(f.height and f.schema == SCHEMA for f in out)
        if out and s <= 1:
            assert_frame_equal(out[0], batch.head(got))  # the first rows
        if out and s > 1:
            assert set(out[0]["k"]) <= set(batch["k"]) and out[0]["k"].is_sorted()


# ------------------------------------------------------------------------------------------------- details


def test_aggregate_dtypes_follow_the_conventions() -> None:
    schema = pl.Schema({"k": pl.String, "i": pl.Int32, "f": pl.Float32, "flag": pl.Boolean, "date_time": pl.Int64})
    op = Operator(
        id="types",
        kind="window_aggregate",
        key=["k"],
        window={"type": "tumble", "size_s": 1},
        aggregates={"n": "count(*)", "si": "SUM(i)", "sf": "SUM(f)", "sb": "SUM(flag)", "mi": "MIN(i)", "a": "AVG(i)", "c": "COUNT(f)"},
    )
    logic = build_logic(op, {"up": schema})
    assert dict(logic.output_schema) == {
        "k": pl.String,
        "window_start": pl.Int64,
        "window_end": pl.Int64,
        "n": pl.Int64,
        "si": pl.Int64,
        "sf": pl.Float32,
        "sb": pl.Int64,
        "mi": pl.Int32,
        "a": pl.Float64,
        "c": pl.Int64,
    }
    batch = pl.DataFrame(
        {"k": ["a", "a", "b"], "i": [2_000_000_000, 2_000_000_000, None], "f": [1.5, None, 2.0], "flag": [True, True, None], "date_time": [10, 999, 1500]},
        schema=schema,
    )
    assert logic.process("up", batch) == []
    assert logic.on_watermark(999) == []
    (first,) = logic.on_watermark(1000)
    assert first.rows() == [("a", 0, 1000, 2, 4_000_000_000, 1.5, 2, 2_000_000_000, 2_000_000_000.0, 1)]
    (rest,) = logic.finish()
    assert rest.rows() == [("b", 1000, 2000, 1, 0, 2.0, 0, None, None, 1)]
    assert logic.finish() == []


def test_window_bounds_keep_the_time_fields_datetime_unit_and_zone() -> None:
    dtype = pl.Datetime("us", "Europe/Paris")
    schema = pl.Schema({"k": pl.Int64, "ts": dtype})
    op = Operator(id="tz", kind="window_aggregate", key=["k"], window={"type": "session", "gap_s": 2, "time_field": "ts"}, aggregates={"n": "COUNT(*)"})
    logic = build_logic(op, {"up": schema})
    assert logic.output_schema["window_start"] == dtype
    batch = pl.DataFrame({"k": [1, 1], "ts": [1_000_000, 2_500_000]}, schema={"k": pl.Int64, "ts": pl.Int64}).with_columns(
        pl.col("ts").cast(pl.Datetime("us", "UTC")).dt.convert_time_zone("Europe/Paris")
    )
    logic.process("up", batch)
    (out,) = logic.finish()
    assert out["window_start"].dt.epoch("ms").to_list() == [1000]
    assert out["window_end"].dt.epoch("ms").to_list() == [4500]
    assert out.schema == logic.output_schema


def test_join_keys_of_different_integer_widths_match() -> None:
    left = pl.Schema({"id": pl.Int32, "name": pl.String})
    right = pl.Schema({"seller": pl.Int64, "id": pl.Int64})
    op = Operator(id="j", kind="join", join={"left": "a", "right": "b", "left_key": ["id"], "right_key": ["seller"]})
    logic = build_logic(op, {"a": left, "b": right})
    assert logic.output_schema.names() == ["id", "name", "seller", "id_right"]
    assert logic.process("b", pl.DataFrame({"seller": [1, 2], "id": [10, 20]})) == []
    (out,) = logic.process("a", pl.DataFrame({"id": [2, 3], "name": ["x", "y"]}, schema=left))
    assert out.rows() == [(2, "x", 2, 20)]
    assert out.schema == logic.output_schema


def rows_at(times: list[int], value: str = "v") -> pl.DataFrame:
    return pl.DataFrame({"k": [1] * len(times), value: list(range(len(times))), "date_time": times}).with_columns(
        pl.col("date_time").cast(DT)
    )


@pytest.mark.parametrize(
    ("fields", "end"),
    [
        ({"kind": "window_aggregate", "key": ["k"], "window": {"type": "tumble", "size_s": 1}, "aggregates": {"n": "COUNT(*)"}}, 1000),
        ({"kind": "window_aggregate", "key": ["k"], "window": {"type": "hop", "size_s": 1, "slide_s": 0.5}, "aggregates": {"n": "COUNT(*)"}}, 500),
        ({"kind": "window_aggregate", "key": ["k"], "window": {"type": "session", "gap_s": 0.3}, "aggregates": {"n": "COUNT(*)"}}, 500),
        ({"kind": "join", "join": {"left": "up", "right": "r", "left_key": ["k"], "right_key": ["k"], "window": {"type": "tumble", "size_s": 1}}}, 1000),
    ],
    ids=["tumble", "hop", "session", "window_join"],
)
def test_windows_fire_exactly_when_the_watermark_reaches_their_end(fields: dict[str, Any], end: int) -> None:
    inputs = {"up": SCHEMA, "r": RIGHT_SCHEMA} if fields["kind"] == "join" else {"up": SCHEMA}
    logic = build_logic(Operator(id="w", **fields), inputs)
    assert logic.process("up", rows_at([100, 200])) == []
    if "r" in inputs:
        assert logic.process("r", rows_at([150], "b")) == []
    assert logic.on_watermark(end - 1) == []
    fired = logic.on_watermark(end)
    assert len(fired) == 1
    assert fired[0]["window_end"].dt.epoch("ms").to_list() == [end] * fired[0].height
    later = logic.on_watermark(end + 10_000)
    hop = fields.get("window", {}).get("type") == "hop"
    assert len(later) == (1 if hop else 0)  # hop: the second window, [0, 1000)


def test_late_records_of_fired_windows_are_dropped_and_nothing_fires_twice() -> None:
    op = Operator(id="w", kind="window_aggregate", key=["k"], window={"type": "tumble", "size_s": 1}, aggregates={"n": "COUNT(*)"})
    logic = build_logic(op, {"up": SCHEMA})
    batch = pl.DataFrame({"k": [1], "v": [1], "date_time": [100]}).with_columns(pl.col("date_time").cast(DT))
    logic.process("up", batch)
    assert len(logic.on_watermark(1000)) == 1
    logic.process("up", batch)  # late: its window already fired
    assert logic.on_watermark(2000) == [] and logic.finish() == []


def test_parse_aggregate_splits_one_call() -> None:
    assert parse_aggregate("count(*)") == ("COUNT", "*")
    assert parse_aggregate(" SUM( price * (1 + x) ) ") == ("SUM", "price * (1 + x)")
    assert parse_aggregate("SUM(a) + SUM(b)") is None
    assert parse_aggregate("MAX(name = ')')") == ("MAX", "name = ')'")
    assert parse_aggregate("price") is None


def test_the_nexmark_and_word_count_shapes_build() -> None:
    bids = pl.Schema({"auction": pl.Int64, "bidder": pl.Int64, "price": pl.Int64, "channel": pl.String, "date_time": DT})
    q2 = build_logic(Operator(id="f", kind="filter", predicate="MOD(auction, 123) = 0"), {"bids": bids})
    assert q2.output_schema == bids
    lines = pl.Schema({"line": pl.String, "date_time": DT})
    with pytest.raises(OperatorSemanticsError) as err:
        build_logic(Operator(id="count", kind="aggregate", key=["word"], aggregates={"n": "COUNT(*)"}), {"split": lines})
    assert str(err.value) == "operator 'count': key column 'word' is not in its input (columns: line, date_time)"


# ------------------------------------------------------------------------------------------------- bad specs

BIDS = pl.Schema({"auction": pl.Int64, "price": pl.Int64, "channel": pl.String, "date_time": DT})
PERSONS = pl.Schema({"id": pl.Int64, "name": pl.String, "date_time": DT})
ONE_IN = {"up": BIDS}
JOIN_IN = {"bids": BIDS, "persons": PERSONS}
JOIN = {"left": "bids", "right": "persons", "left_key": ["auction"], "right_key": ["id"]}
WIN = {"type": "tumble", "size_s": 10}

BAD_SPECS: list[tuple[str, dict[str, Any], dict[str, pl.Schema], str]] = [
    ("unknown predicate column", {"kind": "filter", "predicate": "bidder > 3"}, ONE_IN, "bidder"),
    ("unparsable predicate", {"kind": "filter", "predicate": "price >"}, ONE_IN, "predicate"),
    ("non-boolean predicate", {"kind": "filter", "predicate": "price + 1"}, ONE_IN, "not a boolean"),
    ("aggregate in a predicate", {"kind": "filter", "predicate": "SUM(price) > 3"}, ONE_IN, "row-wise"),
    ("predicate polars rejects", {"kind": "filter", "predicate": "channel > 3 AND UPPER(price) = 'X'"}, ONE_IN, "predicate"),
    ("columns on a filter", {"kind": "filter", "predicate": "price > 1", "columns": {"a": "price"}}, ONE_IN, "columns"),
    ("synthetic filter above 1", {"kind": "filter", "selectivity": 1.5}, ONE_IN, "selectivity"),
    ("unknown map column", {"kind": "map", "columns": {"x": "nope * 2"}}, ONE_IN, "nope"),
    ("aggregate in a map", {"kind": "project", "columns": {"x": "MAX(price)"}}, ONE_IN, "row-wise"),
    ("COUNT(*) in a map", {"kind": "project", "columns": {"x": "COUNT(*)"}}, ONE_IN, "row-wise"),
    ("key on a map", {"kind": "map", "key": ["price"]}, ONE_IN, "key"),
    ("filter with two inputs", {"kind": "filter", "predicate": "price > 1"}, JOIN_IN, "one input"),
    ("unknown key", {"kind": "aggregate", "key": ["bidder"], "aggregates": {"n": "COUNT(*)"}}, ONE_IN, "key column 'bidder'"),
    ("no key", {"kind": "aggregate", "aggregates": {"n": "COUNT(*)"}}, ONE_IN, "key"),
    ("no aggregates", {"kind": "aggregate", "key": ["auction"]}, ONE_IN, "aggregates"),
    ("unsupported function", {"kind": "aggregate", "key": ["auction"], "aggregates": {"m": "MEDIAN(price)"}}, ONE_IN, "MEDIAN"),
    ("SUM(*)", {"kind": "aggregate", "key": ["auction"], "aggregates": {"s": "SUM(*)"}}, ONE_IN, "only COUNT"),
    ("COUNT DISTINCT", {"kind": "aggregate", "key": ["auction"], "aggregates": {"d": "COUNT(DISTINCT price)"}}, ONE_IN, "DISTINCT"),
    ("two calls", {"kind": "aggregate", "key": ["auction"], "aggregates": {"s": "SUM(price) + SUM(price)"}}, ONE_IN, "aggregates.s"),
    ("not a call", {"kind": "aggregate", "key": ["auction"], "aggregates": {"s": "price"}}, ONE_IN, "aggregates.s"),
    ("unknown aggregate column", {"kind": "aggregate", "key": ["auction"], "aggregates": {"s": "SUM(bidder)"}}, ONE_IN, "bidder"),
    ("nested aggregate", {"kind": "aggregate", "key": ["auction"], "aggregates": {"s": "SUM(MAX(price))"}}, ONE_IN, "row-wise"),
    ("SUM of strings", {"kind": "aggregate", "key": ["auction"], "aggregates": {"s": "SUM(channel)"}}, ONE_IN, "numeric"),
    ("aggregate named like a key", {"kind": "aggregate", "key": ["auction"], "aggregates": {"auction": "COUNT(*)"}}, ONE_IN, "twice"),
    ("aggregate named window_end", {"kind": "window_aggregate", "key": ["auction"], "window": WIN, "aggregates": {"window_end": "COUNT(*)"}}, ONE_IN, "twice"),
    ("missing time field", {"kind": "window_aggregate", "key": ["auction"], "window": {"type": "tumble", "size_s": 1, "time_field": "ts"}, "aggregates": {"n": "COUNT(*)"}}, ONE_IN, "time_field"),
    ("string time field", {"kind": "window_aggregate", "key": ["auction"], "window": {"type": "tumble", "size_s": 1, "time_field": "channel"}, "aggregates": {"n": "COUNT(*)"}}, ONE_IN, "time_field"),
    ("fractional-millisecond window", {"kind": "window_aggregate", "key": ["auction"], "window": {"type": "tumble", "size_s": 0.0015}, "aggregates": {"n": "COUNT(*)"}}, ONE_IN, "size_s"),
    ("session window join", {"kind": "join", "join": {**JOIN, "window": {"type": "session", "gap_s": 1}}}, JOIN_IN, "session"),
    ("join of other inputs", {"kind": "join", "join": {**JOIN, "right": "people"}}, JOIN_IN, "join.left"),
    ("join with one input", {"kind": "join", "join": JOIN}, {"bids": BIDS}, "join.left"),
    ("no join field", {"kind": "join"}, JOIN_IN, "join"),
    ("unknown join key", {"kind": "join", "join": {**JOIN, "right_key": ["seller"]}}, JOIN_IN, "seller"),
    ("incomparable join keys", {"kind": "join", "join": {**JOIN, "right_key": ["name"]}}, JOIN_IN, "cannot be compared"),
    ("unknown condition column", {"kind": "join", "join": {**JOIN, "condition": "bidder > 1"}}, JOIN_IN, "bidder"),
    ("non-boolean condition", {"kind": "join", "join": {**JOIN, "condition": "price * 2"}}, JOIN_IN, "not a boolean"),
    ("join time field missing", {"kind": "join", "join": {**JOIN, "window": {"type": "tumble", "size_s": 1, "time_field": "ts"}}}, JOIN_IN, "time_field"),
]


@pytest.mark.parametrize(("case", "fields", "inputs", "needle"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_bad_specs_raise_an_error_naming_the_operator(case: str, fields: dict[str, Any], inputs: dict[str, pl.Schema], needle: str) -> None:
    op = Operator(id="bad_op", **fields)
    with pytest.raises(OperatorSemanticsError) as err:
        build_logic(op, inputs)
    message = str(err.value)
    assert message.startswith("operator 'bad_op': "), message
    assert needle in message, message


@pytest.mark.parametrize("kind", ["source", "sink"])
def test_sources_and_sinks_have_no_logic(kind: str) -> None:
    with pytest.raises(ValueError, match="runtime"):
        build_logic(Operator(id="edge", kind=kind), {})


def test_base_class_is_what_build_logic_returns() -> None:
    logic = build_logic(Operator(id="m", kind="map"), {"up": SCHEMA})
    assert isinstance(logic, OperatorLogic)
    assert logic.output_schema == SCHEMA
