"""`promtool test rules` cases generated from a stack's config and plan: the rules compute what the sizing model says.

Every case runs for prod and for a second config (other namespace, coefficients, limits, replicas, node price,
thresholds), and each expected number is computed here from that config, so a constant baked into the rules
fails one of them. Input series carry the labels a kube-prometheus-stack scrape adds (job, instance, endpoint,
service; image and id on cAdvisor) and the noise cAdvisor really exports (pod cgroup, pause container, a stale
duplicate), so a join that forgets `by`/`on` breaks here. kube-state-metrics is scraped under a job the rules
cannot know (`ksm`), alone or beside a second copy of every series (`kube-state-metrics`): every case gives the
same numbers both ways. Only series of the metric contract are fed.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from components.monitoring import names
from components.monitoring.rules import rule_groups, rules_file
from components.monitoring.selectors import label_replace_workload
from sizing.config import ROLES, Alert, StackConfig
from sizing.plan import Plan
from sizing.quantity import MIB_BYTES as MIB

STEP = "30s"
STEPS = 120  # one hour of samples at 30s
EVAL = "50m"  # after every `for:` of both configs, with the recording rules' own pending time
ROOT_DIR = Path(__file__).resolve().parents[3]
UNKNOWN_ROLE = "observer"
# How kube-state-metrics is scraped: under a job name the rules do not know, or twice with the same values (a second
# job, as kube-prometheus-stack's `kube-state-metrics`, or a second replica).
KSM_JOBS: dict[str, tuple[str, ...]] = {"ksm-job": ("ksm",), "ksm-twice": ("ksm", "kube-state-metrics")}
# Which `monitoring.alerts` entry sets each alert's threshold, for: and severity.
ALERT_SETTINGS = {
    names.ALERT_MEMORY_NEAR_LIMIT: "memory_near_limit",
    names.ALERT_OOM_KILLED: "oom_killed",
    names.ALERT_PREDICTION_DRIFT: "prediction_drift",
    names.ALERT_CAPACITY_LOW: "capacity_low",
    names.ALERT_MEMORY_OVERCOMMIT: "memory_overcommit",
    names.ALERT_NODE_POOL_AT_MAX: "node_pool_at_max",
    names.ALERT_HEAP_NEAR_LIMIT: "heap_near_limit",
}


def num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def series_name(metric: str, labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


def constant(value: float) -> str:
    return f"{num(value)}+0x{STEPS}"


def minutes(duration: str) -> float:
    units = {"s": 1 / 60, "m": 1, "h": 60}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)([smh])", duration))


# --- Go template functions the annotations use, as Prometheus renders them. ---


def humanize(v: float) -> str:
    if v == 0:
        return f"{v:.4g}"
    assert abs(v) >= 1, "small values are not used by these templates"
    prefix = ""
    for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"]:
        if abs(v) < 1000:
            break
        prefix, v = p, v / 1000
    return f"{v:.4g}{prefix}"


def humanize1024(v: float) -> str:
    if abs(v) <= 1:
        return f"{v:.4g}"
    prefix = ""
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"]:
        if abs(v) < 1024:
            break
        prefix, v = p, v / 1024
    return f"{v:.4g}{prefix}"


FILTERS = {"humanize": humanize, "humanize1024": humanize1024, "humanizePercentage": lambda v: f"{v * 100:.4g}%"}


def render(template: str, labels: dict[str, str], value: float) -> str:
    def one(match: re.Match[str]) -> str:
        expr = match.group(1).strip()
        if expr.startswith("$labels."):
            return labels[expr.removeprefix("$labels.")]
        head, _, fn = (part.strip() for part in expr.partition("|"))
        assert head == "$value" and fn in FILTERS, f"template not handled by the test: {expr}"
        return FILTERS[fn](value)

    return re.sub(r"{{(.*?)}}", one, template)


# --- A cluster as Prometheus scrapes it. ---


@dataclass
class Stack:
    config: StackConfig
    plan: Plan
    ksm_jobs: tuple[str, ...] = KSM_JOBS["ksm-job"]

    @property
    def ns(self) -> str:
        return self.config.kubernetes.namespace

    @property
    def backend(self) -> str:
        return next(n for n, w in self.config.workloads.items() if w.sized_by == "formula")

    @property
    def limit_mib(self) -> int:
        return self.plan.workloads[self.backend].memory_limit_mib

    @property
    def typical_mib(self) -> int:
        return self.config.capacity.memory_mib("typical")

    def predicted(self, users: dict[str, int]) -> int:
        formula = self.config.capacity.formula
        mib = formula.base_mib + sum(getattr(formula.per_role_mib, r) * users.get(r, 0) for r in ROLES)
        return mib * MIB

    def shapes(self) -> dict[str, int]:
        formula = self.config.capacity.formula
        out = {}
        for name, mix in self.config.capacity.shapes.items():
            mib = formula.users_mib(mix)
            if mib > 0:
                out[name] = mib
        return out

    def alert(self, name: str) -> dict[str, Any]:
        return next(r for g in rule_groups(self.config, self.plan) for r in g["rules"] if r.get("alert") == name)

    def settings(self, name: str) -> Alert:
        return getattr(self.config.monitoring.alerts, ALERT_SETTINGS[name])

    def expected_alert(self, name: str, labels: dict[str, str], value: float) -> dict[str, Any]:
        """The alert with the config's severity, its annotations rendered as Prometheus renders them."""
        rule = self.alert(name)
        full = {**labels, "severity": self.settings(name).severity}
        return {
            "exp_labels": full,
            "exp_annotations": {k: render(v, full, value) for k, v in rule["annotations"].items()},
        }


