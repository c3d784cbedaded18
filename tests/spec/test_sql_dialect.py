"""The spec's SQL dialect: Flink SQL expressions parse (sqlglot with a Flink dialect), anything else is one
clear problem naming what is wrong, where in the expression, and where in the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtune_cli.spec.loader import spec_from_data
from streamtune_cli.spec.sql import (
    SqlExpressionError,
    check_expression,
    check_spec_sql,
    excerpt_around,
    parse_expression,
    to_sql,
)
from streamtune_cli.spec.yaml_positions import load_yaml_text

ROOT = Path(__file__).resolve().parents[2]

FLINK_EXPRESSIONS = [
    "MOD(auction, 123) = 0",
    "DATE_FORMAT(date_time, 'HH:mm')",
    "SPLIT_INDEX(line, ',', 1)",
    "TIMESTAMPADD(HOUR, 1, date_time)",
    "TIMESTAMPDIFF(SECOND, t1, t2) > 10",
    "date_time + INTERVAL '1' HOUR",
    "date_time - INTERVAL '10 00:00:00.004' DAY TO SECOND",
    "`my col` > 1",
    "CAST(price AS DECIMAL(10, 2)) * 0.908",
    "CAST(s AS STRING) || '-' || CAST(ts AS TIMESTAMP_LTZ(3))",
    "TRY_CAST(s AS INT) IS NULL",
    "EXTRACT(DAY FROM date_time) = 5",
    "CASE WHEN price > 100 THEN 'high' ELSE 'low' END",
    "CASE channel WHEN 'apple' THEN 1 ELSE 0 END",
    "IF(price > 1, 'x', 'y')",
    "COALESCE(a, b, 0)",
    "UPPER(name) || LOWER(city)",
    "SUBSTRING(name FROM 2 FOR 3)",
    "SUBSTR(name, 2)",
    "POSITION('a' IN name) > 0",
    "TRIM(BOTH ' ' FROM name)",
    "a IS DISTINCT FROM b",
    "a NOT BETWEEN 1 AND 5",
    "name NOT LIKE 'a%'",
    "name SIMILAR TO 'a.*'",
    "flag IS NOT TRUE",
    "FLOOR(date_time TO HOUR)",
    "CEIL(date_time TO MINUTE)",
    "ARRAY[1, 2]",
    "REGEXP_EXTRACT(url, 'id=(\\d+)', 1)",
    "TO_TIMESTAMP(s, 'yyyy-MM-dd')",
    "'it''s' = name",
    "state IN ('OR', 'ID', 'CA')",
    "NOW()",
    "CURRENT_TIMESTAMP",
]


@pytest.mark.parametrize("sql", FLINK_EXPRESSIONS)
def test_flink_sql_expressions_are_accepted_and_print_back_as_the_same_tree(sql: str) -> None:
    tree = check_expression(sql)
    text = to_sql(tree)
    assert parse_expression(text) == tree  # what fusion writes reads back as the same expression
    assert to_sql(parse_expression(text)) == text


@pytest.mark.parametrize("sql", ["COUNT(*)", "SUM(price * 2)", "COUNT(DISTINCT bidder)", "SUM(a) / COUNT(*)", "max(num)"])
def test_aggregates_are_accepted_where_aggregates_belong(sql: str) -> None:
    check_expression(sql, aggregate=True)


BAD = [
    # (expression, aggregate?, words the message must hold, column of the expression or None)
    ("DATE_FRMAT(date_time, 'HH:mm')", False, "unknown function DATE_FRMAT", 1),
    ("price > 1 AND FOO(a)", False, "unknown function FOO", 15),
    ("price >", False, "syntax error", 7),
    ("MOD(auction,, 123) = 0", False, "argument is missing", 13),
    ("a = 'unterminated", False, "unterminated quote", 5),
    ('"my col" > 1', False, "backticks", 1),
    ("TIMESTAMPADD(HOURS, 1, ts)", False, "time unit", 14),
    ("SUM(price) > 3", False, "aggregate function", 1),
    ("RANK() > 1", False, "window function", 1),
    ("ROW_NUMBER() OVER (ORDER BY a)", False, "OVER", None),
    ("a IN (SELECT b FROM t)", False, "sub-query", None),
    ("price AS p", False, "alias", None),
    ("a; b", False, "several statements", None),
    ("*", False, "COUNT(*)", 1),
    ("", False, "empty", None),
    ("price", True, "aggregate function call", None),
    ("SUM(MAX(price))", True, "nested", 5),
]


@pytest.mark.parametrize(("sql", "aggregate", "needle", "column"), BAD, ids=[b[0] or "empty" for b in BAD])
def test_bad_expressions_say_what_is_wrong_and_where(sql: str, aggregate: bool, needle: str, column: int | None) -> None:
    with pytest.raises(SqlExpressionError) as err:
        check_expression(sql, aggregate=aggregate)
    assert needle in str(err.value), str(err.value)
    if column is not None:
        assert err.value.column == column, str(err.value)
        assert f"column {column} of the expression" in str(err.value)


def test_excerpts_are_short_and_centred_on_the_error() -> None:
    long_sql = "price > 1 AND " * 20 + "FOO(a) = 1"
    with pytest.raises(SqlExpressionError) as err:
        check_expression(long_sql)
    assert err.value.column == long_sql.index("FOO") + 1
    shown = excerpt_around(long_sql, err.value.column)
    assert len(shown) <= 54 and "FOO" in shown
    assert excerpt_around("a > 1") == "a > 1"


SPEC = """\
name: sql-positions
workload: {rate_rps: 1000}
operators:
  - {id: bids, kind: source, generator: nexmark, events: [bid]}
  - id: late
    kind: filter
    predicate: DATE_FORMAT(date_time, 'HH:mm') > '22:00'
  - id: fmt
    kind: map
    columns:
      hour: DATE_FRMAT(date_time, 'HH')
      part: SPLIT_INDEX(channel, '-', 0)
  - id: counts
    kind: aggregate
    key: [hour]
    aggregates:
      n: COUNT(*)
      bad: price
  - {id: sink, kind: sink}
