"""`promtool test rules` cases generated from a stack's config and plan: the rules compute what the sizing model says.

Every case runs for prod and for a second config (other namespace, coefficients, limits, replicas, node price,
thresholds), and each expected number is computed here from that config, so a constant baked into the rules
fails one of them. Input series carry the labels a kube-prometheus-stack scrape adds (job, instance, endpoint,
service; image and id on cAdvisor) and the noise cAdvisor really exports (pod cgroup, pause container, a stale
duplicate), so a join that forgets `by`/`on` breaks here. kube-state-metrics is scraped under a job the rules
cannot know (`ksm`), alone or beside a second copy of every series (`kube-state-metrics`): every case gives the
same numbers both ways. Every pod kube-state-metrics knows has its `kube_pod_info` (the node it is scheduled on)
and its `kube_pod_status_phase` series (1 for its phase, 0 for the other four), every node its `kube_node_labels`
with the node pool label; the cluster may hold nodes of another pool. Only series of the metric contract are fed.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from monitoring import names
from monitoring.rules import alert_settings, rule_groups, rules_file
from sizing.config.loader import load_stack
from sizing.config.monitoring import Alert
from sizing.config.stack import StackConfig
from sizing.core.capacity import slots as sizing_slots
from sizing.core.model import ROLES
from sizing.core.quantity import MIB_BYTES as MIB
from sizing.observe import contract
from sizing.observe.promql import label_replace_workload
from sizing.plan.build import build_plan
from sizing.plan.pool_name import stack_pool_name
from sizing.plan.types import Plan
from tests.monitoring import test_drift_promtool as drift_cases
from tests.promtool_batch import PromtoolBatch, one_worker_runs_each_module
from tests.sizing.stacks import run_cli

# Real programs (Debian's prometheus, promtool, alertmanager): the artifact layer, outside `make unit`.
pytestmark = pytest.mark.programs

STEP = "30s"
EVALUATION_INTERVAL = "1m"
STEPS = 120  # one hour of samples at 30s
# promtool evaluates every group at each step up to the last eval_time, whatever the group's interval: a minute
# (Prometheus' default) rather than the recording groups' 30 s halves its work, and every `for:` and eval_time here
# is whole minutes, so an alert goes pending and fires at the same times.
EVALUATION_INTERVAL = "1m"
EVAL = "50m"  # after every `for:` of both configs, with the recording rules' own pending time
ROOT_DIR = Path(__file__).resolve().parents[2]
UNKNOWN_ROLE = "observer"
# How kube-state-metrics is scraped: under a job name the rules do not know, or twice with the same values (a second
# job, as kube-prometheus-stack's `kube-state-metrics`, or a second replica).
KSM_JOBS: dict[str, tuple[str, ...]] = {"ksm-job": ("ksm",), "ksm-twice": ("ksm", "kube-state-metrics")}
# A pod's phases as kube-state-metrics exports them: one series each, 1 for the current phase.
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
ACTIVE_PHASES = ("Pending", "Running")
# Another node pool of a shared cluster: its nodes are not the stack's.
OTHER_POOL = "default-pool"
# A surge upgrade's versions: the pool's nodes before it, and the surge node's (kube_node_info's kubelet_version).
OLD_KUBELET, NEW_KUBELET = "v1.33.4-gke.1245000", "v1.33.5-gke.1080000"
UNSCHEDULED = ""  # kube_pod_info's node of a Pending pod the scheduler has not placed yet


def num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def series_name(metric: str, labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


def constant(value: float) -> str:
    return f"{num(value)}+0x{STEPS}"


def present_since(value: float, step: int) -> str:
    """`value` from sample `step` on (nothing before): a node the autoscaler adds."""
    return constant(value) if step == 0 else f"_x{step} {num(value)}+0x{STEPS - step}"


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


def humanize_duration(v: float) -> str:
    """Prometheus' humanizeDuration for the values these templates show (at least a second)."""
    assert v >= 1, "short durations are not used by these templates"
    seconds, minutes, hours, days = int(v) % 60, int(v) // 60 % 60, int(v) // 3600 % 24, int(v) // 86400
    if days:
        return f"{days}d {hours}h {minutes}m {seconds}s"
    if hours:
        return f"{hours}h {minutes}m {seconds}s"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{v:.4g}s"


FILTERS = {
    "humanize": humanize,
    "humanize1024": humanize1024,
    "humanizePercentage": lambda v: f"{v * 100:.4g}%",
    "humanizeDuration": humanize_duration,
}


# `{{ if eq $labels.<name> "<value>" }}…{{ else if eq … }}…{{ else }}…{{ end }}`, not nested: the one conditional the
# annotations use (HyperStudyScheduledScalingFailed's text for its `reason`).
IF_CHAIN = re.compile(r"{{ if (.*?) }}(.*?){{ end }}", re.S)
ELSE = re.compile(r"{{ else(?: if (.*?))? }}")
LABEL_EQUALS = re.compile(r'eq \$labels\.(\w+) "([^"]*)"')


def choose(match: re.Match[str], labels: dict[str, str]) -> str:
    pieces = ELSE.split(match.group(2))
    # [text, condition, text, condition, text…]: a plain `else`'s condition is None.
    for condition, text in zip([match.group(1), *pieces[1::2]], pieces[0::2], strict=True):
        if condition is None:
            return text
        test = LABEL_EQUALS.fullmatch(condition)
        assert test, f"condition not handled by the test: {condition}"
        if labels.get(test.group(1), "") == test.group(2):
            return text
    return ""


def render(template: str, labels: dict[str, str], value: float) -> str:
    template = IF_CHAIN.sub(lambda match: choose(match, labels), template)

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
    def pool(self) -> str:
        """The GKE name of the stack's node pool: the value of its nodes' pool label."""
        return stack_pool_name(self.config)

    def node(self, i: int, pool: str | None = None) -> str:
        """The name of node `i` of a pool (the stack's by default)."""
        return f"gke-{pool or self.pool}-{i}"

    @property
    def limit_mib(self) -> int:
        return self.plan.workloads[self.backend].memory_limit_mib

    @property
    def request_mib(self) -> int:
        return self.plan.workloads[self.backend].memory_request_mib

    @property
    def typical_mib(self) -> int:
        return self.config.capacity.memory_mib("typical")

    @property
    def near_limit(self) -> float:
        return self.config.monitoring.alerts.memory_near_limit.threshold

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
        return alert_settings(self.config, name)

    def expected_alert(self, name: str, labels: dict[str, str], value: float) -> dict[str, Any]:
        """The alert with the config's severity and the stack's name, its annotations rendered as Prometheus does."""
        rule = self.alert(name)
        full = {**labels, "severity": self.settings(name).severity, "stack": self.plan.stack}
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
    # (namespace, pod) -> (node, phase) of every pod kube-state-metrics reports.
    pods: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    def add(self, metric: str, labels: dict[str, str], values: str) -> None:
        self.series.append({"series": series_name(metric, labels), "values": values})

    def add_ksm(self, metric: str, values: str, **labels: str) -> None:
        """A kube-state-metrics series, once per job of the stack's `ksm_jobs`, the same values each time."""
        for i, job in enumerate(self.stack.ksm_jobs):
            scrape = {"job": job, "instance": f"10.4.1.{7 + i}:8080", "endpoint": "http", "service": f"{job}-svc"}
            self.add(metric, {**scrape, **labels}, values)

    def pod(self, pod: str, *, namespace: str | None = None, node: str | None = None, phase: str = "Running") -> None:
        """kube-state-metrics' series of a pod, once per pod: the node it is scheduled on and its phase."""
        ns = namespace or self.stack.ns
        node = self.stack.node(0) if node is None else node
        assert phase in PHASES
        if (ns, pod) in self.pods:
            assert self.pods[ns, pod] == (node, phase), f"{ns}/{pod} placed twice"
            return
        self.pods[ns, pod] = (node, phase)
        own = {"namespace": ns, "pod": pod, "uid": f"uid-{pod}"}
        self.add_ksm(
            contract.POD_INFO, constant(1), **own, node=node, host_ip="10.128.0.2" if node else "",
            pod_ip="10.4.0.12" if node else "", priority_class="", host_network="false", created_by_kind="ReplicaSet",
        )  # fmt: skip
        for p in PHASES:
            self.add_ksm(contract.POD_PHASE, constant(1 if p == phase else 0), **own, phase=p)

    def container(
        self,
        pod: str,
        container: str,
        *,
        ws_mib: float | None = None,
        request_mib: float | None = None,
        limit_mib: float | None = None,
        namespace: str | None = None,
        node: str | None = None,
        phase: str = "Running",
        noise: bool = True,
    ) -> None:
        """cAdvisor working set (with its pod cgroup, pause and stale duplicate series) and kube-state-metrics."""
        ns = namespace or self.stack.ns
        node = self.stack.node(0) if node is None else node
        self.pod(pod, namespace=ns, node=node, phase=phase)
        if ws_mib is not None:
            base = {
                "job": "kubelet",
                "metrics_path": "/metrics/cadvisor",
                "instance": "10.128.0.2:10250",
                "node": node,
                "endpoint": "https-metrics",
                "service": "kube-prometheus-stack-kubelet",
                "namespace": ns,
                "pod": pod,
            }
            cid = f"{abs(hash((ns, pod, container))) % 10**12:012x}"
            self.add(
                contract.WORKING_SET,
                {**base, "container": container, "image": f"ghcr.io/hyperstudy/{container}:2.14.0", "id": cid},
                constant(ws_mib * MIB),
            )
            if noise:
                # The pod's cgroup (container=""), the pause container, and the last container's stale series.
                self.add(
                    contract.WORKING_SET, {**base, "container": "", "image": "", "id": f"pod-{cid}"}, constant(9e9)
                )
                self.add(
                    contract.WORKING_SET,
                    {**base, "container": "POD", "image": "registry.k8s.io/pause:3.9", "id": f"pause-{cid}"},
                    constant(8e9),
                )
                self.add(
                    contract.WORKING_SET,
                    {**base, "container": container, "image": f"ghcr.io/hyperstudy/{container}:2.13.9", "id": "old"},
                    constant(ws_mib * MIB / 2),
                )
        for metric, mib in ((contract.REQUESTS, request_mib), (contract.LIMITS, limit_mib)):
            if mib is not None:
                self.add_ksm(
                    metric, constant(mib * MIB), namespace=ns, pod=pod, container=container,
                    node=node, uid=f"uid-{pod}", resource="memory", unit="byte",
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
        self,
        pod: str,
        users: dict[str, int] | None = None,
        *,
        ws_mib: float | None = None,
        rss: bool = True,
        node: str | None = None,
    ) -> None:
        stack = self.stack
        for role, count in (users or {}).items():
            self.app(contract.CONNECTED_USERS, pod, constant(count), stack.backend, role=role)
        if rss:
            self.app(contract.PROCESS_RSS, pod, constant(150 * MIB), stack.backend)
        w = stack.plan.workloads[stack.backend]
        self.container(
            pod, stack.backend, ws_mib=ws_mib, request_mib=w.memory_request_mib, limit_mib=w.memory_limit_mib, node=node
        )

    def nodes(
        self,
        count: int,
        *,
        first: int = 0,
        pool: str | None = None,
        since: int = 0,
        kubelet_version: str = OLD_KUBELET,
        cordoned: bool = False,
    ) -> list[str]:
        """`count` nodes of a pool (the stack's by default), present from sample `since` on, on a kubelet version and
        cordoned or not; their names."""
        alloc = self.stack.plan.nodes.allocatable_memory_mib * MIB
        pool = pool or self.stack.pool
        added = []
        for i in range(first, first + count):
            node = self.stack.node(i, pool)
            # honor_labels keeps kube-state-metrics' own namespace/pod on node series.
            own = {
                "namespace": "monitoring",
                "pod": "kube-state-metrics-6d4f9-h2x8c",
                "container": "kube-state-metrics",
            }
            self.add_ksm(contract.NODE_INFO, present_since(1, since), node=node, kubelet_version=kubelet_version, **own)
            self.add_ksm(contract.NODE_UNSCHEDULABLE, present_since(int(cordoned), since), node=node, **own)
            self.add_ksm(
                contract.NODE_ALLOCATABLE, present_since(alloc, since), node=node, resource="memory", unit="byte", **own
            )
            # kube-state-metrics exports the allowlisted node labels: the pool's, and here the zone's too.
            pool_labels = {names.NODE_POOL_LABEL: pool, "label_topology_kubernetes_io_zone": "us-central1-a"}
            self.add_ksm(contract.NODE_LABELS, present_since(1, since), node=node, **pool_labels, **own)
            added.append(node)
        return added