def pod_name(workload: str, i: int, statefulset: bool) -> str:
    hashes = ["x2k4q", "bv9tn", "m7wzr", "c4hdl", "q8snp"]
    return f"{workload}-{i}" if statefulset else f"{workload}-7d9c5b8f6-{hashes[i % len(hashes)]}"


@dataclass
class Cluster:
    stack: Stack
    series: list[dict[str, str]] = field(default_factory=list)

    def add(self, metric: str, labels: dict[str, str], values: str) -> None:
        self.series.append({"series": series_name(metric, labels), "values": values})

    def add_ksm(self, metric: str, values: str, **labels: str) -> None:
        """A kube-state-metrics series, once per job of the stack's `ksm_jobs`, the same values each time."""
        for i, job in enumerate(self.stack.ksm_jobs):
            scrape = {"job": job, "instance": f"10.4.1.{7 + i}:8080", "endpoint": "http", "service": f"{job}-svc"}
            self.add(metric, {**scrape, **labels}, values)

    def container(
        self,
        pod: str,
        container: str,
        *,
        ws_mib: float | None = None,
        request_mib: float | None = None,
        limit_mib: float | None = None,
        namespace: str | None = None,
        noise: bool = True,
    ) -> None:
        """cAdvisor working set (with its pod cgroup, pause and stale duplicate series) and kube-state-metrics."""
        ns = namespace or self.stack.ns
        if ws_mib is not None:
            base = {
                "job": "kubelet",
                "metrics_path": "/metrics/cadvisor",
                "instance": "10.128.0.2:10250",
                "node": "gke-hyperstudy-pool-a1",
                "endpoint": "https-metrics",
                "service": "kube-prometheus-stack-kubelet",
                "namespace": ns,
                "pod": pod,
            }
            cid = f"{abs(hash((ns, pod, container))) % 10**12:012x}"
            self.add(
                names.WORKING_SET,
                {**base, "container": container, "image": f"ghcr.io/hyperstudy/{container}:2.14.0", "id": cid},
                constant(ws_mib * MIB),
            )
            if noise:
                # The pod's cgroup (container=""), the pause container, and the last container's stale series.
                self.add(names.WORKING_SET, {**base, "container": "", "image": "", "id": f"pod-{cid}"}, constant(9e9))
                self.add(
                    names.WORKING_SET,
                    {**base, "container": "POD", "image": "registry.k8s.io/pause:3.9", "id": f"pause-{cid}"},
                    constant(8e9),
                )
                self.add(
                    names.WORKING_SET,
                    {**base, "container": container, "image": f"ghcr.io/hyperstudy/{container}:2.13.9", "id": "old"},
                    constant(ws_mib * MIB / 2),
                )
        for metric, mib in ((names.REQUESTS, request_mib), (names.LIMITS, limit_mib)):
            if mib is not None:
                self.add_ksm(
                    metric, constant(mib * MIB), namespace=ns, pod=pod, container=container,
                    node="gke-hyperstudy-pool-a1", uid=f"uid-{pod}", resource="memory", unit="byte",
                )  # fmt: skip

    def app(self, metric: str, pod: str, values: str, workload: str, **labels: str) -> None:
        self.add(
            metric,
            {
                "job": workload,
                "instance": "10.4.0.12:3000",
                "namespace": self.stack.ns,
                "pod": pod,
                "container": workload,
                "endpoint": "metrics",
                "service": workload,
                **labels,
            },
            values,
        )

    def backend_pod(
        self, pod: str, users: dict[str, int] | None = None, *, ws_mib: float | None = None, rss: bool = True
    ) -> None:
        stack = self.stack
        for role, count in (users or {}).items():
            self.app(names.CONNECTED_USERS, pod, constant(count), stack.backend, role=role)
        if rss:
            self.app(names.PROCESS_RSS, pod, constant(150 * MIB), stack.backend)
        w = stack.plan.workloads[stack.backend]
        self.container(
            pod, stack.backend, ws_mib=ws_mib, request_mib=w.memory_request_mib, limit_mib=w.memory_limit_mib
        )

    def nodes(self, count: int, values: str | None = None, first: int = 0) -> None:
        alloc = self.stack.plan.nodes.allocatable_memory_mib * MIB
        for i in range(first, first + count):
            node = f"gke-hyperstudy-pool-{i}"
            # honor_labels keeps kube-state-metrics' own namespace/pod on node series.
            own = {
                "namespace": "monitoring",
                "pod": "kube-state-metrics-6d4f9-h2x8c",
                "container": "kube-state-metrics",
            }
            self.add_ksm(names.NODE_INFO, values or constant(1), node=node, **own)
            self.add_ksm(names.NODE_ALLOCATABLE, constant(alloc), node=node, resource="memory", unit="byte", **own)


