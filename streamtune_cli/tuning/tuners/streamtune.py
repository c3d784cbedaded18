"""StreamTune (ICDE 2025, our design; docs/tuners.md): history-pretrained priors plus a bottleneck model
that is monotone in parallelism, refitted online with every observation of the job.

Per operator, one instance's processing ability is measured in every window as input rate / busiest
instance's busy fraction / parallelism (what a Flink deployment exposes). How that ability falls as
instances are added is the scaling exponent delta, a(p) = a_ref (p / p_ref)^-delta: fitted online by least
squares over the parallelisms this job has run at, shrunk toward a prior. The prior comes from the encoder
pretrained on the history cluster nearest to the job (graph edit distance to the cluster medoids): its
scaling head predicts delta per operator from what the first window measured. Without models (cold start)
the prior is a wide default, and the trace says so.

The bottleneck probability of an operator at parallelism p under total input D is
P(p, D) = Phi((log D - log cap_lo(p)) / s), where cap_lo(p) = p a(p) lowered by z x the uncertainty of delta
and s is the measurement noise of log ability. cap_lo is non-decreasing in p (its exponent is clamped at
>= 0), so P never increases when instances are added: the monotone constraint holds by construction. Each
operator, in topological order with target rates propagated from the sources (DS2's propagation, at the
highest target seen plus the rate needed to drain the lag), gets the smallest p with P <= `risk`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from streamtune_cli.executors.base import Decision, Observation, Parallelism, TraceStep
from streamtune_cli.spec.models import MAX_PARALLELISM_BOUND, Partitioning
from streamtune_cli.tuning.tuners.base import (
    bool_option,
    number_option,
    target_input_rates,
)
from streamtune_cli.tuning.view import JobView

__all__ = ["StreamTuneTuner", "ScalingModel", "default_models_dir", "bottleneck_probability"]

# Below this busy fraction the measured ability (rate / busy) amplifies noise too much to be used.
_MIN_BUSY = 0.01
# Cold start (no pretrained model): delta's prior, wider for operators behind a hash exchange (key skew
# and state contention make them scale worse, by an amount nothing measured yet tells).
_COLD_PRIOR = {True: (0.2, 0.25), False: (0.05, 0.15)}
# Relative noise of one measured log-ability before two windows at one parallelism say otherwise.
_DEFAULT_NOISE = 0.03
# Restart time assumed until the tuner has seen one (Flink's job.autoscaler.restart.time is 5 min; a
# simulated or local restart is shorter, and the estimate is replaced by the measured one).
_DEFAULT_RESTART_S = 30.0


def default_models_dir() -> Path:
    """The models shipped with streamtune (sample_histories/models in the source tree)."""
    return Path(__file__).resolve().parents[3] / "sample_histories" / "models"


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@dataclass(frozen=True)
class ScalingModel:
    """One operator's ability model: a(p) = exp(log_a_ref) (p / p_ref)^-delta, delta's std, noise of log a."""

    log_a_ref: float
    p_ref: int
    delta: float
    delta_std: float
    noise: float
    source: str  # where delta came from: online fit, pretrained prior, cold-start default

    def log_capacity_lo(self, p: int, z: float, monotone: bool = True) -> float:
        """log of a pessimistic total capacity at p: the exponent is clamped so it never falls with p
        (unless `monotone` is off, the ablation)."""
        ratio = math.log(p / self.p_ref)
        delta = self.delta + z * self.delta_std if ratio > 0 else self.delta - z * self.delta_std
        exponent = max(0.0, 1.0 - delta) if monotone else 1.0 - delta
        return self.log_a_ref + math.log(self.p_ref) + exponent * ratio


def bottleneck_probability(model: ScalingModel, p: int, demand_rps: float, z: float, monotone: bool = True) -> float:
    """P(bottleneck) at parallelism p under total input demand_rps: non-increasing in p when `monotone`."""
    if demand_rps <= 0:
        return 0.0
    return _phi((math.log(demand_rps) - model.log_capacity_lo(p, z, monotone)) / max(model.noise, 1e-6))


def _ability_points(op: str, steps: list[tuple[Parallelism, Observation]]) -> list[tuple[int, float]]:
    points = []
    for parallelism, obs in steps:
        m = obs.operators.get(op)
        if m is None or m.busy_max < _MIN_BUSY or m.input_rate_rps <= 0:
            continue
        p = parallelism[op]
        points.append((p, math.log(m.input_rate_rps / m.busy_max / p)))
    return points


# Width (in log parallelism) of the kernel that weighs measurements by how near they are to the parallelism
# the operator runs at now: the fit follows the local slope of a curved ability, not a global average.
_LOCAL_WIDTH = 1.0
_FAR_WEIGHT = 0.25
# A pretrained prior is no surer than this: its held-out error is measured on jobs of its own clusters,
# and a job of another family (leave-one-family-out, or simply a new DAG) is further from what it saw.
_MIN_PRIOR_STD = 0.15


def fit_scaling(
    points: list[tuple[int, float]],
    prior: tuple[float, float],
    prior_source: str,
    clip: bool = True,
    around: int | None = None,
) -> ScalingModel | None:
    """Fit log a = c - delta log p with a Gaussian prior on delta (shrinkage); None without a point.

    Points are weighted by exp(-(log p - log around)^2 / 2 w^2), `around` being the current parallelism
    (default: the last point's), so the slope is the local one. delta is clipped to [0, 1] (more instances
    never lower the total capacity) unless `clip` is off."""
    if not points:
        return None
    by_p: dict[int, list[float]] = {}
    for p, log_a in points:
        by_p.setdefault(p, []).append(log_a)
    # Noise of one measurement, from repeats at one parallelism when there are any.
    residuals = [x - sum(v) / len(v) for v in by_p.values() if len(v) > 1 for x in v]
    noise = math.sqrt(sum(r * r for r in residuals) / len(residuals)) if len(residuals) >= 3 else _DEFAULT_NOISE
    noise = max(noise, 0.01)
    # The reference: the parallelism measured nearest the current one (most often, on a tie).
    target = around if around is not None else points[-1][0]
    p_ref = min(by_p, key=lambda p: (abs(math.log(p / target)), -len(by_p[p])))
    prior_delta, prior_std = prior
    center = math.log(around if around is not None else points[-1][0])
    xs = [math.log(p) for p in by_p for _ in by_p[p]]
    ys = [y for p in by_p for y in by_p[p]]
    # A floor keeps far measurements in the fit: they still say which way the curve bends.
    ws = [max(_FAR_WEIGHT, math.exp(-((x - center) ** 2) / (2 * _LOCAL_WIDTH**2))) for x in xs]
    total_w = sum(ws)
    x_mean = sum(w * x for w, x in zip(ws, xs)) / total_w
    y_mean = sum(w * y for w, y in zip(ws, ys)) / total_w
    sxx = sum(w * (x - x_mean) ** 2 for w, x in zip(ws, xs))
    sxy = sum(w * (x - x_mean) * (y - y_mean) for w, x, y in zip(ws, xs, ys))
    # Posterior of delta (slope = -delta) with the prior N(prior_delta, prior_std^2) and noise^2 per point.
    precision = 1.0 / prior_std**2 + sxx / noise**2
    delta = (prior_delta / prior_std**2 - sxy / noise**2) / precision
    if clip:
        delta = min(1.0, max(0.0, delta))
    delta_std = math.sqrt(1.0 / precision)
    # Anchor at what was measured nearest the current parallelism; the fitted slope extrapolates from there.
    log_a_ref = sum(by_p[p_ref]) / len(by_p[p_ref])
    source = "online fit over " + ", ".join(f"p={p}" for p in sorted(by_p)) if len(by_p) > 1 else prior_source
    averaged = noise / math.sqrt(len(by_p[p_ref]))
    return ScalingModel(log_a_ref, p_ref, delta, delta_std, averaged, source)


@lru_cache(maxsize=8)
def _model_bank(directory: str) -> "_ModelBank":
    return _ModelBank(Path(directory))


class _ModelBank:
    """The pretrained models of one folder: medoid graphs for assignment, encoders loaded on first use."""

    def __init__(self, directory: Path):
        import json

        from streamtune_cli.gnn.artifacts import METADATA_FILE, ModelFileError, load_index
        from streamtune_cli.history.clusters import graph_from_json

        self.directory = directory
        index = load_index(directory)
        self.entries = []
        for i, entry in enumerate(index["clusters"]):
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or "cluster" not in entry:
                raise ModelFileError(directory / "index.json", f"clusters[{i}] needs a cluster id and a path")
            path = directory / entry["path"]
            try:
                meta = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
                if not isinstance(meta, dict):
                    raise ValueError("model.json is not an object")
                medoid = graph_from_json((meta.get("medoid") or {}).get("graph"), str(path / METADATA_FILE))
                families = sorted(meta.get("families") or {})
                metrics = meta.get("metrics") or {}
                scaling_rmse = (metrics.get("held_out_jobs") or {}).get("scaling_rmse")
                if scaling_rmse is not None:
                    scaling_rmse = float(scaling_rmse)
                    if not math.isfinite(scaling_rmse) or scaling_rmse < 0:
                        raise ValueError(f"scaling_rmse must be a finite number >= 0, got {scaling_rmse}")
            except Exception as exc:  # any malformed metadata is the file's fault, never a crash
                raise ModelFileError(path / METADATA_FILE, f"cannot read the cluster's metadata: {str(exc)[:200]}") from None
            self.entries.append(
                {"cluster": str(entry["cluster"]), "path": path, "medoid": medoid, "families": families,
                 "scaling_rmse": scaling_rmse, "scaling_priors": meta.get("scaling_priors")}
            )
        self._models: dict[str, Any] = {}
        self._distances: dict[tuple, list[float]] = {}

    def nearest(self, graph: Any, exclude_families: set[str]) -> tuple[dict[str, Any], float] | None:
        from streamtune_cli.ged import graph_edit_distance

        key = (
            tuple(sorted((str(n), d["kind"]) for n, d in graph.nodes(data=True))),
            tuple(sorted((str(u), str(v), d["partitioning"]) for u, v, d in graph.edges(data=True))),
        )
        if key not in self._distances:
            # A deterministic search budget: the same job gets the same cluster on any machine.
            self._distances[key] = [
                float(graph_edit_distance(graph, entry["medoid"], max_expansions=2000).upper) for entry in self.entries
            ]
        best = None
        for entry, distance in zip(self.entries, self._distances[key]):
            if exclude_families & set(entry["families"]):
                continue
            if best is None or distance < best[1]:
                best = (entry, distance)
        return best

    def model(self, entry: dict[str, Any]) -> Any:
        from streamtune_cli.gnn.artifacts import load_model

        if entry["cluster"] not in self._models:
            self._models[entry["cluster"]] = load_model(entry["path"])[0]
        return self._models[entry["cluster"]]


class StreamTuneTuner:
    """The StreamTune tuner. Options:

    models: folder of pretrained models (default: the shipped ones); use_models false = cold start.
    leave_out_family: skip the cluster nearest to the job and every cluster sharing its families, so the
    job is tuned only with models that never saw its family (the bench's leave-one-family-out).
    risk: the bottleneck probability accepted for a chosen parallelism. z: how many standard deviations of
    delta's uncertainty the capacity is lowered by. drain_s: size for draining the current lag within this
    many seconds. scale_down_min: scale an operator down only when that saves at least this share of it.
    monotone: false (an ablation) lets the capacity exponent go negative, so more instances can look worse.
    max_margin: the safety margin (risk) may add at most this share of instances over the point estimate.
    prior: gnn (the encoder's scaling head, per operator) or history (an ablation without the graph
    encoder: the cluster's mean scaling exponent for operators of the same kind and input partitioning).
    """

    name = "streamtune"

    def __init__(
        self,
        *,
        models: str | None = None,
        use_models: bool = True,
        leave_out_family: bool = False,
        risk: float = 0.2,
        z: float = 0.0,
        drain_s: float = 1800.0,
        scale_down_min: float = 0.3,
        monotone: bool = True,
        prior: str = "gnn",
        max_margin: float = 0.25,
    ):
        from streamtune_cli.tuning.tuners.base import OptionError

        if models is not None and not isinstance(models, str):
            raise OptionError("models", f"expected a folder path, got {models!r}")
        if models is not None and not (Path(models) / "index.json").is_file():
            # A folder the user names must hold models; only the shipped default may be missing (cold start).
            raise OptionError("models", f"no model index in {models!r} (build one with `streamtune pretrain --out`)")
        self.models = models
        self.use_models = bool_option("use_models", use_models)
        self.leave_out_family = bool_option("leave_out_family", leave_out_family)
        self.risk = number_option("risk", risk, low=0.0, low_open=True, high=0.5)
        self.z = number_option("z", z, low=0.0, high=5.0)
        self.drain_s = number_option("drain_s", drain_s, low=0.0, low_open=True)
        self.scale_down_min = number_option("scale_down_min", scale_down_min, low=0.0, high=1.0)
        self.monotone = bool_option("monotone", monotone)
        self.max_margin = number_option("max_margin", max_margin, low=0.0, high=10.0)
        if prior not in ("gnn", "history"):
            raise OptionError("prior", f"expected gnn or history, got {prior!r}")
        self.prior = prior
        # Learned state, kept across calls (and across rate levels in continuous tuning).
        self._assignment: dict[str, Any] | None = None
        self._priors: dict[str, tuple[float, float]] = {}
        # Per operator: the highest parallelism it had to be scaled up from (never scaled down to again),
        # and the smallest one measured to have less capacity than a smaller one (never scaled up to again).
        self._floor: dict[str, int] = {}
        self._ceiling: dict[str, int] = {}
        # Where this tuning session's steps start in the history the loop passes (set on its first call).
        self._session_offset: int | None = None

    def start_session(self) -> None:
        """The loop calls this when a tuning session starts (continuous tuning: every rate level)."""
        self._session_offset = None

    def run_info(self) -> dict[str, Any]:
        """What the bench records about this run: the cluster used and the families left out."""
        a = self._assignment or {}
        return {"cluster": a.get("cluster"), "ged": a.get("distance"), "left_out": a.get("excluded", []), "note": a.get("note", "")}

    # -- history: cluster and priors ---------------------------------------------------------------

    def _assign(self, view: JobView, observation: Observation, parallelism: Parallelism) -> None:
        self._assignment = {"cluster": None, "distance": None, "note": ""}
        if not self.use_models:
            self._assignment["note"] = "cold start: history models disabled (use_models false)"
            return
        directory = Path(self.models) if self.models else default_models_dir()
        try:
            bank = _model_bank(str(directory.resolve()))
        except Exception as exc:
            if self.models is not None:
                raise  # models the user named must load: a tampered or broken file is their error (exit 2)
            # The shipped default is missing or unreadable: tune anyway, and say so in every reason.
            self._assignment["note"] = f"cold start: no usable pretrained models in {directory} ({str(exc)[:120]})"
            return
        graph = view.labeled()
        exclude: set[str] = set()
        if self.leave_out_family:
            own = bank.nearest(graph, set())
            if own is not None:
                exclude = set(own[0]["families"])
        found = bank.nearest(graph, exclude)
        if found is None:
            self._assignment["note"] = "cold start: no cluster left after leaving out the job's family"
            return
        entry, distance = found
        self._assignment.update(
            cluster=entry["cluster"], distance=distance, families=entry["families"], excluded=sorted(exclude)
        )
        if self.prior == "gnn":
            try:
                model = bank.model(entry)
            except Exception as exc:
                if self.models is not None:
                    raise
                self._assignment["note"] = f"cold start: the shipped model of cluster {entry['cluster']} is unusable ({str(exc)[:120]})"
                return
            self._priors = self._embed(model, view, observation, parallelism, entry)
        else:
            self._priors = self._history_priors(view, entry)
        left_out = f"; left out {', '.join(sorted(exclude))}" if exclude else ""
        self._assignment["note"] = f"cluster {entry['cluster']} ({', '.join(entry['families'])}), GED {distance:g}{left_out}"

    def _embed(
        self, model: Any, view: JobView, observation: Observation, parallelism: Parallelism, entry: dict[str, Any]
    ) -> dict[str, tuple[float, float]]:
        import torch

        from streamtune_cli.gnn.features import graph_structure, node_features

        structure = graph_structure(view)
        metrics = {op: observation.operators[op].model_copy(update={"parallelism": parallelism[op]}) for op in structure.operators}
        x = torch.from_numpy(node_features(structure, metrics))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the same priors on any machine: reductions in one fixed order
        try:
            with torch.no_grad():
                delta = model.scaling_exponent(x, torch.from_numpy(structure.edge_index), torch.from_numpy(structure.edge_attr))
        finally:
            torch.set_num_threads(threads)
        spread = max(_MIN_PRIOR_STD, float(entry.get("scaling_rmse") or _MIN_PRIOR_STD))
        return {op: (float(d), spread) for op, d in zip(structure.operators, delta.tolist())}

    @staticmethod
    def _history_priors(view: JobView, entry: dict[str, Any]) -> dict[str, tuple[float, float]]:
        table = entry.get("scaling_priors") or {}
        priors = {}
        for op in view.topological_order:
            keyed = any(e.partitioning == Partitioning.hash for e in view.in_edges(op))
            found = table.get(f"{view.operator(op).kind.value}|{'hash' if keyed else 'other'}")
            if isinstance(found, dict) and isinstance(found.get("mean"), (int, float)) and math.isfinite(found["mean"]):
                std = found.get("std")
                std = float(std) if isinstance(std, (int, float)) and math.isfinite(std) else _MIN_PRIOR_STD
                priors[op] = (min(1.0, max(0.0, float(found["mean"]))), max(_MIN_PRIOR_STD, std))
        return priors

    def _prior(self, view: JobView, op: str) -> tuple[tuple[float, float], str]:
        if op in self._priors:
            what = "pretrained prior" if self.prior == "gnn" else "history mean prior"
            return self._priors[op], f"{what} (cluster {self._assignment['cluster']})"
        keyed = any(e.partitioning == Partitioning.hash for e in view.in_edges(op))
        return _COLD_PRIOR[keyed], "cold-start prior"

    # -- the decision ------------------------------------------------------------------------------

    def _choose(
        self, model: ScalingModel, demand: float, cap: int, z: float, mono: bool, op: str,
        steps: list[tuple[Parallelism, Observation]], risk: float,
    ) -> tuple[int, str]:
        """Smallest p with P(bottleneck) <= risk; the margin this buys over the point estimate (P <= 0.5) is
        bounded; when no p is predicted to meet the demand, the parallelism with the most capacity measured."""
        probability = lambda p: bottleneck_probability(model, p, demand, z, mono)  # noqa: E731
        safe = next((p for p in range(1, cap + 1) if probability(p) <= risk), None)
        point = next((p for p in range(1, cap + 1) if probability(p) <= 0.5), None)
        if safe is not None and point is not None:
            bound = max(point + 1, math.ceil(point * (1.0 + self.max_margin)))
            if safe > bound:
                return bound, f"; margin bounded at +{self.max_margin:.0%} over the point estimate {point}"
            return safe, ""
        if point is not None:
            return point, ""
        # No parallelism is predicted to meet the demand. Mean measured log capacity by parallelism:
        logs: dict[int, list[float]] = {}
        for p, log_a in _ability_points(op, steps):
            logs.setdefault(p, []).append(math.log(p) + log_a)
        measured = {p: sum(v) / len(v) for p, v in logs.items()}
        if not measured:
            return cap, "; no parallelism is predicted to meet the demand: max parallelism"
        best = max(measured, key=lambda p: (measured[p], -p))
        higher = [p for p in measured if p > best]
        if higher:
            # A larger parallelism was measured and did worse: the capacity peaks; stay below that.
            self._ceiling[op] = min(self._ceiling.get(op, cap + 1), min(higher))
            return best, f"; capacity peaks: p={best} had the most measured, p={min(higher)} less"
        # Capacity still grew up to the largest parallelism measured: probe further up, sized as if
        # instances scaled linearly from there (the optimistic guess, corrected by the next window).
        linear = math.ceil(demand / math.exp(measured[best]) * best * (1 + 1e-9))
        probe = min(cap, self._ceiling.get(op, cap + 1) - 1, max(best + 1, linear))
        return max(1, probe), f"; no parallelism is predicted to meet the demand: probing p={probe} (linear from p={best})"

    @staticmethod
    def _restart_s(steps: list[tuple[Parallelism, Observation]]) -> float:
        """Measured restart time: the gap after a redeploy minus the gap between windows without one."""
        plain, after = [], []
        for (p0, o0), (p1, o1) in zip(steps, steps[1:]):
            (after if p0 != p1 else plain).append(o1.t_s - o0.t_s)
        if plain and after:
            return max(0.0, min(after) - min(plain))
        return _DEFAULT_RESTART_S

    def propose(
        self, graph: JobView, parallelism: Parallelism, observation: Observation, history: list[TraceStep]
    ) -> Decision:
        view = graph
        if self._assignment is None:
            self._assign(view, observation, parallelism)
        assert self._assignment is not None
        steps = [(s.parallelism, s.observation) for s in history] + [(dict(parallelism), observation)]
        # Size for the highest target of this tuning session (steps restart at 0 in a new session, e.g. a
        # new rate level in continuous tuning): a trough must not shrink the job below a peak it has seen,
        # and an old level's peak must not keep it large forever. Measurements of earlier sessions still
        # feed the ability fits.
        if self._session_offset is None:
            self._session_offset = len(history)
            self._floor = {}  # a new session (a new rate level): the bounces of the last one do not apply
        session = [s.observation for s in history[self._session_offset :]]
        peak_seen = max([o.target_rate_rps for o in session] + [observation.target_rate_rps])
        # Lag now plus what the next restart adds, drained within drain_s on top of the peak.
        lag = observation.lag_records + peak_seen * self._restart_s(steps)
        total = peak_seen * (1.0 + lag / (self.drain_s * peak_seen)) if peak_seen > 0 else 0.0
        targets = target_input_rates(view, parallelism, observation, source_total_rps=total)
        z, mono = self.z, self.monotone
        proposed: dict[str, int] = {}
        reasons: dict[str, str] = {}
        for op in view.topological_order:
            p_now = parallelism[op]
            demand = targets[op]
            cap = min(view.operator(op).max_parallelism, MAX_PARALLELISM_BOUND)
            if demand <= 0:
                proposed[op], reasons[op] = 1, "no input expected: 1 instance"
                continue
            prior, prior_source = self._prior(view, op)
            model = fit_scaling(_ability_points(op, steps), prior, prior_source, clip=self.monotone, around=p_now)
            if model is None:
                proposed[op], reasons[op] = p_now, "ability not measurable yet (busy below 1%): kept"
                continue
            # Caution where the model is unsure: a cold-start prior extrapolates with at least one standard
            # deviation of pessimism about delta; a pretrained prior or an online fit with self.z.
            z_op = max(z, 1.0) if prior_source == "cold-start prior" and model.source == prior_source else z
            chosen, keep_note = self._choose(model, demand, cap, z_op, mono, op, steps, self.risk)
            peaked = keep_note.startswith("; capacity peaks")
            if op in self._ceiling and chosen >= self._ceiling[op]:
                chosen = self._ceiling[op] - 1
                keep_note += f"; below p={self._ceiling[op]}, measured to have less capacity"
            if chosen < p_now and not peaked:
                # A wrong scale-down costs two reconfigurations (down, then back up): it needs a quarter of
                # the risk, a saving of at least scale_down_min, and must stay above any parallelism this
                # operator already had to leave upward.
                careful, _ = self._choose(model, demand, cap, z_op, mono, op, steps, self.risk / 4)
                floor = self._floor.get(op, 0)
                chosen = max(chosen, careful, floor + 1)
                if chosen >= p_now or chosen > p_now * (1.0 - self.scale_down_min) or not observation.keeps_up:
                    chosen, keep_note = p_now, f"; kept {p_now} (a scale-down would save under {self.scale_down_min:.0%} or risk a bounce)"
            elif chosen > p_now:
                self._floor[op] = max(self._floor.get(op, 0), p_now)
            proposed[op] = chosen
            below = bottleneck_probability(model, chosen - 1, demand, z_op, mono) if chosen > 1 else None
            m = observation.operators[op]
            reasons[op] = (
                f"{self._assignment['note']}; delta {model.delta:.2f}±{model.delta_std:.2f} ({model.source}); "
                f"target input {demand:,.0f} rec/s; P(bottleneck) {bottleneck_probability(model, chosen, demand, z_op, mono):.3f} at "
                f"p={chosen}" + (f", {below:.3f} at p={chosen - 1}" if below is not None else "")
                + f"; last window: busy max {m.busy_max:.2f} at p={p_now}{keep_note}"
            )
        changed = [op for op in view.topological_order if proposed[op] != parallelism[op]]
        converged = not changed and observation.keeps_up
        summary = (
            f"StreamTune: {len(changed)} operator(s) rescaled for {total:,.0f} rec/s "
            f"(peak seen {peak_seen:,.0f} plus lag drain); {self._assignment['note']}"
            if changed
            else f"StreamTune: no operator predicted to be a bottleneck; {self._assignment['note']}"
        )
        return Decision(parallelism=proposed, reasons=reasons, summary=summary, converged=converged)
