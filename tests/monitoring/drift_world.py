"""A cluster's planned containers over days, for the drift rules and HyperStudyContainerRequestDrift: what promtool
(tests/monitoring/test_drift_promtool.py) and the real Prometheus server (test_drift_prometheus.py) are fed.

Usage is given per minute as segments of constant CPU rate (cores) and working set (bytes); every container's series
are those cAdvisor and kube-state-metrics export (scrape labels the rules cannot know, cAdvisor's pod cgroup beside
the container, kube-state-metrics scraped twice), so a rule that forgets to deduplicate or to select the planned
containers counts them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from monitoring import names
from monitoring.rules import ALERTS_GROUP, DAILY_GROUP, RECORDING_GROUP, rule_groups
from sizing.config.stack import StackConfig
from sizing.core.quantity import MIB_BYTES as MIB
from sizing.observe import contract
from sizing.plan.types import Plan

DRIFT_RECORDS = {
    value for key, value in vars(names).items() if key.startswith("CONTAINER_") and key != "CONTAINER_LIMIT_UTILISATION"
}
KSM_JOBS = ("ksm", "kube-state-metrics")
MINUTE = 60


@dataclass(frozen=True)
class Segment:
    """`minutes` of constant use: CPU in cores, working set in bytes."""

    minutes: int
    cores: float
    bytes: float


@dataclass(frozen=True)
class Container:
    """One container of one pod, its request and limit from the plan, and its use from `start` (minutes) on."""

    namespace: str
    pod: str
    container: str
    cpu_request: float  # cores
    memory_request: float  # bytes
    memory_limit: float  # bytes
    use: tuple[Segment, ...]
    start: int = 0

    @property
    def end(self) -> int:
        return self.start + sum(s.minutes for s in self.use)

    def cores_at(self, minute: int) -> float:
        t = self.start
        for s in self.use:
            if minute < t + s.minutes:
                return s.cores
            t += s.minutes
        return self.use[-1].cores

    def bytes_at(self, minute: int) -> float:
        t = self.start
        for s in self.use:
            if minute < t + s.minutes:
                return s.bytes
            t += s.minutes
        return self.use[-1].bytes

    def counter_at(self, minute: int) -> float:
        """CPU seconds used by `minute` (minutes since the container started)."""
        total, t = 0.0, self.start
        for s in self.use:
            span = min(s.minutes, max(0, minute - t))
            total += span * MINUTE * s.cores
            t += s.minutes
        return total


def planned(config: StackConfig, plan: Plan, workload: str, container: str | None = None) -> tuple[float, float, float]:
    """(CPU request in cores, memory request and limit in bytes) the plan gives a workload's container."""
    w = plan.pool_workloads[workload]
    sized = next((c for c in w.sidecars if c.name == container), w) if container else w
    return sized.cpu_request_m / 1000, sized.memory_request_mib * MIB, sized.memory_limit_mib * MIB


def drift_rules(config: StackConfig, plan: Plan) -> dict:
    """The stack's rules file cut to the drift records and HyperStudyContainerRequestDrift: they read nothing else."""
    groups = []
    for group in rule_groups(config, plan):
        if group["name"] not in (RECORDING_GROUP, DAILY_GROUP, ALERTS_GROUP):
            continue
        kept = [
            r for r in group["rules"] if r.get("record") in DRIFT_RECORDS or r.get("alert") == names.ALERT_REQUEST_DRIFT
        ]
        groups.append({**group, "rules": kept})
    assert {r.get("record") for g in groups for r in g["rules"]} - {None} == DRIFT_RECORDS
    return {"groups": groups}


def series_of(c: Container) -> list[tuple[str, dict[str, str], Callable[[int], float | None]]]:
    """Every series the container gives: (metric, labels, value at a minute or None before it started)."""
    kubelet = {
        "job": "kubelet",
        "instance": "10.128.0.2:10250",
        "node": "gke-pool-0",
        "metrics_path": "/metrics/cadvisor",
    }
    own = {"namespace": c.namespace, "pod": c.pod}

    def live(value: Callable[[int], float]) -> Callable[[int], float | None]:
        return lambda minute: value(minute) if c.start <= minute else None

    out = [
        (contract.CPU_USAGE, {**kubelet, **own, "container": c.container, "id": f"/{c.pod}/{c.container}"},
         live(c.counter_at)),
        (contract.WORKING_SET, {**kubelet, **own, "container": c.container, "id": f"/{c.pod}/{c.container}"},
         live(c.bytes_at)),
        # The pod's cgroup: every container of the pod and more.
        (contract.CPU_USAGE, {**kubelet, **own, "container": "", "id": f"/{c.pod}"},
         live(lambda m: 9 * c.counter_at(m))),
        (contract.WORKING_SET, {**kubelet, **own, "container": "", "id": f"/{c.pod}"}, live(lambda m: 9e9)),
    ]  # fmt: skip
    for i, job in enumerate(KSM_JOBS):
        ksm = {"job": job, "instance": f"10.4.1.{7 + i}:8080", **own, "container": c.container, "uid": f"uid-{c.pod}"}
        out += [
            (contract.REQUESTS, {**ksm, "resource": "cpu", "unit": "core"}, live(lambda m: c.cpu_request)),
            (contract.REQUESTS, {**ksm, "resource": "memory", "unit": "byte"}, live(lambda m: c.memory_request)),
            (contract.LIMITS, {**ksm, "resource": "memory", "unit": "byte"}, live(lambda m: c.memory_limit)),
        ]
    return out


