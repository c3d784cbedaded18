"""Per-tuner figures over a bench's rows, and the failures behind them (never averaged away)."""

from __future__ import annotations

from typing import Any

__all__ = ["aggregate_runs", "oracle_aggregate", "failures_by_tuner", "ORACLE_ROW"]

ORACLE_ROW = "oracle"


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _max(values: list[float]) -> float | None:
    return max(values) if values else None


def _fraction(rows: list[dict[str, Any]], key: str) -> float | None:
    return _mean([1.0 if r[key] else 0.0 for r in rows])


def aggregate_runs(rows: list[dict[str, Any]], tuners: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Per tuner, over runs whose oracle is feasible; infeasible runs are counted and listed elsewhere.

    A row is one tuning (a cold case, or one level of a continuous sequence): reconfigurations are per
    tuning; reconfigurations_per_change_mean is over the levels after the first (None under cold). ratio: final total parallelism / oracle total. Fractions are of feasible runs. drain_s_max is
    None when no run has a drain time; `never_drains` counts runs whose lag would never clear.
    """
    names = list(tuners) if tuners is not None else list(dict.fromkeys(r["tuner"] for r in rows))
    result: dict[str, dict[str, Any]] = {}
    for name in names:
        mine = [r for r in rows if r["tuner"] == name]
        ok = [r for r in mine if r["feasible"]]
        ratios = [float(r["ratio_to_oracle"]) for r in ok if r["ratio_to_oracle"] is not None]
        drains = [float(r["drain_s"]) for r in ok if r["drain_s"] is not None]
        result[name] = {
            "runs": len(ok),
            "infeasible_runs": len(mine) - len(ok),
            "reconfigurations_mean": _mean([float(r["reconfigurations"]) for r in ok]),
            "reconfigurations_max": _max([float(r["reconfigurations"]) for r in ok]),
            # Continuous protocol: per rate change (every level after the first, which is a cold start).
            "reconfigurations_per_change_mean": _mean(
                [float(r["reconfigurations"]) for r in ok if (r.get("level") or 0) > 0]
            ),
            "ratio_to_oracle_mean": _mean(ratios),
            "ratio_to_oracle_max": _max(ratios),
            "final_total_mean": _mean([float(r["final_total"]) for r in ok]),
            "backpressured_windows_mean": _mean([float(r["backpressured_windows"]) for r in ok]),
            "target_met_fraction": _fraction(ok, "target_met"),
            "truly_keeps_up_fraction": _fraction(ok, "truly_keeps_up"),
            "final_lag_mean": _mean([float(r["final_lag_records"]) for r in ok]),
            "drain_s_max": _max(drains),
            "never_drains": sum(1 for r in ok if r["drain_s"] is None),
            "drained_fraction": _fraction(ok, "drained"),
            "converged_fraction": _fraction(ok, "converged"),
            "failed_runs": sum(1 for r in ok if r["failure"] is not None),
        }
    return result


def oracle_aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The reference row: the oracle's footprint over the same feasible cases (each case counted once)."""
    cases: dict[tuple[Any, ...], int] = {}
    for r in rows:
        if r["feasible"]:
            cases[(r["job_file"], r["rate_factor"], r["regime"], r["seed"], r.get("level"))] = int(r["oracle_total"])
    totals = [float(t) for t in cases.values()]
    empty: dict[str, Any] = {key: None for key in aggregate_runs([], ["_"])["_"]}
    return {
        **empty,
        "runs": len(totals),
        "infeasible_runs": 0,
        "ratio_to_oracle_mean": 1.0 if totals else None,
        "ratio_to_oracle_max": 1.0 if totals else None,
        "final_total_mean": _mean(totals),
        "never_drains": None,
        "failed_runs": None,
    }


def failures_by_tuner(rows: list[dict[str, Any]], tuners: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Per tuner, every feasible run that failed: which job, case and why (FAILURE_KINDS in the runner)."""
    names = list(tuners) if tuners is not None else list(dict.fromkeys(r["tuner"] for r in rows))
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for r in rows:
        if r["feasible"] and r["failure"] is not None and r["tuner"] in out:
            out[r["tuner"]].append(
                {
                    key: r.get(key)
                    for key in (
                        "job", "rate_factor", "level", "regime", "seed", "failure", "stop_reason",
                        "ratio_to_oracle", "final_lag_records", "drain_s",
                    )
                }
            )
    return out
