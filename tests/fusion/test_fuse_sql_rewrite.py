"""Semantic fusion's SQL rewriting: substitutions account for every column or give up, and a composed
filter/projection computes exactly what the original chain computes (checked by running both through the
local engine's translation of Flink SQL to polars)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtune_cli.fusion.sql_rewrite import (
    column_references,
    compose_stateless,
    keeps_columns,
    rewrite_predicate_through,
    substitute_columns,
)
from streamtune_cli.spec import Operator


def op(kind: str, **fields: Any) -> Operator:
    return Operator.model_validate({"id": fields.pop("id", kind), "kind": kind, **fields})


@pytest.mark.parametrize(
    ("sql", "columns", "expected"),
    [
        ("price > 10", {"price": "price * 0.9"}, "(price * 0.9) > 10"),
        ("MOD(auction, 123) = 0", {"auction": "a2"}, "MOD(a2, 123) = 0"),  # MOD is a function, not a column
        ("name = 'price'", {"name": "n", "price": "p"}, "n = 'price'"),  # string literals are left alone
        ("`my col` > 1", {"my col": "x + 1"}, "(x + 1) > 1"),  # backticks quote names in Flink SQL
        ("CAST(price AS DOUBLE) > 1.5", {"price": "p"}, "CAST(p AS DOUBLE) > 1.5"),
        ("a IS NOT NULL AND b IN (1, 2)", {"a": "x", "b": "y"}, "x IS NOT NULL AND y IN (1, 2)"),
        # units, date patterns and types are syntax, not columns, even when a column has the same name
        ("TIMESTAMPADD(HOUR, 1, ts) > t0", {"ts": "date_time", "t0": "t0", "HOUR": "h"}, "TIMESTAMPADD(HOUR, 1, date_time) > t0"),
        ("DATE_FORMAT(ts, 'HH:mm') = '10:00'", {"ts": "date_time"}, "DATE_FORMAT(date_time, 'HH:mm') = '10:00'"),
        ("EXTRACT(DAY FROM ts) = 1", {"ts": "date_time", "DAY": "d"}, "EXTRACT(DAY FROM date_time) = 1"),
        ("`day` > 3", {"day": "EXTRACT(DAY FROM date_time)"}, "EXTRACT(DAY FROM date_time) > 3"),
        ("SPLIT_INDEX(s, ',', 1) = 'b'", {"s": "UPPER(line)"}, "SPLIT_INDEX(UPPER(line), ',', 1) = 'b'"),
        # precedence: a substituted operator expression is parenthesised, a call is not
        ("a || b = 'x'", {"a": "UPPER(c)", "b": "c || d"}, "UPPER(c) || (c || d) = 'x'"),
        ("NOT flag", {"flag": "a AND b"}, "NOT (a AND b)"),
        ("flag", {"flag": "a AND b"}, "a AND b"),
        ("CASE WHEN v > 1 THEN v END = 2", {"v": "w - 1"}, "CASE WHEN (w - 1) > 1 THEN (w - 1) END = 2"),
    ],
)
def test_substitution(sql: str, columns: dict[str, str], expected: str) -> None:
    assert substitute_columns(sql, columns) == expected


@pytest.mark.parametrize(
    ("sql", "columns"),
    [
        ("price > 10", {"auction": "auction"}),  # price is not produced upstream
        ("t.price > 10", {"price": "p"}),  # qualified names are not modelled
        ("price >", {"price": "p"}),  # not valid SQL
        ("price > 10", {"price": "p +"}),  # a definition that is not valid SQL
        ("MOD(price, 2) = 0", {"price": "FOO(p)"}),  # a definition calling an unknown function
    ],
)
def test_substitution_gives_up_rather_than_guess(sql: str, columns: dict[str, str]) -> None:
    assert substitute_columns(sql, columns) is None


def test_column_references_skip_functions_keywords_and_literals() -> None:
    assert column_references("MOD(auction, 2) = 0 AND state IN ('OR', 'CA') AND price IS NOT NULL") == {
        "auction",
        "state",
        "price",
    }
    assert column_references("TIMESTAMPADD(HOUR, 1, ts) < CAST(x AS TIMESTAMP(3))") == {"ts", "x"}
    assert column_references("EXTRACT(DAY FROM date_time) + `my col`") == {"date_time", "my col"}
    assert column_references("t.price > 1") is None
    assert column_references("price >") is None


def test_keeps_columns() -> None:
    assert keeps_columns(op("filter", predicate="x > 1"), ["k"]) is True
    assert keeps_columns(op("map", columns={"k": "k", "v": "v + 1"}), ["k"]) is True
    assert keeps_columns(op("map", columns={"k": "k + 1"}), ["k"]) is False
    assert keeps_columns(op("project", columns={"v": "v"}), ["k"]) is False
    assert keeps_columns(op("map"), ["k"]) is None  # no declared columns: cannot tell


def test_filter_after_projection_is_rewritten_onto_the_input() -> None:
    projection = op("map", columns={"total": "price * qty", "auction": "auction"})
    assert rewrite_predicate_through("total > 100", projection) == "(price * qty) > 100"
    assert rewrite_predicate_through("total > 100", op("map")) is None


def test_filter_then_project_composes_into_one_filter() -> None:
    composed = compose_stateless(
        [op("filter", predicate="MOD(auction, 123) = 0"), op("project", columns={"auction": "auction", "price": "price"})]
    )
    assert composed is not None
    assert composed.kind.value == "filter"
    assert composed.predicate == "MOD(auction, 123) = 0"
    assert composed.columns == {"auction": "auction", "price": "price"}


def test_cost_only_members_do_not_compose() -> None:
    assert compose_stateless([op("filter", predicate="a > 1"), op("map")]) is None
    assert compose_stateless([op("flat_map"), op("filter", predicate="a > 1")]) is None


# ---- property: composition == running the chain, evaluated by the local engine's translation -------------

SCHEMA = ["a", "b", "c"]

PREDICATES = [
    "{c} > {n}",
    "MOD({c}, 3) = 0",
    "{c} % 4 = {n}",
    "{c} + 1 <> {n}",
    "{c} / 2 = {n}",
    "{c} IS NOT NULL AND {c} BETWEEN {n} AND 4",
    "{c} NOT IN (1, {n})",
    "COALESCE(NULLIF({c}, 0), {n}) < 2",
    "IF({c} > 0, {c}, -{c}) >= {n}",
    "CASE WHEN {c} < 0 THEN 'neg' ELSE 'pos' END = 'neg'",
    "ABS({c}) = GREATEST({c}, {n})",
]
MAP_EXPRESSIONS = ["{c}", "{c} * 2", "{c} - 1", "-{c}", "{c} / 3", "MOD({c}, 4)", "CASE WHEN {c} > 0 THEN {c} ELSE 0 END", "NULLIF({c}, 1)"]


@st.composite
def stateless_chain(draw: st.DrawFn) -> list[Operator]:
    schema = list(SCHEMA)
    chain = []
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["filter", "project", "map"]))
        if kind == "filter":
            col = draw(st.sampled_from(schema))
            template = draw(st.sampled_from(PREDICATES))
            chain.append(op("filter", id=f"f{i}", predicate=template.format(c=col, n=draw(st.integers(-5, 5)))))
        else:
            keep = draw(st.lists(st.sampled_from(schema), min_size=1, max_size=len(schema), unique=True))
            columns = {}
            for col in keep:
                columns[col] = draw(st.sampled_from(MAP_EXPRESSIONS)).format(c=col) if kind == "map" else col
            if kind == "map" and draw(st.booleans()):
                columns[draw(st.sampled_from(["d", "e"]))] = f"{keep[0]} + {keep[-1]}"
            chain.append(op(kind, id=f"m{i}", columns=columns))
            schema = list(columns)
    return chain


def _run(frame, chain: list[Operator]):  # noqa: ANN001, ANN202
    from streamtune_cli.executors.local.sql_polars import to_polars

    for member in chain:
        if member.predicate is not None:
            frame = frame.filter(to_polars(member.predicate, frame.schema))
        if member.columns is not None:
            frame = frame.select([to_polars(expr, frame.schema).alias(name) for name, expr in member.columns.items()])
    return frame


@settings(max_examples=80, deadline=None)
@given(stateless_chain(), st.lists(st.tuples(*[st.one_of(st.none(), st.integers(-6, 6))] * 3), min_size=0, max_size=25))
def test_composition_computes_what_the_chain_computes(chain: list[Operator], rows: list[tuple[int | None, ...]]) -> None:
    import polars as pl

    composed = compose_stateless(chain)
    assert composed is not None  # every member declares its semantics over columns that exist
    frame = pl.DataFrame(rows, schema={c: pl.Int64 for c in SCHEMA}, orient="row")
    fused = op(
        composed.kind.value,
        id="fused",
        **({"predicate": composed.predicate} if composed.predicate else {}),
        **({"columns": composed.columns} if composed.columns else {}),
    )
    expected = _run(frame, chain)
    got = _run(frame, [fused])
    assert got.columns == expected.columns
    assert got.rows() == expected.rows()


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(PREDICATES),
    st.integers(-5, 5),
    st.sampled_from(MAP_EXPRESSIONS),
    st.lists(st.tuples(st.one_of(st.none(), st.integers(-6, 6)), st.integers(-6, 6)), max_size=25),
)
def test_a_predicate_rewritten_through_a_projection_keeps_the_same_rows(
    template: str, n: int, definition: str, rows: list[tuple[int | None, int]]
) -> None:
    import polars as pl

    from streamtune_cli.executors.local.sql_polars import to_polars

    projection = op("map", columns={"x": definition.format(c="a"), "b": "b"})
    predicate = template.format(c="x", n=n)
    pushed = rewrite_predicate_through(predicate, projection)
    assert pushed is not None
    frame = pl.DataFrame(rows, schema={"a": pl.Int64, "b": pl.Int64}, orient="row")
    after = _run(frame, [projection]).filter(to_polars(predicate, {"x": pl.Int64, "b": pl.Int64}))
    before = _run(frame.filter(to_polars(pushed, frame.schema)), [projection])
    assert before.rows() == after.rows()