def sample(metric: str, value: float, **labels: str) -> dict[str, Any]:
    return {"labels": series_name(metric, labels), "value": float(value)}


def unnamed(value: float, **labels: str) -> dict[str, Any]:
    """A sample of an expression whose result has no metric name."""
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"labels": f"{{{inner}}}", "value": float(value)}


def expr_test(expr: str, samples: list[dict[str, Any]], eval_time: str = EVAL) -> dict[str, Any]:
    return {"expr": expr, "eval_time": eval_time, "exp_samples": samples}


STACK_CASES = [(name, jobs) for name in ("prod", "staging") for jobs in KSM_JOBS]


def stack_case(request: pytest.FixtureRequest, param: tuple[str, str]) -> Stack:
    name, jobs = param
    config, plan = request.getfixturevalue(f"{name}_config"), request.getfixturevalue(f"{name}_plan")
    return Stack(config, plan, KSM_JOBS[jobs])


@pytest.fixture(params=STACK_CASES, ids=[f"{name}-{jobs}" for name, jobs in STACK_CASES])
def stack(request: pytest.FixtureRequest) -> Stack:
    return stack_case(request, request.param)


def fed_metrics(series: list[dict[str, str]]) -> set[str]:
    return {s["series"].split("{", 1)[0] for s in series}


RulesTest = Callable[[dict[str, Any], dict[str, Any]], None]


def case_check(run: RulesTest) -> Callable[..., None]:
    """`check(stack, cluster, expr_tests, alert_tests)`: the case as a promtool test file over the stack's rules file,
    handed to `run(rule_files, test)`."""

    def check(
        stack: Stack,
        cluster: Cluster,
        exprs: list[dict] | None = None,
        alerts: list[dict] | None = None,
        pending: list[dict] | None = None,
    ) -> None:
        """`pending`: alert tests evaluated on purpose before the condition has held for `for:` (nothing fires)."""
        alerts = list(alerts or [])
        # The rules work on the metric contract alone: nothing else is fed.
        assert fed_metrics(cluster.series) <= set(contract.CONTRACT), fed_metrics(cluster.series) - set(
            contract.CONTRACT
        )
        for a in list(alerts):
            # The rule's own `for:` (the config's, or for the scheduled not-ready alert the windows' shortest lead).
            for_ = minutes(stack.alert(a["alertname"])["for"])
            assert for_ + 5 <= minutes(a["eval_time"]), "evaluate well after the alert's for:"
            if a["exp_alerts"] and for_ >= 2 and a["eval_time"] == EVAL:
                # The condition holds from the start: one minute before `for:` has passed it is still pending.
                alerts.append({**a, "eval_time": f"{for_ - 1:g}m", "exp_alerts": []})
        for a in pending or []:
            assert a["exp_alerts"] == [], "still pending: nothing fires yet"
            alerts.append(a)
        test = {
            "rule_files": ["rules.yaml"],
            "evaluation_interval": EVALUATION_INTERVAL,
            "tests": [
                {
                    "interval": STEP,
                    "input_series": cluster.series,
                    "promql_expr_test": exprs or [],
                    "alert_rule_test": alerts,
                }
            ],
        }
        run({"rules.yaml": rules_file(stack.config, stack.plan)}, test)

    return check


def plan_case(batch: PromtoolBatch, item: pytest.Function, request: pytest.FixtureRequest) -> None:
    """Run a test's body with a recorder in place of promtool: the case it builds is planned in the batch. Its
    fixtures are the session's, its parameters the item's; a body that fails here fails again when the test runs
    (and its case, not planned, runs alone)."""
    params = item.callspec.params if hasattr(item, "callspec") else {}

    def record(rule_files: dict[str, Any], test: dict[str, Any]) -> None:
        batch.plan(item.nodeid, rule_files, test)

    args: dict[str, Any] = {}
    for name in inspect.signature(item.function).parameters:
        if name == "rules_test":
            args[name] = record
        elif name == "promtool_test":
            args[name] = case_check(record)
        elif name in STACK_FIXTURES:
            args[name] = STACK_FIXTURES[name](request, params[name])
        elif name in params:
            args[name] = params[name]
        else:
            args[name] = request.getfixturevalue(name)
    with contextlib.suppress(Exception, pytest.fail.Exception, pytest.skip.Exception):
        item.function(**args)


@pytest.fixture(scope="module")
def promtool_batch(request: pytest.FixtureRequest, promtool: Path, tmp_path_factory) -> Iterator[PromtoolBatch]:
    """Every promtool case of this module's tests that this session runs, planned before the first test (each test's
    body run with a recorder) and run in the background in a few promtool processes (tests/promtool_batch.py)."""
    with PromtoolBatch(promtool, tmp_path_factory.mktemp("promtool")) as batch:
        # Planned only where this process runs the whole module: another xdist distribution would have every worker
        # run every case; there each case runs alone.
        for item in request.session.items if one_worker_runs_each_module(request.config) else []:
            if item.module is request.module and {"rules_test", "promtool_test"} & set(item.fixturenames):
                plan_case(batch, item, request)
        batch.start()
        yield batch


@pytest.fixture
def rules_test(request: pytest.FixtureRequest, promtool_batch: PromtoolBatch) -> RulesTest:
    """`rules_test(rule_files, test)`: `promtool test rules` of `test` (a test file as data) over `rule_files` (name →
    rules, text or data), the case's own verdict from the module's batch; fails with promtool's report."""

    def run(rule_files: dict[str, Any], test: dict[str, Any]) -> None:
        outcome = promtool_batch.outcome(request.node.nodeid, rule_files, test)
        if not outcome.ok:
            pytest.fail(f"promtool test rules failed:\n{outcome.report}")

    return run


@pytest.fixture
def promtool_test(rules_test: RulesTest) -> Callable[..., None]:
    """Run cases against the stack's rules file: `check(stack, cluster, expr_tests, alert_tests)`."""
    return case_check(rules_test)


def test_the_world_labels_nodes_with_the_pool_the_rules_select(prod_config, prod_plan):
    """The pool label value the test gives the stack's nodes is the GKE name `sizing.plan.pool_name` derives."""
    stack = Stack(prod_config, prod_plan)
    cluster = Cluster(stack)
    (node,) = cluster.nodes(1)
    labels = [s["series"] for s in cluster.series if s["series"].startswith(contract.NODE_LABELS + "{")]
    assert labels and all(f'{names.NODE_POOL_LABEL}="{stack_pool_name(prod_config)}"' in s for s in labels)
    assert stack.pool != OTHER_POOL and node.startswith(f"gke-{stack.pool}-")
    cluster.container("frontend-7d9c5b8f6-x2k4q", "frontend", request_mib=32, phase="Succeeded")
    phases = [s for s in cluster.series if s["series"].startswith(contract.POD_PHASE + "{")]
    assert len(phases) == len(PHASES) and sum(s["values"] == constant(1) for s in phases) == 1
    assert any('phase="Succeeded"' in s["series"] and s["values"] == constant(1) for s in phases)


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
    cluster.app(
        contract.CONNECTED_USERS, pod_name("pod-router", 0, False), constant(7), "pod-router", role="experimenter"
    )
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


@dataclass(frozen=True)
class PodSpec:
    """A pod of the cost world: where it runs, in which phase, and its memory request."""

    namespace: str
    pod: str
    container: str
    request_mib: int
    node: str
    phase: str = "Running"


