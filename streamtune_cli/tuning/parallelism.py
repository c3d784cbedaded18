"""Parallelism maps on the command line (`op=N,op=N`) and the caps a tuner works within."""

from __future__ import annotations

from streamtune_cli.errors import UsageError
from streamtune_cli.spec.models import JobSpec, Operator
from streamtune_cli.spec.parallelism import complete_parallelism, retarget_parallelism

__all__ = ["retarget_parallelism", "complete_parallelism", "parse_parallelism", "operator_cap", "cap_of"]


def parse_parallelism(text: str) -> dict[str, int]:
    """Parse `op=N,op=N` (spaces allowed); raises UsageError naming the bad item and its position."""
    result: dict[str, int] = {}
    if not text.strip():
        raise UsageError("--parallelism is empty; expected op=N[,op=N...]")
    offset = 0
    for item in text.split(","):
        column = offset + 1
        offset += len(item) + 1
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise UsageError(f"--parallelism item {item.strip()!r} at column {column}: expected op=N")
        try:
            p = int(value)
        except ValueError:
            raise UsageError(f"--parallelism item {item.strip()!r} at column {column}: {value!r} is not an integer") from None
        if p < 1:
            raise UsageError(f"--parallelism item {item.strip()!r} at column {column}: parallelism must be >= 1")
        if name in result:
            raise UsageError(f"--parallelism names {name!r} twice (column {column})")
        result[name] = p
    return result


def operator_cap(spec: JobSpec, op_id: str, global_cap: int | None = None) -> int:
    """Largest parallelism a tuner may give an operator: its max_parallelism, lowered to the global cap if set.

    A global cap never raises an operator above its own max_parallelism (Flink's key-group count: a job
    cannot run a keyed operator with more instances than that)."""
    return cap_of(spec.operator(op_id), global_cap)


def cap_of(op: Operator, global_cap: int | None = None) -> int:
    """operator_cap for an Operator in hand (no lookup by id)."""
    return op.max_parallelism if global_cap is None else min(global_cap, op.max_parallelism)
