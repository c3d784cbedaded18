"""Flink SQL expressions of a job spec as polars expressions: what the local engine runs, and what it cannot.

The spec's SQL is parsed once, by `streamtune_cli.spec.sql` (the same parser `validate` uses), and the tree
is translated here node by node into a polars expression with Flink's meaning: three-valued logic, integer
division and MOD that truncate toward zero, DATE_FORMAT with Java (SimpleDateFormat) patterns, SPLIT_INDEX
counting from 0, DAYOFWEEK with Sunday = 1. A construct the engine has no faithful translation for raises
`UnsupportedSql` naming it; `operators.build_logic` turns that into an error naming the operator when the job
is deployed, never in the middle of a run. Nothing here uses `eval`.

Types matter for some translations (integer division, DATE_FORMAT of a timestamp), so translating takes the
input schema and asks polars for the type of a sub-expression on an empty frame.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any, Callable

import polars as pl

from streamtune_cli.spec.sql import AGGREGATE_FUNCTIONS, SCALAR_FUNCTIONS, SqlExpressionError, parse_expression

__all__ = ["SUPPORTED_FUNCTIONS", "NotRowWise", "UnknownColumn", "UnsupportedSql", "java_to_strftime", "to_polars"]


class UnsupportedSql(ValueError):
    """Valid Flink SQL the local engine cannot run; the message names the function or construct."""


class NotRowWise(ValueError):
    """An aggregate function where a row-wise expression is needed."""


class UnknownColumn(ValueError):
    """A column the expression reads that its input does not have."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


# Java SimpleDateFormat letters -> strftime (what DATE_FORMAT, TO_TIMESTAMP, FROM_UNIXTIME take). Runs of a
# letter not listed here are refused rather than guessed.
_JAVA_PATTERNS = {
    "yyyy": "%Y", "yy": "%y", "MMMM": "%B", "MMM": "%b", "MM": "%m", "dd": "%d", "HH": "%H", "hh": "%I",
    "mm": "%M", "ss": "%S", "SSS": "%3f", "a": "%p", "EEEE": "%A", "EEE": "%a", "DDD": "%j", "Z": "%z",
    "XXX": "%:z", "X": "%z", "z": "%Z",
}

_FIXED_UNITS_US = {
    "MICROSECOND": 1, "MILLISECOND": 1_000, "SECOND": 1_000_000, "MINUTE": 60_000_000, "HOUR": 3_600_000_000,
    "DAY": 86_400_000_000, "WEEK": 7 * 86_400_000_000,
}
_MONTH_UNITS = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}
_TRUNCATE_EVERY = {"MILLISECOND": "1ms", "SECOND": "1s", "MINUTE": "1m", "HOUR": "1h", "DAY": "1d", "WEEK": "1w", "MONTH": "1mo", "QUARTER": "1q", "YEAR": "1y"}