def sample(metric: str, value: float, **labels: str) -> dict[str, Any]:
    return {"labels": series_name(metric, labels), "value": float(value)}


def expr_test(expr: str, samples: list[dict[str, Any]], eval_time: str = EVAL) -> dict[str, Any]:
    return {"expr": expr, "eval_time": eval_time, "exp_samples": samples}


STACK_CASES = [(name, jobs) for name in ("prod", "staging") for jobs in KSM_JOBS]


@pytest.fixture(params=STACK_CASES, ids=[f"{name}-{jobs}" for name, jobs in STACK_CASES])
def stack(request: pytest.FixtureRequest) -> Stack:
    name, jobs = request.param
    config, plan = request.getfixturevalue(f"{name}_config"), request.getfixturevalue(f"{name}_plan")
    return Stack(config, plan, KSM_JOBS[jobs])


def fed_metrics(series: list[dict[str, str]]) -> set[str]:
    return {s["series"].split("{", 1)[0] for s in series}


@pytest.fixture
def promtool_test(run_promtool, tmp_path):
    """Run cases against the stack's rules file: `check(stack, cluster, expr_tests, alert_tests)`."""

    def check(
        stack: Stack, cluster: Cluster, exprs: list[dict] | None = None, alerts: list[dict] | None = None
    ) -> None:
        alerts = list(alerts or [])
        # The rules work on the metric contract alone: nothing else is fed.
        assert fed_metrics(cluster.series) <= set(names.CONTRACT), fed_metrics(cluster.series) - set(names.CONTRACT)
        for a in list(alerts):
            pending = minutes(stack.settings(a["alertname"]).for_)
            assert pending + 5 <= minutes(a["eval_time"]), "evaluate well after the alert's for:"
            if a["exp_alerts"] and pending >= 2 and a["eval_time"] == EVAL:
                # The condition holds from the start: one minute before `for:` has passed it is still pending.
                alerts.append({**a, "eval_time": f"{pending - 1:g}m", "exp_alerts": []})
        test = {
            "rule_files": ["rules.yaml"],
            "evaluation_interval": STEP,
            "tests": [
                {
                    "interval": STEP,
                    "input_series": cluster.series,
                    "promql_expr_test": exprs or [],
                    "alert_rule_test": alerts,
                }
            ],
        }
        run_promtool(
            "test", "rules", "test.yaml", files={"rules.yaml": rules_file(stack.config, stack.plan), "test.yaml": test}
        )

    return check


# --- Recording rules. ---


def test_prod_backend_pod_with_10_video_and_2_experimenters_is_predicted_at_300_mib(
    prod_config, prod_plan, promtool_test
):
    stack = Stack(prod_config, prod_plan)
    cluster = Cluster(stack)
    cluster.backend_pod("backend-0", {"participant_video": 10, "experimenter": 2}, ws_mib=300)
    sample_ = sample(names.PREDICTED, 314572800, namespace="hyperstudy", pod="backend-0")
    promtool_test(stack, cluster, [expr_test(names.PREDICTED, [sample_])])


def test_prediction_counts_missing_roles_as_zero_and_gives_base_without_users(stack, promtool_test):
    cluster = Cluster(stack)
    b = stack.backend
    pods = {
        f"{b}-0": {"participant_video": 10, "experimenter": 2, UNKNOWN_ROLE: 4},  # an unknown role is ignored
        f"{b}-1": {"participant_video": 4},  # only some roles have series
        f"{b}-2": {},  # scraped, but the labelled gauge has no series yet: base only
    }
    for pod, users in pods.items():
        cluster.backend_pod(pod, users, ws_mib=200)
    cluster.backend_pod(f"{b}-3", {"experimenter": 1}, ws_mib=200, rss=False)  # anchored by its users alone
    # Another workload exporting the same gauge is not a backend pod.
    cluster.app(names.CONNECTED_USERS, pod_name("pod-router", 0, False), constant(7), "pod-router", role="experimenter")
    pods[f"{b}-3"] = {"experimenter": 1}
    expected = [sample(names.PREDICTED, stack.predicted(u), namespace=stack.ns, pod=p) for p, u in pods.items()]
    assert stack.predicted({}) == stack.config.capacity.formula.base_mib * MIB
    accuracy = [
        sample(names.PREDICTION_ACCURACY, 200 * MIB / stack.predicted(u), namespace=stack.ns, pod=p)
        for p, u in pods.items()
    ]
    promtool_test(
        stack, cluster, [expr_test(names.PREDICTED, expected), expr_test(names.PREDICTION_ACCURACY, accuracy)]
    )


def test_memory_and_cost_are_attributed_to_roles(stack, promtool_test):
    cluster = Cluster(stack)
    b = stack.backend
    cluster.backend_pod(f"{b}-0", {"participant_video": 10, "experimenter": 2, UNKNOWN_ROLE: 3}, ws_mib=250)
    cluster.backend_pod(f"{b}-1", {"participant_video": 4, "experimenter": 1}, ws_mib=250)
    cluster.nodes(stack.plan.nodes.min)
    per_role = stack.config.capacity.formula.per_role_mib
    users = {"participant_video": 14, "experimenter": 3}  # no participant_no_video series: no such role sample
    attributed = {role: getattr(per_role, role) * n * MIB for role, n in users.items()}
    total = sum(attributed.values())
    cost = stack.plan.nodes.min * stack.plan.cost.node_usd_month
    promtool_test(
        stack,
        cluster,
        [
            expr_test(
                names.MEMORY_BY_ROLE,
                [sample(names.MEMORY_BY_ROLE, v, namespace=stack.ns, role=r) for r, v in attributed.items()],
            ),
            expr_test(
                names.COST_BY_ROLE,
                [
                    sample(names.COST_BY_ROLE, v / total * cost, namespace=stack.ns, role=r)
                    for r, v in attributed.items()
                ],
            ),
        ],
    )


def slots_expected(stack: Stack, working_sets: list[float]) -> dict[str, int]:
    """The definition of `python -m sizing slots`, with the pods' live working set in place of typical load."""
    return {
        shape: sum(max(0, math.floor((stack.limit_mib - ws) / mib)) for ws in working_sets)
        for shape, mib in stack.shapes().items()
    }


def test_slots_of_every_shape_follow_the_definition(stack, promtool_test):
    cluster = Cluster(stack)
    # At typical load, full to the limit, over it (a limit lowered under a running pod), and in between.
    working_sets = [stack.typical_mib, stack.limit_mib, stack.limit_mib + 100, stack.typical_mib + 37]
    for i, ws in enumerate(working_sets):
        cluster.backend_pod(f"{stack.backend}-{i}", {"participant_video": 1}, ws_mib=ws)
    expected = slots_expected(stack, working_sets)
    assert set(expected) == set(stack.shapes()) and "observers" not in expected
    samples = [sample(names.SLOTS, v, shape=s) for s, v in expected.items()]
    promtool_test(stack, cluster, [expr_test(names.SLOTS, samples)])


def test_slots_at_typical_load_equal_the_sizing_cli(prod_config, prod_plan, promtool_test):
    stack = Stack(prod_config, prod_plan)
    cluster = Cluster(stack)
    replicas = prod_plan.workloads[stack.backend].replicas
    for i in range(replicas):
        cluster.backend_pod(f"{stack.backend}-{i}", ws_mib=stack.typical_mib)
    samples = []
    for shape, mix in prod_config.capacity.shapes.items():
        args = ["--video", mix.participant_video, "--no-video", mix.participant_no_video]
        args += ["--experimenters", mix.experimenter]
        done = subprocess.run(
            [sys.executable, "-m", "sizing", "slots", "--stack", "prod", "--json", *map(str, args)],
            cwd=ROOT_DIR, capture_output=True, text=True, check=True,
        )  # fmt: skip
        total = json.loads(done.stdout)["total"]
        samples.append(sample(names.SLOTS, total, shape=shape))
    # The prod example: 512Mi limit, 165Mi typical, medium 200 MiB: one per pod.
    assert sample(names.SLOTS, 2, shape="medium") in samples
    promtool_test(stack, cluster, [expr_test(names.SLOTS, samples)])


