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

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field

from sizing.config.stack import StackConfig
from sizing.core.model import Model
from sizing.facts.charts import CERT_MANAGER
from sizing.plan.chart_values import sized_values
from sizing.plan.types import Plan

NAMESPACE = "cert-manager"
RELEASE = "cert-manager"


class CertManagerArgs(Model):
    """The stack's config (chart version) and plan (its pods' sizes), and the pool its pods are pinned to."""

    config: StackConfig = Field(description="the stack's config: ingress settings, chart version")
    plan: Plan = Field(description="the sizing plan: sizes and replicas of every pod cert-manager runs")
    pool_name: str = Field(description="GKE node pool the pods are pinned to")


def chart_values(plan: Plan, pool_name: str) -> dict[str, Any]:
    """The Helm values: CRDs with the release (and kept without it), leader election in its own namespace, the
    plan's sizes."""
    values: dict[str, Any] = {
        "crds": {"enabled": True, "keep": True},
        # The chart's default is kube-system; cert-manager's own namespace keeps its leases beside its pods.
        "global": {"leaderElection": {"namespace": NAMESPACE}},
    }
    sized_values(values, CERT_MANAGER, plan, pool_name)
    return values


class CertManager(pulumi.ComponentResource):
    """cert-manager's namespace and Helm release."""

    namespace: k8s.core.v1.Namespace
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: CertManagerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("hyperstudy:tls:CertManager", name, None, opts)
        ingress = args.config.ingress
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
            version=ingress.cert_manager_chart_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CERT_MANAGER.repository),
            namespace=NAMESPACE,
            values=chart_values(args.plan, args.pool_name),
            atomic=True,
            cleanup_on_fail=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace]),
        )
        self.register_outputs({"release": RELEASE, "chart_version": ingress.cert_manager_chart_version})
