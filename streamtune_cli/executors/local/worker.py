"""One OS process of the local engine: one instance of one chain (a fused chain runs all its members here).

The process reads messages from its one bounded input queue, runs its chain's members on polars frames (no
serialization between members), and writes Arrow IPC bytes to the input queues of the next chains. Every
message carries the operator and instance it came from: its channel. Watermarks advance per channel and the
instance's watermark is their minimum; a barrier from every channel means "snapshot and stop"; an end from
every channel means the bounded input is done.

What it measures, cumulative, in a shared array the coordinator reads (no locks; one writer per slot):
CPU time of the process (busy: honest even with more processes than cores), wall time blocked on an empty
input queue (idle) and on a full output queue (backpressured), bytes serialized and deserialized, records in
and out per member, and for sources the records due and emitted.
"""

from __future__ import annotations

import math
import os
import queue
import signal
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["WorkerArgs", "worker_main", "error_path", "SLOT", "MEMBER_SLOTS", "metrics_size", "member_slot"]

# Process-level slots of the metrics array, then MEMBER_SLOTS per chain member.
SLOT = {
    "cpu_s": 0,
    "idle_s": 1,
    "backpressured_s": 2,
    "bytes_serialized": 3,
    "bytes_deserialized": 4,
    "source_due": 5,
    "source_emitted": 6,
    "heartbeat": 7,
    "state": 8,  # 0 running, 1 finished (bounded input done), 2 stopped at a barrier, 3 failed
    "ready": 9,
}
_PROCESS_SLOTS = len(SLOT)
MEMBER_SLOTS = {"records_in": 0, "records_out": 1}


def metrics_size(members: int) -> int:
    return _PROCESS_SLOTS + len(MEMBER_SLOTS) * members


def member_slot(position: int, name: str) -> int:
    return _PROCESS_SLOTS + len(MEMBER_SLOTS) * position + MEMBER_SLOTS[name]


@dataclass
class WorkerArgs:
    plan: Any  # EnginePlan
    chain: int
    instance: int
    epoch: int
    state_dir: str
    restore_epoch: int | None  # snapshot to restore from (None: fresh start)
    start_monotonic: float  # executor clock zero (time.monotonic is system-wide on Linux)
    spec_dir: str | None
    nexmark: Any  # NexmarkConfig
    bounded_events: int | None
    sink_dir: str | None
    batch_rows: int
    parent_pid: int
    carry_due: float = 0.0  # a source's backlog from before a rescale, records
    stopped_at: float | None = None  # when the previous deployment stopped: input offered since is backlog too


def error_path(state_dir: str, chain: int, instance: int) -> Path:
    return Path(state_dir) / "errors" / f"{chain:04d}-{instance:04d}.txt"


class _Stop(Exception):
    """The coordinator asked this worker to end (barrier done or parent gone)."""