def test_workload_working_set_requests_limits_and_ratios(stack, promtool_test):
    cluster = Cluster(stack)
    ws_total: dict[str, int] = {}
    for k, (name, w) in enumerate(sorted(stack.plan.workloads.items())):
        statefulset = name in (stack.backend, "redis")
        for i in range(w.replicas):
            ws = max(1, w.memory_request_mib // 2 + 3 * i + k)
            cluster.container(
                pod_name(name, i, statefulset), name,
                ws_mib=ws, request_mib=w.memory_request_mib, limit_mib=w.memory_limit_mib,
            )  # fmt: skip
            ws_total[name] = ws_total.get(name, 0) + ws
    # Pods of no workload, and a workload's pod name in another namespace, are not counted.
    cluster.container("debug-shell-0", "debug", ws_mib=999, request_mib=1, limit_mib=1000)
    cluster.container(f"{stack.backend}-0", stack.backend, ws_mib=999, request_mib=1, limit_mib=1, namespace="other")
    plan = stack.plan.workloads
    req = {n: w.replicas * w.memory_request_mib * MIB for n, w in plan.items()}
    lim = {n: w.replicas * w.memory_limit_mib * MIB for n, w in plan.items()}
    ws = {n: v * MIB for n, v in ws_total.items()}

    def per_workload(metric: str, values: dict[str, float]) -> dict[str, Any]:
        return expr_test(metric, [sample(metric, v, namespace=stack.ns, workload=n) for n, v in values.items()])

    efficiency = sum(ws.values()) / sum(req.values())
    promtool_test(
        stack,
        cluster,
        [
            per_workload(names.WORKLOAD_WORKING_SET, ws),
            per_workload(names.WORKLOAD_REQUESTS, req),
            per_workload(names.WORKLOAD_LIMITS, lim),
            per_workload(names.REQUEST_UTILISATION, {n: ws[n] / req[n] for n in ws}),
            per_workload(names.LIMIT_UTILISATION, {n: ws[n] / lim[n] for n in ws}),
            per_workload(names.WORKING_SET_MAX_1D, ws),
            per_workload(names.WORKING_SET_AVG_1D, ws),
            expr_test(names.EFFICIENCY, [sample(names.EFFICIENCY, efficiency, namespace=stack.ns)]),
        ],
    )


def test_cost_is_nodes_times_the_node_price(stack, promtool_test):
    cluster = Cluster(stack)
    nodes = stack.plan.nodes
    cluster.nodes(nodes.min)
    # The autoscaler adds nodes up to the maximum at 20m; a second kube-state-metrics replica duplicates one.
    cluster.nodes(nodes.max - nodes.min, values=f"_x40 1+0x{STEPS - 40}", first=nodes.min)
    own = {"namespace": "monitoring", "pod": "kube-state-metrics-6d4f9-z9r2k", "container": "kube-state-metrics"}
    cluster.add_ksm(names.NODE_INFO, constant(1), node="gke-hyperstudy-pool-0", instance="10.4.2.9:8080", **own)
    price, baseline = stack.plan.cost.node_usd_month, stack.plan.cost.baseline_monthly_usd
    ns = stack.ns  # cluster-level series carry the stack's namespace

    def at(eval_time: str, count: int) -> list[dict[str, Any]]:
        cost = count * price
        ratio = (baseline - cost) / baseline
        return [
            expr_test(names.NODES, [sample(names.NODES, count, namespace=ns)], eval_time),
            expr_test(names.COST, [sample(names.COST, cost, namespace=ns)], eval_time),
            expr_test(names.SAVINGS, [sample(names.SAVINGS, baseline - cost, namespace=ns)], eval_time),
            expr_test(names.SAVINGS_RATIO, [sample(names.SAVINGS_RATIO, ratio, namespace=ns)], eval_time),
            expr_test(names.COST_MAX_1D, [sample(names.COST_MAX_1D, cost, namespace=ns)], eval_time),
        ]

    avg = expr_test(names.COST_AVG_1D, [sample(names.COST_AVG_1D, nodes.min * price, namespace=ns)], "15m")
    promtool_test(stack, cluster, [*at("15m", nodes.min), avg, *at(EVAL, nodes.max)])


def test_two_stacks_sharing_one_prometheus_record_their_own_cluster_series(
    prod_config, prod_plan, staging_config, staging_plan, run_promtool
):
    """Both stacks' rules in one Prometheus over one cluster: each cluster-level record once per stack, by namespace."""
    stacks = [Stack(prod_config, prod_plan), Stack(staging_config, staging_plan)]
    assert stacks[0].ns != stacks[1].ns
    cluster = Cluster(stacks[0])
    count = 2
    cluster.nodes(count)
    b = stacks[0].backend
    cluster.backend_pod(f"{b}-0", {"participant_video": 3, "experimenter": 1}, ws_mib=200)
    exprs: dict[str, list[dict[str, Any]]] = {}
    for stack in stacks:
        cost = count * stack.plan.cost.node_usd_month
        baseline = stack.plan.cost.baseline_monthly_usd
        values = {
            names.NODES: count,
            names.COST: cost,
            names.SAVINGS: baseline - cost,
            names.SAVINGS_RATIO: (baseline - cost) / baseline,
            names.COST_MAX_1D: cost,
            names.COST_AVG_1D: cost,
        }
        for metric, value in values.items():
            exprs.setdefault(metric, []).append(sample(metric, value, namespace=stack.ns))
    # Only prod's backend pods run (two roles with users): the cost by role is prod's alone.
    by_role = f"count by (namespace) ({names.COST_BY_ROLE})"
    exprs[by_role] = [{"labels": f'{{namespace="{stacks[0].ns}"}}', "value": 2.0}]
    files = {f"rules-{i}.yaml": rules_file(s.config, s.plan) for i, s in enumerate(stacks)}
    test = {
        "rule_files": sorted(files),
        "evaluation_interval": STEP,
        "tests": [
            {
                "interval": STEP,
                "input_series": cluster.series,
                "promql_expr_test": [expr_test(metric, samples, "10m") for metric, samples in exprs.items()],
            }
        ],
    }
    run_promtool("test", "rules", "test.yaml", files={**files, "test.yaml": test})


def test_label_replace_takes_the_longest_workload_name(run_promtool):
    """`pod-router-0` belongs to pod-router although `pod` + a Deployment suffix `router-0` would also match."""
    workloads = ["pod", "backend", "pod-router"]
    record = "pod:test_workload:label_replace"
    rules = {"groups": [{"name": "t", "rules": [{"record": record, "expr": label_replace_workload("up", workloads)}]}]}
    pods = {
        "pod-router-7d9c5b8f6-x2k4q": "pod-router",
        "pod-router-0": "pod-router",
        "pod-0": "pod",
        "pod-5f7b9c-abcde": "pod",
        "backend-1": "backend",
    }
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": STEP,
        "tests": [
            {
                "interval": STEP,
                "input_series": [
                    {"series": series_name("up", {"job": "x", "pod": p}), "values": constant(1)} for p in pods
                ],
                "promql_expr_test": [
                    expr_test(record, [sample(record, 1, job="x", pod=p, workload=w) for p, w in pods.items()], "1m")
                ],
            }
        ],
    }
    run_promtool("test", "rules", "test.yaml", files={"rules.yaml": rules, "test.yaml": test})


