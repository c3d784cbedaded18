"""`streamtune fuse --measure`: run a job fused and unfused on the local executor, next to the cost model.

Both runs offer far more input than the job can take (the sources run flat out), so the achieved rate is
the job's throughput at that parallelism on this machine. CPU per record is all the job's processes' CPU
time over the records the sources ingested; bytes serialized are the Arrow IPC bytes that crossed a
process boundary. The prediction is the cost model's for the same chains (`fuse --mode flink`, which is the
rule the local engine chains by): every operator its own task ("unfused") against Flink's chains ("fused").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamtune_cli.spec.models import JobSpec

__all__ = ["MeasuredRun", "FusionMeasurement", "measure_fusion", "FLAT_OUT_RATE_RPS"]

# Far above what one machine can process: the sources are always behind, so achieved = throughput.
FLAT_OUT_RATE_RPS = 1e9


@dataclass(frozen=True)
class MeasuredRun:
    fused: bool
    processes: int
    throughput_rps: float
    cores_used: float  # the job's CPU seconds per second of the window
    cpu_us_per_record: float
    serialized_bytes_per_record: float
    predicted_cpu_us_per_record: float
    predicted_serialized_bytes_per_record: float
    predicted_capacity_rps: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class FusionMeasurement:
    job: str
    parallelism: dict[str, int]
    window_s: float
    runs: tuple[MeasuredRun, MeasuredRun]  # unfused, fused
    cores: int | None = None  # CPUs the job was pinned to (None: every CPU)

    @property
    def speedup(self) -> float:
        unfused, fused = self.runs
        return fused.throughput_rps / unfused.throughput_rps if unfused.throughput_rps else float("inf")

    @property
    def predicted_speedup(self) -> float:
        unfused, fused = self.runs
        return fused.predicted_capacity_rps / unfused.predicted_capacity_rps if unfused.predicted_capacity_rps else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "streamtune.fusion-measure/2",
            "job": self.job,
            "parallelism": self.parallelism,
            "window_s": self.window_s,
            "cores": self.cores,
            "speedup": self.speedup,
            "predicted_speedup": self.predicted_speedup,
            "runs": [run.as_dict() for run in self.runs],
        }


def measure_fusion(
    spec: JobSpec,
    parallelism: dict[str, int] | None = None,
    *,
    window_s: float = 10.0,
    warmup_s: float = 3.0,
    seed: int = 0,
    spec_dir: str | None = None,
    cores: int | None = None,
    on_run: Any = None,
) -> FusionMeasurement:
    """Measure `spec` at `parallelism` (default: the spec's) unfused, then fused, on the local executor;
    `cores` pins both runs to that many CPUs (the same budget), None lets them use every CPU."""
    from streamtune_cli.executors.local.executor import LocalExecutor
    from streamtune_cli.fusion.planner import plan_fusion
    from streamtune_cli.spec.parallelism import complete_parallelism, retarget_parallelism

    full = complete_parallelism(spec, parallelism)
    deployed = retarget_parallelism(spec, full)
    plan = plan_fusion(deployed, mode="flink")
    rate = plan.rate_rps
    runs = []
    for fused in (False, True):
        estimate = plan.after if fused else plan.before
        if on_run is not None:
            on_run(fused)
        with LocalExecutor(
            window_s=window_s, warmup_s=warmup_s, rate_rps=FLAT_OUT_RATE_RPS, fusion=fused, seed=seed, spec_dir=spec_dir,
            sink="blackhole", cores=cores,
        ) as executor:
            executor.deploy(deployed, full)
            executor.observe()
            window = executor.last_window
            processes = int(window["processes"])
        ingested = max(window["ingested"], 1.0)
        runs.append(
            MeasuredRun(
                fused=fused,
                processes=processes,
                throughput_rps=window["ingested"] / window["wall_s"],
                cores_used=window["cpu_s"] / window["wall_s"],
                cpu_us_per_record=window["cpu_s"] * 1e6 / ingested,
                serialized_bytes_per_record=window["bytes_serialized"] / ingested,
                predicted_cpu_us_per_record=estimate.cpu_us_per_s / rate,
                predicted_serialized_bytes_per_record=estimate.serialized_bytes_per_s / rate,
                predicted_capacity_rps=rate / estimate.max_utilization if estimate.max_utilization > 0 else float("inf"),
            )
        )
    return FusionMeasurement(job=spec.name, parallelism=full, window_s=window_s, runs=(runs[0], runs[1]), cores=cores)
