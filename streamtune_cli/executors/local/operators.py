"""Operator logic of the local engine: what one instance of a filter, map, aggregate or join does to its batches.

Pure and in-process: no I/O, no processes. The runtime routes records to instances by key group
(`partition.py`), tracks watermarks and calls these classes; each one turns input polars DataFrames into output
DataFrames, keeps its keyed state as polars frames (never Python containers of rows) and can snapshot and
restore that state so that the runtime can redistribute it by key group when rescaling.

Conventions (also what tests and reference queries follow):

- SQL is Flink SQL, parsed by `streamtune_cli.spec.sql` (the parser `validate` uses) and translated to polars
  expressions by `sql_polars.to_polars` (never `eval`), then validated up front against empty frames of the
  input schema; invalid SQL, functions the engine does not implement, unknown columns, types polars rejects
  and non row-wise expressions are `OperatorSemanticsError`s raised by `build_logic`, never failures
  mid-stream.
- Watermark `w`: every later record has event time >= w (epoch ms). A window [s, e) fires when w >= e;
  `finish()` fires everything (an infinite watermark). Records of windows that already fired are dropped.
- Aggregates: COUNT(*) | COUNT(e) | SUM(e) | MIN(e) | MAX(e) | AVG(e). COUNT -> Int64; SUM of integers or
  booleans -> Int64, else the argument's dtype; MIN/MAX keep it; AVG -> Float64. Nulls are ignored; SUM of
  no non-null values is 0 and MIN/MAX/AVG null (what a polars group_by gives).
- Joins never match null keys. Output columns: left ones, then right ones (a name already taken gets `_right`).
- Without semantic fields, filter/map/project/flat_map apply their `selectivity` synthetically: after n rows
  in total, floor(selectivity * n) rows have been emitted (a prefix of each batch when selectivity <= 1,
  every row repeated about selectivity times when above).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Mapping, Sequence

import numpy as np
import polars as pl

from streamtune_cli.executors.local.sql_polars import NotRowWise, UnknownColumn, UnsupportedSql, to_polars
from streamtune_cli.spec.models import Operator, OperatorKind, Window
from streamtune_cli.spec.sql import SqlExpressionError, excerpt_around, function_name, parse_expression, to_sql

__all__ = [
    "AGGREGATE_FUNCTIONS",
    "OperatorLogic",
    "OperatorSemanticsError",
    "build_logic",
    "parse_aggregate",
]

AGGREGATE_FUNCTIONS = ("COUNT", "SUM", "MIN", "MAX", "AVG")

# Internal columns (partial aggregates, window bounds) carry this prefix; input columns may not.
_P = "__st_"
_WS = _P + "ws"  # window start, Int64 epoch ms
_WS_R = _P + "ws_r"  # the right side's window start while joining
_T = _P + "t"  # event time, Int64 epoch ms
_S = _P + "s"  # session start (ms)
_E = _P + "e"  # session end (ms, exclusive: last record + gap)
_G = _P + "g"  # session group id while merging

# Keep at most this many appended parts before compacting them into one frame.
_MAX_PARTS = 32


class OperatorSemanticsError(ValueError):
    """A spec the local engine cannot run; the message names the operator id and the field."""


# ------------------------------------------------------------------------------------------------- base


class OperatorLogic:
    """One instance of an operator: batches in, batches out, keyed state as polars frames."""

    output_schema: pl.Schema
    state_keys: dict[str, list[str]]

    def __init__(self, output_schema: pl.Schema, state_keys: dict[str, list[str]] | None = None) -> None:
        self.output_schema = output_schema
        self.state_keys = dict(state_keys or {})

    def process(self, input_id: str, batch: pl.DataFrame) -> list[pl.DataFrame]:
        raise NotImplementedError

    def on_watermark(self, watermark_ms: int) -> list[pl.DataFrame]:
        return []

    def finish(self) -> list[pl.DataFrame]:
        return []

    def snapshot(self) -> dict[str, pl.DataFrame]:
        return {}

    def restore(self, state: dict[str, pl.DataFrame]) -> None:
        return None

    def _out(self, *frames: pl.DataFrame | None) -> list[pl.DataFrame]:
        """The non-empty frames, conformed to output_schema (a no-op when they already match it)."""
        result = []
        for frame in frames:
            if frame is None or frame.height == 0:
                continue
            if frame.schema != self.output_schema:
                frame = frame.select(pl.col(n).cast(t) for n, t in self.output_schema.items())
            result.append(frame)
        return result


# ------------------------------------------------------------------------------------------------- helpers


class _Ctx:
    """Builds errors that name the operator."""

    def __init__(self, op: Operator) -> None:
        self.op = op

    def error(self, message: str) -> OperatorSemanticsError:
        return OperatorSemanticsError(f"operator {self.op.id!r}: {message}")


def _reason(exc: BaseException) -> str:
    """The first line of a library's error, cut short: polars may quote a whole column of data."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first if len(first) <= 200 else first[:200] + "..."


def _names(schema: pl.Schema) -> str:
    return ", ".join(schema.names()) or "none"


def _empty(schema: pl.Schema, n: int = 0) -> pl.DataFrame:
    frame = pl.DataFrame(schema=schema)
    return frame.clear(n) if n else frame


class _Compiled:
    """A validated row-wise SQL expression: its polars expression, result dtype and whether it is constant."""

    def __init__(self, expr: pl.Expr, dtype: pl.DataType, constant: bool) -> None:
        self.expr = expr
        self.dtype = dtype
        self.constant = constant