# --- Alerts: one case that fires (labels and annotations exact) and one that stays silent. ---


def alert_test(name: str, expected: list[dict[str, Any]], eval_time: str = EVAL) -> dict[str, Any]:
    return {"eval_time": eval_time, "alertname": name, "exp_alerts": expected}


@pytest.mark.parametrize("fires", [True, False], ids=["fires", "silent"])
def test_memory_near_limit(stack, promtool_test, fires):
    cluster = Cluster(stack)
    name = names.ALERT_MEMORY_NEAR_LIMIT
    t = stack.config.monitoring.alerts.memory_near_limit.threshold
    limit = stack.plan.workloads["frontend"].memory_limit_mib
    ws = math.ceil(limit * (1 + t) / 2) if fires else math.floor(limit * t / 2)
    pod = pod_name("frontend", 0, False)
    cluster.container(pod, "frontend", ws_mib=ws, request_mib=32, limit_mib=limit)
    # Not this alert's business: a container without a limit, and another namespace.
    cluster.container(pod_name("frontend", 1, False), "frontend", ws_mib=5000, request_mib=32)
    cluster.container(pod, "frontend", ws_mib=limit, limit_mib=limit, namespace="other", noise=False)
    labels = {"namespace": stack.ns, "pod": pod, "container": "frontend"}
    expected = [stack.expected_alert(name, labels, ws / limit)] if fires else []
    promtool_test(stack, cluster, alerts=[alert_test(name, expected)])


@pytest.mark.parametrize("case", ["oom", "other-reason", "old-oom"])
def test_container_oom_killed(stack, promtool_test, case):
    cluster = Cluster(stack)
    name = names.ALERT_OOM_KILLED
    pod = f"{stack.backend}-0"
    restarts = "0+0x79 1+0x40" if case != "old-oom" else constant(1)  # a restart at 40m, or one long ago
    reason = "Error" if case == "other-reason" else "OOMKilled"
    labels = {"namespace": stack.ns, "pod": pod, "container": stack.backend}
    cluster.add_ksm(names.RESTARTS, restarts, uid=f"uid-{pod}", **labels)
    terminated = "_x80 1+0x40" if case != "old-oom" else constant(1)
    cluster.add_ksm(names.LAST_TERMINATED, terminated, uid=f"uid-{pod}", reason=reason, **labels)
    expected = [stack.expected_alert(name, labels, 1)] if case == "oom" else []
    promtool_test(stack, cluster, alerts=[alert_test(name, expected, "42m")])


@pytest.mark.parametrize("fires", [True, False], ids=["fires", "silent"])
def test_memory_prediction_drift(stack, promtool_test, fires):
    cluster = Cluster(stack)
    name = names.ALERT_PREDICTION_DRIFT
    t = stack.config.monitoring.alerts.prediction_drift.threshold
    drift = 2 * t if fires else t / 2
    users = {"participant_video": 10, "experimenter": 2}
    predicted = stack.predicted(users)
    expected = []
    for i, sign in enumerate((1, -1)):  # above and below the prediction
        pod = f"{stack.backend}-{i}"
        ws = predicted * (1 + sign * drift)
        cluster.backend_pod(pod, users, ws_mib=ws / MIB)
        value = abs(ws / predicted - 1)
        expected.append(stack.expected_alert(name, {"namespace": stack.ns, "pod": pod}, value))
    promtool_test(stack, cluster, alerts=[alert_test(name, expected if fires else [])])


@pytest.mark.parametrize("fires", [True, False], ids=["fires", "silent"])
def test_capacity_low(stack, promtool_test, fires):
    cluster = Cluster(stack)
    name = names.ALERT_CAPACITY_LOW
    t = stack.config.monitoring.alerts.capacity_low.threshold
    shape = stack.config.monitoring.capacity_shape
    shape_mib = stack.shapes()[shape]
    replicas = stack.plan.workloads[stack.backend].replicas
    if fires:
        left = math.ceil(t) - 1  # the most slots that still fire: all of them on the first pod
        working_sets = [stack.limit_mib - left * shape_mib] + [stack.limit_mib - shape_mib + 1] * (replicas - 1)
    else:
        working_sets = [stack.typical_mib] * replicas
    for i, ws in enumerate(working_sets):
        cluster.backend_pod(f"{stack.backend}-{i}", ws_mib=ws)
    slots = slots_expected(stack, working_sets)[shape]
    assert (slots < t) == fires
    expected = [stack.expected_alert(name, {"shape": shape}, slots)] if fires else []
    promtool_test(stack, cluster, alerts=[alert_test(name, expected)])


@pytest.mark.parametrize("case", ["overcommitted", "fits", "single-node"])
def test_memory_overcommit(stack, promtool_test, case):
    """kubernetes-mixin's form: Σ requests − (Σ allocatable − the largest node's) > threshold, contract series only."""
    cluster = Cluster(stack)
    name = names.ALERT_MEMORY_OVERCOMMIT
    t = stack.config.monitoring.alerts.memory_overcommit.threshold
    node_count = 1 if case == "single-node" else 2
    cluster.nodes(node_count)
    alloc = stack.plan.nodes.allocatable_memory_mib
    ours = 0
    for i in range(stack.plan.workloads[stack.backend].replicas):
        cluster.backend_pod(f"{stack.backend}-{i}", ws_mib=100)
        ours += stack.plan.workloads[stack.backend].memory_request_mib
    # Another namespace's pod counts too (cluster-wide, as kubernetes-mixin): 512 MiB past the threshold, or short.
    margin = -512 if case == "fits" else 512
    big = alloc - ours + margin + t / MIB
    cluster.container("etl-7d9c5b8f6-q2w4z", "etl", ws_mib=10, request_mib=big, namespace="batch")
    over = (ours + big) * MIB - (node_count - 1) * alloc * MIB
    assert over == t + margin * MIB or case == "single-node"
    # The result carries the stack's namespace, as the cluster-level records do.
    expected = [stack.expected_alert(name, {"namespace": stack.ns}, over)] if case == "overcommitted" else []
    if expected and t == 0:
        assert "512MiB" in expected[0]["exp_annotations"]["description"]
    promtool_test(stack, cluster, alerts=[alert_test(name, expected)])


