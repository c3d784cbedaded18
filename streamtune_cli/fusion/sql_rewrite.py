"""SQL expression rewriting for semantic fusion: substitute projected columns into later expressions, so a
filter can move before a projection and a chain of filters/projections/maps becomes one pass.

The rewrites work on the syntax tree of the spec's Flink SQL dialect (`streamtune_cli.spec.sql`): a column
reference is a Column node, never a word that happens to look like one, so function names, keywords, string
literals, units (`TIMESTAMPADD(HOUR, ...)`) and types (`CAST(x AS DOUBLE)`) are left alone by construction.
A rewrite either accounts for every column reference or gives up (returns None), so it never silently
changes meaning; substituted expressions are parenthesised unless they are atoms, so precedence is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from streamtune_cli.spec.models import Operator, OperatorKind
from streamtune_cli.spec.sql import SqlExpressionError, parse_expression, to_sql

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


def _tree(sql: str) -> Any | None:
    try:
        return parse_expression(sql)
    except SqlExpressionError:
        return None


def _columns(tree: Any) -> list[Any] | None:
    """Every column reference of `tree`; None when one is qualified (`t.col`, `row.field`): not modelled."""
    from sqlglot import exp

    found = []
    for node in tree.find_all(exp.Column):
        if node.table or isinstance(node.parent, exp.Dot):
            return None
        found.append(node)
    return found


def column_references(sql: str) -> set[str] | None:
    """Names of the columns `sql` reads; None when it does not parse or reads qualified names."""
    tree = _tree(sql)
    refs = None if tree is None else _columns(tree)
    return None if refs is None else {node.name for node in refs}


def _is_atom(tree: Any) -> bool:
    """Whether `tree` binds tighter than any operator (needs no parentheses where it is put)."""
    from sqlglot import exp

    if isinstance(tree, (exp.Column, exp.Literal, exp.Boolean, exp.Null, exp.Paren)):
        return True
    # Calls, CAST(...), EXTRACT(...), CASE ... END delimit themselves; operators (||, +, AND, ...) do not.
    return isinstance(tree, exp.Func) and not isinstance(tree, (exp.Binary, exp.Unary, exp.Connector, exp.Predicate))


def _grouped(tree: Any) -> Any:
    from sqlglot import exp

    return tree if _is_atom(tree) else exp.Paren(this=tree)


def _substitute(tree: Any, columns: dict[str, Any]) -> Any | None:
    """`tree` with each column replaced by a copy of its defining tree in `columns`; None when one is missing."""
    refs = _columns(tree)
    if refs is None or any(node.name not in columns for node in refs):
        return None
    for node in refs:
        if node is tree:  # the whole expression is one column: its definition needs no parentheses
            return columns[node.name].copy()
        node.replace(_grouped(columns[node.name].copy()))
    return tree


def _trees(columns: dict[str, str]) -> dict[str, Any] | None:
    parsed = {}
    for name, sql in columns.items():
        tree = _tree(sql)
        if tree is None:
            return None
        parsed[name] = tree
    return parsed


def substitute_columns(sql: str, columns: dict[str, str]) -> str | None:
    """`sql` with every column reference replaced by its defining expression in `columns`.

    None when a reference is not defined there, is qualified, or when `sql` or a definition does not parse:
    the caller then keeps the original order instead of composing.
    """
    tree = _tree(sql)
    defined = _trees(columns)
    if tree is None or defined is None:
        return None
    result = _substitute(tree, defined)
    return None if result is None else to_sql(result)


def keeps_columns(op: Operator, names: Sequence[str]) -> bool | None:
    """Whether `op` passes the named columns through unchanged: True/False, or None when it cannot be told
    (an operator without declared columns that may reshape records)."""
    from sqlglot import exp

    if op.columns is None:
        return True if op.kind == OperatorKind.filter else None
    for name in names:
        expr = op.columns.get(name)
        if expr is None:
            return False
        tree = _tree(expr)
        if not (isinstance(tree, exp.Column) and not tree.table and tree.name == name):
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


def _conjunction(predicates: list[Any]) -> str | None:
    from sqlglot import exp

    if not predicates:
        return None
    if len(predicates) == 1:
        return to_sql(predicates[0])
    combined = _grouped(predicates[0])
    for predicate in predicates[1:]:
        combined = exp.And(this=combined, expression=_grouped(predicate))
    return to_sql(combined)


def compose_stateless(ops: Sequence[Operator]) -> Composition | None:
    """One filter/map/project equivalent to running `ops` in order; None when any member's semantics are
    not declared (cost-only operators, flat_map, keyed state) or a rewrite cannot account for a column."""
    columns: dict[str, Any] | None = None  # name -> tree over the chain's input
    predicates: list[Any] = []
    texts: list[str] = []  # the predicates as written, while no projection came before them
    column_texts: dict[str, str] | None = None  # the columns as written, while nothing was substituted
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
            tree = _tree(op.predicate)
            if tree is None:
                return None
            if columns is None:
                texts.append(op.predicate)
            else:
                tree = _substitute(tree, columns)
                if tree is None:
                    return None
            predicates.append(tree)
        elif op.columns is None:
            return None
        if op.columns is not None:
            defined = _trees(op.columns)
            if defined is None:
                return None
            if columns is None:
                column_texts = dict(op.columns)
            else:
                for name, tree in list(defined.items()):
                    composed = _substitute(tree, columns)
                    if composed is None:
                        return None
                    defined[name] = composed
                column_texts = {name: to_sql(tree) for name, tree in defined.items()}
            columns = defined
    if predicates:
        kind = OperatorKind.filter
    elif OperatorKind.map in kinds:
        kind = OperatorKind.map
    else:
        kind = OperatorKind.project
    # One predicate that needed no rewrite keeps its text exactly as the user wrote it.
    predicate = texts[0] if len(predicates) == 1 and len(texts) == 1 else _conjunction(predicates)
    return Composition(kind=kind, predicate=predicate, columns=column_texts)
