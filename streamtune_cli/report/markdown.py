"""Small Markdown builders shared by the reports: pipe tables with escaped cells, number formatting."""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["md_cell", "md_table", "fmt_number", "fmt_ratio"]


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