def _compile(ctx: _Ctx, where: str, sql: str, schema: pl.Schema) -> _Compiled:
    """Translate the Flink SQL `sql` to polars and check that it is a row-wise expression over `schema`."""
    try:
        expr = to_polars(sql, schema)
    except SqlExpressionError as exc:
        raise ctx.error(f"{where} {excerpt_around(sql, exc.column)!r} is not valid Flink SQL: {exc.describe()}") from None
    except UnknownColumn as exc:
        raise ctx.error(f"{where} {excerpt_around(sql)!r} uses column {exc.name!r}, which is not in its input (columns: {_names(schema)})") from None
    except NotRowWise as exc:
        raise ctx.error(f"{where} {excerpt_around(sql)!r} calls the aggregate {exc}: not a row-wise expression (aggregates only belong in `aggregates`)") from None
    except UnsupportedSql as exc:
        raise ctx.error(f"{where} {excerpt_around(sql)!r}: the local engine cannot run {exc}") from None
    try:
        roots = expr.meta.root_names()
    except Exception:
        roots = []
    results = []
    for n in (0, 2, 3):
        try:
            results.append(_empty(schema, n).select(expr.alias("v")))
        except Exception as exc:
            raise ctx.error(f"{where} {excerpt_around(sql)!r} is rejected by polars: {_reason(exc)}") from None
    heights = [r.height for r in results]
    dtype = results[0].schema["v"]
    if heights == [0, 2, 3]:
        return _Compiled(expr, dtype, constant=False)
    if heights == [1, 1, 1] and not roots and results[1].equals(results[2]):
        return _Compiled(expr, dtype, constant=True)
    raise ctx.error(f"{where} {excerpt_around(sql)!r} is not a row-wise expression (aggregates only belong in `aggregates`)")


def _check_reserved(ctx: _Ctx, schema: pl.Schema, what: str = "its input") -> None:
    for name in schema.names():
        if name.startswith(_P):
            raise ctx.error(f"column {name!r} of {what} uses the reserved prefix {_P!r}")


def _check_columns(ctx: _Ctx, field: str, columns: Sequence[str], schema: pl.Schema, what: str = "its input") -> None:
    if not columns:
        raise ctx.error(f"{field} needs at least one column")
    for name in columns:
        if name not in schema:
            raise ctx.error(f"{field} column {name!r} is not in {what} (columns: {_names(schema)})")
    if len(set(columns)) != len(columns):
        raise ctx.error(f"{field} names a column twice ({', '.join(columns)})")


def _whole_ms(ctx: _Ctx, field: str, seconds: float) -> int:
    ms = seconds * 1000.0
    rounded = round(ms)
    if rounded < 1 or abs(ms - rounded) > 1e-6 * max(1.0, ms):
        raise ctx.error(f"{field} {seconds} s is not a whole, positive number of milliseconds")
    return int(rounded)


def _time_ms(ctx: _Ctx, field: str, name: str, schema: pl.Schema, what: str = "its input") -> pl.Expr:
    """The expression giving `name` in epoch ms (Int64)."""
    if name not in schema:
        raise ctx.error(f"{field} {name!r} is not in {what} (columns: {_names(schema)})")
    dtype = schema[name]
    if isinstance(dtype, pl.Datetime):
        return pl.col(name).dt.epoch("ms")
    if dtype.is_integer():
        return pl.col(name).cast(pl.Int64)
    raise ctx.error(f"{field} {name!r} is {dtype}, not a Datetime or an integer in epoch ms")


