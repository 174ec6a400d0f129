"""The HyperStudy platform on Kubernetes: `HyperStudyApp` owns the namespace, its default-deny ingress policy,
Traefik's RBAC and IngressClass, and one `Workload` per workload of the plan, each combined from the plan's sizes
and its application facts (`workloads.<name>.app` of the stack config).

Traefik is scoped to the stack's namespace, so that on a shared cluster it neither routes nor reads what other
namespaces hold: its providers watch that namespace only and only Ingresses of its own IngressClass
(`<namespace>-traefik`); a Role grants what it reads there (Secrets included) and a ClusterRole only what has no
namespace (IngressClasses, Nodes).
"""

from __future__ import annotations

from typing import Any

import pulumi
import yaml
from pulumi_kubernetes.core.v1 import Namespace
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs
from pulumi_kubernetes.networking.v1 import IngressClass, IngressClassSpecArgs, NetworkPolicy, NetworkPolicySpecArgs
from pulumi_kubernetes.rbac.v1 import (
    ClusterRole,
    ClusterRoleBinding,
    PolicyRuleArgs,
    Role,
    RoleBinding,
    RoleRefArgs,
    SubjectArgs,
)
from pydantic import Field, model_validator

from components.schedule import BackendSchedule, BackendScheduleArgs
from components.workload import (
    INSTANCE,
    MANAGED_BY,
    MANAGED_BY_VALUE,
    PART_OF,
    PART_OF_VALUE,
    Workload,
    WorkloadArgs,
)
from sizing.config.stack import StackConfig, formula_workloads
from sizing.core.model import Model
from sizing.facts.routes import service_annotations
from sizing.plan.pool_name import POOL_NAME_PATTERN
from sizing.plan.types import Plan

# The type token is the one the component had when it lived in components/workloads.py: it is part of every URN.
APP_TYPE = "hyperstudy:workloads:HyperStudyApp"


class HyperStudyAppArgs(Model):
    """The whole platform: the stack config (images, namespace) and its sizing plan (every size)."""

    config: StackConfig = Field(
        description="validated stack config: images, namespace, Kubernetes version, where Prometheus runs"
    )
    plan: Plan = Field(description="the sizing plan of the same config: one Workload per entry")
    node_pool: str | None = Field(None, pattern=POOL_NAME_PATTERN, description="GKE node pool the pods run on")
    load_balancer_ip: Any = Field(
        None, description="the reserved static address Traefik's LoadBalancer keeps (a string or a Pulumi Output)"
    )

    @model_validator(mode="after")
    def _plan_of_this_config(self) -> HyperStudyAppArgs:
        if self.plan.profile != self.config.profile:
            raise ValueError(f"plan is for profile {self.plan.profile!r}, config for {self.config.profile!r}")
        unknown = sorted(set(self.plan.workloads) - set(self.config.workloads))
        if unknown:
            raise ValueError(f"plan has workloads the config does not: {', '.join(unknown)}")
        return self

    @property
    def instance(self) -> str:
        """app.kubernetes.io/instance of every object: the stack, so that two stacks never select each other."""
        return f"{PART_OF_VALUE}-{self.plan.stack}"

    @property
    def scheduled_workload(self) -> str | None:
        """The StatefulSet the schedule's CronJobs scale; None for a stack with no scaling action to run."""
        schedule = self.plan.schedule
        return schedule.workload if schedule is not None and schedule.actions else None

    def schedule_args(self) -> BackendScheduleArgs | None:
        """The BackendSchedule of the plan's scaling actions (None without any); the config has refused a window
        whose CronJob name Kubernetes would refuse (`capacity.schedule.<window>`)."""
        schedule = self.plan.schedule
        if schedule is None or not schedule.actions:
            return None
        return BackendScheduleArgs(
            workload=schedule.workload,
            actions=schedule.actions,
            namespace=self.config.kubernetes.namespace,
            instance=self.instance,
            node_pool=self.node_pool,
        )

    def workload_args(self) -> dict[str, WorkloadArgs]:
        """WorkloadArgs of every plan entry, from its sizes and its application facts (`workloads.<name>.app`): the
        config has refused what the application cannot run (no image, another runtime than its image's, more
        replicas than it supports, formula sizing of a Deployment)."""
        config = self.config
        monitoring = config.monitoring
        namespace = config.kubernetes.namespace
        scaled = self.scheduled_workload
        # The pods that serve experiments (sizing/observe/contract.py), and the only workloads a schedule may scale.
        serving = set(formula_workloads(config))
        return {
            name: WorkloadArgs(
                name=name,
                plan=plan,
                spec=config.workloads[name].app,
                image=config.images[name],
                namespace=namespace,
                instance=self.instance,
                release=monitoring.release,
                prometheus_namespace=monitoring.prometheus_namespace,
                prometheus_operator=monitoring.prometheus_operator,
                managed_prometheus=monitoring.managed_prometheus,
                node_pool=self.node_pool,
                extra_args=traefik_scope_args(namespace) if name == TRAEFIK else (),
                config_files=traefik_dynamic_config(config.ingress.hsts_max_age_seconds) if name == TRAEFIK else {},
                service_annotations=service_annotations(config.ingress.routes, name),
                load_balancer_ip=self.load_balancer_ip if name == TRAEFIK else None,
                # The schedule's CronJobs set its replicas: Pulumi must not set them back on the next update.
                replicas_managed_externally=name == scaled,
                # Without a scaler, Pulumi's apply takes spec.replicas back from one that may have owned it. The
                # program cannot tell "never had a schedule" from "schedule just removed" (the config keeps no
                # history, and the state is not the program's to read), so every stack without a scaler forces.
                force_apply=name in serving and name != scaled,
                holds_live_sessions=name in serving,
            )
            for name, plan in self.plan.workloads.items()
        }


