"""Small Markdown builders shared by the reports: pipe tables with escaped cells, number formatting (tables and
plot axes use the same helpers, so a rate reads the same everywhere)."""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["md_cell", "md_table", "fmt_number", "fmt_ratio", "fmt_compact"]


def md_cell(value: Any) -> str:
    """One table cell: pipes and newlines would end the cell or the row, so they are escaped/flattened."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, numeric: Sequence[bool] | None = None) -> str:
    """A GitHub pipe table; `numeric` columns are right-aligned."""
    numeric = list(numeric) if numeric is not None else [False] * len(headers)
    if len(numeric) != len(headers):
        raise ValueError("numeric must have one flag per header")
    lines = ["| " + " | ".join(md_cell(h) for h in headers) + " |"]
    lines.append("|" + "|".join("---:" if flag else "---" for flag in numeric) + "|")
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row has {len(row)} cells, table has {len(headers)} columns")
        lines.append("| " + " | ".join(md_cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def fmt_number(value: float | int | None, digits: int = 0) -> str:
    """Thousands separators; '—' for a missing value so tables never show 'None'."""
    if value is None:
        return "—"
    if isinstance(value, int) or digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def fmt_ratio(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


_UNITS = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))


def fmt_compact(value: float) -> str:
    """1,234,567 -> 1.23M, 999,700 -> 1M, 0.5 -> 0.5: three significant digits with a k/M/G suffix, never
    an exponent (plot axes use it instead of matplotlib's "1e6" offset)."""
    for i, (limit, suffix) in enumerate(_UNITS):
        if abs(value) >= limit or suffix == "":
            text = f"{value / limit:.3g}"
            if i > 0 and abs(value / limit) >= 999.5:  # rounds up to 1000 of this unit: one unit up
                limit, suffix = _UNITS[i - 1]
                text = f"{value / limit:.3g}"
            return text + suffix
    raise AssertionError("unreachable")
