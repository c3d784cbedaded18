"""The local engine runs Flink SQL with Flink's meaning: each translated function is checked against an
independent Python computation of the same Flink semantics, and what the engine cannot run is refused when
the operator is built, naming the operator and the function."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtune_cli.executors.local.operators import OperatorSemanticsError, build_logic
from streamtune_cli.executors.local.sql_polars import UnsupportedSql, java_to_strftime, to_polars
from streamtune_cli.spec.models import Operator

TIMES = [dt.datetime(2024, 2, 29, 23, 5, 7, 123000), dt.datetime(1999, 12, 31, 0, 0, 0), dt.datetime(2024, 9, 1, 12, 30, 59)]
LINES = ["a,b,c", "x", "", None]


def frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": pl.Series(TIMES, dtype=pl.Datetime("ms")),
            "line": pl.Series(LINES[:3], dtype=pl.String),
            "n": pl.Series([7, -7, 0], dtype=pl.Int64),
        }
    )


def run(sql: str, data: pl.DataFrame | None = None) -> list[object]:
    data = frame() if data is None else data
    return data.select(to_polars(sql, data.schema).alias("v"))["v"].to_list()


def test_date_format_takes_java_patterns() -> None:
    assert run("DATE_FORMAT(ts, 'yyyy-MM-dd HH:mm:ss')") == [t.strftime("%Y-%m-%d %H:%M:%S") for t in TIMES]
    assert run("DATE_FORMAT(ts, 'HH:mm')") == [t.strftime("%H:%M") for t in TIMES]
    assert run("DATE_FORMAT(ts, 'yyyyMMdd''T''HH')") == [t.strftime("%Y%m%d") + "T" + t.strftime("%H") for t in TIMES]
    assert java_to_strftime("dd/MM/yy hh:mm a") == "%d/%m/%y %I:%M %p"
    with pytest.raises(UnsupportedSql, match="'ww'"):
        java_to_strftime("yyyy-ww")


def test_split_index_counts_from_zero_and_is_null_out_of_range() -> None:
    def split_index(text: str | None, i: int) -> str | None:
        if text is None or i < 0:
            return None
        parts = text.split(",")
        return parts[i] if i < len(parts) else None

    data = pl.DataFrame({"line": pl.Series(LINES, dtype=pl.String)})
    for i in (0, 1, 2, 5, -1):
        assert run(f"SPLIT_INDEX(line, ',', {i})", data) == [split_index(s, i) for s in LINES]


@pytest.mark.parametrize(
    ("unit", "delta"),
    [("SECOND", dt.timedelta(seconds=1)), ("MINUTE", dt.timedelta(minutes=1)), ("HOUR", dt.timedelta(hours=1)), ("DAY", dt.timedelta(days=1)), ("WEEK", dt.timedelta(weeks=1))],
)
def test_timestampadd_and_timestampdiff_with_fixed_units(unit: str, delta: dt.timedelta) -> None:
    assert run(f"TIMESTAMPADD({unit}, 3, ts)") == [t + 3 * delta for t in TIMES]
    assert run(f"TIMESTAMPADD({unit}, n, ts)") == [t + n * delta for t, n in zip(TIMES, [7, -7, 0])]
    shifted = frame().with_columns((pl.col("ts") + pl.duration(microseconds=int(2.5 * delta / dt.timedelta(microseconds=1)))).alias("later"))
    assert run(f"TIMESTAMPDIFF({unit}, ts, later)", shifted) == [2, 2, 2]  # toward zero
    assert run(f"TIMESTAMPDIFF({unit}, later, ts)", shifted) == [-2, -2, -2]


def test_timestampadd_by_months_keeps_the_day_within_the_month() -> None:
    assert run("TIMESTAMPADD(MONTH, 1, ts)") == [dt.datetime(2024, 3, 29, 23, 5, 7, 123000), dt.datetime(2000, 1, 31), dt.datetime(2024, 10, 1, 12, 30, 59)]
    assert run("TIMESTAMPADD(YEAR, 1, ts)")[0] == dt.datetime(2025, 2, 28, 23, 5, 7, 123000)


def test_intervals_and_date_parts() -> None:
    assert run("ts + INTERVAL '90' MINUTE") == [t + dt.timedelta(minutes=90) for t in TIMES]
    assert run("EXTRACT(DAY FROM ts)") == [t.day for t in TIMES]
    assert run("HOUR(ts)") == [t.hour for t in TIMES]
    assert run("DAYOFWEEK(ts)") == [t.isoweekday() % 7 + 1 for t in TIMES]  # Flink: Sunday = 1
    assert run("FLOOR(ts TO HOUR)") == [t.replace(minute=0, second=0, microsecond=0) for t in TIMES]


def test_strings() -> None:
    assert run("UPPER(line) || '-' || LOWER('AB')") == [(s or "").upper() + "-ab" for s in LINES[:3]]
    assert run("CONCAT(line, NULL)") == [None, None, None]  # CONCAT is NULL when an argument is
    assert run("CONCAT_WS('/', line, NULL, 'z')") == [f"{s}/z" for s in LINES[:3]]
    assert run("SUBSTRING(line FROM 2 FOR 2)") == [s[1:3] for s in LINES[:3]]
    assert run("SUBSTR(line, 2)") == [s[1:] for s in LINES[:3]]
    assert run("POSITION('b' IN line)") == [s.find("b") + 1 for s in LINES[:3]]
    assert run("TRIM(BOTH 'a' FROM line)") == [s.strip("a") for s in LINES[:3]]
    assert run("CHAR_LENGTH(line)") == [len(s) for s in LINES[:3]]
    assert run("line LIKE 'a_b%'") == [s.startswith("a") and len(s) >= 3 and s[2] == "b" for s in LINES[:3]]
    assert run("REPLACE(line, ',', ';')") == [s.replace(",", ";") for s in LINES[:3]]
    assert run("LPAD(line, 3, '*')") == [s.rjust(3, "*")[:3] for s in LINES[:3]]


def test_conditionals_and_casts() -> None:
    assert run("CASE WHEN n > 0 THEN 'pos' WHEN n < 0 THEN 'neg' END") == ["pos", "neg", None]
    assert run("CASE n WHEN 7 THEN 1 ELSE 0 END") == [1, 0, 0]
    assert run("IF(n > 0, n, -n)") == [7, 7, 0]
    assert run("COALESCE(NULLIF(n, 0), 42)") == [7, -7, 42]
    assert run("CAST(n AS STRING)") == ["7", "-7", "0"]
    assert run("TRY_CAST(line AS INT)") == [None, None, None]
    assert run("GREATEST(n, 1)") == [7, 1, 1]
    assert run("n IN (7, NULL)") == [True, None, None]  # SQL's three-valued IN


@settings(max_examples=200, deadline=None)
@given(st.integers(-1000, 1000), st.integers(-50, 50).filter(lambda b: b != 0))
def test_integer_division_and_mod_truncate_toward_zero(a: int, b: int) -> None:
    data = pl.DataFrame({"a": [a], "b": [b]})
    quotient = int(a / b) if abs(a) < 2**52 else None
    assert run("a / b", data) == [quotient]
    assert run("MOD(a, b)", data) == [int(math.fmod(a, b))]
    assert run("a % b", data) == [int(math.fmod(a, b))]
    assert run("a / CAST(b AS DOUBLE)", data) == [a / b]


UNSUPPORTED = [
    ("MD5(channel) = 'x'", "MD5"),
    ("date_time < CURRENT_TIMESTAMP", "CURRENT_TIMESTAMP"),
    ("REGEXP_EXTRACT(channel, 'a(b)') = 'b'", "REGEXP_EXTRACT"),
    ("DATE_FORMAT(date_time, 'yyyy-ww') = '2024-01'", "'ww'"),
    ("DATE_FORMAT(channel, 'yyyy') = '2024'", "DATE_FORMAT of a string"),
    ("ARRAY[price, 1][1] > 0", "ARRAY"),
]


@pytest.mark.parametrize(("predicate", "needle"), UNSUPPORTED, ids=[u[1] for u in UNSUPPORTED])
def test_what_the_engine_cannot_run_is_refused_when_the_operator_is_built(predicate: str, needle: str) -> None:
    schema = pl.Schema({"price": pl.Int64, "channel": pl.String, "date_time": pl.Datetime("ms")})
    with pytest.raises(OperatorSemanticsError) as err:
        build_logic(Operator(id="late_bids", kind="filter", predicate=predicate), {"up": schema})
    message = str(err.value)
    assert message.startswith("operator 'late_bids': predicate "), message
    assert "the local engine cannot run" in message and needle in message, message


def test_flink_functions_run_in_an_operator() -> None:
    schema = pl.Schema({"line": pl.String, "date_time": pl.Datetime("ms")})
    logic = build_logic(
        Operator(
            id="parse",
            kind="map",
            columns={"word": "SPLIT_INDEX(line, ' ', 0)", "minute": "DATE_FORMAT(date_time, 'HH:mm')", "later": "TIMESTAMPADD(HOUR, 1, date_time)"},
        ),
        {"up": schema},
    )
    batch = pl.DataFrame({"line": ["hello world"], "date_time": [dt.datetime(2024, 1, 1, 9, 15)]}, schema=schema)
    (out,) = logic.process("up", batch)
    assert out.rows() == [("hello", "09:15", dt.datetime(2024, 1, 1, 10, 15))]


def test_the_example_in_docs_sql_validates_and_runs_on_nexmark_bids() -> None:
    import re
    from pathlib import Path

    import numpy as np

    from streamtune_cli.executors.local.nexmark import NexmarkConfig, generate, schema
    from streamtune_cli.spec.loader import load_spec_text
    from streamtune_cli.spec.sql import check_spec_sql

    docs = (Path(__file__).resolve().parents[3] / "docs" / "sql.md").read_text()
    (example,) = re.findall(r"```yaml\n(.*?)```", docs, re.S)
    spec = load_spec_text(example, "docs/sql.md", check_sql_expressions=False)
    assert check_spec_sql(spec) == []
    bids = pl.from_arrow(generate("bid", np.arange(2000, dtype=np.int64), NexmarkConfig()))
    assert isinstance(bids, pl.DataFrame)
    night = build_logic(spec.operator("night"), {"bids": pl.Schema(pl.from_arrow(schema("bid").empty_table()).schema)})
    shape = build_logic(spec.operator("shape"), {"night": night.output_schema})
    kept = pl.concat(night.process("bids", bids) or [bids.clear()])
    expected = bids.filter(
        (bids["date_time"].dt.strftime("%H:%M") >= "22:00") & (bids["auction"] % 10 == 0)
    )
    assert kept.rows() == expected.rows()
    if kept.height:
        (out,) = shape.process("night", kept)
        assert out["channel_kind"].to_list() == [c.split("-")[0] for c in kept["channel"].to_list()]


def test_a_job_the_engine_cannot_run_is_refused_while_planning_before_any_process_starts() -> None:
    from streamtune_cli.errors import UsageError
    from streamtune_cli.executors.local.plan import build_plan
    from streamtune_cli.spec.loader import load_spec_text
    from streamtune_cli.spec.sql import check_spec_sql

    text = """\
name: md5-filter
workload: {rate_rps: 1000}
operators:
  - {id: bids, kind: source, generator: nexmark, events: [bid]}
  - {id: hashed, kind: filter, predicate: "MD5(channel) = 'x' AND price > 10"}
  - {id: sink, kind: sink}
edges:
  - {from: bids, to: hashed}
  - {from: hashed, to: sink}
"""
    spec = load_spec_text(text, "md5.yaml", check_sql_expressions=False)
    assert check_spec_sql(spec) == []  # valid Flink SQL: every command but the local engine accepts it
    with pytest.raises(UsageError) as err:
        build_plan(spec)
    message = str(err.value)
    assert "\n" not in message
    assert "operator 'hashed'" in message and "MD5" in message and "the local engine cannot run" in message