def worker_main(args: WorkerArgs, queues: list[Any], metrics: Any, control: Any) -> None:
    """Process entry point. `queues`: this deployment's input queue per (chain, instance), flattened;
    `control`: shared doubles [stop: 0 run, 1 barrier, 2 abort; base rate]. A failure is written in one line
    to `error_path(...)` for the coordinator, and the process exits 1."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator ends us; a terminal ^C reaches it first
    try:
        _Worker(args, queues, metrics, control).run()
    except _Stop:
        # Torn down (or orphaned): whatever is still buffered for other processes is dropped, not flushed.
        for q in queues:
            q.cancel_join_thread()
        os._exit(0)
    except BaseException as exc:  # noqa: BLE001 - reported in one line, then the process fails
        chain = args.plan.chains[args.chain]
        where = traceback.extract_tb(exc.__traceback__)[-1]
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        metrics[SLOT["state"]] = 3
        try:
            path = error_path(args.state_dir, args.chain, args.instance)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                f"{chain.name} (instance {args.instance}): {type(exc).__name__}: {detail} "
                f"[{Path(where.filename).name}:{where.lineno}]\n"
            )
        except OSError:
            pass
        for q in queues:
            q.cancel_join_thread()
        os._exit(1)
    # A normal end returns: multiprocessing flushes every queue this process wrote to before it exits.


class _Worker:
    def __init__(self, args: WorkerArgs, queues: list[Any], metrics: Any, control: Any):
        import polars as pl
        import pyarrow as pa

        pa.set_cpu_count(1)  # polars reads POLARS_MAX_THREADS=1, set by the coordinator

        from streamtune_cli.executors.local.operators import build_logic
        from streamtune_cli.spec.models import OperatorKind

        self.pl = pl
        self.args = args
        self.plan = args.plan
        self.spec = self.plan.spec
        self.chain = self.plan.chains[args.chain]
        self.metrics = metrics
        self.control = control
        self.queues = queues
        self.offsets = _queue_offsets(self.plan)
        self.inbox = queues[self.offsets[args.chain] + args.instance]
        self.position = {m: i for i, m in enumerate(self.chain.members)}
        self.logic: dict[str, Any] = {}
        self.sinks: dict[str, Any] = {}
        self.round_robin: dict[tuple[str, str], int] = {}
        self.while_blocked: Any = None  # a source's hook: input keeps arriving while it is blocked
        for member in self.chain.members:
            op = self.spec.operator(member)
            if op.kind == OperatorKind.source:
                continue
            if op.kind == OperatorKind.sink:
                self.sinks[member] = None
                continue
            upstream = [e.src for e in self.spec.edges if e.dst == member]
            self.logic[member] = build_logic(op, {u: self.plan.schemas[u] for u in upstream})
        if args.restore_epoch is not None:
            self._restore(args.restore_epoch)
        self.cpu0 = time.process_time()
        if self.chain.head in self.plan.sources:
            metrics[SLOT["source_due"]] = float(args.carry_due)  # before "ready": no window sees it jump
        metrics[SLOT["ready"]] = 1.0

    # -- measuring ------------------------------------------------------------------------------------

    def _tick(self) -> None:
        m = self.metrics
        m[SLOT["cpu_s"]] = time.process_time() - self.cpu0
        m[SLOT["heartbeat"]] = time.monotonic()

    def _count(self, member: str, name: str, n: int) -> None:
        self.metrics[member_slot(self.position[member], name)] += n

    def _check_parent(self) -> None:
        if os.getppid() != self.args.parent_pid:
            raise _Stop  # the coordinator is gone: never outlive it

    # -- sending ------------------------------------------------------------------------------------

    def _put(self, chain: int, instance: int, message: tuple) -> None:
        q = self.queues[self.offsets[chain] + instance]
        try:
            q.put_nowait(message)
            return
        except queue.Full:
            pass
        started = time.monotonic()
        while True:
            try:
                q.put(message, timeout=0.25 if self.while_blocked is None else 0.02)
                break
            except queue.Full:
                if self.while_blocked is not None:
                    self.while_blocked()
                self._check_parent()
                if self.control[0] >= 2:  # abort: the coordinator is tearing everything down
                    raise _Stop from None
        self.metrics[SLOT["backpressured_s"]] += time.monotonic() - started

    def _serialize(self, frame: Any) -> bytes:
        import pyarrow as pa

        table = frame.to_arrow()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        data = sink.getvalue().to_pybytes()
        self.metrics[SLOT["bytes_serialized"]] += len(data)
        return data

    def _send(self, edge: Any, frame: Any) -> None:
        pl = self.pl
        me = (edge.src, self.args.instance)
        if edge.partitioning == "forward":
            self._put(edge.dst_chain, self.args.instance, ("data", me, edge.src, self._serialize(frame)))
        elif edge.partitioning == "broadcast":
            data = self._serialize(frame)
            for i in range(edge.dst_parallelism):
                self._put(edge.dst_chain, i, ("data", me, edge.src, data))
        elif edge.partitioning == "global":
            self._put(edge.dst_chain, 0, ("data", me, edge.src, self._serialize(frame)))
        elif edge.partitioning in ("rebalance", "rescale"):
            slot = (edge.src, edge.dst)
            i = self.round_robin.get(slot, self.args.instance) % edge.dst_parallelism
            self.round_robin[slot] = i + 1
            self._put(edge.dst_chain, i, ("data", me, edge.src, self._serialize(frame)))
        else:  # hash
            from streamtune_cli.executors.local.partition import instances_of

            if edge.dst_parallelism == 1:
                self._put(edge.dst_chain, 0, ("data", me, edge.src, self._serialize(frame)))
                return
            target = instances_of(frame, edge.key, edge.dst_parallelism, edge.dst_max_parallelism)
            parts = frame.with_columns(target).partition_by("__instance", as_dict=True, include_key=False)
            for (i,), part in parts.items():
                if part.height:
                    self._put(edge.dst_chain, int(i), ("data", me, edge.src, self._serialize(part)))
        del pl

    def _broadcast_control(self, member: str, message: tuple) -> None:
        """A watermark, barrier or end to every instance each of `member`'s outside edges reaches."""
        me = (member, self.args.instance)
        for edge in self.chain.external[member]:
            targets = [self.args.instance] if edge.partitioning == "forward" else range(edge.dst_parallelism)
            for i in targets:
                self._put(edge.dst_chain, i, (message[0], me, member, message[1]))

    # -- processing ----------------------------------------------------------------------------------

    def _emit(self, member: str, frame: Any) -> None:
        if frame.height == 0:
            return
        self._count(member, "records_out", frame.height)
        for dst in self.chain.internal[member]:
            self._push(dst, member, frame)
        for edge in self.chain.external[member]:
            self._send(edge, frame)

    def _push(self, member: str, input_id: str, frame: Any) -> None:
        self._count(member, "records_in", frame.height)
        if member in self.sinks:
            self._sink(member, frame)
            return
        for out in self.logic[member].process(input_id, frame):
            self._emit(member, out)

    def _sink(self, member: str, frame: Any) -> None:
        if self.plan.sink_mode != "parquet":
            return
        import pyarrow.parquet as pq

        writer = self.sinks[member]
        table = frame.to_arrow()
        if writer is None:
            folder = Path(self.args.sink_dir or ".") / member
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"epoch{self.args.epoch:04d}-{self.args.instance:04d}.parquet"
            writer = self.sinks[member] = pq.ParquetWriter(str(path), table.schema)
        writer.write_table(table)

    def _close_sinks(self) -> None:
        for member, writer in self.sinks.items():
            if writer is not None:
                writer.close()
                self.sinks[member] = None

    def _watermark(self, watermark_ms: int) -> None:
        for member in self.chain.members:
            logic = self.logic.get(member)
            if logic is not None:
                for out in logic.on_watermark(watermark_ms):
                    self._emit(member, out)
        for member in self.chain.members:
            self._broadcast_control(member, ("wm", watermark_ms))

    def _finish(self) -> None:
        for member in self.chain.members:
            logic = self.logic.get(member)
            if logic is not None:
                for out in logic.finish():
                    self._emit(member, out)
        for member in self.chain.members:
            self._broadcast_control(member, ("end", None))
        self._close_sinks()

    # -- state ------------------------------------------------------------------------------------

    def _state_folder(self, epoch: int, member: str) -> Path:
        return Path(self.args.state_dir) / f"epoch{epoch:04d}" / member

    def _snapshot(self) -> None:
        for member, logic in self.logic.items():
            tables = logic.snapshot()
            if not tables:
                continue
            folder = self._state_folder(self.args.epoch, member)
            folder.mkdir(parents=True, exist_ok=True)
            for name, table in tables.items():
                tmp = folder / f".{self.args.instance:04d}-{name}.arrow.tmp"
                table.write_ipc(tmp)
                os.replace(tmp, folder / f"{self.args.instance:04d}-{name}.arrow")

    def _restore(self, epoch: int) -> None:
        from streamtune_cli.executors.local.partition import key_group_range, key_groups

        pl = self.pl
        for member, logic in self.logic.items():
            if not logic.state_keys:
                continue
            folder = self._state_folder(epoch, member)
            maxp = self.plan.max_parallelism[member]
            groups = key_group_range(self.args.instance, self.chain.parallelism, maxp)
            state: dict[str, Any] = {}
            for name, key in logic.state_keys.items():
                files = sorted(folder.glob(f"*-{name}.arrow")) if folder.exists() else []
                frames = [pl.read_ipc(f) for f in files]
                frames = [f for f in frames if f.height]
                if not frames:
                    continue
                table = pl.concat(frames, how="vertical")
                kg = key_groups(table, key, maxp)
                state[name] = table.filter((kg >= groups.start) & (kg < groups.stop))
            if state:
                logic.restore(state)

    # -- main loops ---------------------------------------------------------------------------------

    def run(self) -> None:
        head = self.chain.head
        if head in self.plan.sources:
            self._run_source(head)
        else:
            self._run_operator()

    def _run_operator(self) -> None:
        pl = self.pl
        import pyarrow as pa

        channels = self.chain.channels(self.args.instance, self.plan)
        watermarks = {c: -math.inf for c in channels}
        current = -math.inf
        barriers: set = set()
        ended: set = set()
        while True:
            started = time.monotonic()
            while True:
                try:
                    message = self.inbox.get(timeout=0.25)
                    break
                except queue.Empty:
                    self._check_parent()
                    if self.control[0] >= 2:
                        raise _Stop from None
                    self.metrics[SLOT["idle_s"]] += time.monotonic() - started
                    started = time.monotonic()
                    self._tick()
            self.metrics[SLOT["idle_s"]] += time.monotonic() - started
            kind, channel, input_id, payload = message
            if kind == "data":
                self.metrics[SLOT["bytes_deserialized"]] += len(payload)
                frame = pl.from_arrow(pa.ipc.open_stream(payload).read_all())
                self._push(self.chain.head, input_id, frame)
            elif kind == "wm":
                if payload > watermarks.get(channel, math.inf):
                    watermarks[channel] = payload
                    low = min(watermarks.values())
                    if low > current:
                        current = low
                        self._watermark(int(low))
            elif kind == "barrier":
                barriers.add(channel)
                # A channel whose bounded input already ended sends no barrier: its end stands for one.
                if barriers | ended >= channels:
                    self._snapshot()
                    self._close_sinks()
                    for member in self.chain.members:
                        self._broadcast_control(member, ("barrier", payload))
                    self._tick()
                    self.metrics[SLOT["state"]] = 2
                    return
            elif kind == "end":
                ended.add(channel)
                watermarks[channel] = math.inf
                if barriers and barriers | ended >= channels:
                    self._snapshot()
                    self._close_sinks()
                    for member in self.chain.members:
                        self._broadcast_control(member, ("barrier", self.args.epoch))
                    self._tick()
                    self.metrics[SLOT["state"]] = 2
                    return
                if ended >= channels:
                    self._finish()
                    self._tick()
                    self.metrics[SLOT["state"]] = 1
                    return
            self._tick()

    def _run_source(self, source_id: str) -> None:
        import numpy as np

        from streamtune_cli.executors.local import nexmark
        from streamtune_cli.executors.local.partition import key_group_range
        from streamtune_cli.executors.schedules import rate_factor_function

        pl = self.pl
        src = self.plan.sources[source_id]
        splits = list(key_group_range(self.args.instance, self.chain.parallelism, src.splits))
        offsets = dict.fromkeys(splits, 0)
        if self.args.restore_epoch is not None:
            offsets.update(self._restore_offsets(source_id, splits))
        # Ordinal k of the source's event stream belongs to split k % S; a split emits its ordinals in order.
        S = src.splits
        limit = None
        if self.args.bounded_events is not None:
            limit = (
                nexmark.ordinals_below(src.kind, self.args.bounded_events)
                if src.generator == "nexmark"
                else self.args.bounded_events
            )
        factor = rate_factor_function(self.spec.workload.schedule, self.args.spec_dir)
        own = len(splits) / S
        config = self.args.nexmark
        replay = None
        if src.generator == "parquet":
            from streamtune_cli.executors.local.files import ParquetReplay

            replay = ParquetReplay(src.file, src.time_field)

        def split_total(split: int) -> int:  # ordinals of the split below the limit
            return 0 if limit is None or split >= limit else (limit - split + S - 1) // S

        split_ids = np.array(splits, dtype=np.int64)

        def low_watermark() -> float:
            """Event time of the earliest record any split of this instance can still emit."""
            if not splits:
                return math.inf
            offs = np.array([offsets[s] for s in splits], dtype=np.int64)
            ordinal = split_ids + offs * S
            if limit is not None:
                ordinal = ordinal[ordinal < limit]
                if ordinal.size == 0:
                    return math.inf
            if replay is not None:
                return float(replay.event_time_ms(ordinal).min()) if replay.time_field is not None else -math.inf
            n = nexmark.global_event_number(src.kind, ordinal) if src.generator == "nexmark" else ordinal
            return float(nexmark.event_time_ms(config, n).min())

        clock = {"last": self.args.stopped_at if self.args.stopped_at is not None else time.monotonic()}
        clock["due"] = float(self.args.carry_due)
        emitted = 0

        def arrive() -> tuple[float, int]:
            """Input that arrived so far at the schedule's rate: (the rate now, records arrived in all)."""
            now = time.monotonic()
            rate = self.control[1] * factor(now - self.args.start_monotonic) * src.share * own
            clock["due"] += rate * (now - clock["last"])
            clock["last"] = now
            # Input arrives in quanta of about 10 ms of records: the source reads each quantum when it has
            # arrived, so a source that keeps up has no backlog at all, not "less than a batch".
            quantum = max(1, min(self.args.batch_rows, int(rate * 0.01)))
            return rate, int(math.floor(clock["due"] / quantum) * quantum)

        def publish_arrivals() -> None:  # blocked on a full queue: what arrives meanwhile is backlog
            self.metrics[SLOT["source_due"]] = max(self.metrics[SLOT["source_due"]], arrive()[1])

        self.while_blocked = publish_arrivals
        live = [s for s in splits if limit is None or offsets[s] < split_total(s)]
        last_watermark = -math.inf
        rotation = 0
        self._tick()
        while True:
            if self.control[0] >= 2:
                raise _Stop
            if self.control[0] >= 1:  # stop at a barrier
                self._snapshot_offsets(source_id, offsets)
                for member in self.chain.members:
                    self._broadcast_control(member, ("barrier", self.args.epoch))
                self._tick()
                self.metrics[SLOT["state"]] = 2
                return
            if not live:
                # Offsets at the end too: a rescale that races the end of the input restores them, not zeros.
                self._snapshot_offsets(source_id, offsets)
                self._finish_source(source_id)
                return
            now = time.monotonic()
            rate, arrived = arrive()
            arrived = max(arrived, int(self.metrics[SLOT["source_due"]]))
            want = arrived - emitted
            if want < 1:
                quantum = max(1, min(self.args.batch_rows, int(rate * 0.01)))
                pause = min(0.05, (emitted + quantum - clock["due"]) / rate) if rate > 0 else 0.05
                time.sleep(max(pause, 0.0002))
                self.metrics[SLOT["idle_s"]] += time.monotonic() - now
                self._check_parent()
                self._tick()
                continue
            rows = min(self.args.batch_rows, want)
            ordinals, rotation = _take_ordinals(live, offsets, rows, rotation, S, split_total if limit is not None else None)
            live = [s for s in live if limit is None or offsets[s] < split_total(s)]
            if ordinals.size:
                if src.generator == "nexmark":
                    batch = nexmark.generate(src.kind, ordinals, config)
                elif replay is not None:
                    batch = replay.take(ordinals)
                else:
                    batch = nexmark.generate_datagen(ordinals, config, keys=src.keys, record_bytes=src.record_bytes)
                frame = pl.from_arrow(batch)
                emitted += frame.height
                self._count(source_id, "records_in", frame.height)
                self._emit(source_id, frame)
            # Published together after each read: due (what had arrived) and emitted never disagree by a
            # record that was merely in flight, so lag and achieved rate are exact.
            self.metrics[SLOT["source_due"]] = arrived
            self.metrics[SLOT["source_emitted"]] = emitted
            watermark = low_watermark()
            if math.isfinite(watermark) and watermark > last_watermark:
                last_watermark = watermark
                self._watermark(int(watermark))
            self._tick()

    def _finish_source(self, source_id: str) -> None:
        self._finish()
        self._tick()
        self.metrics[SLOT["state"]] = 1

    def _snapshot_offsets(self, source_id: str, offsets: dict[int, int]) -> None:
        pl = self.pl
        self._snapshot()  # members chained behind the source
        folder = self._state_folder(self.args.epoch, source_id)
        folder.mkdir(parents=True, exist_ok=True)
        frame = pl.DataFrame({"split": list(offsets), "offset": list(offsets.values())}, schema={"split": pl.Int64, "offset": pl.Int64})
        tmp = folder / f".{self.args.instance:04d}-offsets.arrow.tmp"
        frame.write_ipc(tmp)
        os.replace(tmp, folder / f"{self.args.instance:04d}-offsets.arrow")

    def _restore_offsets(self, source_id: str, splits: list[int]) -> dict[int, int]:
        pl = self.pl
        folder = self._state_folder(self.args.restore_epoch, source_id)
        found: dict[int, int] = {}
        for path in sorted(folder.glob("*-offsets.arrow")) if folder.exists() else []:
            for split, offset in pl.read_ipc(path).iter_rows():
                if split in set(splits):
                    found[int(split)] = int(offset)
        return found