@pytest.mark.parametrize("fires", [True, False], ids=["fires", "silent"])
def test_node_pool_at_max(stack, promtool_test, fires):
    cluster = Cluster(stack)
    name = names.ALERT_NODE_POOL_AT_MAX
    t = stack.config.monitoring.alerts.node_pool_at_max.threshold
    count = stack.plan.nodes.max if fires else stack.plan.nodes.max - int(t) - 1
    cluster.nodes(count)
    expected = [stack.expected_alert(name, {"namespace": stack.ns}, count)] if fires else []
    promtool_test(stack, cluster, alerts=[alert_test(name, expected)])


@pytest.mark.parametrize("fires", [True, False], ids=["fires", "silent"])
def test_heap_near_limit(stack, promtool_test, fires):
    """Each Node.js workload against its own ceiling: bytes that fill pod-router's heap are little for the backend."""
    cluster = Cluster(stack)
    name = names.ALERT_HEAP_NEAR_LIMIT
    t = stack.config.monitoring.alerts.heap_near_limit.threshold
    ratio = (1 + t) / 2 if fires else t / 2
    ceilings = {n: w.runtime.memory_mib for n, w in stack.plan.workloads.items() if w.runtime.kind == "nodejs"}
    assert set(ceilings) == {stack.backend, "pod-router", "metrics-service"}
    router_heap = math.ceil(ceilings["pod-router"] * MIB * ratio)
    heaps = {
        (stack.backend, f"{stack.backend}-0"): math.ceil(ceilings[stack.backend] * MIB * ratio),
        (stack.backend, f"{stack.backend}-1"): router_heap,
        ("pod-router", pod_name("pod-router", 0, False)): router_heap,
        ("metrics-service", pod_name("metrics-service", 0, False)): math.ceil(
            ceilings["metrics-service"] * MIB * t / 2
        ),
    }
    expected = []
    for (workload, pod), heap in heaps.items():
        cluster.app(names.NODEJS_HEAP_USED, pod, constant(heap), workload)
        value = heap / (ceilings[workload] * MIB)
        if value > t:
            expected.append(stack.expected_alert(name, {"namespace": stack.ns, "pod": pod}, value))
    assert len(expected) == (2 if fires else 0)
    promtool_test(stack, cluster, alerts=[alert_test(name, expected)])


def test_prod_annotations_read_as_written(prod_config, prod_plan):
    """The test's template renderer against literal text, so the generated expectations cannot drift together."""
    stack = Stack(prod_config, prod_plan)
    got = stack.expected_alert(
        names.ALERT_MEMORY_NEAR_LIMIT, {"namespace": "hyperstudy", "pod": "p", "container": "c"}, 0.9375
    )
    assert got["exp_annotations"] == {
        "summary": "Container c of p is near its memory limit",
        "description": "Container c of pod hyperstudy/p uses 93.75% of its memory limit (alert above 90%); "
        "at the limit the kernel OOM-kills it.",
        "runbook_url": "https://github.com/hyperstudy/hyperstudy-infra/blob/main/README.md#hyperstudymemorynearlimit",
    }
    assert got["exp_labels"]["severity"] == "warning"
    over = stack.expected_alert(names.ALERT_MEMORY_OVERCOMMIT, {}, 512 * MIB)["exp_annotations"]["description"]
    assert over.startswith("The cluster's memory requests exceed by 512MiB what")
    nodes = stack.expected_alert(names.ALERT_NODE_POOL_AT_MAX, {}, 3)["exp_annotations"]["description"]
    assert nodes.startswith("The cluster runs 3 nodes; the node pool's autoscaling maximum is 3:")


ALERT_CASES = {
    names.ALERT_MEMORY_NEAR_LIMIT: test_memory_near_limit,
    names.ALERT_OOM_KILLED: test_container_oom_killed,
    names.ALERT_PREDICTION_DRIFT: test_memory_prediction_drift,
    names.ALERT_CAPACITY_LOW: test_capacity_low,
    names.ALERT_MEMORY_OVERCOMMIT: test_memory_overcommit,
    names.ALERT_NODE_POOL_AT_MAX: test_node_pool_at_max,
    names.ALERT_HEAP_NEAR_LIMIT: test_heap_near_limit,
}


def test_every_alert_has_cases(prod_config, prod_plan):
    """Every alert the rules define (and names.py lists) has a fires/silent case above."""
    defined = {r["alert"] for g in rule_groups(prod_config, prod_plan) for r in g["rules"] if "alert" in r}
    listed = {v for k, v in vars(names).items() if k.startswith("ALERT_")}
    assert defined == listed == set(ALERT_CASES)