edges:
  - {from: bids, to: late}
  - {from: late, to: fmt}
  - {from: fmt, to: counts, partitioning: hash, key: [hour]}
  - {from: counts, to: sink}
"""


def test_spec_problems_name_the_file_position_the_excerpt_and_the_reason() -> None:
    # What the loader does with the checker's result: each data path becomes file:line:col.
    doc = load_yaml_text(SPEC, "job.yaml")
    spec = spec_from_data(doc, check_sql_expressions=False)
    found = check_spec_sql(spec)
    problems = [doc.problem(path, message) for path, message in found]
    rendered = sorted(str(p) for p in problems)
    lines = SPEC.splitlines()
    hour_line = next(i for i, line in enumerate(lines, 1) if "hour: DATE_FRMAT" in line)
    bad_line = next(i for i, line in enumerate(lines, 1) if "bad: price" in line)
    assert len(problems) == 2, rendered
    assert any(r.startswith(f"job.yaml:{hour_line}:") and "unknown function DATE_FRMAT" in r and "column 1" in r for r in rendered)
    assert any(r.startswith(f"job.yaml:{bad_line}:") and "aggregate function call" in r for r in rendered)
    assert all("'" in r.split(": ", 1)[1] for r in rendered)  # the expression is quoted


def _job_configs() -> list[Path]:
    found = []
    for path in sorted((ROOT / "configs").rglob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict) and "operators" in data:
            found.append(path)
    return found


@pytest.mark.parametrize("path", _job_configs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_spec_is_valid_flink_sql(path: Path) -> None:
    doc = load_yaml_text(path.read_text(), str(path))
    spec = spec_from_data(doc, check_sql_expressions=False)
    assert check_spec_sql(spec) == []


def test_importing_the_checker_does_not_import_sqlglot_or_polars() -> None:
    code = "import sys, streamtune_cli.spec.sql; print('sqlglot' in sys.modules, 'polars' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_checking_a_spec_does_not_import_polars() -> None:
    code = (
        "import sys; from streamtune_cli.spec.loader import load_spec; from streamtune_cli.spec.sql import check_spec_sql; "
        f"print(check_spec_sql(load_spec({str(ROOT / 'configs/nexmark/q3.yaml')!r}, check_sql_expressions=False))); "
        "print('polars' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:2] == ["[]", "False"]


# ---- property: what the dialect prints reads back as the same tree --------------------------------------

_COLUMNS = st.sampled_from(["a", "b", "price", "`my col`", "date_time"])
_LITERALS = st.one_of(st.integers(-9, 99).map(str), st.sampled_from(["'x'", "'it''s'", "0.5", "NULL", "TRUE"]))


def _expressions() -> st.SearchStrategy[str]:
    leaves = st.one_of(_COLUMNS, _LITERALS)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "%", "=", "<>", "<", ">=", "AND", "OR", "||"]), inner)
        return st.one_of(
            binary.map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
            inner.map(lambda e: f"({e})"),
            inner.map(lambda e: f"NOT {e}"),
            inner.map(lambda e: f"({e} IS NOT NULL)"),
            st.tuples(inner, inner).map(lambda t: f"COALESCE({t[0]}, {t[1]})"),
            st.tuples(inner, inner, inner).map(lambda t: f"CASE WHEN {t[0]} THEN {t[1]} ELSE {t[2]} END"),
            st.tuples(inner, inner).map(lambda t: f"({t[0]} IN ({t[1]}, 1))"),
            st.tuples(inner, inner).map(lambda t: f"({t[0]} NOT BETWEEN ({t[1]}) AND 3)"),
            inner.map(lambda e: f"CAST({e} AS BIGINT)"),
            inner.map(lambda e: f"TIMESTAMPADD(MINUTE, {e}, date_time)"),
            inner.map(lambda e: f"SPLIT_INDEX({e}, ',', 0)"),
            inner.map(lambda e: f"DATE_FORMAT({e}, 'yyyy-MM-dd HH:mm')"),
        )

    return st.recursive(leaves, extend, max_leaves=8)


@settings(max_examples=150, deadline=None)
@given(_expressions())
def test_printing_and_reparsing_keeps_the_tree(sql: str) -> None:
    tree = parse_expression(sql)
    text = to_sql(tree)
    assert parse_expression(text) == tree, (sql, text)