def promtool_values(value: Callable[[int], float | None], minutes: int) -> str:
    """promtool's expanding notation for one sample a minute over [0, minutes]: runs of equal steps folded."""
    points = [value(m) for m in range(minutes + 1)]
    parts: list[str] = []
    i = 0
    while i < len(points):
        if points[i] is None:
            j = i
            while j < len(points) and points[j] is None:
                j += 1
            parts.append(f"_x{j - i}")
            i = j
            continue
        j = i + 1
        step = None
        while j < len(points) and points[j] is not None:
            d = points[j] - points[j - 1]
            if step is None:
                step = d
            elif abs(d - step) > 1e-9 * max(1.0, abs(step)):
                break
            j += 1
        n = j - i - 1
        start = points[i]
        parts.append(f"{_num(start)}{'+' if (step or 0) >= 0 else '-'}{_num(abs(step or 0))}x{n}")
        i = j
    return " ".join(parts)


def _num(value: float) -> str:
    return repr(round(float(value), 9))


def input_series(containers: Sequence[Container], minutes: int) -> list[dict[str, str]]:
    found = []
    for c in containers:
        for metric, labels, value in series_of(c):
            inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            found.append({"series": f"{metric}{{{inner}}}", "values": promtool_values(value, minutes)})
    return found


# --- The alert's text as Prometheus renders it, with the figures its templates query. ---

QUERY = re.compile(
    r'{{ with printf "([^{"]+)\{[^"]*\}" [^}]*\| query }}{{ \. \| first \| value \| (\w+) }}(B?){{ end }}'
)
AND_CHAIN = re.compile(r"{{ (?:else )?if and \(eq \$labels\.reason \"(\w+)\"\) \(eq \$labels\.resource \"(\w+)\"\) }}")


def humanize(v: float) -> str:
    """Prometheus' humanize for the CPU figures (cores: 0.05 → 50m)."""
    for factor, prefix in ((1, ""), (1e-3, "m"), (1e-6, "µ")):
        if abs(v) >= factor or prefix == "µ":
            return f"{v / factor:.4g}{prefix}"
    raise AssertionError(v)


def humanize1024(v: float) -> str:
    prefix = ""
    for p in ["ki", "Mi", "Gi", "Ti"]:
        if abs(v) < 1024:
            break
        prefix, v = p, v / 1024
    return f"{v:.4g}{prefix}"


def render(template: str, labels: dict[str, str], value: float, figures: dict[str, float]) -> str:
    """The summary or description for `labels`: the branch of its reason and resource, each queried figure from
    `figures` (record name → value), `$value` and the labels."""
    chosen = template
    if AND_CHAIN.search(template):
        head, rest = template.split("{{ if and ", 1)
        rest = "{{ if and " + rest
        body, tail = rest.rsplit("{{ end }}", 1)
        pieces = AND_CHAIN.split(body)
        # ['', reason, resource, text, reason, resource, text, ...]
        branch = next(
            pieces[i + 2]
            for i in range(1, len(pieces), 3)
            if (pieces[i], pieces[i + 1]) == (labels["reason"], labels["resource"])
        )
        chosen = head + branch + tail
    chosen = re.sub(
        r'{{ if eq \$labels\.reason "(\w+)" }}(.*?){{ else }}(.*?){{ end }}',
        lambda m: m.group(2) if labels["reason"] == m.group(1) else m.group(3),
        chosen,
    )
    fns = {"humanize": humanize, "humanize1024": humanize1024}
    chosen = QUERY.sub(lambda m: fns[m.group(2)](figures[m.group(1)]) + m.group(3), chosen)
    chosen = chosen.replace("{{ $value | humanizePercentage }}", f"{value * 100:.4g}%")
    return re.sub(r"{{ \$labels\.(\w+) }}", lambda m: labels[m.group(1)], chosen)
