"""Flink's job vertex names, read back: `Source: bid[1] -> Calc[2] -> (a[3], b[4])` into operators and the
chained edges between them (the inverse of `fusion.flink_rules.flink_chain_name`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ChainedName", "parse_vertex_name", "operator_id"]


@dataclass(frozen=True)
class ChainedName:
    operators: tuple[str, ...]  # operator names as Flink shows them (chained sources, then the head, ...)
    links: tuple[tuple[int, int], ...]  # chained (upstream, downstream) positions in `operators`
    chained_sources: tuple[str, ...] = ()  # `head [Source: a, Source: b]`: sources chained into the head

    @property
    def edges(self) -> tuple[tuple[str, str], ...]:
        """The chained edges by name (ambiguous where a vertex repeats a name, as `Map -> Map` does)."""
        return tuple((self.operators[a], self.operators[b]) for a, b in self.links)

    @property
    def tail(self) -> int:
        """Position of the operator whose output leaves the vertex: the last one of the chain's main line
        (for a fork `a -> (b, c)`, the last branch; Flink's name does not say which branch feeds out)."""
        return len(self.operators) - 1


def _split_top(text: str, separator: str) -> list[str]:
    """Split at `separator` where it is outside (), [] and {}."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith(separator, i):
            parts.append(text[start:i])
            i += len(separator)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return parts


def _head_and_sources(text: str) -> tuple[str, list[str]]:
    """`Join[5] [Source: a, Source: b]` -> ("Join[5]", ["Source: a", "Source: b"])."""
    match = re.fullmatch(r"(.*?) \[(Source: .*)\]", text)
    if match is None:
        return text, []
    return match.group(1), [s.strip() for s in _split_top(match.group(2), ", ")]


def parse_vertex_name(name: str) -> ChainedName:
    """The operators of one job vertex and how they are chained, from the vertex's name."""
    operators: list[str] = []
    links: list[tuple[int, int]] = []
    chained_sources: list[str] = []

    def walk(text: str) -> list[int]:
        """Parse `a -> rest`; returns the positions of `text`'s heads (one, or several for `(x, y)`)."""
        text = text.strip()
        if text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
            heads: list[int] = []
            for branch in _split_top(text[1:-1], ", "):
                heads += walk(branch)
            return heads
        pieces = _split_top(text, " -> ")
        first, sources = _head_and_sources(pieces[0].strip())
        source_positions = []
        for source in sources:
            operators.append(source)
            chained_sources.append(source)
            source_positions.append(len(operators) - 1)
        operators.append(first)
        here = len(operators) - 1
        links.extend((position, here) for position in source_positions)
        if len(pieces) > 1:
            for child in walk(" -> ".join(pieces[1:])):
                links.append((here, child))
        return [here]

    walk(name)
    return ChainedName(tuple(operators), tuple(links), tuple(chained_sources))


def _balanced(text: str) -> bool:
    depth = 0
    for c in text:
        depth += c in "([{"
        depth -= c in ")]}"
        if depth < 0:
            return False
    return depth == 0


def operator_id(name: str, taken: set[str]) -> str:
    """A spec id for a Flink operator name: `Source: bid[1]` -> `bid_1`, `out[11]: Writer` -> `out_11_writer`."""
    base = name.removeprefix("Source: ").removeprefix("Sink: ")
    base = re.sub(r"[^A-Za-z0-9_.\-]+", "_", base).strip("_").lower() or "op"
    if not re.match(r"[A-Za-z_]", base):
        base = "op_" + base
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate
