"""The local executor's queue pipes: widened so a batch crosses in one handoff, within the user's allowance."""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamtune_cli.executors.local import executor

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_SETPIPE_SZ is Linux's")


@linux
@given(queues=st.integers(1, 5000))
def test_pipes_never_take_more_than_a_quarter_of_the_users_allowance(queues: int) -> None:
    size = executor._pipe_bytes(queues)
    soft_pages = int(Path("/proc/sys/fs/pipe-user-pages-soft").read_text())
    assert size == 0 or size > executor._DEFAULT_PIPE_BYTES
    assert size <= executor._PIPE_BYTES and (size & (size - 1)) == 0  # a power of two
    if soft_pages > 0:
        assert size * queues <= soft_pages * os.sysconf("SC_PAGE_SIZE") // 4


@linux
def test_a_few_queues_get_a_whole_batch_of_room() -> None:
    import fcntl

    soft_pages = int(Path("/proc/sys/fs/pipe-user-pages-soft").read_text())
    if soft_pages in (0, 16384) and os.sysconf("SC_PAGE_SIZE") == 4096:  # Linux's defaults: 8 queues fit 1 MiB each
        assert executor._pipe_bytes(8) == executor._PIPE_BYTES
    q = multiprocessing.get_context("spawn").Queue(maxsize=8)
    try:
        executor._widen_pipe(q, executor._pipe_bytes(8))
        get_size = getattr(fcntl, "F_GETPIPE_SZ", 1032)
        assert fcntl.fcntl(q._writer.fileno(), get_size) >= min(executor._pipe_bytes(8), int(Path("/proc/sys/fs/pipe-max-size").read_text()))
    finally:
        q.close()
        q.join_thread()
