"""Synthetic usage history of every container of a stack with known answers, for `rightsize`: the truth per sizes
entry (CPU p95, memory peak, an OOM kill, a short history), as an export (the pure tests) and as Prometheus series
(the real server's backfill; the bench).

CPU: each pod's usage rate is a sawtooth from `lo` to `hi` every `PERIOD` (uniform over the range, so its p95 is
lo + 0.95 (hi − lo)); the counter is its integral. The first pod of an entry runs at the stated p95, its second at
60 % of it: the entry's p95 is the larger (krr's max over pods). Memory: a working set at 60 % of the peak with one
10-minute spike to the peak on the fourth day (the second pod peaks at 70 % of it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from sizing.core.quantity import MIB_BYTES
from sizing.observe.contract import CPU_USAGE, LAST_TERMINATED, LIMITS, WORKING_SET
from sizing.observe.rightsize import EXPORT_FORMAT, QUERIES, Target, queries

DAY = 86400.0
HISTORY = 14 * DAY
STEP = 120.0
PERIOD = 6 * 3600.0
SPIKE_AT = -10 * DAY  # offset from now: the peak's 10 minutes
SPIKE_S = 600.0
SHORT_S = 2 * 3600.0
OOM_AT = -3 * DAY
KSM = {"job": "kube-state-metrics", "instance": "10.52.0.7:8080"}
CADVISOR = {"job": "kubelet", "metrics_path": "/metrics/cadvisor", "instance": "10.128.0.2:10250"}


@dataclass(frozen=True)
class Truth:
    """What the history of one sizes entry holds."""

    cpu_p95_m: float
    peak_mib: float
    oom: bool = False
    short: bool = False


def truths(found: tuple[Target, ...], oom: str = "redis", short: str = "kube-state-metrics") -> dict[str, Truth]:
    """A distinct known answer per entry: p95s 12–66 m, peaks 40–130 MiB; one OOM-killed, one with 2 h of history."""
    out = {}
    for i, target in enumerate(found):
        out[target.name] = Truth(
            cpu_p95_m=12.0 + 3.0 * i, peak_mib=40.0 + 5.0 * i, oom=target.name == oom, short=target.name == short
        )
    return out


def pods(target: Target) -> list[tuple[str, str, float]]:
    """(pod, container, share of the entry's figures) of each of its containers: two pods each, the second lighter."""
    return [
        (f"{target.name}-{index}", container, share)
        for container in target.containers
        for index, share in enumerate((1.0, 0.6))
    ]


def export(found: tuple[Target, ...], truth: dict[str, Truth], end: float = 1_800_000_000.0) -> dict:
    """The export `rightsize --save` would write for this truth (what the five queries answer exactly)."""
    results: dict[str, list] = {k: [] for k in QUERIES}
    for target in found:
        t = truth[target.name]
        history = SHORT_S if t.short else HISTORY
        for container in target.containers:

            def row(value: float, container: str = container, namespace: str = target.namespace) -> dict:
                return {"namespace": namespace, "container": container, "value": value}

            results["cpu_p95"].append(row(t.cpu_p95_m / 1000))
            results["memory_peak"].append(row(t.peak_mib * MIB_BYTES))
            results["points"].append(row(history / STEP))
            results["first_seen"].append(row(end - history))
            results["oom_killed"].append(row(1.0 if t.oom else 0.0))
            if t.oom:
                results["killed_limit"].append(row(target.current.memory_limit_mib * MIB_BYTES))
    return {
        "format": EXPORT_FORMAT,
        "namespace": found[0].namespace,
        "start": end - HISTORY,
        "end": end,
        "queries": queries(found, HISTORY),
        "results": results,
    }


def _cpu_counter(p95_m: float, start: float) -> Callable[[float], float | None]:
    """Seconds of CPU used since `start` (an offset), for a rate sawtoothing from lo to hi every PERIOD."""
    p95 = p95_m / 1000
    lo = p95 / 2
    hi = lo + (p95 - lo) / 0.95
    per_period = (lo + hi) / 2 * PERIOD

    def counter(offset: float) -> float | None:
        if offset < start:
            return None
        u = offset - start
        s = u % PERIOD
        return math.floor(u / PERIOD) * per_period + lo * s + (hi - lo) * s * s / (2 * PERIOD)

    return counter


def _working_set(peak_mib: float, start: float) -> Callable[[float], float | None]:
    def value(offset: float) -> float | None:
        if offset < start:
            return None
        spike = SPIKE_AT <= offset < SPIKE_AT + SPIKE_S or (start > SPIKE_AT and start <= offset < start + SPIKE_S)
        return (peak_mib if spike else 0.6 * peak_mib) * MIB_BYTES

    return value


def series(found: tuple[Target, ...], truth: dict[str, Truth]) -> list:
    """The history as Prometheus series: cAdvisor's CPU counter and working set per pod's container (each twice, as
    two scrape jobs give them, plus the pod cgroup's and the pause container's, which the queries must drop), and
    kube-state-metrics' last termination reason."""
    from tests.prometheus_server import Series

    out = []
    cgroups: set[tuple[str, str]] = set()
    for target in found:
        t = truth[target.name]
        start = -SHORT_S if t.short else -HISTORY
        for pod, container, share in pods(target):
            labels = {"namespace": target.namespace, "pod": pod, "container": container}
            cpu = _cpu_counter(t.cpu_p95_m * share, start)
            memory = _working_set(t.peak_mib * (1.0 if share == 1.0 else 0.7), start)
            out += [
                Series(CPU_USAGE, {**CADVISOR, **labels}, cpu),
                Series(WORKING_SET, {**CADVISOR, **labels}, memory),
                Series(WORKING_SET, {**CADVISOR, "job": "kubelet-2", **labels}, memory),
            ]
            if share == 1.0 and (target.namespace, pod) not in cgroups:  # once per pod, whatever its containers
                cgroups.add((target.namespace, pod))
                cgroup = {**CADVISOR, **labels, "container": ""}
                out += [
                    Series(WORKING_SET, cgroup, lambda o, m=memory: None if m(o) is None else 4 * m(o)),
                    Series(WORKING_SET, {**cgroup, "container": "POD"}, 900 * MIB_BYTES),
                    Series(CPU_USAGE, cgroup, lambda o, c=cpu: None if c(o) is None else 9 * c(o)),
                ]
            if t.oom and share == 1.0:
                # Killed at its limit on the day OOM_AT: the reason stays its last termination from then on.
                out += [
                    Series(
                        LAST_TERMINATED, {**KSM, **labels, "reason": "OOMKilled"}, lambda o: None if o < OOM_AT else 1.0
                    ),
                    Series(
                        LIMITS,
                        {**KSM, **labels, "resource": "memory", "unit": "byte"},
                        target.current.memory_limit_mib * MIB_BYTES,
                    ),
                ]
    return out