@pytest.mark.parametrize("case", ["room", "full"])
def test_pool_memory_and_cost_are_split_into_parts_that_add_up(stack, promtool_test, case):
    """The pool's allocatable memory split into the roles' formula share, the backend's base and idle memory, the
    requests of every other active pod on the pool and what is unused; the cost split the same way adds up to it."""
    cluster = Cluster(stack)
    formula, plan = stack.config.capacity.formula, stack.plan
    alloc = plan.nodes.allocatable_memory_mib
    pool_nodes = cluster.nodes(plan.nodes.min)
    (other_node,) = cluster.nodes(1, pool=OTHER_POOL)
    b = stack.backend
    backend_users = {
        f"{b}-0": {"participant_video": 10, "experimenter": 2, UNKNOWN_ROLE: 3},  # busy: predicted above its request
        f"{b}-1": {"participant_video": 4, "experimenter": 1},
        f"{b}-2": {},  # scraped without users: the base
    }
    for i, (pod, users) in enumerate(backend_users.items()):
        cluster.backend_pod(pod, users, ws_mib=250, node=pool_nodes[i % len(pool_nodes)])
    predicted = {pod: stack.predicted(users) for pod, users in backend_users.items()}
    request = stack.request_mib * MIB
    assert predicted[f"{b}-0"] > request > predicted[f"{b}-1"] > predicted[f"{b}-2"], "held is the larger of the two"
    others = [
        PodSpec(stack.ns, pod_name("frontend", 0, False), "frontend", 32, pool_nodes[0]),
        PodSpec(stack.ns, pod_name("frontend", 1, False), "frontend", 32, pool_nodes[-1]),
        PodSpec(stack.ns, "redis-0", "redis", 32, pool_nodes[0]),
        PodSpec("monitoring", "prometheus-kps-prometheus-0", "prometheus", 512, pool_nodes[-1]),
        PodSpec("kube-system", "kube-dns-5c9b8f6d4-q8snp", "kubedns", 70, pool_nodes[0]),
        PodSpec("batch", "etl-7d9c5b8f6-m7wzr", "etl", 300, pool_nodes[0], "Pending"),  # scheduled, starting
        # Not on the pool's memory: another pool's node, a finished or failed Job, a Pending pod not yet placed.
        PodSpec("kube-system", "kube-dns-5c9b8f6d4-c4hdl", "kubedns", 70, other_node),
        PodSpec("batch", "report-28391520-x7k2p", "report", 2048, pool_nodes[0], "Succeeded"),
        PodSpec("batch", "report-28391460-bv9tn", "report", 2048, pool_nodes[0], "Failed"),
        PodSpec("batch", "etl-7d9c5b8f6-q8snp", "etl", 300, UNSCHEDULED, "Pending"),
    ]
    if case == "full":
        # Requests beyond what the pool's nodes hold: nothing is unused, the parts add up to what is held.
        others.append(PodSpec("batch", "cache-0", "cache", alloc * len(pool_nodes), pool_nodes[0]))
    for p in others:
        cluster.container(
            p.pod, p.container, request_mib=p.request_mib, limit_mib=2 * p.request_mib, namespace=p.namespace,
            node=p.node, phase=p.phase, ws_mib=p.request_mib / 2 if p.phase == "Running" else None,
        )  # fmt: skip

    pool = len(pool_nodes) * alloc * MIB
    held = sum(max(request, v) for v in predicted.values())
    other = sum(p.request_mib * MIB for p in others if p.node in pool_nodes and p.phase in ACTIVE_PHASES)
    users = {"participant_video": 14, "experimenter": 3}  # no participant_no_video series: no such role sample
    parts = {role: getattr(formula.per_role_mib, role) * n * MIB for role, n in users.items()}
    parts["backend_base"] = len(backend_users) * formula.base_mib * MIB
    parts["backend_idle"] = held - sum(predicted.values())
    parts["other_workloads"] = other
    parts["unused"] = max(0, pool - held - other)
    total = sum(parts.values())
    # The roles, the base and the idle part are what the backend holds; with the rest, the pool (or more, if full).
    assert sum(v for k, v in parts.items() if k not in ("other_workloads", "unused")) == held
    assert total == max(pool, held + other)
    if case == "room":
        assert total == pool and parts["unused"] > 0
    else:
        assert parts["unused"] == 0 and total == held + other > pool
    cost = len(pool_nodes) * plan.cost.node_usd_month
    ns = stack.ns
    by_part = f"sum by (namespace) ({names.POOL_MEMORY_BY_PART})"
    cost_sum = f"abs(sum by (namespace) ({names.COST_BY_ROLE}) - on (namespace) {names.COST}) < bool 1e-9"
    promtool_test(
        stack,
        cluster,
        [
            expr_test(names.POOL_ALLOCATABLE, [sample(names.POOL_ALLOCATABLE, pool, namespace=ns)]),
            expr_test(names.BACKEND_HELD, [sample(names.BACKEND_HELD, held, namespace=ns)]),
            expr_test(names.OTHER_POOL_REQUESTS, [sample(names.OTHER_POOL_REQUESTS, other, namespace=ns)]),
            expr_test(
                names.MEMORY_BY_ROLE,
                [sample(names.MEMORY_BY_ROLE, parts[r], namespace=ns, role=r) for r in users],
            ),
            expr_test(
                names.POOL_MEMORY_BY_PART,
                [sample(names.POOL_MEMORY_BY_PART, v, namespace=ns, role=r) for r, v in parts.items()],
            ),
            expr_test(by_part, [unnamed(total, namespace=ns)]),
            expr_test(names.COST, [sample(names.COST, cost, namespace=ns)]),
            expr_test(
                names.COST_BY_ROLE,
                [sample(names.COST_BY_ROLE, v / total * cost, namespace=ns, role=r) for r, v in parts.items()],
            ),
            expr_test(cost_sum, [unnamed(1, namespace=ns)]),
        ],
    )


def test_without_backend_series_the_pool_is_other_workloads_and_unused(stack, promtool_test):
    """No backend pod reports: the pool's memory is the other pods' requests and the rest unused, at the full cost."""
    cluster = Cluster(stack)
    pool_nodes = cluster.nodes(stack.plan.nodes.min)
    cluster.nodes(1, pool=OTHER_POOL)
    cluster.container(pod_name("frontend", 0, False), "frontend", request_mib=32, limit_mib=128, node=pool_nodes[0])
    cluster.container("prometheus-kps-prometheus-0", "prometheus", request_mib=512, namespace="monitoring")
    pool = len(pool_nodes) * stack.plan.nodes.allocatable_memory_mib * MIB
    other = (32 + 512) * MIB
    cost = len(pool_nodes) * stack.plan.cost.node_usd_month
    parts = {"other_workloads": other, "unused": pool - other}
    ns = stack.ns
    promtool_test(
        stack,
        cluster,
        [
            expr_test(names.BACKEND_HELD, []),
            expr_test(
                names.POOL_MEMORY_BY_PART,
                [sample(names.POOL_MEMORY_BY_PART, v, namespace=ns, role=r) for r, v in parts.items()],
            ),
            expr_test(
                names.COST_BY_ROLE,
                [sample(names.COST_BY_ROLE, v / pool * cost, namespace=ns, role=r) for r, v in parts.items()],
            ),
        ],
    )


def pod_slots(stack: Stack, ws_mib: float, shape_mib: int) -> int:
    """One pod's slots by the definition, exactly: max(0, ⌊(threshold × limit − working set) ÷ shape⌋)."""
    room = Fraction(repr(stack.near_limit)) * stack.limit_mib - Fraction(ws_mib)
    return max(0, math.floor(room / shape_mib))


def slots_expected(stack: Stack, working_sets: list[float]) -> dict[str, int]:
    """The definition of `python -m sizing slots`, with the pods' live working set in place of typical load."""
    expected = {shape: sum(pod_slots(stack, ws, mib) for ws in working_sets) for shape, mib in stack.shapes().items()}
    # `sizing.core.capacity.slots`, the definition the CLI uses, counts the same.
    for shape, mib in stack.shapes().items():
        assert expected[shape] == sum(sizing_slots(stack.limit_mib, ws, mib, stack.near_limit) for ws in working_sets)
    return expected


def test_slots_of_every_shape_follow_the_definition(stack, promtool_test):
    cluster = Cluster(stack)
    largest = max(stack.shapes().values())
    # At typical load, full to the limit, over it (a limit lowered under a running pod), in between, and with room
    # for the largest shape under the limit but not under the near-limit threshold.
    working_sets = [
        stack.typical_mib,
        stack.limit_mib,
        stack.limit_mib + 100,
        stack.typical_mib + 37,
        stack.limit_mib - largest,
    ]
    assert stack.limit_mib - largest > 0 and pod_slots(stack, stack.limit_mib - largest, largest) == 0
    for i, ws in enumerate(working_sets):
        cluster.backend_pod(f"{stack.backend}-{i}", {"participant_video": 1}, ws_mib=ws)
    # Another namespace's backend pods are not this stack's slots.
    cluster.container(
        f"{stack.backend}-0", stack.backend, ws_mib=10, request_mib=256, limit_mib=4096, namespace="other"
    )
    expected = slots_expected(stack, working_sets)
    assert set(expected) == set(stack.shapes()) and "observers" not in expected
    samples = [sample(names.SLOTS, v, namespace=stack.ns, shape=s) for s, v in expected.items()]
    promtool_test(stack, cluster, [expr_test(names.SLOTS, samples)])


def test_without_backend_series_there_are_no_slots(stack, promtool_test):
    """No backend pod reports (another namespace's do): 0 slots of every shape, labelled with the stack's namespace."""
    cluster = Cluster(stack)
    cluster.container(pod_name("frontend", 0, False), "frontend", ws_mib=20, request_mib=32, limit_mib=128)
    cluster.container(
        f"{stack.backend}-0", stack.backend, ws_mib=10, request_mib=256, limit_mib=4096, namespace="other"
    )
    samples = [sample(names.SLOTS, 0, namespace=stack.ns, shape=s) for s in stack.shapes()]
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
        done = run_cli("slots", "--stack", "prod", "--json", *map(str, args), cwd=ROOT_DIR)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["near_limit_threshold"] == stack.near_limit
        assert result["total"] == slots_expected(stack, [stack.typical_mib] * replicas)[shape]
        samples.append(sample(names.SLOTS, result["total"], namespace=stack.ns, shape=shape))
    # The prod example: 90% of the 512Mi limit is 460.8Mi, 165Mi typical, medium 200 MiB: one per pod.
    assert sample(names.SLOTS, 2, namespace="hyperstudy", shape="medium") in samples
    promtool_test(stack, cluster, [expr_test(names.SLOTS, samples)])


def test_workload_working_set_requests_limits_and_ratios(stack, promtool_test):
    cluster = Cluster(stack)
    ws_total: dict[str, int] = {}
    containers: dict[str, float] = {}
    for k, (name, w) in enumerate(sorted(stack.plan.workloads.items())):
        statefulset = name in (stack.backend, "redis")
        for i in range(w.replicas):
            ws = max(1, w.memory_request_mib // 2 + 3 * i + k)
            pod = pod_name(name, i, statefulset)
            cluster.container(
                pod, name, ws_mib=ws, request_mib=w.memory_request_mib, limit_mib=w.memory_limit_mib,
            )  # fmt: skip
            ws_total[name] = ws_total.get(name, 0) + ws
            containers[pod, name] = ws * MIB / (w.memory_limit_mib * MIB)
    # Pods of no workload, and a workload's pod name in another namespace, are not counted.
    cluster.container("debug-shell-0", "debug", ws_mib=999, request_mib=1, limit_mib=1000)
    containers["debug-shell-0", "debug"] = 999 * MIB / (1000 * MIB)  # but each container with a limit has its ratio
    cluster.container(f"{stack.backend}-0", stack.backend, ws_mib=999, request_mib=1, limit_mib=1, namespace="other")
    plan = stack.plan.workloads
    req = {n: w.replicas * w.memory_request_mib * MIB for n, w in plan.items()}
    lim = {n: w.replicas * w.memory_limit_mib * MIB for n, w in plan.items()}
    ws = {n: v * MIB for n, v in ws_total.items()}

    def per_workload(metric: str, values: dict[str, float]) -> dict[str, Any]:
        return expr_test(metric, [sample(metric, v, namespace=stack.ns, workload=n) for n, v in values.items()])

    efficiency = sum(ws.values()) / sum(req.values())
    per_container = [
        sample(names.CONTAINER_LIMIT_UTILISATION, v, namespace=stack.ns, pod=p, container=c)
        for (p, c), v in containers.items()
    ]
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
            expr_test(names.CONTAINER_LIMIT_UTILISATION, per_container),
        ],
    )