TRAEFIK = "traefik"
# The controller name Traefik's Ingress provider claims IngressClasses by.
TRAEFIK_CONTROLLER = "traefik.io/ingress-controller"
_READ = ["get", "list", "watch"]
# What Traefik's Kubernetes Ingress and CRD providers read in the namespaces they watch: only the stack's.
_TRAEFIK_NAMESPACE_RULES = (
    PolicyRuleArgs(api_groups=[""], resources=["services", "secrets"], verbs=_READ),
    PolicyRuleArgs(api_groups=["discovery.k8s.io"], resources=["endpointslices"], verbs=_READ),
    PolicyRuleArgs(api_groups=["networking.k8s.io"], resources=["ingresses"], verbs=_READ),
    # It writes the load balancer's address into each Ingress's status (publishedservice), where kubectl shows it.
    PolicyRuleArgs(api_groups=["networking.k8s.io"], resources=["ingresses/status"], verbs=["update"]),
)
# What they read that has no namespace: IngressClasses (which classes are Traefik's), and Nodes, which Traefik 3.1+
# watches for NodePort load-balancing and without which its providers never finish their initial sync (turning
# that off, disableClusterScopeResources, would turn off the IngressClass lookup too). Read-only, no Secrets.
_TRAEFIK_CLUSTER_RULES = (
    PolicyRuleArgs(api_groups=["networking.k8s.io"], resources=["ingressclasses"], verbs=_READ),
    PolicyRuleArgs(api_groups=[""], resources=["nodes"], verbs=["list", "watch"]),
)


def traefik_ingress_class(namespace: str) -> str:
    """The IngressClass of the stack's Traefik: cluster-scoped, so it carries the namespace."""
    return f"{namespace}-{TRAEFIK}"


