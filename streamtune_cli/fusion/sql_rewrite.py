"""SQL expression rewriting for semantic fusion: substitute projected columns into later expressions, so a
filter can move before a projection and a chain of filters/projections/maps becomes one pass.

Pure text work on a small tokenizer (no polars, no eval): a rewrite either accounts for every column reference
or gives up (returns None), so it never silently changes meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from streamtune_cli.spec.models import Operator, OperatorKind

__all__ = [
    "STATELESS_KINDS",
    "Composition",
    "column_references",
    "substitute_columns",
    "compose_stateless",
    "keeps_columns",
    "rewrite_predicate_through",
]

STATELESS_KINDS = frozenset({OperatorKind.filter, OperatorKind.project, OperatorKind.map, OperatorKind.flat_map})

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
      |(?P<str>'(?:[^']|'')*')
      |(?P<qid>"(?:[^"]|"")*")
      |(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      |(?P<id>[A-Za-z_][A-Za-z0-9_]*)
      |(?P<op>.)""",
    re.VERBOSE | re.DOTALL,
)

# Words that are never column references. A column that happens to be named like one of them makes the
# rewrite give up rather than guess (see _references).
_KEYWORDS = frozenset(
    """AND OR NOT IN IS NULL TRUE FALSE LIKE ILIKE BETWEEN CASE WHEN THEN ELSE END CAST AS DISTINCT
    INTERVAL DATE TIME TIMESTAMP SECOND SECONDS MINUTE MINUTES HOUR HOURS DAY DAYS WEEK MONTH YEAR
    ESCAPE SIMILAR TO ASC DESC""".split()
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokens(sql: str) -> list[_Token]:
    return [_Token(m.lastgroup or "op", m.group()) for m in _TOKEN.finditer(sql)]


def _references(tokens: list[_Token]) -> list[tuple[int, str]] | None:
    """(token index, column name) of every column reference; None when the text has parts we do not model
    (qualified names `t.col`)."""
    found = []
    significant = [i for i, t in enumerate(tokens) if t.kind != "ws"]
    for pos, i in enumerate(significant):
        token = tokens[i]
        if token.kind not in ("id", "qid"):
            continue
        prev_text = tokens[significant[pos - 1]].text if pos > 0 else ""
        next_text = tokens[significant[pos + 1]].text if pos + 1 < len(significant) else ""
        if prev_text == "." or next_text == ".":
            return None
        if token.kind == "id":
            if next_text == "(":
                continue  # a function name
            if token.text.upper() in _KEYWORDS or prev_text.upper() == "AS":
                continue  # keyword, or the type in CAST(x AS DOUBLE)
            found.append((i, token.text))
        else:
            found.append((i, token.text[1:-1].replace('""', '"')))
    return found


def column_references(sql: str) -> set[str] | None:
    refs = _references(_tokens(sql))
    return None if refs is None else {name for _, name in refs}


def _is_atom(sql: str) -> bool:
    significant = [t for t in _tokens(sql) if t.kind != "ws"]
    return len(significant) == 1 and significant[0].kind in ("id", "qid", "num", "str")


def substitute_columns(sql: str, columns: dict[str, str]) -> str | None:
    """`sql` with every column reference replaced by its defining expression in `columns`.

    None when a reference is not defined there, or when a keyword-like word could be a column of `columns`:
    the caller then keeps the original order instead of composing.
    """
    tokens = _tokens(sql)
    refs = _references(tokens)
    if refs is None:
        return None
    lowered = {name.lower() for name in columns}
    for token in tokens:
        if token.kind == "id" and token.text.upper() in _KEYWORDS and token.text.lower() in lowered:
            return None
    out = [t.text for t in tokens]
    for index, name in refs:
        if name not in columns:
            return None
        expr = columns[name].strip()
        out[index] = expr if _is_atom(expr) else f"({expr})"
    return "".join(out)


def keeps_columns(op: Operator, names: Sequence[str]) -> bool | None:
    """Whether `op` passes the named columns through unchanged: True/False, or None when it cannot be told
    (an operator without declared columns that may reshape records)."""
    if op.columns is None:
        return True if op.kind == OperatorKind.filter else None
    for name in names:
        expr = op.columns.get(name)
        if expr is None:
            return False
        refs = column_references(expr)
        if refs != {name} or not _is_atom(expr):
            return False
    return True


def rewrite_predicate_through(predicate: str, op: Operator) -> str | None:
    """The predicate of a filter that follows `op`, expressed on `op`'s input (so it can run before `op`)."""
    if op.columns is None:
        return predicate if op.kind == OperatorKind.filter else None
    return substitute_columns(predicate, op.columns)


@dataclass(frozen=True)
class Composition:
    """A chain of stateless operators as one pass: keep rows where `predicate` holds (on the chain's input),
    then compute `columns` (None: the input columns unchanged)."""

    kind: OperatorKind
    predicate: str | None
    columns: dict[str, str] | None


def _conjunction(predicates: list[str]) -> str | None:
    if not predicates:
        return None
    if len(predicates) == 1:
        return predicates[0]
    return " AND ".join(p if _is_atom(p) else f"({p})" for p in predicates)


def compose_stateless(ops: Sequence[Operator]) -> Composition | None:
    """One filter/map/project equivalent to running `ops` in order; None when any member's semantics are
    not declared (cost-only operators, flat_map, keyed state) or a rewrite cannot account for a column."""
    columns: dict[str, str] | None = None
    predicates: list[str] = []
    kinds = set()
    for op in ops:
        if op.kind not in (OperatorKind.filter, OperatorKind.map, OperatorKind.project):
            return None
        if op.key or op.window or op.aggregates or op.join:
            return None
        kinds.add(op.kind)
        if op.kind == OperatorKind.filter:
            if op.predicate is None:
                return None
            predicate = op.predicate if columns is None else substitute_columns(op.predicate, columns)
            if predicate is None:
                return None
            predicates.append(predicate)
        elif op.columns is None:
            return None
        if op.columns is not None:
            if columns is None:
                columns = dict(op.columns)
            else:
                composed: dict[str, str] = {}
                for name, expr in op.columns.items():
                    rewritten = substitute_columns(expr, columns)
                    if rewritten is None:
                        return None
                    composed[name] = rewritten
                columns = composed
    if predicates:
        kind = OperatorKind.filter
    elif OperatorKind.map in kinds:
        kind = OperatorKind.map
    else:
        kind = OperatorKind.project
    return Composition(kind=kind, predicate=_conjunction(predicates), columns=columns)