def _take_ordinals(
    live: list[int], offsets: dict[int, int], rows: int, rotation: int, S: int, split_total: Any
) -> tuple[Any, int]:
    """The next `rows` ordinals, spread evenly over the live splits (the remainder rotates between calls);
    advances `offsets`. A bounded split gives no more than it has left."""
    import numpy as np

    n = len(live)
    take = np.full(n, rows // n, dtype=np.int64)
    extra = rows % n
    if extra:
        take[(np.arange(n) - rotation) % n < extra] += 1
    split_ids = np.array(live, dtype=np.int64)
    starts = np.array([offsets[s] for s in live], dtype=np.int64)
    if split_total is not None:
        remaining = np.array([split_total(s) for s in live], dtype=np.int64) - starts
        take = np.minimum(take, remaining)
    total = int(take.sum())
    first = np.repeat(np.cumsum(take) - take, take)
    within = np.arange(total, dtype=np.int64) - first
    ordinals = np.repeat(split_ids, take) + (np.repeat(starts, take) + within) * S
    for split, k in zip(live, take.tolist()):
        offsets[split] += k
    return ordinals, (rotation + extra) % n


def _queue_offsets(plan: Any) -> list[int]:
    offsets, total = [], 0
    for chain in plan.chains:
        offsets.append(total)
        total += chain.parallelism
    return offsets