def traefik_scope_args(namespace: str) -> tuple[str, ...]:
    """Traefik's arguments that confine it to the stack: its Ingress provider watches `namespace` only and serves
    only Ingresses of the stack's own IngressClass, not every Ingress of the default `traefik` class a shared
    cluster may hold; it publishes its own Service's address in their status."""
    return (
        f"--providers.kubernetesingress.namespaces={namespace}",
        f"--providers.kubernetesingress.ingressclass={traefik_ingress_class(namespace)}",
        f"--providers.kubernetesingress.ingressendpoint.publishedservice={namespace}/{TRAEFIK}",
    )


def traefik_dynamic_config(hsts_max_age_seconds: int) -> dict[str, str]:
    """Traefik's file-provider config: the `hsts` middleware every HTTPS response passes through (`websecure`'s
    entry-point middleware). Subdomains and preload stay off: the stack owns its hosts, not their parent domain."""
    middleware = {"headers": {"stsSeconds": hsts_max_age_seconds, "stsIncludeSubdomains": False, "stsPreload": False}}
    return {"hsts.yaml": yaml.safe_dump({"http": {"middlewares": {"hsts": middleware}}}, sort_keys=True)}


class HyperStudyApp(pulumi.ComponentResource):
    """The HyperStudy platform: its namespace, default-deny ingress, Traefik's RBAC and IngressClass, every Workload,
    and the backend's scheduled scaling when the plan has scaling actions."""

    namespace: Namespace
    default_deny: NetworkPolicy
    workloads: dict[str, Workload]
    traefik_role: Role | None
    traefik_role_binding: RoleBinding | None
    traefik_cluster_role: ClusterRole | None
    traefik_cluster_role_binding: ClusterRoleBinding | None
    ingress_class: IngressClass | None
    schedule: BackendSchedule | None

    def __init__(self, name: str, args: HyperStudyAppArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # Every workload and the schedule are checked before anything is registered: a bad stack creates nothing.
        workload_args = args.workload_args()
        schedule_args = args.schedule_args()
        super().__init__(APP_TYPE, name, None, opts)
        config, plan = args.config, args.plan
        namespace = config.kubernetes.namespace
        common = {PART_OF: PART_OF_VALUE, INSTANCE: args.instance, MANAGED_BY: MANAGED_BY_VALUE}
        pss_version = "v" + ".".join(config.kubernetes.version.split(".")[:2])

        self.namespace = Namespace(
            namespace,
            metadata=ObjectMetaArgs(
                name=namespace,
                labels={
                    **common,
                    # Enforced at the version the manifests are validated against, so a cluster upgrade cannot
                    # start rejecting pods; warn/audit at latest show what the next version would reject.
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": pss_version,
                    "pod-security.kubernetes.io/warn": "restricted",
                    "pod-security.kubernetes.io/warn-version": "latest",
                    "pod-security.kubernetes.io/audit": "restricted",
                    "pod-security.kubernetes.io/audit-version": "latest",
                },
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Namespaced objects wait for the namespace. The Workload components take it as depends_on: the SDK
        # registers a component only once its dependencies exist, and its children only after their parent.
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])

        self.default_deny = NetworkPolicy(
            "default-deny-ingress",
            metadata=ObjectMetaArgs(name="default-deny-ingress", namespace=namespace, labels=common),
            # Every pod, no ingress rule: only what a Workload's own policy admits gets in.
            spec=NetworkPolicySpecArgs(pod_selector=LabelSelectorArgs(), policy_types=["Ingress"]),
            opts=in_namespace,
        )

        self.traefik_role = self.traefik_role_binding = None
        self.traefik_cluster_role = self.traefik_cluster_role_binding = self.ingress_class = None
        traefik_needs: list[pulumi.Resource] = []
        if TRAEFIK in workload_args:
            traefik_needs = self._traefik_access(namespace, workload_args[TRAEFIK].labels, in_namespace)

        self.workloads = {}
        for workload, wargs in workload_args.items():
            # Traefik's pods start once they may read what their providers watch (else the first sync stalls).
            needs = traefik_needs if workload == TRAEFIK else []
            self.workloads[workload] = Workload(
                workload,
                wargs,
                opts=pulumi.ResourceOptions.merge(in_namespace, pulumi.ResourceOptions(depends_on=needs)),
            )

        self.schedule = None
        if schedule_args is not None:
            # After the StatefulSet it scales: the Role names it, and a first run must find it.
            scaled = self.workloads[schedule_args.workload]
            self.schedule = BackendSchedule(
                schedule_args.workload,
                schedule_args,
                opts=pulumi.ResourceOptions.merge(in_namespace, pulumi.ResourceOptions(depends_on=[scaled])),
            )

        self.register_outputs(
            {
                "namespace": self.namespace.metadata.apply(lambda m: m.name),
                "profile": plan.profile,
                "ingress_class": traefik_ingress_class(namespace) if self.ingress_class is not None else None,
                "workloads": {
                    w.name: {
                        "replicas": w.replicas,
                        "memory_request": w.memory_request,
                        "memory_limit": w.memory_limit,
                        "cpu_request": w.cpu_request,
                    }
                    for w in plan.workloads.values()
                },
                **(
                    {"scaling_cron_jobs": sorted(schedule_args.cronjob_name(a) for a in schedule_args.actions)}
                    if schedule_args is not None
                    else {}
                ),
            }
        )

    def _traefik_access(
        self, namespace: str, labels: dict[str, str], in_namespace: pulumi.ResourceOptions
    ) -> list[pulumi.Resource]:
        """Traefik's Role and ClusterRole with their bindings, and its IngressClass; returns what its pods need."""
        subjects = [SubjectArgs(kind="ServiceAccount", name=TRAEFIK, namespace=namespace)]
        # Namespaced: Services, EndpointSlices, Secrets (TLS), Ingresses and Traefik's CRDs of the stack's
        # namespace only. A Role's name is unique within its namespace, which is the stack's.
        self.traefik_role = Role(
            TRAEFIK,
            metadata=ObjectMetaArgs(name=TRAEFIK, namespace=namespace, labels=labels),
            rules=list(_TRAEFIK_NAMESPACE_RULES),
            opts=in_namespace,
        )
        self.traefik_role_binding = RoleBinding(
            TRAEFIK,
            metadata=ObjectMetaArgs(name=TRAEFIK, namespace=namespace, labels=labels),
            role_ref=RoleRefArgs(
                api_group="rbac.authorization.k8s.io",
                kind="Role",
                name=self.traefik_role.metadata.apply(lambda m: m.name),
            ),
            subjects=subjects,
            opts=in_namespace,
        )
        # Cluster-scoped names carry the namespace: two stacks in one cluster must not share a role or a class.
        cluster_name = traefik_ingress_class(namespace)
        self.traefik_cluster_role = ClusterRole(
            cluster_name,
            metadata=ObjectMetaArgs(name=cluster_name, labels=labels),
            rules=list(_TRAEFIK_CLUSTER_RULES),
            # After the RoleBinding: where this role used to grant the namespaced reads cluster-wide, they are
            # granted in the namespace before they are taken away here.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.traefik_role_binding]),
        )
        self.traefik_cluster_role_binding = ClusterRoleBinding(
            cluster_name,
            metadata=ObjectMetaArgs(name=cluster_name, labels=labels),
            role_ref=RoleRefArgs(
                api_group="rbac.authorization.k8s.io",
                kind="ClusterRole",
                name=self.traefik_cluster_role.metadata.apply(lambda m: m.name),
            ),
            subjects=subjects,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Not the default class: Ingresses name it (ingressClassName) to be served by this stack's Traefik.
        self.ingress_class = IngressClass(
            cluster_name,
            metadata=ObjectMetaArgs(name=cluster_name, labels=labels),
            spec=IngressClassSpecArgs(controller=TRAEFIK_CONTROLLER),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return [self.traefik_role_binding, self.traefik_cluster_role_binding, self.ingress_class]