def test_cost_is_the_pools_nodes_times_the_node_price(stack, promtool_test):
    cluster = Cluster(stack)
    nodes = stack.plan.nodes
    cluster.nodes(nodes.min)
    # The autoscaler adds nodes up to the maximum at 20m; a second kube-state-metrics replica duplicates one.
    cluster.nodes(nodes.max - nodes.min, first=nodes.min, since=40)
    own = {"namespace": "monitoring", "pod": "kube-state-metrics-6d4f9-z9r2k", "container": "kube-state-metrics"}
    replica = {"instance": "10.4.2.9:8080", **own}
    cluster.add_ksm(contract.NODE_INFO, constant(1), node=stack.node(0), **replica)
    cluster.add_ksm(
        contract.NODE_LABELS, constant(1), node=stack.node(0), **{names.NODE_POOL_LABEL: stack.pool}, **replica
    )
    # Another pool of the same cluster is someone else's: its nodes are neither counted nor priced.
    cluster.nodes(nodes.max + 1, pool=OTHER_POOL)
    price, baseline = stack.plan.cost.node_usd_month, stack.plan.cost.baseline_monthly_usd
    alloc = stack.plan.nodes.allocatable_memory_mib * MIB
    ns = stack.ns  # cluster-level series carry the stack's namespace

    def billed(count: int) -> float:
        # The plan's bill at `count` nodes from its rates (tests/sizing/test_bill.py: they total sizing.plan.bill's
        # lines).
        r = stack.plan.cost.rates
        extra = count * r.node_ip_usd_month + min(count * r.nat_vm_usd_month, r.nat_cap_usd_month)
        return count * price + r.fixed_usd_month + extra

    observed = stack.plan.cost.observed_baseline_monthly_usd

    def at(eval_time: str, count: int) -> list[dict[str, Any]]:
        cost = count * price
        ratio = (baseline - cost) / baseline
        observed_savings = (
            [
                expr_test(
                    names.OBSERVED_SAVINGS, [sample(names.OBSERVED_SAVINGS, observed - cost, namespace=ns)], eval_time
                ),
                expr_test(
                    names.OBSERVED_SAVINGS_RATIO,
                    [sample(names.OBSERVED_SAVINGS_RATIO, (observed - cost) / observed, namespace=ns)],
                    eval_time,
                ),
            ]
            if observed is not None
            else []
        )
        return [
            *observed_savings,
            expr_test(names.BILL, [sample(names.BILL, billed(count), namespace=ns)], eval_time),
            expr_test(names.NODES, [sample(names.NODES, count, namespace=ns)], eval_time),
            expr_test(names.COST, [sample(names.COST, cost, namespace=ns)], eval_time),
            expr_test(names.SAVINGS, [sample(names.SAVINGS, baseline - cost, namespace=ns)], eval_time),
            expr_test(names.SAVINGS_RATIO, [sample(names.SAVINGS_RATIO, ratio, namespace=ns)], eval_time),
            expr_test(names.COST_MAX_1D, [sample(names.COST_MAX_1D, cost, namespace=ns)], eval_time),
            expr_test(names.POOL_ALLOCATABLE, [sample(names.POOL_ALLOCATABLE, count * alloc, namespace=ns)], eval_time),
        ]

    avg = expr_test(names.COST_AVG_1D, [sample(names.COST_AVG_1D, nodes.min * price, namespace=ns)], "15m")
    promtool_test(stack, cluster, [*at("15m", nodes.min), avg, *at(EVAL, nodes.max)])


def test_without_pool_nodes_the_pool_counts_zero(stack, promtool_test):
    """Only another pool's nodes (or kube-state-metrics without the pool label): 0 nodes, 0 cost, 0 allocatable."""
    cluster = Cluster(stack)
    cluster.nodes(2, pool=OTHER_POOL)
    ns = stack.ns
    promtool_test(
        stack,
        cluster,
        [
            expr_test(names.NODES, [sample(names.NODES, 0, namespace=ns)]),
            expr_test(names.COST, [sample(names.COST, 0, namespace=ns)]),
            expr_test(names.POOL_ALLOCATABLE, [sample(names.POOL_ALLOCATABLE, 0, namespace=ns)]),
        ],
    )


def test_two_stacks_sharing_one_prometheus_record_their_own_series(
    prod_config, prod_plan, staging_config, staging_plan, rules_test
):
    """Both stacks' rules in one Prometheus over one cluster: each cluster-level record and the slots once per stack,
    by namespace; each stack counts the nodes of its own pool."""
    stacks = [Stack(prod_config, prod_plan), Stack(staging_config, staging_plan)]
    prod, staging = stacks
    assert prod.ns != staging.ns
    cluster = Cluster(prod)
    counts = {prod.pool: 2, staging.pool: 3}  # one pool of three nodes if both stacks name the same pool
    for pool, count in counts.items():
        cluster.nodes(count, pool=pool)
    cluster.nodes(1, pool=OTHER_POOL)
    b = prod.backend
    ws = 200
    cluster.backend_pod(f"{b}-0", {"participant_video": 3, "experimenter": 1}, ws_mib=ws)
    alloc = prod.plan.nodes.allocatable_memory_mib * MIB
    assert alloc == staging.plan.nodes.allocatable_memory_mib * MIB, "both plans price the same machine type"
    exprs: dict[str, list[dict[str, Any]]] = {}
    for stack in stacks:
        count = counts[stack.pool]
        cost = count * stack.plan.cost.node_usd_month
        baseline = stack.plan.cost.baseline_monthly_usd
        # prod's backend pod runs on prod's pool: for staging it is another workload, if that pool is its own too.
        other = prod.request_mib * MIB if stack is staging and staging.pool == prod.pool else 0
        values = {
            names.NODES: count,
            names.COST: cost,
            names.SAVINGS: baseline - cost,
            names.SAVINGS_RATIO: (baseline - cost) / baseline,
            names.COST_MAX_1D: cost,
            names.COST_AVG_1D: cost,
            names.POOL_ALLOCATABLE: count * alloc,
            names.OTHER_POOL_REQUESTS: other,
        }
        for metric, value in values.items():
            exprs.setdefault(metric, []).append(sample(metric, value, namespace=stack.ns))
        # Only prod's backend pods run: staging has no slots, and its own series says so.
        for shape, slots in (
            slots_expected(stack, [ws]) if stack is prod else dict.fromkeys(stack.shapes(), 0)
        ).items():
            exprs.setdefault(names.SLOTS, []).append(sample(names.SLOTS, slots, namespace=stack.ns, shape=shape))
    # prod's cost parts: two roles with users, base, idle, other workloads, unused; staging's: the last two.
    by_part = f"count by (namespace) ({names.COST_BY_ROLE})"
    exprs[by_part] = [unnamed(6, namespace=prod.ns), unnamed(2, namespace=staging.ns)]
    files = {f"rules-{i}.yaml": rules_file(s.config, s.plan) for i, s in enumerate(stacks)}
    test = {
        "rule_files": sorted(files),
        "evaluation_interval": EVALUATION_INTERVAL,
        "tests": [
            {
                "interval": STEP,
                "input_series": cluster.series,
                "promql_expr_test": [expr_test(metric, samples, "10m") for metric, samples in exprs.items()],
            }
        ],
    }
    rules_test(files, test)


def test_label_replace_takes_the_longest_workload_name(rules_test):
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
        "evaluation_interval": EVALUATION_INTERVAL,
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
    rules_test({"rules.yaml": rules}, test)


# --- Alerts: cases that fire (labels and annotations exact) and cases that stay silent. ---


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


def test_memory_near_limit_counts_containers_not_workloads(stack, promtool_test):
    """A backend pod at 92% of its limit beside one at 10%: the workload is at half its limits, but one container
    is near its own, and the per-container record the alert and the dashboard read has exactly that one above."""
    cluster = Cluster(stack)
    name = names.ALERT_MEMORY_NEAR_LIMIT
    t = stack.near_limit
    limit = stack.limit_mib
    near, far = math.ceil(0.92 * limit), math.floor(0.10 * limit)
    assert near / limit > t > far / limit
    b = stack.backend
    cluster.backend_pod(f"{b}-0", {"participant_video": 1}, ws_mib=near)
    cluster.backend_pod(f"{b}-1", {"participant_video": 1}, ws_mib=far)
    workload = (near + far) * MIB / (2 * limit * MIB)
    assert workload <= t, "the workload as a whole is not near its limits"
    ratios = {f"{b}-0": near * MIB / (limit * MIB), f"{b}-1": far * MIB / (limit * MIB)}
    record = [
        sample(names.CONTAINER_LIMIT_UTILISATION, v, namespace=stack.ns, pod=p, container=b) for p, v in ratios.items()
    ]
    above = f'count({names.CONTAINER_LIMIT_UTILISATION}{{namespace="{stack.ns}"}} > {num(t)})'
    labels = {"namespace": stack.ns, "pod": f"{b}-0", "container": b}
    promtool_test(
        stack,
        cluster,
        [
            expr_test(names.CONTAINER_LIMIT_UTILISATION, record),
            expr_test(above, [unnamed(1)]),
            expr_test(
                names.LIMIT_UTILISATION, [sample(names.LIMIT_UTILISATION, workload, namespace=stack.ns, workload=b)]
            ),
        ],
        [alert_test(name, [stack.expected_alert(name, labels, ratios[f"{b}-0"])])],
    )


@pytest.mark.parametrize("case", ["oom", "other-reason", "old-oom"])
def test_container_oom_killed(stack, promtool_test, case):
    cluster = Cluster(stack)
    name = names.ALERT_OOM_KILLED
    pod = f"{stack.backend}-0"
    restarts = "0+0x79 1+0x40" if case != "old-oom" else constant(1)  # a restart at 40m, or one long ago
    reason = "Error" if case == "other-reason" else "OOMKilled"
    labels = {"namespace": stack.ns, "pod": pod, "container": stack.backend}
    cluster.add_ksm(contract.RESTARTS, restarts, uid=f"uid-{pod}", **labels)
    terminated = "_x80 1+0x40" if case != "old-oom" else constant(1)
    cluster.add_ksm(contract.LAST_TERMINATED, terminated, uid=f"uid-{pod}", reason=reason, **labels)
    expected = [stack.expected_alert(name, labels, 1)] if case == "oom" else []
    promtool_test(stack, cluster, alerts=[alert_test(name, expected, "42m")])


