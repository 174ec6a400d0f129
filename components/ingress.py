"""The stack's public routes: one Ingress for every public host, served over TLS by the stack's Traefik, with its
certificate issued and renewed by cert-manager from the stack's ACME account.

- The Ingress maps each path of `ingress.routes` to its workload's Service port on every host of
  `ingress.hosts`; its `tls` covers every host, and ingress-shim (`cert-manager.io/issuer`) keeps the certificate in
  the Secret it names.
- The Issuer is namespaced (the stack's own ACME account and key) and proves each host over HTTP-01 through the
  stack's IngressClass; its solver pods are pinned to the stack's pool and sized by cert-manager's flags
  (`components/cert_manager.py`), as the plan sizes them.
- A NetworkPolicy admits Traefik to the solver pods: the namespace denies every other ingress.

Redirect and HSTS are Traefik's (its `workloads.traefik.app`): every route here is HTTPS only.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field, model_validator

from sizing.config.ingress import IngressConfig
from sizing.config.stack import StackConfig
from sizing.core.model import Model
from sizing.plan.pool_name import GKE_NODE_POOL_LABEL

ISSUER = "letsencrypt"
# cert-manager labels every HTTP-01 solver pod with this, and its solver listens on this port.
SOLVER_LABEL, SOLVER_PORT = "acme.cert-manager.io/http01-solver", 8089
INGRESS_NAME = "hyperstudy"


def tls_secret(namespace: str) -> str:
    """The Secret cert-manager keeps the hosts' certificate in."""
    return f"{namespace}-tls"


class PublicRoutesArgs(Model):
    """The stack's hosts, routes and namespace, the port each route reaches, the IngressClass its Traefik serves, the
    pool solver pods run on, and the labels of its Traefik pods."""

    ingress: IngressConfig = Field(description="the stack's `ingress` config: hosts, routes, ACME account")
    namespace: str = Field(description="the stack's namespace (kubernetes.namespace): the Ingress and its TLS Secret")
    port_names: dict[str, str] = Field(
        description="the Service port name of each routed workload (workloads.<name>.app.port_name)"
    )
    ingress_class: str = Field(description="the stack's Traefik IngressClass")
    traefik_labels: dict[str, str] = Field(description="labels that select the stack's Traefik pods")
    node_pool: str | None = Field(None, description="GKE node pool the solver pods run on (None: any)")

    @model_validator(mode="after")
    def _every_route_has_a_port(self) -> PublicRoutesArgs:
        missing = sorted({route.workload for route in self.ingress.routes} - set(self.port_names))
        if missing:
            raise ValueError(f"no port name for the routed workload(s) {', '.join(missing)}")
        return self

    @classmethod
    def derive(
        cls, config: StackConfig, ingress_class: str, traefik_labels: dict[str, str], node_pool: str | None
    ) -> PublicRoutesArgs:
        """The Args of a validated stack: its routes reach workloads it runs (StackConfig checked that)."""
        routed = {route.workload for route in config.ingress.routes}
        return cls(
            ingress=config.ingress,
            namespace=config.kubernetes.namespace,
            port_names={name: config.workloads[name].app.port_name for name in sorted(routed)},
            ingress_class=ingress_class,
            traefik_labels=traefik_labels,
            node_pool=node_pool,
        )


def ingress_spec(args: PublicRoutesArgs) -> k8s.networking.v1.IngressSpecArgs:
    """Every route on every host, TLS on every host."""
    paths = [
        k8s.networking.v1.HTTPIngressPathArgs(
            path=route.path,
            path_type="Prefix",
            backend=k8s.networking.v1.IngressBackendArgs(
                service=k8s.networking.v1.IngressServiceBackendArgs(
                    name=route.workload,
                    port=k8s.networking.v1.ServiceBackendPortArgs(name=args.port_names[route.workload]),
                )
            ),
        )
        for route in args.ingress.routes
    ]
    hosts = args.ingress.hosts
    return k8s.networking.v1.IngressSpecArgs(
        ingress_class_name=args.ingress_class,
        tls=[k8s.networking.v1.IngressTLSArgs(hosts=list(hosts), secret_name=tls_secret(args.namespace))],
        rules=[
            k8s.networking.v1.IngressRuleArgs(host=host, http=k8s.networking.v1.HTTPIngressRuleValueArgs(paths=paths))
            for host in hosts
        ],
    )


class PublicRoutes(pulumi.ComponentResource):
    """The Issuer, the Ingress and the solver's NetworkPolicy of one stack."""

    issuer: k8s.apiextensions.CustomResource
    ingress: k8s.networking.v1.Ingress
    solver_policy: k8s.networking.v1.NetworkPolicy

    def __init__(self, name: str, args: PublicRoutesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if not args.ingress.hosts or args.ingress.acme is None:
            raise ValueError("public routes need hosts and an ACME account (ingress.hosts, ingress.acme)")
        super().__init__("hyperstudy:ingress:PublicRoutes", name, None, opts)
        namespace, acme = args.namespace, args.ingress.acme
        labels = {"app.kubernetes.io/part-of": "hyperstudy", "app.kubernetes.io/managed-by": "pulumi"}
        child = pulumi.ResourceOptions(parent=self)

        solver_pod = {"spec": {"nodeSelector": {GKE_NODE_POOL_LABEL: args.node_pool}}} if args.node_pool else None
        self.issuer = k8s.apiextensions.CustomResource(
            f"{name}-issuer",
            api_version="cert-manager.io/v1",
            kind="Issuer",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=ISSUER, namespace=namespace, labels=labels),
            spec={
                "acme": {
                    "server": acme.directory,
                    "email": acme.email,
                    # The ACME account's key, created by cert-manager on first use and reused for every renewal.
                    "privateKeySecretRef": {"name": f"{ISSUER}-account-key"},
                    "solvers": [
                        {
                            "http01": {
                                "ingress": {
                                    "ingressClassName": args.ingress_class,
                                    # Traefik routes to pod IPs: no NodePort for the solver.
                                    "serviceType": "ClusterIP",
                                    **({"podTemplate": solver_pod} if solver_pod else {}),
                                }
                            }
                        }
                    ],
                }
            },
            opts=child,
        )
        self.ingress = k8s.networking.v1.Ingress(
            f"{name}-ingress",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=INGRESS_NAME,
                namespace=namespace,
                labels=labels,
                # ingress-shim: a Certificate for the tls hosts, issued by the stack's Issuer.
                annotations={"cert-manager.io/issuer": ISSUER},
            ),
            spec=ingress_spec(args),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.issuer]),
        )
        self.solver_policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-acme-solver",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="acme-http01-solver", namespace=namespace, labels=labels),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={SOLVER_LABEL: "true"}),
                policy_types=["Ingress"],
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[
                            k8s.networking.v1.NetworkPolicyPeerArgs(
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=args.traefik_labels)
                            )
                        ],
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=SOLVER_PORT, protocol="TCP")],
                    )
                ],
            ),
            opts=child,
        )
        self.register_outputs({"hosts": list(args.ingress.hosts), "issuer": ISSUER, "server": acme.directory})
