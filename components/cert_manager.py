"""cert-manager, installed by the program when the stack has public hosts (`ingress.install_cert_manager`): the
controller that issues and renews the hosts' certificates, with its CRDs.

Its values come from the plan like every chart's (`sizing/plan/chart_values.py`): each container sized, replicas,
GOMEMLIMIT, pinned to the stack's pool, and the HTTP-01 solver pods it starts sized by its flags. The startup API
check, the chart's post-install hook Job, is on and sized like the rest: Helm waits for it, so the release is
created only once the webhook admits cert-manager's resources (its CA injected), and the Issuer that depends on the
release is never refused on a first deploy. Its CRDs come with the release and stay when it is uninstalled, so
deleting the release never deletes the stack's certificates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field

from sizing.config.stack import StackConfig
from sizing.core.model import Model
from sizing.facts.charts import CERT_MANAGER, CERT_MANAGER_NAMESPACE
from sizing.plan.chart_values import sized_values
from sizing.plan.types import Plan, WorkloadPlan

NAMESPACE = CERT_MANAGER_NAMESPACE
RELEASE = "cert-manager"


class CertManagerArgs(Model):
    """The chart version, the plan's sizes of cert-manager's pods, and the pool they are pinned to."""

    chart_version: str = Field(description="cert-manager chart version (ingress.cert_manager_chart_version)")
    pods: dict[str, WorkloadPlan] = Field(
        description="the plan's chart workloads (Plan.chart_workloads): sizes and replicas of every pod it runs"
    )
    pool_name: str = Field(description="GKE node pool the pods are pinned to")

    @classmethod
    def derive(cls, config: StackConfig, plan: Plan, pool_name: str) -> CertManagerArgs:
        return cls(
            chart_version=config.ingress.cert_manager_chart_version, pods=plan.chart_workloads, pool_name=pool_name
        )


def chart_values(pods: Mapping[str, WorkloadPlan], pool_name: str) -> dict[str, Any]:
    """The Helm values: CRDs with the release (and kept without it), leader election in its own namespace, the
    plan's sizes."""
    values: dict[str, Any] = {
        "crds": {"enabled": True, "keep": True},
        # The chart's default is kube-system; cert-manager's own namespace keeps its leases beside its pods.
        "global": {"leaderElection": {"namespace": NAMESPACE}},
    }
    sized_values(values, CERT_MANAGER, pods, pool_name)
    return values


class CertManager(pulumi.ComponentResource):
    """cert-manager's namespace and Helm release."""

    namespace: k8s.core.v1.Namespace
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: CertManagerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("hyperstudy:tls:CertManager", name, None, opts)
        labels = {"app.kubernetes.io/part-of": "hyperstudy", "app.kubernetes.io/managed-by": "pulumi"}
        # Its pods run as non-root with RuntimeDefault seccomp and drop every capability: restricted holds.
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-cert-manager",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=NAMESPACE, labels={**labels, "pod-security.kubernetes.io/enforce": "restricted"}
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-cert-manager",
            name=RELEASE,
            chart=CERT_MANAGER.name,
            version=args.chart_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CERT_MANAGER.repository),
            namespace=NAMESPACE,
            values=chart_values(args.pods, args.pool_name),
            atomic=True,
            cleanup_on_fail=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace]),
        )
        self.register_outputs({"release": RELEASE, "chart_version": args.chart_version})