@pytest.mark.parametrize("fires", [True, False], ids=["fires", "silent"])
def test_memory_prediction_drift(stack, promtool_test, fires):
    """Only above the formula and only with users: a pod using 50% more than predicted for its users fires (or one
    within the threshold stays silent); one using 50% less, and idle pods far from the base, never fire."""
    cluster = Cluster(stack)
    name = names.ALERT_PREDICTION_DRIFT
    t = stack.config.monitoring.alerts.prediction_drift.threshold
    assert t < 0.5, "50% off the prediction is drift for both configs"
    users = {"participant_video": 10, "experimenter": 2}
    predicted, base = stack.predicted(users), stack.predicted({})
    b = stack.backend
    over = predicted * 1.5 if fires else predicted * (1 + t / 2)
    pods = {
        f"{b}-0": (users, over),  # above the prediction
        f"{b}-1": (users, predicted * 0.5),  # 50% below it: money, not experiments
        f"{b}-2": (None, base * 3),  # idle, no users series yet: only the base is predicted
        f"{b}-3": (dict.fromkeys(users, 0), base * 3),  # idle, every role's gauge at 0
    }
    for pod, (pod_users, ws) in pods.items():
        cluster.backend_pod(pod, pod_users, ws_mib=ws / MIB)
    value = over / predicted - 1
    assert (value > t) == fires
    expected = [stack.expected_alert(name, {"namespace": stack.ns, "pod": f"{b}-0"}, value)] if fires else []
    accuracy = [
        sample(names.PREDICTION_ACCURACY, ws / (stack.predicted(u or {})), namespace=stack.ns, pod=p)
        for p, (u, ws) in pods.items()
    ]
    promtool_test(stack, cluster, [expr_test(names.PREDICTION_ACCURACY, accuracy)], alerts=[alert_test(name, expected)])


@pytest.mark.parametrize("case", ["fires", "silent", "no-backend"])
def test_capacity_low(stack, promtool_test, case):
    cluster = Cluster(stack)
    name = names.ALERT_CAPACITY_LOW
    t = stack.config.monitoring.alerts.capacity_low.threshold
    shape = stack.config.monitoring.capacity_shape
    shape_mib = stack.shapes()[shape]
    replicas = stack.plan.workloads[stack.backend].replicas
    room = Fraction(repr(stack.near_limit)) * stack.limit_mib  # the near-limit threshold's share of the limit
    if case == "fires":
        left = math.ceil(t) - 1  # the most slots that still fire: all of them on the first pod
        # The other pods have room for the shape under their limit, but not under the near-limit threshold.
        others = math.floor(room - shape_mib) + 1
        assert stack.limit_mib - others >= shape_mib
        working_sets = [math.floor(room - left * shape_mib)] + [others] * (replicas - 1)
    elif case == "silent":
        working_sets = [stack.typical_mib] * replicas
    else:
        working_sets = []  # no backend pod reports its memory (another namespace's does)
        cluster.container(
            f"{stack.backend}-0", stack.backend, ws_mib=10, request_mib=256, limit_mib=4096, namespace="other"
        )
    for i, ws in enumerate(working_sets):
        cluster.backend_pod(f"{stack.backend}-{i}", ws_mib=ws)
    slots = slots_expected(stack, working_sets)[shape]
    assert (slots < t) == (case != "silent")
    labels = {"namespace": stack.ns, "shape": shape}
    expected = [stack.expected_alert(name, labels, slots)] if case != "silent" else []
    promtool_test(stack, cluster, alerts=[alert_test(name, expected)])


OVERCOMMIT_CASES = {
    # case: (nodes, the phase of a 2 GiB Job pod or None)
    "overcommitted": (2, None),
    "fits": (2, None),
    "single-node": (1, None),
    "job-succeeded": (2, "Succeeded"),
    "job-running": (2, "Running"),
    "job-pending": (2, "Pending"),
}


@pytest.mark.parametrize("case", list(OVERCOMMIT_CASES))
def test_memory_overcommit(stack, promtool_test, case):
    """kubernetes-mixin's form: Σ requests of Pending/Running pods − (Σ allocatable − the largest node's) >
    threshold, over every namespace and every node of the cluster, contract series only."""
    cluster = Cluster(stack)
    name = names.ALERT_MEMORY_OVERCOMMIT
    t = stack.config.monitoring.alerts.memory_overcommit.threshold
    node_count, job_phase = OVERCOMMIT_CASES[case]
    # Every node of the cluster counts, the stack's pool or not: the second node is another pool's.
    (pool_node,) = cluster.nodes(1)
    if node_count == 2:
        cluster.nodes(1, pool=OTHER_POOL)
    alloc = stack.plan.nodes.allocatable_memory_mib
    ours = 0
    for i in range(stack.plan.workloads[stack.backend].replicas):
        cluster.backend_pod(f"{stack.backend}-{i}", ws_mib=100)
        ours += stack.request_mib
    # Another namespace's pod counts too (cluster-wide, as kubernetes-mixin): 512 MiB past the threshold, or short.
    margin = 512 if case == "overcommitted" or case == "single-node" else -512
    big = alloc - ours + margin + t / MIB
    cluster.container("etl-7d9c5b8f6-q2w4z", "etl", ws_mib=10, request_mib=big, namespace="batch")
    # A failed pod keeps its requests in kube-state-metrics until deleted, but holds no room on a node.
    cluster.container("etl-28391400-c4hdl", "etl", request_mib=4096, namespace="batch", phase="Failed")
    counted = ours + big
    job = 2048
    if job_phase:
        node = UNSCHEDULED if job_phase == "Pending" else pool_node  # Pending: waiting for room, still requested
        cluster.container(
            "report-28391520-x7k2p", "report", request_mib=job, namespace="batch", node=node, phase=job_phase,
            ws_mib=50 if job_phase == "Running" else None,
        )  # fmt: skip
        counted += job if job_phase in ACTIVE_PHASES else 0
    over = counted * MIB - (node_count - 1) * alloc * MIB
    fires = node_count > 1 and over > t
    assert fires == (case in ("overcommitted", "job-running", "job-pending"))
    if case == "job-succeeded":
        assert over + job * MIB > t, "the finished Job's request would overcommit the cluster"
    # The result carries the stack's namespace, as the cluster-level records do.
    expected = [stack.expected_alert(name, {"namespace": stack.ns}, over)] if fires else []
    if case == "overcommitted" and t == 0:
        assert "512MiB" in expected[0]["exp_annotations"]["description"]
    promtool_test(stack, cluster, alerts=[alert_test(name, expected)])


@pytest.mark.parametrize("fires", [True, False], ids=["fires", "silent"])
def test_node_pool_at_max(stack, promtool_test, fires):
    """The stack's pool against its maximum: another pool's nodes do not bring it closer."""
    cluster = Cluster(stack)
    name = names.ALERT_NODE_POOL_AT_MAX
    t = stack.config.monitoring.alerts.node_pool_at_max.threshold
    count = stack.plan.nodes.max if fires else stack.plan.nodes.max - int(t) - 1
    cluster.nodes(count)
    # Enough nodes of another pool that the cluster as a whole is past the pool's maximum.
    cluster.nodes(int(t) + 2, pool=OTHER_POOL)
    expected = [stack.expected_alert(name, {"namespace": stack.ns}, count)] if fires else []
    promtool_test(stack, cluster, alerts=[alert_test(name, expected)])


# case: (the stack's pool's nodes as (kubelet version, cordoned), and the other pool's upgrade under way).
UPGRADE_CASES: dict[str, tuple[list[tuple[str, bool]], bool]] = {
    # A surge upgrade of a pool at min: its surge node of the new version takes it to the maximum.
    "surge-node-added": ([(OLD_KUBELET, False), (OLD_KUBELET, False), (NEW_KUBELET, False)], False),
    # An old node cordoned and drained (once replaced, the next surge node brings two versions again).
    "old-node-draining": ([(OLD_KUBELET, True), (NEW_KUBELET, False), (NEW_KUBELET, False)], False),
    # A node-pool update that keeps the version: only the cordon shows it.
    "same-version-drain": ([(OLD_KUBELET, True), (OLD_KUBELET, False), (OLD_KUBELET, False)], False),
    # Done: every node on the new version, none cordoned, and still at the maximum (load, not the upgrade).
    "after-upgrade": ([(NEW_KUBELET, False)] * 3, False),
    # Another pool upgrading (two versions, a node cordoned) is not the stack's pool upgrading.
    "other-pool-upgrading": ([(OLD_KUBELET, False)] * 3, True),
}


@pytest.mark.parametrize("case", list(UPGRADE_CASES))
def test_node_pool_at_max_is_silent_while_the_pool_upgrades(stack, promtool_test, case):
    """At the maximum during a surge upgrade (two kubelet versions, or a node cordoned) the alert stays silent; on one
    version with nothing cordoned it fires, as it does when another pool is the one upgrading."""
    cluster = Cluster(stack)
    name = names.ALERT_NODE_POOL_AT_MAX
    pool_nodes, other_upgrading = UPGRADE_CASES[case]
    t = stack.config.monitoring.alerts.node_pool_at_max.threshold
    at = stack.plan.nodes.max - t
    # Both configs: min + the surge node is the maximum, so a surge upgrade at min reaches it.
    assert stack.plan.nodes.min + stack.config.nodes.surge_nodes >= at
    count = max(len(pool_nodes), math.ceil(at))
    pool_nodes = pool_nodes + [pool_nodes[-1]] * (count - len(pool_nodes))
    for i, (version, cordoned) in enumerate(pool_nodes):
        cluster.nodes(1, first=i, kubelet_version=version, cordoned=cordoned)
    cluster.nodes(1, first=0, pool=OTHER_POOL, kubelet_version=OLD_KUBELET, cordoned=other_upgrading)
    cluster.nodes(1, first=1, pool=OTHER_POOL, kubelet_version=NEW_KUBELET if other_upgrading else OLD_KUBELET)
    upgrading = len({v for v, _ in pool_nodes}) > 1 or any(c for _, c in pool_nodes)
    fires = count >= at and not upgrading
    assert fires == (case in ("after-upgrade", "other-pool-upgrading"))
    expected = [stack.expected_alert(name, {"namespace": stack.ns}, count)] if fires else []
    promtool_test(stack, cluster, alerts=[alert_test(name, expected)])


def deployment(cluster: Cluster, name: str, desired: int, available: int, namespace: str | None = None) -> None:
    """kube-state-metrics' desired (`spec.replicas`) and available replicas of a Deployment."""
    ns = namespace or cluster.stack.ns
    cluster.add_ksm(contract.DEPLOYMENT_REPLICAS, constant(desired), namespace=ns, deployment=name)
    cluster.add_ksm(contract.DEPLOYMENT_AVAILABLE, constant(available), namespace=ns, deployment=name)


