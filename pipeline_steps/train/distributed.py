"""Multi-instance training with XGBoost's own collective (Rabit) communicator.

The first host starts a `RabitTracker`; every host (the first included) joins it through
`xgboost.collective.CommunicatorContext`.  Ranks follow the order of `hosts` in
resourceconfig.json, so rank 0 is the first host, which writes the model.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any, TypeVar

import numpy as np
from xgboost import collective
from xgboost.tracker import RabitTracker

from pipeline_steps.train.config import Cluster

T = TypeVar("T")

BOOTSTRAP_TIMEOUT_S = int(os.environ.get("SM_TRACKER_TIMEOUT", "900"))


def _resolve(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError as err:
        raise RuntimeError(f"tracker host {host!r} does not resolve: {err}") from None


def _address(cluster: Cluster) -> str:
    return _resolve(cluster.tracker_host)


@contextlib.contextmanager
def tracker(cluster: Cluster) -> Iterator[None]:
    """On the first host of several: runs the tracker around the whole job.

    Started before any data is read, so the other hosts can connect whenever they are ready
    (the bootstrap timeout covers their data loading).
    """
    if cluster.size == 1 or not cluster.is_first:
        yield
        return
    address = _address(cluster)
    rabit = RabitTracker(
        n_workers=cluster.size,
        host_ip=address,
        port=cluster.tracker_port,
        sortby="task",
        timeout=BOOTSTRAP_TIMEOUT_S,
    )
    rabit.start()
    print(f"tracker listening on {address}:{cluster.tracker_port} for {cluster.size} hosts", file=sys.stderr)
    ok = False
    try:
        yield
        ok = True
    finally:
        try:
            # After a failure here the job is failing anyway: do not wait long for the others.
            rabit.wait_for(BOOTSTRAP_TIMEOUT_S if ok else 5)
        except Exception as err:  # a failed shutdown is only reported: the job's outcome stands
            print(f"tracker shutdown: {err}", file=sys.stderr)


def _wait_for_tracker(address: str, port: int, timeout_s: float) -> None:
    """Until the first host's tracker accepts connections (or the timeout; XGBoost then reports).

    The hosts start together, so a worker often asks before the tracker listens; XGBoost's own
    retry then sleeps 2 s, then 4 s... (5.5 s of a 6 s two-host job here).  The probe connection
    is closed unused, which the tracker skips."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.05)


@contextlib.contextmanager
def communicator(cluster: Cluster) -> Iterator[None]:
    """No-op for one host; otherwise this host's membership of the collective group."""
    if cluster.size == 1:
        yield
        return
    if not cluster.is_first:
        _wait_for_tracker(_address(cluster), cluster.tracker_port, BOOTSTRAP_TIMEOUT_S)
    args: dict[str, Any] = {
        "dmlc_communicator": "rabit",
        "dmlc_tracker_uri": _address(cluster),
        "dmlc_tracker_port": cluster.tracker_port,
        # Zero-padded rank first: the tracker sorts by task id, so ranks follow `hosts`.
        "dmlc_task_id": f"{cluster.rank:05d}-{cluster.current_host}",
        "dmlc_timeout": BOOTSTRAP_TIMEOUT_S,
    }
    with collective.CommunicatorContext(**args):
        if collective.get_rank() != cluster.rank:
            raise RuntimeError(
                f"communicator gave rank {collective.get_rank()} to {cluster.current_host}, "
                f"expected {cluster.rank}"
            )
        yield


def allreduce_sum(values: list[float], distributed: bool) -> list[float]:
    array = np.asarray(values, dtype=np.float64)
    if distributed:
        array = collective.allreduce(array, collective.Op.SUM)
    return [float(v) for v in array]


def any_host(flag: bool, distributed: bool) -> bool:
    """True when the flag is set on any host (so every host stops at the same round)."""
    if not distributed:
        return flag
    return bool(collective.allreduce(np.array([int(flag)], dtype=np.int32), collective.Op.MAX)[0])


def broadcast_from_first(value: T, distributed: bool) -> T:
    """The first host's value, on every host (a pickled round trip keeps its type)."""
    return collective.broadcast(value, 0) if distributed else value