def java_to_strftime(pattern: str) -> str:
    """A Java SimpleDateFormat pattern as a strftime format; UnsupportedSql for letters it cannot map."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "'":  # quoted literal text; '' is a quote
            end = pattern.find("'", i + 1)
            if end == i + 1:
                out.append("'")
                i += 2
                continue
            if end < 0:
                raise UnsupportedSql(f"date pattern {pattern!r} has an unclosed quote")
            out.append(pattern[i + 1 : end].replace("%", "%%"))
            i = end + 1
            continue
        if ch.isalpha():
            j = i
            while j < len(pattern) and pattern[j] == ch:
                j += 1
            run = pattern[i:j]
            mapped = _JAVA_PATTERNS.get(run)
            if mapped is None:
                raise UnsupportedSql(f"date pattern letter {run!r} (in {pattern!r})")
            out.append(mapped)
            i = j
            continue
        out.append("%%" if ch == "%" else ch)
        i += 1
    return "".join(out)


_DTYPES: dict[str, Callable[[list[int]], pl.DataType]] = {
    "BOOLEAN": lambda p: pl.Boolean(),
    "TINYINT": lambda p: pl.Int8(),
    "SMALLINT": lambda p: pl.Int16(),
    "INT": lambda p: pl.Int32(),
    "BIGINT": lambda p: pl.Int64(),
    "FLOAT": lambda p: pl.Float32(),
    "DOUBLE": lambda p: pl.Float64(),
    "DECIMAL": lambda p: pl.Decimal(p[0] if p else 10, p[1] if len(p) > 1 else 0),
    "TEXT": lambda p: pl.String(),
    "VARCHAR": lambda p: pl.String(),
    "CHAR": lambda p: pl.String(),
    "DATE": lambda p: pl.Date(),
    "TIMESTAMP": lambda p: pl.Datetime("ms" if not p or p[0] <= 3 else "us"),
    "TIMESTAMPLTZ": lambda p: pl.Datetime("ms" if not p or p[0] <= 3 else "us", "UTC"),
}


class _Translator:
    def __init__(self, schema: pl.Schema) -> None:
        self.schema = schema
        self._empty = pl.DataFrame(schema=schema)

    # -- helpers
    def dtype(self, expr: pl.Expr) -> pl.DataType:
        try:
            return self._empty.select(expr.alias("v")).schema["v"]
        except Exception as exc:  # polars raises several types for ill-typed expressions
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UnsupportedSql(f"polars cannot type it: {reason}") from None

    def literal(self, node: Any, what: str) -> Any:
        from sqlglot import exp

        inner = node.this if isinstance(node, exp.Paren) else node
        if isinstance(inner, exp.Neg) and isinstance(inner.this, exp.Literal) and not inner.this.is_string:
            return -self.literal(inner.this, what)
        if not isinstance(inner, exp.Literal):
            raise UnsupportedSql(f"{what} must be a literal")
        if inner.is_string:
            return inner.this
        text = inner.this
        return int(text) if re.fullmatch(r"\d+", text) else float(text)

    def int_literal(self, node: Any, what: str) -> int:
        value = self.literal(node, what)
        if not isinstance(value, int):
            raise UnsupportedSql(f"{what} must be an integer literal")
        return value

    def str_literal(self, node: Any, what: str) -> str:
        value = self.literal(node, what)
        if not isinstance(value, str):
            raise UnsupportedSql(f"{what} must be a string literal")
        return value

    def args(self, node: Any, name: str, low: int, high: int | None = None) -> list[Any]:
        args = list(node.expressions)
        high = low if high is None else high
        if not low <= len(args) <= high:
            count = str(low) if low == high else f"{low} to {high}"
            raise UnsupportedSql(f"{name} with {len(args)} arguments (it takes {count})")
        return args

    # -- the translation
    def __call__(self, node: Any) -> pl.Expr:
        from sqlglot import exp

        method = getattr(self, "t_" + type(node).__name__, None)
        if method is None:
            raise UnsupportedSql(_construct(node))
        result: pl.Expr = method(node)
        return result

    def t_Paren(self, node: Any) -> pl.Expr:
        return self(node.this)

    def t_Column(self, node: Any) -> pl.Expr:
        if node.table:
            raise UnsupportedSql(f"the qualified name {node.sql()!r}")
        return pl.col(node.name)

    def t_Literal(self, node: Any) -> pl.Expr:
        value = self.literal(node, "a literal")
        if isinstance(value, str):
            return pl.lit(value, pl.String)
        if isinstance(value, int):
            return pl.lit(value, pl.Int64)
        if re.fullmatch(r"\d*\.\d*", node.this):  # 0.908 is DECIMAL(3, 3) in Flink; 1e3 is a DOUBLE
            return pl.lit(Decimal(node.this))
        return pl.lit(value, pl.Float64)

    def t_Boolean(self, node: Any) -> pl.Expr:
        return pl.lit(bool(node.this), pl.Boolean)

    def t_Null(self, node: Any) -> pl.Expr:
        return pl.lit(None)

    def t_Neg(self, node: Any) -> pl.Expr:
        return -self(node.this)

    def t_Not(self, node: Any) -> pl.Expr:
        return ~self(node.this)

    def t_And(self, node: Any) -> pl.Expr:
        return self(node.this) & self(node.expression)

    def t_Or(self, node: Any) -> pl.Expr:
        return self(node.this) | self(node.expression)

    def t_EQ(self, node: Any) -> pl.Expr:
        return self(node.this) == self(node.expression)

    def t_NEQ(self, node: Any) -> pl.Expr:
        return self(node.this) != self(node.expression)

    def t_GT(self, node: Any) -> pl.Expr:
        return self(node.this) > self(node.expression)

    def t_GTE(self, node: Any) -> pl.Expr:
        return self(node.this) >= self(node.expression)

    def t_LT(self, node: Any) -> pl.Expr:
        return self(node.this) < self(node.expression)

    def t_LTE(self, node: Any) -> pl.Expr:
        return self(node.this) <= self(node.expression)

    def t_NullSafeEQ(self, node: Any) -> pl.Expr:
        return self(node.this).eq_missing(self(node.expression))

    def t_NullSafeNEQ(self, node: Any) -> pl.Expr:
        return self(node.this).ne_missing(self(node.expression))

    def t_Is(self, node: Any) -> pl.Expr:
        from sqlglot import exp

        value, target = self(node.this), node.expression
        if isinstance(target, exp.Null):
            return value.is_null()
        if isinstance(target, exp.Boolean):
            return (value == bool(target.this)).fill_null(False)
        raise UnsupportedSql(f"IS {target.sql()}")

    def t_In(self, node: Any) -> pl.Expr:
        if node.args.get("query") is not None or not node.expressions:
            raise UnsupportedSql("IN with a sub-query")
        value = self(node.this)
        result = None
        for item in node.expressions:  # an OR of equalities: SQL's three-valued IN, nulls included
            test = value == self(item)
            result = test if result is None else result | test
        assert result is not None
        return result

    def t_Between(self, node: Any) -> pl.Expr:
        value = self(node.this)
        return (value >= self(node.args["low"])) & (value <= self(node.args["high"]))

    def t_Like(self, node: Any) -> pl.Expr:
        pattern = self.str_literal(node.expression, "a LIKE pattern")
        regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
        return self(node.this).str.contains(f"(?s)^{regex}$")

    def _numeric_pair(self, node: Any) -> tuple[pl.Expr, pl.Expr, bool]:
        left, right = self(node.this), self(node.expression)
        integers = self.dtype(left).is_integer() and self.dtype(right).is_integer()
        return left, right, integers

    def t_Add(self, node: Any) -> pl.Expr:
        return self(node.this) + self(node.expression)

    def t_Sub(self, node: Any) -> pl.Expr:
        return self(node.this) - self(node.expression)

    def t_Mul(self, node: Any) -> pl.Expr:
        return self(node.this) * self(node.expression)

    def t_Div(self, node: Any) -> pl.Expr:
        left, right, integers = self._numeric_pair(node)
        if not integers:
            return left / right
        floor = left // right  # Flink divides integers toward zero; polars' // floors
        return pl.when((floor < 0) & (floor * right != left)).then(floor + 1).otherwise(floor)

    def t_Mod(self, node: Any) -> pl.Expr:
        return _mod(self(node.this), self(node.expression))

    def t_DPipe(self, node: Any) -> pl.Expr:
        return pl.concat_str([self(node.this).cast(pl.String), self(node.expression).cast(pl.String)])

    def t_Case(self, node: Any) -> pl.Expr:
        subject = self(node.this) if node.this is not None else None
        chain: Any = None
        for branch in node.args.get("ifs") or []:
            cond = self(branch.this)
            if subject is not None:
                cond = subject == cond
            chain = (pl.when(cond) if chain is None else chain.when(cond)).then(self(branch.args["true"]))
        default = node.args.get("default")
        if chain is None:
            return self(default) if default is not None else pl.lit(None)
        return chain.otherwise(self(default) if default is not None else pl.lit(None))

    def _cast(self, node: Any, strict: bool) -> pl.Expr:
        target = node.args["to"]
        name = str(target.this.value if hasattr(target.this, "value") else target.this).upper()
        params = []
        for param in target.expressions:
            try:
                params.append(int(param.this.this if hasattr(param.this, "this") else param.this))
            except (TypeError, ValueError):
                raise UnsupportedSql(f"CAST to {target.sql()}") from None
        build = _DTYPES.get(name)
        if build is None:
            raise UnsupportedSql(f"CAST to {target.sql()}")
        return self(node.this).cast(build(params), strict=strict)

    def t_Cast(self, node: Any) -> pl.Expr:
        return self._cast(node, strict=True)

    def t_TryCast(self, node: Any) -> pl.Expr:
        return self._cast(node, strict=False)

    def t_Extract(self, node: Any) -> pl.Expr:
        return _date_part(str(node.this.name).upper(), self(node.expression))

    def t_Interval(self, node: Any) -> pl.Expr:
        from sqlglot import exp

        unit = node.args.get("unit")
        if not isinstance(unit, exp.Var):
            raise UnsupportedSql(f"the interval {node.sql()!r}")
        amount = self.literal(node.this, "an interval's amount")
        try:
            amount = float(amount)
        except (TypeError, ValueError):
            raise UnsupportedSql(f"the interval {node.sql()!r}") from None
        per_unit = _FIXED_UNITS_US.get(unit.name.upper())
        if per_unit is None:
            raise UnsupportedSql(f"an interval of {unit.name.upper()}s (months vary in length; use TIMESTAMPADD)")
        return pl.duration(microseconds=round(amount * per_unit))

    def t_Substring(self, node: Any) -> pl.Expr:
        args = [node.args.get("start"), node.args.get("length")]
        return self._substring(self(node.this), args[0], args[1], "SUBSTRING")

    def _substring(self, text: pl.Expr, start: Any, length: Any, name: str) -> pl.Expr:
        begin = 1 if start is None else self.int_literal(start, f"{name}'s start")
        if begin < 1:
            raise UnsupportedSql(f"{name} from position {begin} (positions start at 1)")
        size = None if length is None else self.int_literal(length, f"{name}'s length")
        if size is not None and size < 0:
            raise UnsupportedSql(f"{name} with a negative length")
        return text.str.slice(begin - 1, size)

    def t_StrPosition(self, node: Any) -> pl.Expr:
        return _position(self(node.args["substr"]), self(node.this))

    def t_Trim(self, node: Any) -> pl.Expr:
        text = self(node.this)
        chars_node = node.args.get("expression")
        chars = None if chars_node is None else self.str_literal(chars_node, "TRIM's characters")
        where = str(node.args.get("position") or "BOTH").upper()
        if where == "LEADING":
            return text.str.strip_chars_start(chars)
        if where == "TRAILING":
            return text.str.strip_chars_end(chars)
        return text.str.strip_chars(chars)

    def t_Floor(self, node: Any) -> pl.Expr:
        unit = node.args.get("to")
        if unit is None:
            return _round_down(self(node.this), self.dtype(self(node.this)))
        every = _TRUNCATE_EVERY.get(str(unit.name).upper())
        if every is None:
            raise UnsupportedSql(f"FLOOR(... TO {unit.name})")
        return self(node.this).dt.truncate(every)

    def t_Ceil(self, node: Any) -> pl.Expr:
        unit = node.args.get("to")
        value = self(node.this)
        if unit is None:
            dtype = self.dtype(value)
            return value if dtype.is_integer() else value.ceil()
        every = _TRUNCATE_EVERY.get(str(unit.name).upper())
        if every is None:
            raise UnsupportedSql(f"CEIL(... TO {unit.name})")
        down = value.dt.truncate(every)
        return pl.when(down == value).then(down).otherwise(down.dt.offset_by(every))

    def t_Anonymous(self, node: Any) -> pl.Expr:
        name = str(node.name).upper()
        if name in AGGREGATE_FUNCTIONS:
            raise NotRowWise(name)
        handler = _FUNCTIONS.get(name)
        if handler is None:
            known = "a Flink built-in function" if name in SCALAR_FUNCTIONS else "not a Flink built-in function"
            raise UnsupportedSql(f"function {name} ({known} the local engine does not implement)")
        return handler(self, node)


def _construct(node: Any) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Bracket):
        return "array/map access [...]"
    if isinstance(node, exp.Array):
        return "ARRAY[...]"
    if isinstance(node, (exp.CurrentTimestamp, exp.CurrentDate, exp.CurrentTime)):
        return f"{node.sql()} (the wall clock: results would not be reproducible)"
    names = {
        exp.SimilarTo: "SIMILAR TO",
        exp.Dot: "field access (row.field)",
        exp.Escape: "LIKE ... ESCAPE",
        exp.Overlay: "OVERLAY",
        exp.IntervalSpan: "an interval with a range (DAY TO SECOND)",
    }
    return names.get(type(node), type(node).__name__)


def _mod(left: pl.Expr, right: pl.Expr) -> pl.Expr:
    """Flink's MOD / %: the remainder takes the dividend's sign (polars' % takes the divisor's)."""
    rem = left % right
    return pl.when((rem != 0) & ((rem < 0) != (left < 0))).then(rem - right).otherwise(rem)


def _round_down(value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    return value if dtype.is_integer() else value.floor()


def _position(needle: pl.Expr, text: pl.Expr) -> pl.Expr:
    """1-based position of `needle` in `text`, 0 when absent, NULL when either is NULL."""
    found = text.str.find(needle, literal=True).fill_null(-1).cast(pl.Int32) + 1
    return pl.when(text.is_null() | needle.is_null()).then(None).otherwise(found)


def _date_part(unit: str, value: pl.Expr) -> pl.Expr:
    dt = value.dt
    parts: dict[str, Callable[[], pl.Expr]] = {
        "YEAR": dt.year,
        "QUARTER": dt.quarter,
        "MONTH": dt.month,
        "WEEK": dt.week,
        "DAY": dt.day,
        "DOY": dt.ordinal_day,
        "DOW": lambda: dt.weekday() % 7 + 1,  # Flink: Sunday = 1 ... Saturday = 7; polars: Monday = 1
        "HOUR": dt.hour,
        "MINUTE": dt.minute,
        "SECOND": dt.second,
        "MILLISECOND": dt.millisecond,
    }
    part = parts.get(unit)
    if part is None:
        raise UnsupportedSql(f"EXTRACT({unit} FROM ...)")
    return part().cast(pl.Int64)


def _unit(node: Any) -> str:
    return str(node.name).upper()


# ------------------------------------------------------------------------------------------------- functions


def _one(method: Callable[[pl.Expr], pl.Expr]) -> Callable[[_Translator, Any], pl.Expr]:
    def build(t: _Translator, node: Any) -> pl.Expr:
        (arg,) = t.args(node, str(node.name).upper(), 1)
        return method(t(arg))

    return build


def _date_format(t: _Translator, node: Any) -> pl.Expr:
    value, pattern = t.args(node, "DATE_FORMAT", 2)
    source = t(value)
    if not t.dtype(source).is_temporal():
        raise UnsupportedSql("DATE_FORMAT of a string (give it a TIMESTAMP)")
    return source.dt.to_string(java_to_strftime(t.str_literal(pattern, "DATE_FORMAT's pattern")))


def _split_index(t: _Translator, node: Any) -> pl.Expr:
    text, sep, index = t.args(node, "SPLIT_INDEX", 3)
    separator = t.str_literal(sep, "SPLIT_INDEX's delimiter")
    position = t.int_literal(index, "SPLIT_INDEX's index")
    value = t(text)
    if position < 0:  # Flink: NULL for a negative index (one NULL per row, not one for the batch)
        return pl.when(value.is_null() & value.is_not_null()).then(value).otherwise(pl.lit(None, pl.String))
    return value.str.split(separator).list.get(position, null_on_oob=True)


def _timestampadd(t: _Translator, node: Any) -> pl.Expr:
    unit_node, amount, value = t.args(node, "TIMESTAMPADD", 3)
    unit, n, ts = _unit(unit_node), t(amount), t(value)
    if unit in _FIXED_UNITS_US:
        return ts + pl.duration(microseconds=n.cast(pl.Int64) * _FIXED_UNITS_US[unit])
    months = _MONTH_UNITS[unit]
    return ts.dt.offset_by(pl.concat_str([(n.cast(pl.Int64) * months).cast(pl.String), pl.lit("mo")]))


def _timestampdiff(t: _Translator, node: Any) -> pl.Expr:
    unit_node, start, end = t.args(node, "TIMESTAMPDIFF", 3)
    unit = _unit(unit_node)
    if unit not in _FIXED_UNITS_US:
        raise UnsupportedSql(f"TIMESTAMPDIFF in {unit}s (calendar units)")
    micros = (t(end) - t(start)).dt.total_microseconds()
    per = _FIXED_UNITS_US[unit]
    floor = micros // per
    return pl.when((floor < 0) & (floor * per != micros)).then(floor + 1).otherwise(floor).cast(pl.Int32)


def _concat(t: _Translator, node: Any) -> pl.Expr:
    args = t.args(node, "CONCAT", 1, 1_000)
    return pl.concat_str([t(a).cast(pl.String) for a in args])


def _concat_ws(t: _Translator, node: Any) -> pl.Expr:
    sep, *rest = t.args(node, "CONCAT_WS", 2, 1_000)
    return pl.concat_str([t(a).cast(pl.String) for a in rest], separator=t.str_literal(sep, "CONCAT_WS's separator"), ignore_nulls=True)


def _substr(t: _Translator, node: Any) -> pl.Expr:
    args = t.args(node, "SUBSTR", 2, 3)
    return t._substring(t(args[0]), args[1], args[2] if len(args) > 2 else None, "SUBSTR")


def _left_right(left: bool) -> Callable[[_Translator, Any], pl.Expr]:
    def build(t: _Translator, node: Any) -> pl.Expr:
        name = "LEFT" if left else "RIGHT"
        text, count = t.args(node, name, 2)
        n = max(0, t.int_literal(count, f"{name}'s length"))
        return t(text).str.head(n) if left else t(text).str.tail(n)

    return build


def _replace(t: _Translator, node: Any) -> pl.Expr:
    text, old, new = t.args(node, "REPLACE", 3)
    return t(text).str.replace_all(t.str_literal(old, "REPLACE's search string"), t(new), literal=True)


def _regexp_replace(t: _Translator, node: Any) -> pl.Expr:
    text, pattern, new = t.args(node, "REGEXP_REPLACE", 3)
    return t(text).str.replace_all(t.str_literal(pattern, "REGEXP_REPLACE's pattern"), t(new))


def _regexp_extract(t: _Translator, node: Any) -> pl.Expr:
    args = t.args(node, "REGEXP_EXTRACT", 2, 3)
    if len(args) < 3:
        raise UnsupportedSql("REGEXP_EXTRACT without a group index (give it explicitly)")
    return t(args[0]).str.extract(t.str_literal(args[1], "REGEXP_EXTRACT's pattern"), t.int_literal(args[2], "REGEXP_EXTRACT's index"))


def _regexp(t: _Translator, node: Any) -> pl.Expr:
    text, pattern = t.args(node, "REGEXP", 2)
    return t(text).str.contains(t.str_literal(pattern, "REGEXP's pattern"))


def _pad(start: bool) -> Callable[[_Translator, Any], pl.Expr]:
    def build(t: _Translator, node: Any) -> pl.Expr:
        name = "LPAD" if start else "RPAD"
        text, count, fill = t.args(node, name, 3)
        n = t.int_literal(count, f"{name}'s length")
        pad = t.str_literal(fill, f"{name}'s padding")
        if len(pad) != 1 or n < 0:
            raise UnsupportedSql(f"{name} with a padding of {len(pad)} characters or a negative length (one character and n >= 0 only)")
        value = t(text)
        padded = value.str.pad_start(n, pad) if start else value.str.pad_end(n, pad)
        return pl.when(value.str.len_chars() > n).then(value.str.head(n)).otherwise(padded)

    return build


def _trim_fn(kind: str) -> Callable[[_Translator, Any], pl.Expr]:
    def build(t: _Translator, node: Any) -> pl.Expr:
        args = t.args(node, kind, 1, 2)
        chars = None if len(args) < 2 else t.str_literal(args[1], f"{kind}'s characters")
        value = t(args[0]).str
        return {"LTRIM": value.strip_chars_start, "RTRIM": value.strip_chars_end, "BTRIM": value.strip_chars}[kind](chars)

    return build


def _two(combine: Callable[[pl.Expr, pl.Expr], pl.Expr]) -> Callable[[_Translator, Any], pl.Expr]:
    """A function of two row-wise arguments."""

    def build(t: _Translator, node: Any) -> pl.Expr:
        first, second = t.args(node, str(node.name).upper(), 2)
        return combine(t(first), t(second))

    return build


def _round(t: _Translator, node: Any) -> pl.Expr:
    args = t.args(node, "ROUND", 1, 2)
    digits = 0 if len(args) < 2 else t.int_literal(args[1], "ROUND's decimals")
    value = t(args[0])
    if t.dtype(value).is_integer() and digits >= 0:
        return value
    return value.round(digits, mode="half_away_from_zero")  # Flink rounds half up (away from zero)


def _log(t: _Translator, node: Any) -> pl.Expr:
    args = t.args(node, "LOG", 1, 2)
    if len(args) == 1:
        return t(args[0]).cast(pl.Float64).log()
    return t(args[1]).cast(pl.Float64).log(float(t.literal(args[0], "LOG's base")))


def _atan2(t: _Translator, node: Any) -> pl.Expr:
    y, x = t.args(node, "ATAN2", 2)
    return pl.arctan2(t(y).cast(pl.Float64), t(x).cast(pl.Float64))


def _constant(value: float) -> Callable[[_Translator, Any], pl.Expr]:
    def build(t: _Translator, node: Any) -> pl.Expr:
        t.args(node, str(node.name).upper(), 0)
        return pl.lit(value, pl.Float64)

    return build


def _coalesce(t: _Translator, node: Any) -> pl.Expr:
    args = t.args(node, str(node.name).upper(), 1 if str(node.name).upper() == "COALESCE" else 2, 1_000 if str(node.name).upper() == "COALESCE" else 2)
    return pl.coalesce([t(a) for a in args])


def _nullif(value: pl.Expr, other: pl.Expr) -> pl.Expr:
    return pl.when(value == other).then(None).otherwise(value)


def _if(t: _Translator, node: Any) -> pl.Expr:
    cond, yes, no = t.args(node, "IF", 3)
    return pl.when(t(cond)).then(t(yes)).otherwise(t(no))


def _extreme(greatest: bool) -> Callable[[_Translator, Any], pl.Expr]:
    def build(t: _Translator, node: Any) -> pl.Expr:
        args = [t(a) for a in t.args(node, "GREATEST" if greatest else "LEAST", 1, 1_000)]
        best = pl.max_horizontal(args) if greatest else pl.min_horizontal(args)
        return pl.when(pl.any_horizontal([a.is_null() for a in args])).then(None).otherwise(best)  # NULL if any is

    return build


def _part(unit: str) -> Callable[[_Translator, Any], pl.Expr]:
    def build(t: _Translator, node: Any) -> pl.Expr:
        (arg,) = t.args(node, str(node.name).upper(), 1)
        return _date_part(unit, t(arg))

    return build


def _to_timestamp(t: _Translator, node: Any) -> pl.Expr:
    args = t.args(node, "TO_TIMESTAMP", 1, 2)
    pattern = "yyyy-MM-dd HH:mm:ss" if len(args) < 2 else t.str_literal(args[1], "TO_TIMESTAMP's pattern")
    return t(args[0]).str.to_datetime(java_to_strftime(pattern), time_unit="ms", strict=False)


def _to_date(t: _Translator, node: Any) -> pl.Expr:
    args = t.args(node, "TO_DATE", 1, 2)
    pattern = "yyyy-MM-dd" if len(args) < 2 else t.str_literal(args[1], "TO_DATE's pattern")
    return t(args[0]).str.to_date(java_to_strftime(pattern), strict=False)


def _from_unixtime(t: _Translator, node: Any) -> pl.Expr:
    args = t.args(node, "FROM_UNIXTIME", 1, 2)
    pattern = "yyyy-MM-dd HH:mm:ss" if len(args) < 2 else t.str_literal(args[1], "FROM_UNIXTIME's pattern")
    return pl.from_epoch(t(args[0]).cast(pl.Int64), "s").dt.to_string(java_to_strftime(pattern))


def _unix_timestamp(t: _Translator, node: Any) -> pl.Expr:
    args = t.args(node, "UNIX_TIMESTAMP", 0, 2)
    if not args:
        raise UnsupportedSql("UNIX_TIMESTAMP() (the wall clock: results would not be reproducible)")
    pattern = "yyyy-MM-dd HH:mm:ss" if len(args) < 2 else t.str_literal(args[1], "UNIX_TIMESTAMP's pattern")
    return t(args[0]).str.to_datetime(java_to_strftime(pattern), time_unit="ms", strict=False).dt.epoch("s")


def _to_timestamp_ltz(t: _Translator, node: Any) -> pl.Expr:
    value, precision = t.args(node, "TO_TIMESTAMP_LTZ", 2)
    p = t.int_literal(precision, "TO_TIMESTAMP_LTZ's precision")
    if p not in (0, 3):
        raise UnsupportedSql("TO_TIMESTAMP_LTZ with a precision other than 0 or 3")
    return pl.from_epoch(t(value).cast(pl.Int64), "s" if p == 0 else "ms").dt.replace_time_zone("UTC")


def _char_length(t: _Translator, node: Any) -> pl.Expr:
    (arg,) = t.args(node, str(node.name).upper(), 1)
    return t(arg).str.len_chars().cast(pl.Int32)


def _abs(value: pl.Expr) -> pl.Expr:
    return value.abs()


_FLOAT = {
    "SQRT": lambda e: e.cast(pl.Float64).sqrt(), "LN": lambda e: e.cast(pl.Float64).log(),
    "LOG10": lambda e: e.cast(pl.Float64).log10(), "LOG2": lambda e: e.cast(pl.Float64).log(2.0),
    "EXP": lambda e: e.cast(pl.Float64).exp(), "SIN": lambda e: e.cast(pl.Float64).sin(),
    "COS": lambda e: e.cast(pl.Float64).cos(), "TAN": lambda e: e.cast(pl.Float64).tan(),
    "COT": lambda e: e.cast(pl.Float64).cot(), "ASIN": lambda e: e.cast(pl.Float64).arcsin(),
    "ACOS": lambda e: e.cast(pl.Float64).arccos(), "ATAN": lambda e: e.cast(pl.Float64).arctan(),
    "SINH": lambda e: e.cast(pl.Float64).sinh(), "COSH": lambda e: e.cast(pl.Float64).cosh(),
    "TANH": lambda e: e.cast(pl.Float64).tanh(), "DEGREES": lambda e: e.cast(pl.Float64).degrees(),
    "RADIANS": lambda e: e.cast(pl.Float64).radians(),
}

_FUNCTIONS: dict[str, Callable[[_Translator, Any], pl.Expr]] = {
    "UPPER": _one(lambda e: e.str.to_uppercase()),
    "LOWER": _one(lambda e: e.str.to_lowercase()),
    "REVERSE": _one(lambda e: e.str.reverse()),
    "CHAR_LENGTH": _char_length,
    "CHARACTER_LENGTH": _char_length,
    "CONCAT": _concat,
    "CONCAT_WS": _concat_ws,
    "SUBSTR": _substr,
    "LEFT": _left_right(True),
    "RIGHT": _left_right(False),
    "REPLACE": _replace,
    "REGEXP_REPLACE": _regexp_replace,
    "REGEXP_EXTRACT": _regexp_extract,
    "REGEXP": _regexp,
    "LPAD": _pad(True),
    "RPAD": _pad(False),
    "LTRIM": _trim_fn("LTRIM"),
    "RTRIM": _trim_fn("RTRIM"),
    "BTRIM": _trim_fn("BTRIM"),
    "INSTR": _two(lambda text, needle: _position(needle, text)),
    "LOCATE": _two(_position),
    "STARTSWITH": _two(lambda text, start: text.str.starts_with(start)),
    "ENDSWITH": _two(lambda text, end: text.str.ends_with(end)),
    "SPLIT_INDEX": _split_index,
    "ABS": _one(_abs),
    "SIGN": _one(lambda e: e.sign()),
    "CEILING": lambda t, node: t.t_Ceil(_as_ceil(node)),
    "MOD": _two(_mod),
    "POWER": _two(lambda base, exponent: base.cast(pl.Float64).pow(exponent)),
    "ROUND": _round,
    "LOG": _log,
    "ATAN2": _atan2,
    "PI": _constant(math.pi),
    "E": _constant(math.e),
    **{name: _one(method) for name, method in _FLOAT.items()},
    "COALESCE": _coalesce,
    "IFNULL": _coalesce,
    "NULLIF": _two(_nullif),
    "IF": _if,
    "GREATEST": _extreme(True),
    "LEAST": _extreme(False),
    "DATE_FORMAT": _date_format,
    "TIMESTAMPADD": _timestampadd,
    "TIMESTAMPDIFF": _timestampdiff,
    "TO_TIMESTAMP": _to_timestamp,
    "TO_DATE": _to_date,
    "FROM_UNIXTIME": _from_unixtime,
    "UNIX_TIMESTAMP": _unix_timestamp,
    "TO_TIMESTAMP_LTZ": _to_timestamp_ltz,
    "YEAR": _part("YEAR"),
    "QUARTER": _part("QUARTER"),
    "MONTH": _part("MONTH"),
    "WEEK": _part("WEEK"),
    "DAYOFYEAR": _part("DOY"),
    "DAYOFMONTH": _part("DAY"),
    "DAYOFWEEK": _part("DOW"),
    "HOUR": _part("HOUR"),
    "MINUTE": _part("MINUTE"),
    "SECOND": _part("SECOND"),
}


def _as_ceil(node: Any) -> Any:
    from sqlglot import exp

    (arg,) = node.expressions if len(node.expressions) == 1 else (None,)
    if arg is None:
        raise UnsupportedSql("CEILING takes one argument")
    return exp.Ceil(this=arg)


# Named calls (besides the syntax forms CAST, TRY_CAST, EXTRACT, POSITION, TRIM, SUBSTRING, CEIL, FLOOR and
# CASE) the local engine runs.
SUPPORTED_FUNCTIONS = frozenset(_FUNCTIONS) | {"CAST", "TRY_CAST", "EXTRACT", "POSITION", "TRIM", "SUBSTRING", "CEIL", "FLOOR"}


def to_polars(sql: str, schema: pl.Schema | dict[str, pl.DataType]) -> pl.Expr:
    """The polars expression computing the Flink SQL expression `sql` over rows of `schema`.

    Raises SqlExpressionError (not valid Flink SQL), UnsupportedSql (valid, but the local engine has no
    translation) or NotRowWise (an aggregate function where a row-wise expression is needed).
    """
    from sqlglot import exp

    tree = parse_expression(sql)
    schema = pl.Schema(schema)
    for column in tree.find_all(exp.Column):
        if not column.table and column.name not in schema:
            raise UnknownColumn(column.name)
    return _Translator(schema)(tree)