@pytest.mark.parametrize(
    "case", ["all-ready", "redis-down", "deployment-down", "one-of-several", "scaled-to-zero", "not-the-apps"]
)
def test_workload_unavailable(stack, promtool_test, case):
    """Every app workload by its kind: redis (a StatefulSet) with no ready pod fires, as does a Deployment with none
    available; one pod of several down, a workload scaled to 0, another namespace's redis, and a chart's StatefulSet
    in the monitoring namespace stay silent."""
    cluster = Cluster(stack)
    name = names.ALERT_WORKLOAD_UNAVAILABLE
    assert stack.config.monitoring.alerts.workload_unavailable.threshold == 0
    down = {"redis-down": "redis", "deployment-down": "traefik"}.get(case)
    several = stack.config.workloads[stack.backend].replicas
    assert several >= 2
    kinds = {"StatefulSet": "statefulset", "Deployment": "deployment"}
    expected = []
    for workload, settings in sorted(stack.config.workloads.items()):
        desired = 0 if case == "scaled-to-zero" and workload == "metrics-service" else settings.replicas
        ready = 0 if workload == down or desired == 0 else desired
        if case == "one-of-several" and workload == stack.backend:
            ready = desired - 1
        kind = settings.app.kind
        if kind == "StatefulSet":
            statefulset(cluster, workload, constant(desired), constant(ready))
        else:
            deployment(cluster, workload, desired, ready)
        if workload == down:
            labels = {"namespace": stack.ns, kinds[kind]: workload, "workload": workload}
            expected.append(stack.expected_alert(name, labels, 0))
    if case == "not-the-apps":
        statefulset(cluster, "redis", constant(1), constant(0), namespace="other")
        statefulset(cluster, "alertmanager-kube-prometheus-stack-alertmanager", constant(1), constant(0))
        deployment(cluster, "kube-prometheus-stack-grafana", 1, 0, namespace="monitoring")
    assert bool(expected) == (case in ("redis-down", "deployment-down"))
    promtool_test(stack, cluster, alerts=[alert_test(name, expected)])


def test_workload_unavailable_reads_as_written(prod_config, prod_plan):
    stack = Stack(prod_config, prod_plan)
    labels = {"namespace": "hyperstudy", "statefulset": "redis", "workload": "redis"}
    got = stack.expected_alert(names.ALERT_WORKLOAD_UNAVAILABLE, labels, 0)
    assert got["exp_labels"] == {**labels, "severity": "critical", "stack": "prod"}
    assert got["exp_annotations"]["summary"] == "redis is unavailable: 0% of its pods ready"
    assert got["exp_annotations"]["description"].startswith(
        "Workload hyperstudy/redis has 0% of its desired replicas ready (alert at or below 0%): what it serves is down"
    )


def test_the_watchdog_always_fires_on_managed_prometheus(prod_config, prod_plan, rules_test):
    """The rules' own Watchdog (Managed Prometheus only) fires from the first evaluation on, with nothing fed at all."""
    staging = load_stack("staging", ROOT_DIR)
    plan = build_plan(staging, "staging")
    annotations = Stack(staging, plan).alert(names.WATCHDOG)["annotations"]
    assert annotations["description"] == (
        "Always firing while the rules of {{ $labels.namespace }} are evaluated and their alerts reach Alertmanager: "
        "it is sent to the dead-man's switch (monitoring.alerting.heartbeat), which pages when it stops arriving."
    )
    labels = {"namespace": "hyperstudy-staging", "severity": "none", "stack": "staging"}
    expected = {"exp_labels": labels, "exp_annotations": {k: render(v, labels, 1) for k, v in annotations.items()}}
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": EVALUATION_INTERVAL,
        "tests": [
            {
                "interval": STEP,
                "input_series": [],
                "alert_rule_test": [alert_test(names.WATCHDOG, [expected], at) for at in ("0m", "3h")],
            }
        ],
    }
    rules_test({"rules.yaml": rules_file(staging, plan)}, test)
    # prod's kube-prometheus-stack has its own: the rules carry none.
    assert names.WATCHDOG not in rules_file(prod_config, prod_plan)


# V8's heap spaces as prom-client labels them (the space name without `_space`).
YOUNG_SPACES = ("new", "new_large_object")
READ_ONLY = 256 * 1024


def heap_spaces(old_generation: int, young: int) -> dict[str, int]:
    """`old_generation` bytes spread over V8's old-generation spaces, `young` over the young generation, and the
    read-only snapshot: what `nodejs_heap_space_size_used_bytes` reports per `space`."""
    code, large, map_ = old_generation // 8, old_generation // 4, old_generation // 16
    new_large = young // 8
    spaces = {
        "old": old_generation - code - large - map_,
        "code": code,
        "large_object": large,
        "map": map_,
        "code_large_object": 0,
        "new": young - new_large,
        "new_large_object": new_large,
        "read_only": READ_ONLY,
    }
    assert sum(v for k, v in spaces.items() if k not in (*YOUNG_SPACES, "read_only")) == old_generation
    return spaces


@pytest.mark.parametrize("case", ["fires", "silent", "young-generation"])
def test_heap_near_limit(stack, promtool_test, case):
    """Each Node.js workload's old generation against its own --max-old-space-size: bytes that fill pod-router's
    heap are little for the backend; the young generation and the read-only space are outside the cap."""
    cluster = Cluster(stack)
    name = names.ALERT_HEAP_NEAR_LIMIT
    t = stack.config.monitoring.alerts.heap_near_limit.threshold
    ceilings = {n: w.runtime.memory_mib for n, w in stack.plan.workloads.items() if w.runtime.kind == "nodejs"}
    assert set(ceilings) == {stack.backend, "pod-router", "metrics-service"}
    router, router_2 = pod_name("pod-router", 0, False), pod_name("pod-router", 1, False)
    young = 8 * MIB
    if case == "young-generation":
        # pod-router's whole heap is past the threshold of its cap, but its old generation is not: silent. Its
        # other pod holds 45 MiB in the old generation: that one fires.
        heaps = {
            ("pod-router", router): (28 * MIB, 17 * MIB),
            ("pod-router", router_2): (45 * MIB, 1 * MIB),
        }
        cap = ceilings["pod-router"] * MIB
        assert 28 * MIB / cap <= t < (28 * MIB + 17 * MIB + READ_ONLY) / cap
        assert 45 * MIB / cap > t
    else:
        ratio = (1 + t) / 2 if case == "fires" else t / 2
        router_heap = math.ceil(ceilings["pod-router"] * MIB * ratio)
        heaps = {
            (stack.backend, f"{stack.backend}-0"): (math.ceil(ceilings[stack.backend] * MIB * ratio), young),
            (stack.backend, f"{stack.backend}-1"): (router_heap, young),
            ("pod-router", router): (router_heap, young),
            ("metrics-service", pod_name("metrics-service", 0, False)): (
                math.ceil(ceilings["metrics-service"] * MIB * t / 2),
                young,
            ),
        }
    expected = []
    for (workload, pod), (old_generation, young_bytes) in heaps.items():
        spaces = heap_spaces(old_generation, young_bytes)
        # Two scrapes of the same pod (a PodMonitor and a PodMonitoring): each space counts once.
        for job, instance in ((workload, "10.4.0.12:3000"), (f"{stack.ns}/{workload}", "10.4.0.12:3001")):
            for space, used in spaces.items():
                cluster.app(contract.NODEJS_HEAP_SPACE_USED, pod, constant(used), workload, space=space, job=job,
                            instance=instance)  # fmt: skip
            # prom-client's total over every space, which the rule does not read.
            cluster.app(contract.NODEJS_HEAP_USED, pod, constant(sum(spaces.values())), workload, job=job,
                        instance=instance)  # fmt: skip
        value = old_generation / (ceilings[workload] * MIB)
        if value > t:
            expected.append(stack.expected_alert(name, {"namespace": stack.ns, "pod": pod}, value))
    assert len(expected) == {"fires": 2, "silent": 0, "young-generation": 1}[case]
    promtool_test(stack, cluster, alerts=[alert_test(name, expected)])


# --- The scheduled windows' alerts (capacity.schedule): only the scheduled stack has them. ---


def scheduled_case(request: pytest.FixtureRequest, jobs: str) -> Stack:
    config, plan = request.getfixturevalue("scheduled_stack_config"), request.getfixturevalue("scheduled_stack_plan")
    return Stack(config, plan, KSM_JOBS[jobs])


@pytest.fixture(params=list(KSM_JOBS))
def scheduled(request: pytest.FixtureRequest) -> Stack:
    """`other_config` with planned windows (tests/monitoring/conftest.py), kube-state-metrics scraped once
    or twice."""
    return scheduled_case(request, request.param)


# The fixtures that build a test's Stack from its parameter, for `plan_case`.
STACK_FIXTURES = {"stack": stack_case, "scheduled": scheduled_case}


SCALE_UP_AT = 10  # sample (5m at 30s) at which the scaler Job raises the desired replicas


def statefulset(cluster: Cluster, name: str, desired: str, ready: str, namespace: str | None = None) -> None:
    """kube-state-metrics' desired (`spec.replicas`) and ready replicas of a StatefulSet."""
    ns = namespace or cluster.stack.ns
    cluster.add_ksm(contract.STATEFULSET_REPLICAS, desired, namespace=ns, statefulset=name)
    cluster.add_ksm(contract.STATEFULSET_READY, ready, namespace=ns, statefulset=name)


def scaled_up(before: int, after: int) -> str:
    """`before` until the scale-up at sample SCALE_UP_AT, `after` from then on."""
    return f"{before}+0x{SCALE_UP_AT - 1} {after}+0x{STEPS - SCALE_UP_AT}"


@pytest.mark.parametrize("case", ["short", "ready", "others", "at-base"])
def test_scheduled_capacity_not_ready(scheduled, promtool_test, case):
    """The teaching lab's scale-up takes the backend from 2 to 3 desired replicas: with 2 ready the alert is pending
    for the shortest lead (12m) and fires after it; with 3 ready, or mismatches of another StatefulSet or namespace,
    it stays silent. At the configured 2 replicas (outside every window) a pod not ready all along is not this
    alert's: silent."""
    stack, cluster = scheduled, Cluster(scheduled)
    name = names.ALERT_SCHEDULED_CAPACITY_NOT_READY
    schedule = stack.plan.schedule
    assert schedule is not None and schedule.base_replicas == 2
    (lab,) = [w for w in schedule.windows if w.name == "teaching-lab"]
    assert lab.backend_replicas == 3
    pending = minutes(stack.alert(name)["for"])
    assert pending == 12
    desired = constant(2) if case == "at-base" else scaled_up(2, 3)
    ready = {"short": constant(2), "ready": scaled_up(2, 3), "others": scaled_up(2, 3), "at-base": constant(1)}[case]
    statefulset(cluster, stack.backend, desired, ready)
    if case == "others":
        statefulset(cluster, "redis", constant(1), constant(0))  # not the formula-sized StatefulSet
        statefulset(cluster, stack.backend, desired, constant(1), namespace="other")  # another stack's
    scale_up = SCALE_UP_AT * 0.5  # minutes
    labels = {"namespace": stack.ns, "statefulset": stack.backend}
    expected = [stack.expected_alert(name, labels, 1)] if case == "short" else []
    promtool_test(
        stack,
        cluster,
        # Pending through the lead after the scale-up, firing once it has passed (and still at the end).
        alerts=[alert_test(name, expected, f"{scale_up + pending + 5:g}m"), alert_test(name, expected)],
        pending=[alert_test(name, [], f"{round((scale_up + pending) * 60) - 30}s")],
    )