def _from_ms(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Epoch ms (Int64) back to the time field's dtype."""
    if isinstance(dtype, pl.Datetime):
        out = expr.cast(pl.Datetime("ms", dtype.time_zone))
        return out if dtype.time_unit == "ms" else out.cast(dtype)
    return expr.cast(dtype)


class _WindowShape:
    """Tumble or hop windows in epoch ms: which windows each record belongs to."""

    def __init__(self, ctx: _Ctx, field: str, window: Window) -> None:
        assert window.size_s is not None
        self.size = _whole_ms(ctx, f"{field}.size_s", window.size_s)
        self.slide = self.size if window.type == "tumble" else _whole_ms(ctx, f"{field}.slide_s", window.slide_s or 0)
        if self.slide > self.size:
            raise ctx.error(f"{field}.slide_s must not exceed size_s")

    def assign(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Rows of `frame` (with _T) with _WS added, one row per window a record belongs to (nulls dropped)."""
        frame = frame.filter(pl.col(_T).is_not_null())
        t = pl.col(_T)
        if self.slide == self.size:
            return frame.with_columns(((t // self.size) * self.size).alias(_WS))
        # Windows start at multiples of slide in (t - size, t].
        first = ((t - self.size) // self.slide + 1) * self.slide
        last = (t // self.slide) * self.slide
        return frame.with_columns(pl.int_ranges(first, last + self.slide, self.slide).alias(_WS)).explode(_WS)


# ------------------------------------------------------------------------------------------------- aggregates

def parse_aggregate(text: str) -> tuple[str, str] | None:
    """(FUNC upper-cased, argument text) of `FUNC(arg)`, or None when `text` is not one such call.

    The argument comes back as Flink SQL text (`*` for COUNT(*), `DISTINCT x` for a DISTINCT call).
    """
    from sqlglot import exp

    try:
        tree = parse_expression(text, check=False)
    except SqlExpressionError:
        return None
    name = function_name(tree)
    if name is None or len(tree.expressions) != 1:
        return None
    (arg,) = tree.expressions
    if isinstance(arg, exp.Star):
        return name, "*"
    if isinstance(arg, exp.Distinct):
        return name, "DISTINCT " + ", ".join(to_sql(e) for e in arg.expressions)
    return name, to_sql(arg)


class _Agg:
    """One output aggregate: its argument column, partial columns and how partials combine."""

    def __init__(self, name: str, func: str, index: int, arg: _Compiled | None) -> None:
        self.name = name
        self.func = func
        self.arg = arg
        self.arg_col = f"{_P}a{index}"
        base = f"{_P}p{index}"
        col = pl.col(self.arg_col)
        if func == "COUNT":
            self.parts = [base]
            if arg is None:
                self.partial = [pl.len().cast(pl.Int64).alias(base)]
                self.row = [pl.lit(1, pl.Int64).alias(base)]
            else:
                self.partial = [col.count().cast(pl.Int64).alias(base)]
                self.row = [col.is_not_null().cast(pl.Int64).alias(base)]
            self.combine = [pl.col(base).sum().alias(base)]
            self.final = pl.col(base).alias(name)
        elif func == "SUM":
            assert arg is not None
            dtype = pl.Int64 if (arg.dtype.is_integer() or arg.dtype == pl.Boolean) else arg.dtype
            self.parts = [base]
            self.partial = [col.cast(dtype).sum().alias(base)]
            self.row = [col.cast(dtype).alias(base)]
            self.combine = [pl.col(base).sum().alias(base)]
            self.final = pl.col(base).alias(name)
        elif func in ("MIN", "MAX"):
            self.parts = [base]
            self.partial = [(col.min() if func == "MIN" else col.max()).alias(base)]
            self.row = [col.alias(base)]
            self.combine = [(pl.col(base).min() if func == "MIN" else pl.col(base).max()).alias(base)]
            self.final = pl.col(base).alias(name)
        else:  # AVG: a Float64 sum and a count of non-null values
            s, c = base + "s", base + "c"
            self.parts = [s, c]
            self.partial = [col.cast(pl.Float64).sum().alias(s), col.count().cast(pl.Int64).alias(c)]
            self.row = [col.cast(pl.Float64).alias(s), col.is_not_null().cast(pl.Int64).alias(c)]
            self.combine = [pl.col(s).sum().alias(s), pl.col(c).sum().alias(c)]
            self.final = pl.when(pl.col(c) > 0).then(pl.col(s) / pl.col(c)).otherwise(None).cast(pl.Float64).alias(name)


def _parse_aggregates(ctx: _Ctx, aggregates: Mapping[str, str] | None, schema: pl.Schema) -> list[_Agg]:
    if not aggregates:
        raise ctx.error("aggregates needs at least one `name: FUNC(arg)` entry")
    result = []
    for i, (name, text) in enumerate(aggregates.items()):
        where = f"aggregates.{name}"
        if name.startswith(_P):
            raise ctx.error(f"{where}: the name uses the reserved prefix {_P!r}")
        call = parse_aggregate(text)
        if call is None:
            raise ctx.error(f"{where} {text!r} is not one call FUNC(arg) with FUNC in {', '.join(AGGREGATE_FUNCTIONS)}")
        func, arg_text = call
        if func not in AGGREGATE_FUNCTIONS:
            raise ctx.error(f"{where} {text!r}: unsupported aggregate {func} (supported: {', '.join(AGGREGATE_FUNCTIONS)})")
        if arg_text == "*":
            if func != "COUNT":
                raise ctx.error(f"{where} {text!r}: only COUNT takes *")
            result.append(_Agg(name, func, i, None))
            continue
        if not arg_text:
            raise ctx.error(f"{where} {text!r}: {func} needs an argument")
        if re.match(r"(?i)^distinct\b", arg_text):
            raise ctx.error(f"{where} {text!r}: DISTINCT aggregates are not supported")
        arg = _compile(ctx, f"{where} argument", arg_text, schema)
        dt = arg.dtype
        if func in ("SUM", "AVG") and not (dt.is_numeric() or dt == pl.Boolean):
            raise ctx.error(f"{where} {text!r}: {func} needs a numeric argument, not {dt}")
        if func in ("MIN", "MAX") and not (dt.is_numeric() or dt.is_temporal() or dt in (pl.Boolean, pl.String)):
            raise ctx.error(f"{where} {text!r}: {func} needs an orderable argument, not {dt}")
        result.append(_Agg(name, func, i, arg))
    return result


class _Aggregation:
    """Key columns plus aggregates: preparing rows, partial aggregation, combining partials, final values."""

    def __init__(self, key: list[str], aggs: list[_Agg]) -> None:
        self.key = key
        self.aggs = aggs
        self.arg_exprs = [a.arg.expr.alias(a.arg_col) for a in aggs if a.arg is not None]
        self.partial = [e for a in aggs for e in a.partial]
        self.row = [e for a in aggs for e in a.row]
        self.combine = [e for a in aggs for e in a.combine]
        self.final = [a.final for a in aggs]
        self.parts = [p for a in aggs for p in a.parts]

    def prepare(self, batch: pl.DataFrame, extra: Sequence[pl.Expr] = ()) -> pl.DataFrame:
        """Key columns, `extra` and every argument evaluated once (constants broadcast)."""
        return batch.select([pl.col(k) for k in self.key] + list(extra) + self.arg_exprs)

    def partials(self, prepared: pl.DataFrame, by: list[str]) -> pl.DataFrame:
        return prepared.group_by(by).agg(self.partial)

    def combined(self, partials: pl.DataFrame, by: list[str]) -> pl.DataFrame:
        return partials.group_by(by).agg(self.combine)


def _check_output_names(ctx: _Ctx, names: Sequence[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ctx.error(f"output column {name!r} appears twice (a key, window bound or aggregate name clash)")
        seen.add(name)


# ------------------------------------------------------------------------------------------------- stateless


class _Synthetic:
    """Emit floor(s * rows seen) rows in total: a prefix of each batch, or rows repeated when s > 1."""

    def __init__(self, selectivity: float) -> None:
        self.s = Fraction(repr(float(selectivity)))  # the decimal the spec wrote: 0.3 is exactly 3/10
        self.seen = 0

    def apply(self, batch: pl.DataFrame) -> pl.DataFrame:
        n = batch.height
        before = math.floor(self.s * self.seen)
        self.seen += n
        m = math.floor(self.s * self.seen) - before
        if m == n:
            return batch
        if m < n:
            return batch.head(m)
        return batch.gather(np.arange(m, dtype=np.int64) * n // m)


class _Filter(OperatorLogic):
    def __init__(self, schema: pl.Schema, predicate: pl.Expr) -> None:
        super().__init__(schema)
        self._predicate = predicate

    def process(self, input_id: str, batch: pl.DataFrame) -> list[pl.DataFrame]:
        if batch.height == 0:
            return []
        return self._out(batch.filter(self._predicate))


class _Project(OperatorLogic):
    def __init__(self, schema: pl.Schema, exprs: list[pl.Expr], all_constant: bool, synthetic: _Synthetic | None) -> None:
        super().__init__(schema)
        self._exprs = exprs
        self._names = schema.names()
        self._all_constant = all_constant
        self._synthetic = synthetic

    def project(self, batch: pl.DataFrame) -> pl.DataFrame:
        if self._all_constant:  # select() would give one row: broadcast through with_columns instead
            return batch.with_columns(self._exprs).select(self._names)
        return batch.select(self._exprs)

    def process(self, input_id: str, batch: pl.DataFrame) -> list[pl.DataFrame]:
        if batch.height == 0:
            return []
        out = self.project(batch)
        if self._synthetic is not None:
            out = self._synthetic.apply(out)
        return self._out(out)


class _SyntheticPassThrough(OperatorLogic):
    def __init__(self, schema: pl.Schema, synthetic: _Synthetic) -> None:
        super().__init__(schema)
        self._synthetic = synthetic

    def process(self, input_id: str, batch: pl.DataFrame) -> list[pl.DataFrame]:
        if batch.height == 0:
            return []
        return self._out(self._synthetic.apply(batch))


# ------------------------------------------------------------------------------------------------- aggregate


class _UpdatingAggregate(OperatorLogic):
    """Running aggregate per key; after each batch one row per touched key with its new values."""

    TABLE = "groups"

    def __init__(self, agg: _Aggregation, input_schema: pl.Schema) -> None:
        self._agg = agg
        self._key = agg.key
        self._state = agg.partials(agg.prepare(_empty(input_schema)), self._key)
        self._state_schema = self._state.schema
        super().__init__(self._final(self._state).schema, {self.TABLE: list(self._key)})

    def _final(self, partials: pl.DataFrame) -> pl.DataFrame:
        return partials.select([pl.col(k) for k in self._key] + self._agg.final)

    def process(self, input_id: str, batch: pl.DataFrame) -> list[pl.DataFrame]:
        if batch.height == 0:
            return []
        p = self._agg.partials(self._agg.prepare(batch), self._key)
        state = self._state
        if state.height == 0:
            new = p
            self._state = p
        else:
            touched = p.select(self._key)
            old = state.join(touched, on=self._key, how="semi", nulls_equal=True)
            if old.height == 0:
                new = p
                state = pl.concat([state, p], how="vertical")
                self._state = state.rechunk() if state.n_chunks() > _MAX_PARTS else state
            else:
                new = self._agg.combined(pl.concat([old, p], how="vertical"), self._key)
                rest = state.join(touched, on=self._key, how="anti", nulls_equal=True)
                self._state = pl.concat([rest, new], how="vertical")
        return self._out(self._final(new))

    def snapshot(self) -> dict[str, pl.DataFrame]:
        return {self.TABLE: self._state.rechunk()}

    def restore(self, state: dict[str, pl.DataFrame]) -> None:
        table = state.get(self.TABLE)
        if table is None or table.height == 0:
            return
        table = table.select(pl.col(n).cast(t) for n, t in self._state_schema.items())
        both = pl.concat([self._state, table], how="vertical")
        self._state = self._agg.combined(both, self._key)


class _WindowAggregate(OperatorLogic):
    """Tumble or hop window aggregate: partials per (key, window start), fired by the watermark."""

    TABLE = "windows"

    def __init__(self, agg: _Aggregation, input_schema: pl.Schema, shape: _WindowShape, time_ms: pl.Expr, time_dtype: pl.DataType) -> None:
        self._agg = agg
        self._shape = shape
        self._time_ms = time_ms.alias(_T)
        self._time_dtype = time_dtype
        self._by = agg.key + [_WS]
        self._parts: list[pl.DataFrame] = []
        self._min_ws: int | None = None
        self._wm: int | None = None
        self._compacted_rows = 0
        empty = self._partials(_empty(input_schema))
        self._state_schema = empty.schema
        super().__init__(self._final(empty).schema, {self.TABLE: list(agg.key)})

    def _partials(self, batch: pl.DataFrame) -> pl.DataFrame:
        rows = self._shape.assign(self._agg.prepare(batch, [self._time_ms]))
        if self._wm is not None:
            rows = rows.filter(pl.col(_WS) + self._shape.size > self._wm)  # windows that already fired
        return self._agg.partials(rows, self._by)

    def _final(self, partials: pl.DataFrame) -> pl.DataFrame:
        ws = pl.col(_WS)
        return partials.select(
            [pl.col(k) for k in self._agg.key]
            + [
                _from_ms(ws, self._time_dtype).alias("window_start"),
                _from_ms(ws + self._shape.size, self._time_dtype).alias("window_end"),
            ]
            + self._agg.final
        )

    def _add(self, part: pl.DataFrame) -> None:
        if part.height == 0:
            return
        self._parts.append(part)
        lo = part.get_column(_WS).min()
        self._min_ws = lo if self._min_ws is None else min(self._min_ws, lo)  # type: ignore[type-var]
        if len(self._parts) > _MAX_PARTS:
            self._compact()

    def _compact(self) -> pl.DataFrame:
        if not self._parts:
            return _empty(self._state_schema)
        merged = self._agg.combined(pl.concat(self._parts, how="vertical"), self._by) if len(self._parts) > 1 else self._parts[0]
        self._parts = [merged]
        self._compacted_rows = merged.height
        return merged

    def process(self, input_id: str, batch: pl.DataFrame) -> list[pl.DataFrame]:
        if batch.height:
            self._add(self._partials(batch))
        return []

    def _fire(self, watermark: int | None) -> list[pl.DataFrame]:
        if not self._parts:
            return []
        if watermark is not None and (self._min_ws is None or self._min_ws + self._shape.size > watermark):
            return []
        rows = pl.concat(self._parts, how="vertical") if len(self._parts) > 1 else self._parts[0]
        if watermark is None:
            done, rest = rows, None
        else:
            ends = pl.col(_WS) + self._shape.size <= watermark
            done, rest = rows.filter(ends), rows.filter(~ends)
        self._parts = []
        self._min_ws = None
        if rest is not None and rest.height:
            if rest.height > 2 * self._compacted_rows + 4096:
                rest = self._agg.combined(rest, self._by)
                self._compacted_rows = rest.height
            self._parts = [rest]
            self._min_ws = rest.get_column(_WS).min()  # type: ignore[assignment]
        return self._out(self._final(self._agg.combined(done, self._by)))

    def on_watermark(self, watermark_ms: int) -> list[pl.DataFrame]:
        self._wm = watermark_ms if self._wm is None else max(self._wm, watermark_ms)
        return self._fire(self._wm)

    def finish(self) -> list[pl.DataFrame]:
        return self._fire(None)

    def snapshot(self) -> dict[str, pl.DataFrame]:
        return {self.TABLE: self._compact().rechunk()}

    def restore(self, state: dict[str, pl.DataFrame]) -> None:
        table = state.get(self.TABLE)
        if table is not None and table.height:
            self._add(table.select(pl.col(n).cast(t) for n, t in self._state_schema.items()))


class _SessionAggregate(OperatorLogic):
    """Session window aggregate: open sessions (key, start, end, partials) merged lazily, fired by the watermark."""

    TABLE = "sessions"

    def __init__(self, agg: _Aggregation, input_schema: pl.Schema, gap: int, time_ms: pl.Expr, time_dtype: pl.DataType) -> None:
        self._agg = agg
        self._gap = gap
        self._time_ms = time_ms.alias(_T)
        self._time_dtype = time_dtype
        self._key = agg.key
        self._parts: list[pl.DataFrame] = []
        self._min_end: int | None = None
        self._merge_agg = [pl.col(_S).min(), pl.col(_E).max()] + agg.combine
        empty = self._sessions(_empty(input_schema))
        self._state_schema = empty.schema
        super().__init__(self._final(empty).schema, {self.TABLE: list(agg.key)})

    def _sessions(self, batch: pl.DataFrame) -> pl.DataFrame:
        """The batch's records as sessions, merged within the batch."""
        rows = self._agg.prepare(batch, [self._time_ms]).filter(pl.col(_T).is_not_null())
        t = pl.col(_T)
        rows = rows.select([pl.col(k) for k in self._key] + [t.alias(_S), (t + self._gap).alias(_E)] + self._agg.row)
        return self._merge(rows)

    def _merge(self, sessions: pl.DataFrame) -> pl.DataFrame:
        """Merge overlapping intervals [start, end) per key (strictly overlapping: start < end of another)."""
        if sessions.height == 0:
            return sessions
        ordered = sessions.sort(self._key + [_S])
        prev_end = pl.col(_E).cum_max().shift(1).over(self._key)
        new = prev_end.is_null() | (pl.col(_S) >= prev_end)
        grouped = ordered.with_columns(new.cum_sum().alias(_G))
        return grouped.group_by(self._key + [_G]).agg(self._merge_agg).drop(_G)

    def _final(self, sessions: pl.DataFrame) -> pl.DataFrame:
        return sessions.select(
            [pl.col(k) for k in self._key]
            + [
                _from_ms(pl.col(_S), self._time_dtype).alias("window_start"),
                _from_ms(pl.col(_E), self._time_dtype).alias("window_end"),
            ]
            + self._agg.final
        )

    def _add(self, part: pl.DataFrame) -> None:
        if part.height == 0:
            return
        self._parts.append(part)
        lo = part.get_column(_E).min()
        self._min_end = lo if self._min_end is None else min(self._min_end, lo)  # type: ignore[type-var]
        if len(self._parts) > _MAX_PARTS:
            self._compact()

    def _compact(self) -> pl.DataFrame:
        if not self._parts:
            return _empty(self._state_schema)
        merged = self._merge(pl.concat(self._parts, how="vertical")) if len(self._parts) > 1 else self._parts[0]
        self._parts = [merged]
        return merged

    def process(self, input_id: str, batch: pl.DataFrame) -> list[pl.DataFrame]:
        if batch.height:
            self._add(self._sessions(batch))
        return []

    def _fire(self, watermark: int | None) -> list[pl.DataFrame]:
        if not self._parts:
            return []
        if watermark is not None and (self._min_end is None or self._min_end > watermark):
            return []
        merged = self._merge(pl.concat(self._parts, how="vertical"))
        if watermark is None:
            done, rest = merged, None
        else:
            closed = pl.col(_E) <= watermark
            done, rest = merged.filter(closed), merged.filter(~closed)
        self._parts = []
        self._min_end = None
        if rest is not None and rest.height:
            self._parts = [rest]
            self._min_end = rest.get_column(_E).min()  # type: ignore[assignment]
        return self._out(self._final(done))

    def on_watermark(self, watermark_ms: int) -> list[pl.DataFrame]:
        return self._fire(watermark_ms)

    def finish(self) -> list[pl.DataFrame]:
        return self._fire(None)

    def snapshot(self) -> dict[str, pl.DataFrame]:
        return {self.TABLE: self._compact().rechunk()}

    def restore(self, state: dict[str, pl.DataFrame]) -> None:
        table = state.get(self.TABLE)
        if table is not None and table.height:
            self._add(table.select(pl.col(n).cast(t) for n, t in self._state_schema.items()))


# ------------------------------------------------------------------------------------------------- joins


class _JoinShape:
    """How the two sides pair up: key expressions, right-side renames, output columns, condition."""

    def __init__(
        self,
        left_key: list[str],
        right_key: list[str],
        key_casts: list[pl.DataType | None],
        rename: dict[str, str],
        columns: list[str],
    ) -> None:
        self.rename = rename
        self.left_on = [pl.col(k) if c is None else pl.col(k).cast(c) for k, c in zip(left_key, key_casts)]
        self.right_on = [pl.col(rename[k]) if c is None else pl.col(rename[k]).cast(c) for k, c in zip(right_key, key_casts)]
        self.columns = columns
        self.condition: pl.Expr | None = None

    def pair(self, left: pl.DataFrame, right: pl.DataFrame, extra_left: Sequence[pl.Expr] = (), extra_right: Sequence[pl.Expr] = (), tail: Sequence[pl.Expr] = ()) -> pl.DataFrame:
        joined = left.join(
            right.rename(self.rename),
            left_on=self.left_on + list(extra_left),
            right_on=self.right_on + list(extra_right),
            how="inner",
            coalesce=False,
        )
        out = joined.select([pl.col(c) for c in self.columns] + list(tail))
        if self.condition is not None:
            out = out.filter(self.condition)
        return out


def _concat(parts: list[pl.DataFrame], schema: pl.Schema) -> pl.DataFrame:
    if not parts:
        return _empty(schema)
    return parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical")


class _RegularJoin(OperatorLogic):
    """Streaming symmetric hash join: each batch meets the other side's state, then joins its own side's."""

    def __init__(self, shape: _JoinShape, left_id: str, right_id: str, left_schema: pl.Schema, right_schema: pl.Schema, left_key: list[str], right_key: list[str]) -> None:
        self._shape = shape
        self._ids = (left_id, right_id)
        self._schemas = (left_schema, right_schema)
        self._keys = (left_key, right_key)
        self._parts: tuple[list[pl.DataFrame], list[pl.DataFrame]] = ([], [])
        out = shape.pair(_empty(left_schema), _empty(right_schema))
        super().__init__(out.schema, {"left": list(left_key), "right": list(right_key)})

    def _side(self, input_id: str) -> int:
        if input_id == self._ids[0]:
            return 0
        if input_id == self._ids[1]:
            return 1
        raise ValueError(f"unknown input {input_id!r} (a join of {self._ids[0]!r} and {self._ids[1]!r})")

    def _state(self, side: int) -> pl.DataFrame:
        parts = self._parts[side]
        if len(parts) > _MAX_PARTS:
            parts[:] = [pl.concat(parts, how="vertical", rechunk=True)]
        return _concat(parts, self._schemas[side])

    def process(self, input_id: str, batch: pl.DataFrame) -> list[pl.DataFrame]:
        side = self._side(input_id)
        batch = batch.drop_nulls(self._keys[side])  # a null key never matches
        if batch.height == 0:
            return []
        other = self._parts[1 - side]
        out = None
        if other:
            state = self._state(1 - side)
            out = self._shape.pair(batch, state) if side == 0 else self._shape.pair(state, batch)
        self._parts[side].append(batch)
        return self._out(out)

    def snapshot(self) -> dict[str, pl.DataFrame]:
        return {"left": self._state(0), "right": self._state(1)}

    def restore(self, state: dict[str, pl.DataFrame]) -> None:
        for side, name in enumerate(("left", "right")):
            table = state.get(name)
            if table is not None and table.height:
                schema = self._schemas[side]
                self._parts[side].append(table.select(pl.col(n).cast(t) for n, t in schema.items()))


class _WindowJoin(OperatorLogic):
    """Window join: rows buffered per window on each side, joined when the watermark closes the window."""

    def __init__(
        self,
        shape: _JoinShape,
        window: _WindowShape,
        left_id: str,
        right_id: str,
        left_schema: pl.Schema,
        right_schema: pl.Schema,
        left_key: list[str],
        right_key: list[str],
        time_ms: tuple[pl.Expr, pl.Expr],
        time_dtype: pl.DataType,
    ) -> None:
        self._shape = shape
        self._window = window
        self._ids = (left_id, right_id)
        self._schemas = (left_schema, right_schema)
        self._keys = (left_key, right_key)
        self._time_ms = (time_ms[0].alias(_T), time_ms[1].alias(_T))
        self._time_dtype = time_dtype
        self._parts: tuple[list[pl.DataFrame], list[pl.DataFrame]] = ([], [])
        self._min_ws: int | None = None
        self._wm: int | None = None
        buffered = (self._buffer(0, _empty(left_schema)), self._buffer(1, _empty(right_schema)))
        self._state_schemas = (buffered[0].schema, buffered[1].schema)
        out = self._join(buffered[0], buffered[1])
        super().__init__(out.schema, {"left": list(left_key), "right": list(right_key)})

    def _buffer(self, side: int, batch: pl.DataFrame) -> pl.DataFrame:
        """The batch's rows with _WS, one per window they belong to (null keys and times dropped)."""
        rows = batch.drop_nulls(self._keys[side]).with_columns(self._time_ms[side])
        rows = self._window.assign(rows).drop(_T)
        if self._wm is not None:
            rows = rows.filter(pl.col(_WS) + self._window.size > self._wm)
        return rows

    def _join(self, left: pl.DataFrame, right: pl.DataFrame) -> pl.DataFrame:
        ws = pl.col(_WS)
        tail = [
            _from_ms(ws, self._time_dtype).alias("window_start"),
            _from_ms(ws + self._window.size, self._time_dtype).alias("window_end"),
        ]
        return self._shape.pair(left, right.rename({_WS: _WS_R}), [ws], [pl.col(_WS_R)], tail)

    def _side(self, input_id: str) -> int:
        if input_id == self._ids[0]:
            return 0
        if input_id == self._ids[1]:
            return 1
        raise ValueError(f"unknown input {input_id!r} (a join of {self._ids[0]!r} and {self._ids[1]!r})")

    def _add(self, side: int, rows: pl.DataFrame) -> None:
        if rows.height == 0:
            return
        parts = self._parts[side]
        parts.append(rows)
        if len(parts) > _MAX_PARTS:
            parts[:] = [pl.concat(parts, how="vertical", rechunk=True)]
        lo = rows.get_column(_WS).min()
        self._min_ws = lo if self._min_ws is None else min(self._min_ws, lo)  # type: ignore[type-var]

    def process(self, input_id: str, batch: pl.DataFrame) -> list[pl.DataFrame]:
        side = self._side(input_id)
        if batch.height:
            self._add(side, self._buffer(side, batch))
        return []

    def _fire(self, watermark: int | None) -> list[pl.DataFrame]:
        if watermark is not None and (self._min_ws is None or self._min_ws + self._window.size > watermark):
            return []
        done: list[pl.DataFrame] = []
        self._min_ws = None
        for side in (0, 1):
            rows = _concat(self._parts[side], self._state_schemas[side])
            self._parts[side].clear()
            if watermark is None:
                done.append(rows)
                continue
            closed = pl.col(_WS) + self._window.size <= watermark
            done.append(rows.filter(closed))
            self._add(side, rows.filter(~closed))
        if done[0].height == 0 or done[1].height == 0:
            return []
        return self._out(self._join(done[0], done[1]))

    def on_watermark(self, watermark_ms: int) -> list[pl.DataFrame]:
        self._wm = watermark_ms if self._wm is None else max(self._wm, watermark_ms)
        return self._fire(self._wm)

    def finish(self) -> list[pl.DataFrame]:
        return self._fire(None)

    def snapshot(self) -> dict[str, pl.DataFrame]:
        return {
            name: _concat(self._parts[side], self._state_schemas[side]).rechunk()
            for side, name in enumerate(("left", "right"))
        }

    def restore(self, state: dict[str, pl.DataFrame]) -> None:
        for side, name in enumerate(("left", "right")):
            table = state.get(name)
            if table is not None and table.height:
                self._add(side, table.select(pl.col(n).cast(t) for n, t in self._state_schemas[side].items()))


# ------------------------------------------------------------------------------------------------- building


def _key_cast(left: pl.DataType, right: pl.DataType) -> pl.DataType | None | bool:
    """The dtype both join keys are compared in (None: as they are), or False when they cannot match."""
    if left == right:
        return None
    if left.is_integer() and right.is_integer():
        return pl.Int64
    if left.is_float() and right.is_float():
        return pl.Float64
    return False


def _build_join(ctx: _Ctx, op: Operator, inputs: dict[str, pl.Schema]) -> OperatorLogic:
    spec = op.join
    if spec is None:
        raise ctx.error("a join needs `join` (left, right, left_key, right_key)")
    if op.key:
        raise ctx.error("key does not apply to joins (use join.left_key and join.right_key)")
    if op.columns is not None:
        raise ctx.error("columns does not apply to joins (add a project after the join)")
    if set(inputs) != {spec.left, spec.right} or len(inputs) != 2:
        raise ctx.error(
            f"join.left {spec.left!r} and join.right {spec.right!r} must name its two inputs "
            f"(inputs: {', '.join(inputs) or 'none'})"
        )
    ls, rs = inputs[spec.left], inputs[spec.right]
    _check_reserved(ctx, ls, f"input {spec.left!r}")
    _check_reserved(ctx, rs, f"input {spec.right!r}")
    _check_columns(ctx, "join.left_key", spec.left_key, ls, f"input {spec.left!r}")
    _check_columns(ctx, "join.right_key", spec.right_key, rs, f"input {spec.right!r}")
    casts: list[pl.DataType | None] = []
    for lk, rk in zip(spec.left_key, spec.right_key):
        cast = _key_cast(ls[lk], rs[rk])
        if cast is False:
            raise ctx.error(f"join key {lk!r} ({ls[lk]}) and {rk!r} ({rs[rk]}) have types that cannot be compared")
        casts.append(cast)  # type: ignore[arg-type]
    taken = set(ls.names())
    rename: dict[str, str] = {}
    for name in rs.names():
        new = name if name not in taken else name + "_right"
        if new in taken:
            raise ctx.error(f"right column {name!r} clashes with left columns {name!r} and {new!r}")
        taken.add(new)
        rename[name] = new
    columns = ls.names() + [rename[n] for n in rs.names()]
    shape = _JoinShape(list(spec.left_key), list(spec.right_key), casts, rename, columns)
    try:
        if spec.window is None:
            logic: OperatorLogic = _RegularJoin(shape, spec.left, spec.right, ls, rs, list(spec.left_key), list(spec.right_key))
        else:
            window = spec.window
            if window.type == "session":
                raise ctx.error("join.window: session windows are not supported for joins (use tumble or hop)")
            for bound in ("window_start", "window_end"):
                if bound in taken:
                    raise ctx.error(f"join.window: input column {bound!r} clashes with the window bound of the output")
            shape_w = _WindowShape(ctx, "join.window", window)
            lt = _time_ms(ctx, "join.window.time_field", window.time_field, ls, f"input {spec.left!r}")
            rt = _time_ms(ctx, "join.window.time_field", window.time_field, rs, f"input {spec.right!r}")
            logic = _WindowJoin(
                shape,
                shape_w,
                spec.left,
                spec.right,
                ls,
                rs,
                list(spec.left_key),
                list(spec.right_key),
                (lt, rt),
                ls[window.time_field],
            )
    except OperatorSemanticsError:
        raise
    except Exception as exc:
        raise ctx.error(f"join: polars rejects joining {spec.left!r} with {spec.right!r}: {_reason(exc)}") from None
    if spec.condition is not None:
        cond = _compile(ctx, "join.condition", spec.condition, logic.output_schema)
        if cond.dtype != pl.Boolean:
            raise ctx.error(f"join.condition {spec.condition!r} is {cond.dtype}, not a boolean")
        shape.condition = cond.expr
    return logic


def _stateless(ctx: _Ctx, op: Operator, schema: pl.Schema) -> OperatorLogic:
    kind = op.kind
    if op.key:
        raise ctx.error(f"key does not apply to {kind.value} operators")
    if op.aggregates is not None:
        raise ctx.error(f"aggregates does not apply to {kind.value} operators")
    if kind == OperatorKind.filter:
        if op.columns is not None:
            raise ctx.error("columns does not apply to filter operators (add a project)")
        if op.predicate is None:
            if op.selectivity > 1:
                raise ctx.error(f"selectivity {op.selectivity} of a filter without predicate exceeds 1")
            return _SyntheticPassThrough(schema, _Synthetic(op.selectivity))
        pred = _compile(ctx, "predicate", op.predicate, schema)
        if pred.dtype != pl.Boolean:
            raise ctx.error(f"predicate {op.predicate!r} is {pred.dtype}, not a boolean")
        return _Filter(schema, pred.expr)
    if op.predicate is not None:
        raise ctx.error(f"predicate does not apply to {kind.value} operators")
    # map, project, flat_map: columns, then (flat_map, or no columns) the synthetic selectivity
    synthetic = _Synthetic(op.selectivity) if (kind == OperatorKind.flat_map or op.columns is None) else None
    if op.columns is None:
        assert synthetic is not None
        return _SyntheticPassThrough(schema, synthetic)
    if not op.columns:
        raise ctx.error("columns needs at least one `name: expression` entry")
    compiled = []
    for name, sql in op.columns.items():
        if name.startswith(_P):
            raise ctx.error(f"columns.{name}: the name uses the reserved prefix {_P!r}")
        compiled.append(_compile(ctx, f"columns.{name}", sql, schema))
    exprs = [c.expr.alias(name) for c, name in zip(compiled, op.columns)]
    all_constant = all(c.constant for c in compiled)
    if all_constant:
        out_schema = _empty(schema).with_columns(exprs).select(list(op.columns)).schema
    else:
        out_schema = _empty(schema).select(exprs).schema
    return _Project(out_schema, exprs, all_constant, None if synthetic is None or synthetic.s == 1 else synthetic)


def _aggregate(ctx: _Ctx, op: Operator, schema: pl.Schema) -> OperatorLogic:
    if op.columns is not None:
        raise ctx.error(f"columns does not apply to {op.kind.value} operators")
    if not op.key:
        raise ctx.error(f"a {op.kind.value} needs a key (the columns it groups by)")
    key = list(op.key)
    _check_columns(ctx, "key", key, schema)
    aggs = _parse_aggregates(ctx, op.aggregates, schema)
    agg = _Aggregation(key, aggs)
    if op.kind == OperatorKind.aggregate:
        _check_output_names(ctx, key + [a.name for a in aggs])
        return _UpdatingAggregate(agg, schema)
    window = op.window
    assert window is not None  # the model requires it for window_aggregate
    _check_output_names(ctx, key + ["window_start", "window_end"] + [a.name for a in aggs])
    time_ms = _time_ms(ctx, "window.time_field", window.time_field, schema)
    time_dtype = schema[window.time_field]
    if window.type == "session":
        gap = _whole_ms(ctx, "window.gap_s", window.gap_s or 0)
        return _SessionAggregate(agg, schema, gap, time_ms, time_dtype)
    return _WindowAggregate(agg, schema, _WindowShape(ctx, "window", window), time_ms, time_dtype)


def build_logic(op: Operator, inputs: Mapping[str, pl.Schema | Mapping[str, pl.DataType]]) -> OperatorLogic:
    """The logic of one instance of `op`, given its inputs' schemas (upstream operator id -> schema).

    Raises ValueError for sources and sinks (the runtime runs those) and OperatorSemanticsError for a spec
    the engine cannot run; every check happens here, never later on a batch.
    """
    if op.kind in (OperatorKind.source, OperatorKind.sink):
        raise ValueError(f"operator {op.id!r}: {op.kind.value} operators are run by the runtime, not by operator logic")
    ctx = _Ctx(op)
    schemas = {name: pl.Schema(schema) for name, schema in inputs.items()}
    if op.kind == OperatorKind.join:
        return _build_join(ctx, op, schemas)
    if op.join is not None:
        raise ctx.error(f"join does not apply to {op.kind.value} operators")
    if len(schemas) != 1:
        raise ctx.error(f"a {op.kind.value} operator needs exactly one input, not {len(schemas)} ({', '.join(schemas) or 'none'})")
    (schema,) = schemas.values()
    _check_reserved(ctx, schema)
    try:
        if op.kind in (OperatorKind.aggregate, OperatorKind.window_aggregate):
            return _aggregate(ctx, op, schema)
        return _stateless(ctx, op, schema)
    except OperatorSemanticsError:
        raise
    except Exception as exc:  # anything polars refuses while building: still the spec's fault, named as such
        raise ctx.error(f"polars rejects it: {_reason(exc)}") from None
