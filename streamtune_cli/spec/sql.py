"""Flink SQL expressions in job specs: the one parser and the one checker every command uses.

Specs carry SQL in `predicate`, `columns`, `aggregates` and `join.condition`. They are Flink SQL (Calcite's
grammar with Flink's built-in functions), parsed here with sqlglot through a small Flink dialect: backtick
identifiers, single-quoted strings with `''` escapes, `INTERVAL '1' HOUR`, `TIMESTAMPADD(HOUR, 1, ts)`,
CAST/TRY_CAST/EXTRACT/POSITION/TRIM/SUBSTRING/OVERLAY/CEIL .. TO/FLOOR .. TO syntax, and every other call kept
as written (a named call, checked against Flink's list of built-in functions). Nothing is evaluated here, and
neither polars nor Flink is needed: `check_spec_sql` is what `validate`, `fuse`, `simulate` and `tune` all run,
so they agree on which specs are valid. What the local engine can *run* is a narrower question, answered by
`streamtune_cli.executors.local.sql_polars` when a job is deployed.

sqlglot is imported on first use, so importing this module costs nothing; and `check_spec_sql` skips the
expressions an earlier run accepted (spec/sql_accepted.py), so checking an unchanged spec again imports no sqlglot.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:  # pragma: no cover - types only
    from sqlglot import exp

    from streamtune_cli.spec.models import JobSpec, Operator

__all__ = [
    "AGGREGATE_FUNCTIONS",
    "SCALAR_FUNCTIONS",
    "TIME_UNITS",
    "WINDOW_FUNCTIONS",
    "SqlExpressionError",
    "check_expression",
    "check_spec_sql",
    "excerpt_around",
    "function_name",
    "parse_expression",
    "to_sql",
]

# Flink's built-in scalar functions (Flink docs, "System (Built-in) Functions", docs/data/sql_functions.yml),
# plus MOD from Calcite's standard operator table. Operators (`||`, `%`, LIKE, ...) are syntax, not names.
SCALAR_FUNCTIONS = frozenset(
    """
    POWER ABS SQRT LN LOG10 LOG2 LOG EXP CEIL CEILING FLOOR SIN SINH COS TAN TANH COT ASIN ACOS ATAN ATAN2
    COSH DEGREES RADIANS SIGN ROUND PI E RAND RAND_INTEGER UUID BIN HEX UNHEX TRUNCATE MOD
    CHAR_LENGTH CHARACTER_LENGTH UPPER LOWER POSITION PRINTF TRIM LTRIM RTRIM BTRIM REPEAT REGEXP_REPLACE
    OVERLAY STARTSWITH ENDSWITH SUBSTRING REPLACE REGEXP_COUNT REGEXP_EXTRACT REGEXP_EXTRACT_ALL REGEXP_INSTR
    REGEXP_SUBSTR TRANSLATE INITCAP CONCAT CONCAT_WS LPAD RPAD FROM_BASE64 TO_BASE64 ASCII CHR DECODE ENCODE
    INSTR LEFT RIGHT LOCATE URL_DECODE URL_ENCODE PARSE_URL REGEXP REVERSE SPLIT_INDEX STR_TO_MAP SUBSTR
    JSON_QUOTE JSON_UNQUOTE ELT
    NOW CURRENT_ROW_TIMESTAMP EXTRACT YEAR QUARTER MONTH WEEK DAYOFYEAR DAYOFMONTH DAYOFWEEK HOUR MINUTE
    SECOND DATE_FORMAT TIMESTAMPADD TIMESTAMPDIFF CONVERT_TZ FROM_UNIXTIME UNIX_TIMESTAMP TO_DATE
    TO_TIMESTAMP_LTZ TO_TIMESTAMP CURRENT_WATERMARK
    NULLIF COALESCE IF IFNULL IS_ALPHA IS_DECIMAL IS_DIGIT GREATEST LEAST
    CAST TRY_CAST TYPEOF
    CARDINALITY ELEMENT ARRAY_APPEND ARRAY_CONTAINS ARRAY_DISTINCT ARRAY_POSITION ARRAY_PREPEND ARRAY_REMOVE
    ARRAY_REVERSE ARRAY_SLICE ARRAY_SORT ARRAY_UNION ARRAY_CONCAT ARRAY_EXCEPT ARRAY_INTERSECT ARRAY_MAX
    ARRAY_JOIN ARRAY_MIN MAP_KEYS MAP_UNION MAP_VALUES MAP_ENTRIES MAP_FROM_ARRAYS SPLIT
    JSON_EXISTS JSON_STRING JSON_VALUE JSON_QUERY JSON_OBJECT JSON_ARRAY
    ROW MD5 SHA1 SHA224 SHA256 SHA384 SHA512 SHA2 CURRENT_DATABASE
    """.split()
)

# Aggregate functions: only in `aggregates`, never nested in one another.
AGGREGATE_FUNCTIONS = frozenset(
    """
    COUNT AVG SUM MAX MIN STDDEV_POP STDDEV_SAMP VAR_POP VAR_SAMP VARIANCE COLLECT FIRST_VALUE LAST_VALUE
    LISTAGG ARRAY_AGG JSON_OBJECTAGG JSON_ARRAYAGG PERCENTILE GROUPING GROUPING_ID GROUP_ID
    """.split()
)

# Ranking and offset functions need OVER (...), which a spec expression has no place for.
WINDOW_FUNCTIONS = frozenset("RANK DENSE_RANK ROW_NUMBER LEAD LAG CUME_DIST PERCENT_RANK NTILE".split())

# Units of TIMESTAMPADD / TIMESTAMPDIFF (Calcite's TimeUnit names that Flink accepts there).
TIME_UNITS = frozenset("MICROSECOND MILLISECOND SECOND MINUTE HOUR DAY WEEK MONTH QUARTER YEAR".split())

# Longest excerpt of an expression quoted in a message.
_EXCERPT_CHARS = 48

# Syntax forms sqlglot parses into their own nodes; every other call stays a named (Anonymous) call.
_SYNTAX_FUNCTIONS = ("CAST", "TRY_CAST", "EXTRACT", "POSITION", "TRIM", "SUBSTRING", "OVERLAY", "CEIL", "FLOOR")


class SqlExpressionError(ValueError):
    """A spec expression that is not valid Flink SQL; `column` (1-based, within the expression) when known."""

    def __init__(self, reason: str, column: int | None = None, line: int | None = None) -> None:
        self.reason = reason
        self.column = column
        self.line = line
        super().__init__(self.describe())

    def describe(self) -> str:
        if self.column is None:
            return self.reason
        where = f"column {self.column}" if not self.line or self.line == 1 else f"line {self.line}, column {self.column}"
        return f"{self.reason} at {where} of the expression"


def excerpt_around(sql: str, column: int | None = None) -> str:
    """At most _EXCERPT_CHARS characters of `sql` on one line, around `column` (1-based) when given."""
    flat = " ".join(sql.split()) if "\n" in sql else sql
    if len(flat) <= _EXCERPT_CHARS:
        return flat
    start = 0 if column is None else max(0, min(column - 1 - _EXCERPT_CHARS // 3, len(flat) - _EXCERPT_CHARS))
    text = flat[start : start + _EXCERPT_CHARS]
    return ("..." if start else "") + text + ("..." if start + _EXCERPT_CHARS < len(flat) else "")


# ------------------------------------------------------------------------------------------------- dialect


@functools.cache
def _dialect() -> Any:
    """The Flink dialect (built on first use: this is where sqlglot gets imported)."""
    from sqlglot import exp, generator, parser, tokens
    from sqlglot.dialects.dialect import Dialect

    def _time_unit_call(name: str) -> Any:
        def build(args: list[Any]) -> Any:
            unit = args[0] if args else None
            if isinstance(unit, exp.Column) and not unit.table:
                var = exp.var(unit.name.upper())
                if getattr(unit.this, "_meta", None):
                    var.meta.update(unit.this.meta)  # keep the position for errors about the unit
                args = [var, *args[1:]]
            return exp.Anonymous(this=name, expressions=args)

        return build

    class FlinkTokenizer(tokens.Tokenizer):
        QUOTES = ["'"]
        IDENTIFIERS = ["`"]
        STRING_ESCAPES = ["'"]

    class FlinkParser(parser.Parser):
        # Calls keep the name they were written with; the checker and the local engine give them meaning.
        FUNCTIONS: dict[str, Any] = {"TIMESTAMPADD": _time_unit_call("TIMESTAMPADD"), "TIMESTAMPDIFF": _time_unit_call("TIMESTAMPDIFF")}
        FUNCTION_PARSERS = {k: v for k, v in parser.Parser.FUNCTION_PARSERS.items() if k in _SYNTAX_FUNCTIONS}
        NO_PAREN_FUNCTION_PARSERS = {k: v for k, v in parser.Parser.NO_PAREN_FUNCTION_PARSERS.items() if k == "CASE"}

    def _trim(gen: Any, node: Any) -> str:
        where = (node.args.get("position") or "").upper()
        chars = node.args.get("expression")
        inner = gen.sql(node, "this")
        if not where and chars is None:
            return f"TRIM({inner})"
        head = " ".join(part for part in (where, gen.sql(chars) if chars is not None else "") if part)
        return f"TRIM({head} FROM {inner})"

    def _interval(gen: Any, node: Any) -> str:
        unit = gen.sql(node, "unit")
        return f"INTERVAL {gen.sql(node, 'this')}" + (f" {unit}" if unit else "")

    def _not(gen: Any, node: Any) -> str:
        # x IS NOT NULL / x NOT IN (...) / x NOT BETWEEN ...: as people write them (same meaning as NOT (...)).
        inner = node.this
        if isinstance(inner, exp.Is):
            return f"{gen.sql(inner, 'this')} IS NOT {gen.sql(inner, 'expression')}"
        if isinstance(inner, (exp.In, exp.Between)):
            head, text = gen.sql(inner, "this"), gen.sql(inner)
            if text.startswith(head + " "):
                return f"{head} NOT {text[len(head) + 1:]}"
        return gen.not_sql(node)

    class FlinkGenerator(generator.Generator):
        TYPE_MAPPING = {
            **generator.Generator.TYPE_MAPPING,
            exp.DType.TEXT: "STRING",
            exp.DType.TIMESTAMPLTZ: "TIMESTAMP_LTZ",
        }
        TRANSFORMS = {
            **generator.Generator.TRANSFORMS,
            exp.StrPosition: lambda gen, node: f"POSITION({gen.sql(node, 'substr')} IN {gen.sql(node, 'this')})",
            exp.Trim: _trim,
            exp.Array: lambda gen, node: f"ARRAY[{gen.expressions(node, flat=True)}]",
            exp.CurrentTimestamp: lambda gen, node: "CURRENT_TIMESTAMP",
            exp.CurrentDate: lambda gen, node: "CURRENT_DATE",
            exp.CurrentTime: lambda gen, node: "CURRENT_TIME",
            exp.Interval: _interval,
            exp.Not: _not,
        }

    class Flink(Dialect):
        NORMALIZE_FUNCTIONS = False  # print calls as written
        Tokenizer = FlinkTokenizer
        Parser = FlinkParser
        Generator = FlinkGenerator

    return Flink()


def _allowed_nodes() -> tuple[type, ...]:
    from sqlglot import exp

    return (
        exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Neg, exp.Not, exp.And,
        exp.Or, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Is,
        exp.In, exp.Between, exp.Like, exp.SimilarTo, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.DPipe,
        exp.Case, exp.If, exp.Cast, exp.TryCast, exp.DataType, exp.DataTypeParam, exp.Extract, exp.Var,
        exp.Interval, exp.Substring, exp.StrPosition, exp.Trim, exp.Overlay, exp.Ceil, exp.Floor, exp.Array,
        exp.Bracket, exp.Anonymous, exp.CurrentTimestamp, exp.CurrentDate, exp.CurrentTime, exp.Distinct,
        exp.Star, exp.Dot, exp.Escape, exp.IntervalSpan,
    )


# Friendly names for constructs a spec expression may not hold.
_CONSTRUCT_NAMES = {
    "Alias": "an alias (AS name); the column's name is its key in `columns`",
    "Select": "a query",
    "Subquery": "a sub-query",
    "Exists": "a sub-query",
    "Window": "OVER (...)",
    "Filter": "FILTER (WHERE ...)",
    "Block": "several statements",
    "Placeholder": "a parameter placeholder",
    "Parameter": "a parameter",
    "ILike": "ILIKE (Flink has LIKE and SIMILAR TO)",
    "Values": "VALUES",
}


# ------------------------------------------------------------------------------------------------- parsing


def _syntax_error(sql: str, exc: Exception) -> SqlExpressionError:
    errors = getattr(exc, "errors", None) or []
    if not errors:
        column = _unterminated_quote(sql)
        if column is not None:
            return SqlExpressionError(f"unterminated quote {sql[column - 1]}", column)
        return SqlExpressionError("syntax error")
    first = errors[0]
    description = str(first.get("description") or "syntax error")
    highlight = str(first.get("highlight") or "")
    line, col = first.get("line"), first.get("col")
    column = None
    if isinstance(col, int) and col > 0:
        column = max(1, col - len(highlight) + 1)
    if description.startswith("Required keyword"):
        reason = f"syntax error: an operand is missing after {highlight!r}" if highlight else "syntax error: an operand is missing"
    elif description.startswith("Invalid expression / Unexpected token"):
        reason = f"syntax error: unexpected {highlight!r}" if highlight else "syntax error"
    elif description.startswith("Expecting"):
        reason = f"syntax error: {description.lower()}" + (f" near {highlight!r}" if highlight else "")
    else:
        reason = "syntax error: " + description.split(". Line")[0]
    return SqlExpressionError(reason, column, line if isinstance(line, int) else None)


def _unterminated_quote(sql: str) -> int | None:
    """1-based column of a quote (', `) that is never closed; None when every quote closes."""
    quote, start, i = "", 0, 0
    while i < len(sql):
        ch = sql[i]
        if quote:
            if ch == quote:
                if i + 1 < len(sql) and sql[i + 1] == quote:  # '' or `` inside: an escaped quote
                    i += 1
                else:
                    quote = ""
        elif ch in "'`":
            quote, start = ch, i
        i += 1
    return start + 1 if quote else None


def _token_problems(sql: str, tokens: list[Any]) -> SqlExpressionError | None:
    """What the tokens already show: double quotes, and empty call arguments sqlglot would silently drop."""
    from sqlglot.tokens import TokenType

    prev = None
    for token in tokens:
        if token.token_type == TokenType.UNKNOWN and token.text == '"':
            return SqlExpressionError(
                "double quotes are not Flink SQL: quote names with backticks (`my col`) and strings with single quotes",
                token.start + 1,
            )
        if token.token_type == TokenType.COMMA and prev is not None and prev.token_type in (TokenType.COMMA, TokenType.L_PAREN):
            return SqlExpressionError("syntax error: an argument is missing before ','", token.start + 1)
        if token.token_type == TokenType.R_PAREN and prev is not None and prev.token_type == TokenType.COMMA:
            return SqlExpressionError("syntax error: an argument is missing before ')'", token.start + 1)
        prev = token
    return None


@functools.lru_cache(maxsize=4096)
def _parse_cached(sql: str, check: bool) -> Any:
    import sqlglot
    from sqlglot.errors import ParseError, TokenError

    dialect = _dialect()
    if not sql.strip():
        raise SqlExpressionError("the expression is empty")
    try:
        tokens = dialect.tokenize(sql)
    except TokenError as exc:
        raise _syntax_error(sql, exc) from None
    problem = _token_problems(sql, tokens)
    if problem is not None:
        raise problem
    try:
        parsed = sqlglot.parse_one(sql, dialect=dialect)
    except (ParseError, TokenError) as exc:
        raise _syntax_error(sql, exc) from None
    except RecursionError:
        raise SqlExpressionError("the expression is nested too deeply") from None
    if parsed is None:
        raise SqlExpressionError("the expression is empty")
    if check:
        _check_tree(sql, parsed)
    return parsed


def parse_expression(sql: str, *, check: bool = True) -> "exp.Expr":
    """The sqlglot tree of one Flink SQL expression (a fresh copy: callers may rewrite it).

    Raises SqlExpressionError for anything that is not one valid Flink SQL expression: syntax errors, unknown
    functions, statements, aliases, sub-queries, window functions. `check=False` stops after the syntax (for
    callers that word their own errors about what the syntax holds).
    """
    return _parse_cached(sql, check).copy()


def to_sql(node: "exp.Expr") -> str:
    """Flink SQL text of a tree (what fusion writes into fused specs)."""
    return node.sql(dialect=_dialect())


def function_name(node: "exp.Expr") -> str | None:
    """The upper-case name of a named call (`SPLIT_INDEX(...)`), None for any other node."""
    from sqlglot import exp

    if isinstance(node, exp.Anonymous):
        return str(node.name).upper()
    return None


def _position(node: Any) -> int | None:
    """1-based column where `node` starts: its own token, else the earliest token below it (None: unknown)."""
    starts = []
    for sub in node.walk():
        meta = sub.meta if getattr(sub, "_meta", None) else {}
        if isinstance(meta.get("start"), int):
            starts.append(meta["start"])
            if sub is node:
                break
    return min(starts) + 1 if starts else None


def _check_tree(sql: str, root: Any) -> None:
    from sqlglot import exp

    allowed = _allowed_nodes()
    for node in root.walk():
        if not isinstance(node, allowed):
            name = type(node).__name__
            what = _CONSTRUCT_NAMES.get(name, f"{name} (not part of Flink's expression syntax here)")
            raise SqlExpressionError(f"a spec expression cannot hold {what}", _position(node))
        if isinstance(node, exp.Anonymous):
            name = str(node.name).upper()
            if name in WINDOW_FUNCTIONS:
                raise SqlExpressionError(f"{name} is a window function (it needs OVER, which spec expressions do not have)", _position(node))
            if name not in SCALAR_FUNCTIONS and name not in AGGREGATE_FUNCTIONS:
                raise SqlExpressionError(f"unknown function {node.name} (not a Flink built-in function)", _position(node))
            if name in ("TIMESTAMPADD", "TIMESTAMPDIFF"):
                _check_time_unit(name, node)
        if isinstance(node, exp.Star) and not (isinstance(node.parent, exp.Anonymous) and function_name(node.parent) == "COUNT"):
            raise SqlExpressionError("* only appears in COUNT(*)", _position(node))
        if isinstance(node, exp.Distinct) and not isinstance(node.parent, exp.Anonymous):
            raise SqlExpressionError("DISTINCT only appears inside an aggregate call", _position(node))
    if isinstance(root, exp.Distinct):
        raise SqlExpressionError("DISTINCT only appears inside an aggregate call")


def _check_time_unit(name: str, node: Any) -> None:
    from sqlglot import exp

    args = node.expressions
    if len(args) != 3:
        raise SqlExpressionError(f"{name} takes 3 arguments (unit, ...), not {len(args)}", _position(node))
    unit = args[0]
    if not isinstance(unit, exp.Var) or unit.name.upper() not in TIME_UNITS:
        raise SqlExpressionError(
            f"{name}'s first argument must be a time unit ({', '.join(sorted(TIME_UNITS))})", _position(unit) or _position(node)
        )


# ------------------------------------------------------------------------------------------------- roles


def _aggregate_calls(root: Any) -> list[Any]:
    from sqlglot import exp

    return [n for n in root.walk() if isinstance(n, exp.Anonymous) and function_name(n) in AGGREGATE_FUNCTIONS]


def check_expression(sql: str, *, aggregate: bool = False) -> "exp.Expr":
    """Parse `sql` and check it for its place: row-wise (predicate, column, join condition) or an aggregate.

    Returns the tree; raises SqlExpressionError naming what is wrong.
    """
    from sqlglot import exp

    tree = parse_expression(sql)
    calls = _aggregate_calls(tree)
    if not aggregate:
        if calls:
            name = function_name(calls[0])
            raise SqlExpressionError(f"{name} is an aggregate function; aggregates belong in `aggregates`", _position(calls[0]))
        return tree
    if not calls:
        raise SqlExpressionError("an aggregate needs an aggregate function call, e.g. COUNT(*) or SUM(price)")
    for call in calls:
        inner = [n for n in call.walk() if n is not call and isinstance(n, exp.Anonymous) and function_name(n) in AGGREGATE_FUNCTIONS]
        if inner:
            raise SqlExpressionError(f"aggregate {function_name(inner[0])} is nested inside {function_name(call)}", _position(inner[0]))
    return tree


def _operator_sql(op: "Operator") -> Iterable[tuple[tuple[str | int, ...], str, bool]]:
    """(path within the operator, SQL text, is an aggregate) of every expression `op` holds."""
    from streamtune_cli.spec.models import sql_fields

    for sub, sql in sql_fields(op):
        yield sub, sql, sub[0] == "aggregates"


def check_spec_sql(spec: "JobSpec") -> list[tuple[tuple[Any, ...], str]]:
    """(data path, message) for every spec expression that is not valid Flink SQL for its place.

    The same shape as the loader's other problems: the loader turns each path into file:line:col. The message
    quotes a short excerpt of the expression and says what is wrong and where in it.
    """
    from streamtune_cli.spec.sql_accepted import AcceptedExpressions

    accepted = AcceptedExpressions.load()  # what an earlier run accepted is not parsed again
    problems: list[tuple[tuple[Any, ...], str]] = []
    for index, op in enumerate(spec.operators):
        for sub, sql, aggregate in _operator_sql(op):
            key = accepted.key(sql, aggregate)
            if key in accepted:
                continue
            try:
                check_expression(sql, aggregate=aggregate)
            except SqlExpressionError as exc:
                problems.append((("operators", index) + sub, f"SQL expression {excerpt_around(sql, exc.column)!r}: {exc.describe()}"))
            else:
                accepted.add(key)
    accepted.save()
    return problems