def scaler_job(
    cluster: Cluster,
    job: str,
    *,
    failed: bool = False,
    pods_failed: int = 0,
    succeeded: int = 0,
    namespace: str = "",
    started: float | None = None,
) -> None:
    """A Job's series as kube-state-metrics 2.x exports them: `kube_job_failed` per condition status only once the
    Job has a Failed condition; `kube_job_status_failed` one series per known reason (0 or 1) once it failed, else
    one series of the failed pods' count; `kube_job_status_start_time` once it started (a Unix time)."""
    own = {"namespace": namespace or cluster.stack.ns, "job_name": job}
    if started is not None:
        cluster.add_ksm(contract.JOB_START_TIME, constant(started), **own)
    if failed:
        for status in ("true", "false", "unknown"):
            cluster.add_ksm(contract.JOB_FAILED, constant(1 if status == "true" else 0), condition=status, **own)
        for reason in ("BackoffLimitExceeded", "DeadlineExceeded", "Evicted"):
            hit = 1 if reason == "BackoffLimitExceeded" else 0
            cluster.add_ksm(contract.JOB_PODS_FAILED, constant(hit), reason=reason, **own)
    else:
        cluster.add_ksm(contract.JOB_PODS_FAILED, constant(pods_failed), **own)
    cluster.add_ksm(contract.JOB_PODS_SUCCEEDED, constant(succeeded), **own)


EVAL_SECONDS = minutes(EVAL) * 60
ON_TIME = EVAL_SECONDS + 3600  # next due an hour after the evaluation
# The latest run of the teaching lab's scale-up, due 20 minutes before the evaluation (past its 10 minutes of
# deadlines), and the one before it, a week earlier.
LATEST_RUN = EVAL_SECONDS - 20 * 60
PREVIOUS_RUN = LATEST_RUN - 7 * 86400


def scaler_cronjob(
    cluster: Cluster,
    cronjob: str,
    *,
    next_run: float = ON_TIME,
    suspended: bool = False,
    namespace: str = "",
    last_run: float | None = None,
    last_success: float | None = None,
) -> None:
    """A CronJob's series as kube-state-metrics 2.x exports them (internal/store/cronjob.go):
    `kube_cronjob_spec_suspend` always, 0 or 1; `kube_cronjob_next_schedule_time` (the first firing after the last run
    the controller started, a Unix time) only while not suspended; `kube_cronjob_status_last_schedule_time` once a run
    was started and `kube_cronjob_status_last_successful_time` once a Job succeeded (Unix times)."""
    own = {"namespace": namespace or cluster.stack.ns, "cronjob": cronjob}
    cluster.add_ksm(contract.CRONJOB_SUSPENDED, constant(1 if suspended else 0), **own)
    if not suspended:
        cluster.add_ksm(contract.CRONJOB_NEXT_SCHEDULE_TIME, constant(next_run), **own)
    if last_run is not None:
        cluster.add_ksm(contract.CRONJOB_LAST_SCHEDULE_TIME, constant(last_run), **own)
    if last_success is not None:
        cluster.add_ksm(contract.CRONJOB_LAST_SUCCESS_TIME, constant(last_success), **own)


def scheduled_world(cluster: Cluster, *, leave_out: str = "", **cronjob: Any) -> list[str]:
    """The backend StatefulSet at its configured replicas and every CronJob the plan's actions run, on time, but
    `leave_out` (not there); `cronjob` options apply to the teaching lab's scale-up. The CronJobs' names."""
    stack = cluster.stack
    statefulset(cluster, stack.backend, constant(2), constant(2))
    expected = [f"{stack.backend}-{action.name}" for action in stack.plan.schedule.actions]
    assert expected == [f"{stack.backend}-teaching-lab-up", f"{stack.backend}-teaching-lab-down"]
    for name in expected:
        if name != leave_out:
            scaler_cronjob(cluster, name, **(cronjob if name.endswith("-up") else {}))
    return expected


# case: the teaching lab's scale-up CronJob (its last run, its last success) and its Jobs (name suffix → options).
SCALING_CASES: dict[str, tuple[dict[str, Any], dict[str, dict[str, Any]]]] = {
    # The latest run's Job gave up (its deadline): `failed`, however long ago the last success was.
    "failed": (
        {"last_run": LATEST_RUN, "last_success": PREVIOUS_RUN + 30},
        {"29412345": {"failed": True, "started": LATEST_RUN + 5}},
    ),
    # Its pods keep failing while it retries: `failed` with their count.
    "retrying": (
        {"last_run": LATEST_RUN, "last_success": PREVIOUS_RUN + 30},
        {"29412345": {"pods_failed": 2, "started": LATEST_RUN + 5}},
    ),
    # A pod failed, the retry succeeded (and the CronJob recorded the success): silent.
    "recovered": (
        {"last_run": LATEST_RUN, "last_success": LATEST_RUN + 90},
        {"29412345": {"pods_failed": 1, "succeeded": 1, "started": LATEST_RUN + 5}},
    ),
    # The case: last week's run failed and its Job is still kept (a week's TTL); this week's succeeded.
    "later-success": (
        {"last_run": LATEST_RUN, "last_success": LATEST_RUN + 40},
        {
            "29402265": {"failed": True, "started": PREVIOUS_RUN + 5},
            "29412345": {"succeeded": 1, "started": LATEST_RUN},
        },
    ),
    # The same, this week's run started 2 minutes ago and still running: not failed yet, not overdue.
    "later-run-under-way": (
        {"last_run": EVAL_SECONDS - 120, "last_success": PREVIOUS_RUN - 7 * 86400},
        {"29402265": {"failed": True, "started": PREVIOUS_RUN + 5}, "29412365": {"started": EVAL_SECONDS - 115}},
    ),
    # No success recorded 20 minutes after the run was due, and no Job of it (deleted): `unfinished`.
    "unfinished": ({"last_run": LATEST_RUN, "last_success": PREVIOUS_RUN + 30}, {}),
    # A first run that failed: no success was ever recorded (kube-state-metrics exports no success time yet).
    "never-succeeded": ({"last_run": LATEST_RUN}, {"29412345": {"failed": True, "started": LATEST_RUN + 5}}),
    # Due 5 minutes ago, no success yet, nothing failed: within its deadlines, silent.
    "within-deadlines": ({"last_run": EVAL_SECONDS - 300}, {}),
}


@pytest.mark.parametrize("case", [*SCALING_CASES, "other-jobs"])
def test_scheduled_scaling_failed(scheduled, promtool_test, case):
    """Each CronJob is judged by its latest run (its last schedule time, unless a Job of it succeeded since): a Job of
    that run that failed, or whose pods keep failing, fires `failed` with its Job; no success past its 10 minutes of
    deadlines and no Job to say why fires `unfinished`. A later success resolves it, whatever failed Jobs are kept;
    failed Jobs of other names or namespaces never fire. Its CronJobs are all there and on time."""
    stack, cluster = scheduled, Cluster(scheduled)
    name = names.ALERT_SCHEDULED_SCALING_FAILED
    cronjob = f"{stack.backend}-teaching-lab-up"
    own = {"namespace": stack.ns, "cronjob": cronjob, "window": "teaching-lab"}
    expected: list[dict[str, Any]] = []
    if case == "other-jobs":
        scheduled_world(cluster, last_run=LATEST_RUN, last_success=LATEST_RUN + 40)
        up = f"{cronjob}-29412345"
        for job in (f"{stack.backend}-nightly-up-1", "redis-teaching-lab-up-1", f"{stack.backend}-teaching-lab-1"):
            scaler_job(cluster, job, failed=True, started=LATEST_RUN + 5)  # no window's, another workload's, neither
        scaler_job(cluster, up, failed=True, namespace="other", started=LATEST_RUN + 5)  # another stack's
        scaler_cronjob(cluster, cronjob, namespace="other", last_run=LATEST_RUN)
    else:
        runs, jobs = SCALING_CASES[case]
        scheduled_world(cluster, **runs)
        for suffix, options in jobs.items():
            scaler_job(cluster, f"{cronjob}-{suffix}", **options)
        if case in ("failed", "retrying", "never-succeeded"):
            job = f"{cronjob}-29412345"
            expected = [
                stack.expected_alert(name, {**own, "job_name": job, "reason": "failed"}, 2 if case == "retrying" else 1)
            ]
        elif case == "unfinished":
            expected = [stack.expected_alert(name, {**own, "reason": "unfinished"}, EVAL_SECONDS - LATEST_RUN)]
    # The scale-down's CronJob ran fine last week: never this alert's.
    scaler_job(cluster, f"{stack.backend}-teaching-lab-down-29411000", succeeded=1, started=PREVIOUS_RUN + 9000)
    promtool_test(stack, cluster, alerts=[alert_test(name, expected)])


def test_a_scaling_failure_resolves_when_the_next_run_succeeds(scheduled, promtool_test):
    """Over time (a sample every 30 s): the run due at 10m fails (its Job gives up at 12m) and the alert fires 2 minutes
    later; the run due at 30m succeeds at 31m while the failed Job is kept: silent from 30m on, not a week later."""
    stack, cluster = scheduled, Cluster(scheduled)
    name = names.ALERT_SCHEDULED_SCALING_FAILED
    cronjob = f"{stack.backend}-teaching-lab-up"
    statefulset(cluster, stack.backend, constant(2), constant(2))
    scaler_cronjob(cluster, cronjob)
    scaler_cronjob(cluster, f"{stack.backend}-teaching-lab-down")
    own = {"namespace": stack.ns, "cronjob": cronjob}
    cluster.add_ksm(contract.CRONJOB_LAST_SCHEDULE_TIME, f"_x20 600+0x39 1800+0x{STEPS - 60}", **own)
    cluster.add_ksm(contract.CRONJOB_LAST_SUCCESS_TIME, f"_x62 1860+0x{STEPS - 62}", **own)
    job = {"namespace": stack.ns, "job_name": f"{cronjob}-10"}
    cluster.add_ksm(contract.JOB_START_TIME, f"_x20 605+0x{STEPS - 20}", **job)
    for status in ("true", "false", "unknown"):
        cluster.add_ksm(contract.JOB_FAILED, f"_x24 {int(status == 'true')}+0x{STEPS - 24}", condition=status, **job)
    cluster.add_ksm(contract.JOB_PODS_FAILED, f"_x24 1+0x{STEPS - 24}", reason="BackoffLimitExceeded", **job)
    cluster.add_ksm(contract.JOB_PODS_SUCCEEDED, f"_x20 0+0x{STEPS - 20}", **job)
    labels = {**own, "window": "teaching-lab", "job_name": f"{cronjob}-10", "reason": "failed"}
    firing = [stack.expected_alert(name, labels, 1)]
    promtool_test(
        stack,
        cluster,
        alerts=[
            alert_test(name, firing, "15m"),
            alert_test(name, firing, "29m30s"),
            alert_test(name, [], "30m30s"),
            alert_test(name, [], "32m"),
        ],
        pending=[alert_test(name, [], "13m")],
    )


@pytest.mark.parametrize("case", ["missed", "on-time", "late-within-deadline", "suspended", "other-cronjobs"])
def test_scheduled_scaler_cronjob_did_not_run(scheduled, promtool_test, case):
    """The teaching lab's scale-up CronJob: due 15 minutes before the evaluation and never started (its next schedule
    time stays there), it fires as `missed` once it is more than 10 minutes overdue and the alert's 2m have passed;
    suspended, it fires as `suspended`. Due in an hour, or 5 minutes ago (the controller may still start it within
    its 300 s deadline), it is silent; so are missed or suspended CronJobs of another workload, of no window, or of
    another namespace."""
    stack, cluster = scheduled, Cluster(scheduled)
    name = names.ALERT_SCHEDULED_SCALING_FAILED
    cronjob = f"{stack.backend}-teaching-lab-up"
    labels = {"namespace": stack.ns, "cronjob": cronjob, "window": "teaching-lab"}
    missed = EVAL_SECONDS - 15 * 60
    expected: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    if case == "missed":
        scheduled_world(cluster, next_run=missed)
        expected = [stack.expected_alert(name, {**labels, "reason": "missed"}, 15 * 60)]
        # Overdue by more than 10 minutes from 45m on: pending for the alert's 2m, firing from 47m.
        assert stack.alert(name)["for"] == "2m"
        pending = [alert_test(name, [], "44m"), alert_test(name, [], "46m30s")]
    elif case == "on-time":
        scheduled_world(cluster)
    elif case == "late-within-deadline":
        scheduled_world(cluster, next_run=EVAL_SECONDS - 5 * 60)
    elif case == "suspended":
        scheduled_world(cluster, suspended=True)
        expected = [stack.expected_alert(name, {**labels, "reason": "suspended"}, 1)]
    else:
        scheduled_world(cluster)
        scaler_cronjob(cluster, "redis-teaching-lab-up", next_run=missed)  # another workload's
        scaler_cronjob(cluster, f"{stack.backend}-nightly-up", suspended=True)  # no window of this stack
        scaler_cronjob(cluster, f"{stack.backend}-teaching-lab", next_run=missed)  # neither up nor down
        scaler_cronjob(cluster, cronjob, next_run=missed, namespace="other")  # another stack's
        scaler_cronjob(cluster, f"{stack.backend}-teaching-lab-down", suspended=True, namespace="other")
    promtool_test(stack, cluster, alerts=[alert_test(name, expected)], pending=pending)


@pytest.mark.parametrize("case", ["missing", "all-there", "nothing-reported"])
def test_scheduled_scaler_cronjob_missing(scheduled, promtool_test, case):
    """A CronJob the plan's actions run (here the teaching lab's scale-down) that kube-state-metrics does not report,
    while it reports the StatefulSet the CronJob scales, fires as `missing`; with every CronJob there it is silent,
    and so it is when kube-state-metrics reports nothing of the namespace at all (a scrape gone, not a CronJob)."""
    stack, cluster = scheduled, Cluster(scheduled)
    name = names.ALERT_SCHEDULED_SCALING_FAILED
    cronjob = f"{stack.backend}-teaching-lab-down"
    expected = []
    if case == "missing":
        scheduled_world(cluster, leave_out=cronjob)
        # The open day's CronJobs are not expected: its replicas fit the configured 2, so it has none.
        labels = {"namespace": stack.ns, "cronjob": cronjob, "window": "teaching-lab", "reason": "missing"}
        expected = [stack.expected_alert(name, labels, 1)]
    elif case == "all-there":
        scheduled_world(cluster)
    else:
        cluster.pod(f"{stack.backend}-0")  # something of the cluster, but no StatefulSet and no CronJob
    promtool_test(stack, cluster, alerts=[alert_test(name, expected)])


def test_scheduled_scaling_failed_annotations_read_as_written(scheduled_stack_config, scheduled_stack_plan):
    """The test's template renderer, `reason` conditionals included, against literal text."""
    stack = Stack(scheduled_stack_config, scheduled_stack_plan)
    name = names.ALERT_SCHEDULED_SCALING_FAILED
    own = {"namespace": "study-staging", "cronjob": "backend-teaching-lab-up", "window": "teaching-lab"}
    failed = stack.expected_alert(name, {**own, "job_name": "backend-teaching-lab-up-1", "reason": "failed"}, 1)
    assert failed["exp_annotations"]["summary"] == (
        "Scaler backend-teaching-lab-up of window teaching-lab failed: Job backend-teaching-lab-up-1"
    )
    assert failed["exp_annotations"]["description"] == (
        "CronJob study-staging/backend-teaching-lab-up sets the replicas of backend for the scheduled window "
        "teaching-lab, and the Job backend-teaching-lab-up-1 of its latest run failed (or its pods keep failing): the "
        "replicas it sets never arrived. A scale-up: the window starts short of its replicas; a scale-down: the pool "
        "stays larger and costs more."
    )
    unfinished = stack.expected_alert(name, {**own, "reason": "unfinished"}, 1200)["exp_annotations"]
    assert (
        unfinished["summary"] == "Scaler backend-teaching-lab-up of window teaching-lab did not finish its latest run"
    )
    assert (
        ", and its latest run, due 20m 0s ago, has not succeeded within 10m (its 300 s starting and 300 s active "
        in (unfinished["description"])
    )
    missed = stack.expected_alert(name, {**own, "reason": "missed"}, 900)["exp_annotations"]
    assert missed["summary"] == "Scaler backend-teaching-lab-up of window teaching-lab missed a run"
    assert ", and a run it was due for more than 10m ago never started (the CronJob controller" in missed["description"]
    suspended = stack.expected_alert(name, {**own, "reason": "suspended"}, 1)["exp_annotations"]
    assert suspended["summary"] == "Scaler backend-teaching-lab-up of window teaching-lab is suspended"
    assert ", and it is suspended: none of its runs start. A scale-up:" in suspended["description"]
    missing = stack.expected_alert(name, {**own, "reason": "missing"}, 1)["exp_annotations"]
    assert missing["summary"] == "Scaler backend-teaching-lab-up of window teaching-lab does not exist"
    assert ", and it does not exist: none of its runs start. A scale-up:" in missing["description"]


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
        "runbook_url": "https://github.com/hyperstudy/hyperstudy-infra/blob/main/docs/runbooks/HyperStudyMemoryNearLimit.md",
    }
    assert got["exp_labels"] == {
        "namespace": "hyperstudy",
        "pod": "p",
        "container": "c",
        "severity": "warning",
        "stack": "prod",
    }
    over = stack.expected_alert(names.ALERT_MEMORY_OVERCOMMIT, {}, 512 * MIB)["exp_annotations"]["description"]
    assert over.startswith("The cluster's memory requests exceed by 512MiB what")
    nodes = stack.expected_alert(names.ALERT_NODE_POOL_AT_MAX, {}, 3)["exp_annotations"]["description"]
    assert nodes.startswith(f"The node pool {stack_pool_name(prod_config)} runs 3 nodes; its autoscaling maximum is 3:")
    drift = stack.expected_alert(names.ALERT_PREDICTION_DRIFT, {"namespace": "hyperstudy", "pod": "backend-0"}, 0.5)
    assert drift["exp_annotations"]["description"].startswith("Backend pod hyperstudy/backend-0 uses 50% more memory")
    low = stack.expected_alert(names.ALERT_CAPACITY_LOW, {"namespace": "hyperstudy", "shape": "medium"}, 0)
    assert low["exp_annotations"]["description"].startswith("The backend pods of hyperstudy can admit 0 more medium")


ALERT_CASES = {
    names.ALERT_MEMORY_NEAR_LIMIT: test_memory_near_limit,
    names.ALERT_OOM_KILLED: test_container_oom_killed,
    names.ALERT_PREDICTION_DRIFT: test_memory_prediction_drift,
    names.ALERT_CAPACITY_LOW: test_capacity_low,
    names.ALERT_MEMORY_OVERCOMMIT: test_memory_overcommit,
    names.ALERT_NODE_POOL_AT_MAX: test_node_pool_at_max,
    names.ALERT_HEAP_NEAR_LIMIT: test_heap_near_limit,
    names.ALERT_SCHEDULED_CAPACITY_NOT_READY: test_scheduled_capacity_not_ready,
    names.ALERT_SCHEDULED_SCALING_FAILED: test_scheduled_scaling_failed,
    names.ALERT_WORKLOAD_UNAVAILABLE: test_workload_unavailable,
    # Its cases need a day and a week of history: their own module, on a rules file cut to the drift rules.
    names.ALERT_REQUEST_DRIFT: drift_cases.test_drift_above_for_a_tenth_of_a_day,
}


def test_every_alert_has_cases(prod_config, prod_plan, scheduled_stack_config, scheduled_stack_plan):
    """Every alert the rules define (and names.py lists) has a fires/silent case above: prod's, and the scheduled
    stack's two more."""
    defined = {
        r["alert"]
        for config, plan in ((prod_config, prod_plan), (scheduled_stack_config, scheduled_stack_plan))
        for g in rule_groups(config, plan)
        for r in g["rules"]
        if "alert" in r
    }
    listed = {v for k, v in vars(names).items() if k.startswith("ALERT_")}
    assert defined == listed == set(ALERT_CASES)


def test_a_committed_pool_pays_its_commitment_below_min_and_on_demand_above_it(prod_config, promtool_test):
    """With cost.commitment the minimum's machines are paid at the committed price even while a node is lost, and a
    node above the minimum at the on-demand price (sizing.plan.bill.NodePrice.pool_usd_month)."""
    config = prod_config.model_copy(update={"cost": prod_config.cost.model_copy(update={"commitment": "1y"})})
    stack = Stack(config, build_plan(config, "prod"), KSM_JOBS["ksm-job"])
    nodes, c = stack.plan.nodes, stack.plan.cost
    assert c.commitment is not None and nodes.max > nodes.min > 1
    cluster = Cluster(stack)
    cluster.nodes(nodes.min - 1)
    cluster.nodes(1, first=nodes.min - 1, since=40)
    cluster.nodes(nodes.max - nodes.min, first=nodes.min, since=80)
    disk = c.commitment.on_demand_node_usd_month - config.machine().on_demand_usd_month

    def cost(count: int) -> float:
        if count < nodes.min:
            return nodes.min * c.commitment.machine_usd_month + count * disk
        return nodes.min * c.node_usd_month + (count - nodes.min) * c.commitment.on_demand_node_usd_month

    promtool_test(
        stack,
        cluster,
        [
            expr_test(names.COST, [sample(names.COST, cost(count), namespace=stack.ns)], at)
            for at, count in (("15m", nodes.min - 1), ("30m", nodes.min), (EVAL, nodes.max))
        ],
    )
